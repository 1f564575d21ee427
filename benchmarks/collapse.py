"""Posterior collapse with an autoregressive decoder: the VAE and its remedies at the same budget.

On binarized digits with the Gated PixelCNN decoder (`decoder='pixelcnn'`), which can model the
images without z, this trains every variant through `train_vae(TrainVAEConfig(...))`, the path of
`kerasgen train-vae`, with the same epochs, seed, batch size, latent size and networks:

- `vae`: the plain VAE (beta = 1 from the first step);
- `warmup`: a linear KL warm-up over --warmup-epochs;
- `cyclical`: cyclical KL annealing (Fu et al. 2019), --kl-cycles cycles;
- `free-bits`: free bits (Kingma et al. 2016), --free-bits nats per latent dimension;
- `aggressive`, `aggressive-warmup`: the aggressive encoder training of He et al. (2019), alone
  and with the warm-up;
- `autoencoder`: beta = 0, the same network trained on reconstruction alone: its codes fit the
  images but not the prior, so it is no generative model (its aggregated posterior is far from
  N(0, I) and its prior samples are poor).

Each variant is then measured on --eval-images held-out images (a seeded random subset of the
test split, else the validation split, binarized once): active units, KL, I(x; z), the ELBO and
its reconstruction term, the importance-weighted log p(x) with --k samples (each sample is a full
PixelCNN pass over the image, so this costs K decoder passes per image: K = 100 on 500 images is
50,000 passes), the aggregated posterior against the prior (MMD² and the marginal KL of the ELBO
decomposition, KL - I(x; z)), and, with a classifier of the digits, the Fréchet distance of
--num-samples prior samples (each drawn pixel by pixel: H·W decoder passes per sample).

    python benchmarks/collapse.py --out /tmp/collapse                            # mnist-5k, every variant
    python benchmarks/collapse.py --epochs 2 --variants vae autoencoder --out /tmp/collapse_quick
    python benchmarks/collapse.py --dataset ../shared/data/mnist --epochs 20 \\
        --out runs/collapse_mnist                                                # full MNIST, dynamically binarized
    python benchmarks/collapse.py --dataset ../shared/data/binarized_mnist/binarized_mnist.npz \\
        --binarize none --num-samples 0 --out runs/collapse_static               # the fixed binarization (no labels)

`--jobs 2` trains and measures two variants at once, each in its own process (OUT/VARIANT.log).

Resumable: a finished variant (its `vae.keras`) is kept, an interrupted one continues from its
checkpoint, and a variant's measurements (`OUT/VARIANT/collapse_eval.json`) are reused when their
settings are the same. Writes OUT/collapse.json, OUT/collapse.md (the table) and OUT/collapse.png
(active units, KL and I(x; z) over the epochs of every variant, from each run's history.csv).
"""

import argparse
import math
import os
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import kerasgen  # noqa: E402

kerasgen.quiet_tensorflow_startup()  # this script owns its terminal: TensorFlow's start-up lines are filtered

import numpy as np  # noqa: E402

from kerasgen.artifacts import load_run, read_json, write_json  # noqa: E402
from kerasgen.config import TrainVAEConfig, count_or_fraction  # noqa: E402
from kerasgen.options import PIXELCNN_CONDITIONINGS  # noqa: E402
from kerasgen.data import load_dataset  # noqa: E402
from kerasgen.evaluation import (  # noqa: E402
    aggregated_posterior_mmd,
    elbo,
    importance_weighted_log_likelihood,
    posterior_diagnostics,
    sample_quality,
)
from kerasgen.plots import _save, plt, read_history  # noqa: E402
from kerasgen.evaluation.domain import choose_classifier  # noqa: E402
from kerasgen.runs.choose import CHOSEN_FIELDS  # noqa: E402
from kerasgen.runs.harness import check_same_run  # noqa: E402
from kerasgen.runs.vae import resolve_binarize, train_vae  # noqa: E402

# key: (label, TrainVAEConfig fields given the parsed arguments)
VARIANTS = {
    "vae": ("plain VAE", lambda args: {}),
    "warmup": ("KL warm-up", lambda args: {"kl_warmup_epochs": warmup_epochs(args)}),
    "cyclical": ("cyclical annealing", lambda args: {"kl_cycles": args.kl_cycles}),
    "free-bits": ("free bits", lambda args: {"free_bits": args.free_bits}),
    "aggressive": ("aggressive", lambda args: aggressive(args)),
    "aggressive-warmup": ("aggressive + warm-up", lambda args: aggressive(args, kl_warmup_epochs=warmup_epochs(args))),
    "autoencoder": ("β = 0 autoencoder", lambda args: {"beta": 0.0}),
}

# He et al. (2019), "Lagging inference networks and posterior collapse", Table 2 (OMNIGLOT, PixelCNN decoder).
ANCHORS = (
    "He et al. (2019), OMNIGLOT with a PixelCNN decoder, for scale (another dataset, decoder and budget): "
    "VAE + KL annealing KL 2.1, MI 1.9, NLL 89.20; aggressive training KL 2.5, MI 2.2, NLL 89.03–89.12, "
    "at about 2.2x the plain VAE's training time."
)

EVAL_FILE = "collapse_eval.json"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist-5k", help="mnist-5k, or a path (../shared/data/mnist for full MNIST)")
    parser.add_argument("--binarize", default=None, choices=("none", "static", "dynamic"),
                        help="default: the VAE's (dynamic for its Bernoulli likelihood); none for data already binary")
    parser.add_argument("--validation-size", type=count_or_fraction, default=TrainVAEConfig.validation_size)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--epochs", type=int, default=TrainVAEConfig.epochs)
    parser.add_argument("--batch-size", type=int, default=TrainVAEConfig.batch_size)
    parser.add_argument("--latent-dim", type=int, default=32, help="He et al. use 32")
    parser.add_argument("--pixelcnn-layers", type=int, default=TrainVAEConfig.pixelcnn_layers,
                        help="more layers see more of the image and need z less")
    parser.add_argument("--pixelcnn-filters", type=int, default=TrainVAEConfig.pixelcnn_filters)
    parser.add_argument("--pixelcnn-kernel-size", type=int, default=TrainVAEConfig.pixelcnn_kernel_size,
                        help="odd; each layer sees kernel // 2 more rows above")
    parser.add_argument("--pixelcnn-conditioning", default="global", choices=PIXELCNN_CONDITIONINGS,
                        help="how z enters the PixelCNN's gates: global (z through a linear map, the collapse literature's "
                             "decoder; the default here) or spatial (the deconvolutional decoder's feature map)")
    parser.add_argument("--warmup-epochs", type=int, default=None, help="KL warm-up length (default: a fifth of --epochs, at least 1)")
    parser.add_argument("--kl-cycles", type=int, default=4, help="cycles of the cyclical schedule (Fu et al. use 4)")
    parser.add_argument("--free-bits", type=float, default=0.5, help="nats per latent dimension")
    parser.add_argument("--aggressive-patience", type=int, default=TrainVAEConfig.aggressive_patience,
                        help="epochs without a new best I(x; z) that end the aggressive phase (He et al. use 5)")
    parser.add_argument("--aggressive-max-steps", type=int, default=TrainVAEConfig.aggressive_max_steps,
                        help="cap on encoder-only steps per batch (He et al. 99; 20, the stopping rule's least, fixes "
                             "the aggressive epoch's cost)")
    parser.add_argument("--k", type=int, default=100, help="importance samples per image for log p(x): K PixelCNN passes per image")
    parser.add_argument("--chunk-size", type=int, default=10,
                        help="importance samples decoded at once, for 100 images: the PixelCNN's activations grow with it "
                             "(with 100, 10,000 images per pass, a 4-layer 32-filter run on 28x28 died on a 23 GB machine)")
    parser.add_argument("--eval-images", type=int, default=500, help="held-out images measured (a seeded random subset)")
    parser.add_argument("--num-samples", type=int, default=250,
                        help="prior samples for the Fréchet distance, each drawn pixel by pixel, H·W decoder passes "
                             "(250 took 8 minutes on 2 busy CPU cores for the default PixelCNN; 0: skip)")
    parser.add_argument("--grid-every", type=int, default=0,
                        help="sample grids every N epochs (0, the default: none; each grid is drawn pixel by pixel and "
                             "costs several epochs of training)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1,
                        help="variants trained and measured at once, each in its own process with cores / jobs threads")
    parser.add_argument("--part", action="store_true", help=argparse.SUPPRESS)  # a --jobs child: no summary
    parser.add_argument("--out", default="runs/collapse")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if args.jobs > 1 and len(args.variants) > 1:
        run_in_parallel(args, sys.argv[1:] if argv is None else list(argv))

    base = dict(
        dataset=args.dataset, binarize=args.binarize, validation_size=args.validation_size, decoder="pixelcnn",
        pixelcnn_layers=args.pixelcnn_layers, pixelcnn_filters=args.pixelcnn_filters,
        pixelcnn_conditioning=args.pixelcnn_conditioning, pixelcnn_kernel_size=args.pixelcnn_kernel_size,
        latent_dim=args.latent_dim,
        epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
        grid_every=args.grid_every,
        resume=True,
    )
    results = {}
    for key in args.variants:
        label, settings = VARIANTS[key][0], VARIANTS[key][1](args)
        folder = os.path.join(args.out, key)
        row = {"label": label, "settings": settings, "folder": folder}
        results[key] = row
        config = TrainVAEConfig(**base, **settings, out=folder)
        if not finished(config):
            print(f"\n=== Training the {label} ({settings or 'beta = 1'}) ===", flush=True)
            try:
                train_vae(config)
            except FloatingPointError as error:  # a diverged run: reported, never hidden
                row["outcome"] = f"diverged: {error}"
                print(row["outcome"])
                continue
        row["outcome"] = "trained"

    trained = [key for key, row in results.items() if row["outcome"] == "trained"]
    if trained:
        all_heldout, heldout, data = heldout_images(args, results[trained[0]]["folder"])
        classifier = sample_classifier(args, data, results[trained[0]]["folder"])
        for key in trained:
            print(f"\n=== Measuring the {results[key]['label']} ===", flush=True)
            results[key].update(measure(results[key]["folder"], heldout, all_heldout, classifier, args))
    if args.part:
        return results

    summary = {
        "dataset": args.dataset,
        "binarize": read_json(os.path.join(results[trained[0]]["folder"], "config.json"))["binarize"] if trained else None,
        "args": vars(args),
        "anchors": ANCHORS,
        "variants": results,
    }
    write_json(os.path.join(args.out, "collapse.json"), summary)
    table = markdown_table(results, args)
    with open(os.path.join(args.out, "collapse.md"), "w") as f:
        f.write(table + "\n")
    print("\n" + table)
    plot_curves(results, os.path.join(args.out, "collapse.png"),
                title=f"{args.dataset}, PixelCNN decoder ({args.pixelcnn_layers} layers, {args.pixelcnn_conditioning} z), {args.latent_dim}-d latent")
    print(f"\nWrote {args.out}/collapse.json, collapse.md and collapse.png")
    return summary


def run_in_parallel(args, argv):
    """Trains and measures the variants in `args.jobs` child processes, the costliest first.

    Each child is this script with the same arguments for one variant (its output in
    OUT/VARIANT.log) and cores / jobs TensorFlow threads. The parent then finds every variant
    trained and measured, and only writes the summary.
    """
    threads = str(max(1, (os.cpu_count() or 1) // args.jobs))
    environment = {**os.environ, "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads}
    costliest_first = sorted(args.variants, key=lambda key: "aggressive" not in key)
    waiting, running = list(costliest_first), {}
    while waiting or running:
        while waiting and len(running) < args.jobs:
            key = waiting.pop(0)
            log = open(os.path.join(args.out, f"{key}.log"), "w")
            command = [sys.executable, os.path.abspath(__file__), *argv, "--variants", key, "--jobs", "1", "--part"]
            running[key] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment), log)
            print(f"Started the {VARIANTS[key][0]} ({threads} threads): {log.name}", flush=True)
        time.sleep(5)
        for key, (process, log) in list(running.items()):
            if process.poll() is not None:
                log.close()
                del running[key]
                print(f"Finished the {VARIANTS[key][0]} (exit code {process.returncode})", flush=True)
                if process.returncode != 0:
                    for other, _ in running.values():
                        other.kill()
                    raise SystemExit(f"The {VARIANTS[key][0]} failed: see {log.name}")


def finished(config):
    """True for a run in `config.out` that has trained `config.epochs` epochs with these settings: it is kept.

    False when there is no finished model, or one with other `--epochs` (training resumes from its
    checkpoint, as `train-vae --resume` does).

    Raises:
        ValueError: the folder holds a run with other model or data settings (another budget).
    """
    path = os.path.join(config.out, "config.json")
    if not (os.path.isfile(os.path.join(config.out, "vae.keras")) and os.path.isfile(path)):
        return False
    saved = read_json(path)
    # A field left open (None) was chosen from the data when the run trained: config.json holds that choice.
    requested = {
        name: value for name, value in config.to_dict().items() if name in saved and not (value is None and name in CHOSEN_FIELDS)
    }
    if config.binarize is not None or config.likelihood is not None:
        requested["binarize"] = resolve_binarize(config)  # config.json holds the resolved one
    else:
        requested.pop("binarize", None)  # chosen with the likelihood, from the data
    check_same_run(saved, requested, type(config).resumable_fields(), config.out)
    return saved["epochs"] == config.epochs


def aggressive(args, **settings):
    return {"aggressive": True, "aggressive_patience": args.aggressive_patience,
            "aggressive_max_steps": args.aggressive_max_steps, **settings}


def warmup_epochs(args):
    return args.warmup_epochs if args.warmup_epochs is not None else max(1, args.epochs // 5)


def heldout_images(args, folder):
    """The held-out images as the runs saw them (binarized once with the split seed): all of them, and a
    seeded random subset of --eval-images (the fixed binarization's test set is stored by class, so its
    first N images are no sample of it)."""
    run = read_json(os.path.join(folder, "config.json"))
    data = load_dataset(args.dataset, batch_size=100, validation_size=run["validation_size"], binarize=run["binarize"],
                        seed=run["seed"])
    images = np.concatenate([x for x, _ in data.heldout.as_numpy_iterator()])
    order = np.random.default_rng(args.seed).permutation(len(images))[: args.eval_images]
    return images, images[np.sort(order)], data


def sample_classifier(args, data, folder):
    """The digit classifier for the prior samples' Fréchet distance (never trained here), or None with the reason."""
    if not args.num_samples:
        return None, "--num-samples 0"
    choice, reason = choose_classifier(None, data, folder, None, data.image_shape)
    if choice is None:
        return None, reason
    return (choice, choice.load(data.image_shape)), reason


def measure(folder, images, all_heldout, classifier, args):
    """One variant's numbers on the held-out `images`, its prior samples against `all_heldout`; reused from
    `folder/collapse_eval.json` when their settings match."""
    settings = {"k": args.k, "eval_images": len(images), "num_samples": args.num_samples, "seed": args.seed}
    path = os.path.join(folder, EVAL_FILE)
    model_time = os.path.getmtime(os.path.join(folder, "vae.keras"))
    if os.path.isfile(path) and os.path.getmtime(path) >= model_time:
        cached = read_json(path)
        if cached.get("settings") == settings:
            print("Measured earlier with these settings: reused.")
            return cached["metrics"]
    model, _, _ = load_run(folder)
    batches = [(images[i : i + 100], None) for i in range(0, len(images), 100)]
    metrics = {}
    started = time.perf_counter()
    bound = elbo(model, batches, seed=args.seed)
    # I(x; z) per batch of 500, at most log 500 (memory grows as the batch squared), as `kerasgen evaluate` measures it.
    posterior = posterior_diagnostics(model, [(images[i : i + 500], None) for i in range(0, len(images), 500)], seed=args.seed)
    metrics.update(
        elbo=bound["elbo"], reconstruction=bound["reconstruction"], kl=bound["kl"],
        active_units=posterior["active_units"], latent_dim=len(posterior["active_unit_variances"]),
        mutual_information=posterior["mutual_information"], mutual_information_bound=posterior["mutual_information_bound"],
        kl_per_dimension=posterior["kl_per_dimension"],
    )
    # E_x KL(q(z|x) || p(z)) = I(x; z) + KL(q(z) || p(z)) (Hoffman & Johnson 2016): the marginal KL
    # of the aggregated posterior. I(x; z) is estimated from below (at most log N), so this is high.
    metrics["aggregated_posterior_kl"] = bound["kl"] - posterior["mutual_information"]
    mmd = aggregated_posterior_mmd(model, images, seed=args.seed)
    metrics.update(aggregated_posterior_mmd=mmd["mmd"], aggregated_posterior_mmd_standard_error=mmd["mmd_standard_error"])
    metrics["diagnostics_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    iwae = importance_weighted_log_likelihood(model, batches, num_samples=args.k, chunk_size=args.chunk_size, seed=args.seed)
    metrics.update(
        log_likelihood=iwae["log_likelihood"], log_likelihood_standard_error=iwae["standard_error"],
        k=iwae["num_samples"], eval_images=iwae["num_images"], log_likelihood_seconds=time.perf_counter() - started,
    )

    chosen, reason = classifier
    if chosen is None:
        metrics["samples"] = {"skipped": reason}
    else:
        choice, loaded = chosen
        # PixelCNN samples are binary: compared with the binarized held-out images, not the grey ones.
        real = all_heldout
        started = time.perf_counter()
        generated = sample_quality.sample_images(model, args.num_samples, batch_size=250, seed=args.seed)
        features = sample_quality.compute_features(loaded, generated)
        real_features = sample_quality.compute_features(loaded, real)
        shares = sample_quality.class_histogram(sample_quality.compute_logits(loaded, generated), loaded.num_classes)
        metrics["samples"] = {
            "frechet_distance": sample_quality.frechet_distance(real_features, features),
            "num_generated": len(generated),
            "num_real": len(real),
            "predicted_class_fractions": shares.tolist(),
            "classifier": choice.describe(),
            "seconds": time.perf_counter() - started,
        }

    history = read_history(os.path.join(folder, "history.csv"))
    metrics["training_seconds"] = history["seconds"][-1]
    metrics["epochs"] = len(history["epoch"])
    metrics["history_finite"] = bool(all(np.all(np.isfinite(v)) for name, v in history.items() if name not in ("fd", "kid", "kid_std")))
    metrics = _plain(metrics)
    write_json(path, {"settings": settings, "metrics": metrics})
    return metrics


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return value


def markdown_table(results, args):
    def number(value, pattern):
        return "—" if value is None or (isinstance(value, float) and not math.isfinite(value)) else pattern.format(value)

    rows = [
        "| variant | settings | active units | KL | I(x; z) | −ELBO | reconstruction | −log p(x) | MMD²(q(z), p(z)) | "
        "KL(q(z) ‖ p(z)) | sample FD | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, row in results.items():
        settings = ", ".join(f"{name}={value}" for name, value in row["settings"].items()) or "β=1"
        if row["outcome"] != "trained":
            rows.append(f"| {row['label']} | {settings} | {row['outcome']} ||||||||||")
            continue
        samples = row.get("samples", {})
        rows.append(
            f"| {row['label']} | {settings} | {row['active_units']} / {row['latent_dim']} | {number(row['kl'], '{:.2f}')} | "
            f"{number(row['mutual_information'], '{:.2f}')} | {number(-row['elbo'], '{:.2f}')} | "
            f"{number(row['reconstruction'], '{:.2f}')} | "
            f"{number(-row['log_likelihood'], '{:.2f}')} ± {number(row['log_likelihood_standard_error'], '{:.2f}')} | "
            f"{number(row['aggregated_posterior_mmd'], '{:.4f}')} | {number(row['aggregated_posterior_kl'], '{:.2f}')} | "
            f"{number(samples.get('frechet_distance'), '{:.1f}')} | {number(row['training_seconds'], '{:.0f}')} |"
        )
    measured = [row for row in results.values() if row["outcome"] == "trained"]
    bound = f"{measured[0]['mutual_information_bound']:.2f}" if measured else "log N"
    samples = next((row["samples"] for row in measured if "skipped" not in row["samples"]), None)
    seconds = [row["log_likelihood_seconds"] for row in measured]
    iwae_cost = f" ({np.mean(seconds):.0f} s per variant here)" if seconds else ""
    kernel = args.pixelcnn_kernel_size
    notes = [
        "",
        f"{args.dataset}, PixelCNN decoder ({args.pixelcnn_layers} gated layers of {kernel}×{kernel}, "
        f"{args.pixelcnn_filters} filters, {args.pixelcnn_conditioning} conditioning on z), "
        f"{args.latent_dim}-d latent, {args.epochs} epochs, batch {args.batch_size}, seed {args.seed} for every variant. "
        f"Numbers in nats per image on {args.eval_images} held-out images (a seeded random subset, binarized once); "
        f"−log p(x) by importance sampling with K = {args.k} (± its standard error over images), each sample a full "
        f"PixelCNN pass{iwae_cost}. Active units: Cov_x(E_q[z_i]) > 0.01. "
        f"I(x; z) is estimated in batches of up to 500 images, at most log N = {bound}. KL(q(z) ‖ p(z)) = KL − I(x; z), "
        "the aggregated posterior's marginal KL (Hoffman & Johnson 2016), an overestimate by as much as I(x; z) is "
        "underestimated. MMD² ≈ 0 when q(z) matches p(z) (unbiased, IMQ kernel). "
        + (f"Sample FD: {samples['num_generated']} prior samples against {samples['num_real']} binarized held-out images "
           "on the digit classifier's features." if samples else "Sample FD: not measured.")
        + " Train s: wall-clock training seconds (sample grids and latent instruments included). −ELBO is the "
        "β = 1 bound for every variant."
        + (" Each variant's prior samples: VARIANT/samples/epoch_NNN.png." if args.grid_every else ""),
        *aggressive_cost(results),
        "",
        ANCHORS,
    ]
    return "\n".join(rows + notes)


def aggressive_cost(results):
    """One line per aggressive variant: its epochs in the aggressive phase (from its history.csv) and its
    training time against the plain VAE's, the ratio He et al. (2019) report as about 2.2."""
    plain = results.get("vae", {}).get("training_seconds")
    lines = []
    for row in results.values():
        path = os.path.join(row["folder"], "history.csv")
        if row["outcome"] != "trained" or not row["settings"].get("aggressive") or not os.path.isfile(path):
            continue
        history = read_history(path)
        phase = int(sum(value > 0 for value in history.get("aggressive", [])))
        ratio = f", {row['training_seconds'] / plain:.1f}× the plain VAE's training time" if plain else ""
        steps = row["settings"].get("aggressive_max_steps")
        lines.append(f"- {row['label']}: {phase} of {row['epochs']} epochs in the aggressive phase "
                     f"(at most {steps} encoder steps per batch){ratio}.")
    return ["", *lines] if lines else []


def plot_curves(results, png_path, title):
    """Active units, KL and I(x; z) on the validation images after every epoch of every variant
    (each run's history.csv), from before training (epoch 0, the run's latent.json)."""
    panels = (("active_units", "active_units", "active units"), ("heldout_kl", "kl", "KL(q(z|x) ‖ p(z)) (nats)"),
              ("mutual_information", "mutual_information", "I(x; z) (nats)"))
    figure, axes = plt.subplots(1, len(panels), figsize=(15, 3.8))
    for row in results.values():
        path = os.path.join(row["folder"], "history.csv")
        if row["outcome"] != "trained" or not os.path.isfile(path):
            continue
        history = read_history(path)
        latent = os.path.join(row["folder"], "latent.json")
        before = [r for r in read_json(latent)["records"] if r["epoch"] == 0] if os.path.isfile(latent) else []
        for axis, (column, key, _) in zip(axes, panels):
            if column in history:
                epochs = [0] * len(before[:1]) + [int(e) + 1 for e in history["epoch"]]
                axis.plot(epochs, [r[key] for r in before[:1]] + history[column], "o-", markersize=3, label=row["label"])
    for axis, (_, _, label) in zip(axes, panels):
        axis.set(xlabel="epoch", ylabel=label)
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    axes[1].set_yscale("symlog", linthresh=1.0)  # the autoencoder's KL dwarfs the others
    figure.suptitle(f"Posterior collapse: {title}")
    _save(figure, png_path)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"Total {time.perf_counter() - started:.0f} s")
