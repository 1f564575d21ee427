"""The model family side by side: VAE, GAN from the VAE's decoder, VAE-GAN and adversarial autoencoder.

Every model has the same latent size and starts from the same trained VAE (its run's split, so
no model trains on the images evaluated). Each is trained through its `kerasgen` run (the same
harness, callbacks, divergence guard and NaN checks as the CLI, with `--quality-every` for the
curves) and evaluated by `kerasgen evaluate` (10,000 prior samples against the held-out images
on the domain classifier's features; reconstructions of the held-out images; the unbiased MMD
between the codes of the held-out images and prior draws; log p(x) where the model defines it).

    python benchmarks/model_zoo.py                                    # mnist-5k: benchmarks/results/model_zoo_100_epochs/
    python benchmarks/model_zoo.py --vae saved_models/vae-mnist-5k \\
        --gan saved_models/gan-mnist-5k                               # reuse the shipped VAE and GAN
    python benchmarks/model_zoo.py --epochs 5 --out runs/zoo_quick    # a quick look
    python benchmarks/model_zoo.py --dataset ../shared/data/mnist --vae-epochs 20 --epochs 20 \\
        --out runs/model_zoo_mnist                                    # full MNIST (the data stays out of git)

Writes OUT/model_zoo.json, OUT/model_zoo.md (the table), OUT/model_zoo.png (samples from the same
latent vectors and reconstructions of the same held-out images), OUT/model_zoo_curves.png
(Fréchet distance and the adversarial losses per epoch) and each run's folder.
"""

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import kerasgen  # noqa: E402

kerasgen.quiet_tensorflow_startup()  # this script owns its terminal: TensorFlow's start-up lines are filtered

import numpy as np  # noqa: E402

from kerasgen.artifacts import load_run, read_json, write_json  # noqa: E402
from kerasgen.config import (  # noqa: E402
    EvaluateConfig,
    TrainAAEConfig,
    TrainGANConfig,
    TrainVAEConfig,
    TrainVAEGANConfig,
)
from kerasgen.data import load_dataset  # noqa: E402
from kerasgen.evaluation.report import evaluate  # noqa: E402
from kerasgen.plots import _save, plot_samples_and_reconstructions, plt, read_history  # noqa: E402
from kerasgen.runs.aae import train_aae  # noqa: E402
from kerasgen.runs.gan import train_gan  # noqa: E402
from kerasgen.runs.vae import train_vae  # noqa: E402
from kerasgen.runs.vae_gan import train_vaegan  # noqa: E402

MODELS = ("VAE", "GAN from VAE", "VAE-GAN", "AAE")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--latent-dim", type=int, default=8)
    parser.add_argument("--vae", help="an existing train-vae run to start from (default: train one)")
    parser.add_argument("--gan", help="an existing train-gan run from that VAE (default: train one)")
    parser.add_argument("--vae-epochs", type=int, default=TrainVAEConfig.epochs)
    parser.add_argument("--gan-epochs", type=int, default=TrainGANConfig.epochs)
    parser.add_argument("--epochs", type=int, default=100, help="VAE-GAN and AAE epochs")
    parser.add_argument("--every", type=int, default=5, help="measure sample quality every N epochs")
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=EvaluateConfig.k, help="importance samples for log p(x)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jit-compile", default="auto", choices=("auto", "on", "off"),
                        help="XLA for every run trained here (auto: on with a GPU; on CPUs 'on' was 1.5x faster for the VAE-GAN)")
    parser.add_argument("--out", default="runs/model_zoo")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    folders = {name: os.path.join(args.out, key) for name, key in zip(MODELS, ("vae", "gan", "vaegan", "aae"))}
    # Reports always go under OUT, even for a given --vae or --gan (a shipped folder stays as it is).
    reports = {name: os.path.join(folder, "report") for name, folder in folders.items()}
    folders["VAE"] = args.vae or folders["VAE"]
    folders["GAN from VAE"] = args.gan or folders["GAN from VAE"]
    every = {"quality_every": args.every, "seed": args.seed, "resume": True, "jit_compile": args.jit_compile}

    stages = {
        "VAE": lambda: train_vae(TrainVAEConfig(
            dataset=args.dataset, latent_dim=args.latent_dim, epochs=args.vae_epochs, out=folders["VAE"], **every)),
        "GAN from VAE": lambda: train_gan(TrainGANConfig(
            vae=folders["VAE"], epochs=args.gan_epochs, out=folders["GAN from VAE"], **every)),
        "VAE-GAN": lambda: train_vaegan(TrainVAEGANConfig(
            vae=folders["VAE"], epochs=args.epochs, out=folders["VAE-GAN"], **every)),
        "AAE": lambda: train_aae(TrainAAEConfig(vae=folders["VAE"], epochs=args.epochs, out=folders["AAE"], **every)),
    }
    model_files = dict(zip(MODELS, ("vae.keras", "gan.keras", "vaegan.keras", "aae.keras")))
    outcome = {}
    for name, stage in stages.items():
        # A finished run (or one given by --vae / --gan) is kept; an interrupted one resumes.
        if os.path.isfile(os.path.join(folders[name], model_files[name])):
            outcome[name] = "trained"
            continue
        print(f"\n=== Training the {name} ===", flush=True)
        try:
            stage()
            outcome[name] = "trained"
        except FloatingPointError as error:  # a diverged run: reported, never hidden
            outcome[name] = f"diverged: {error}"
            print(outcome[name])

    results = {}
    for name in MODELS:
        if outcome[name] != "trained":
            results[name] = {"outcome": outcome[name]}
            continue
        print(f"\n=== Evaluating the {name} ===", flush=True)
        report = evaluate(EvaluateConfig(model=folders[name], k=args.k, num_samples=args.num_samples, seed=args.seed,
                                         report=reports[name]))
        results[name] = {"outcome": "trained", **summarize(report.metrics, folders[name])}

    vae_fd = results["VAE"].get("sample_fd")
    for name, row in results.items():
        if vae_fd and row.get("sample_fd") is not None:
            row["sample_fd_vs_vae"] = row["sample_fd"] / vae_fd - 1.0
        if row.get("reconstruction_fd") is not None and results["VAE"].get("reconstruction_fd"):
            row["reconstruction_fd_vs_vae"] = row["reconstruction_fd"] / results["VAE"]["reconstruction_fd"] - 1.0
    summary = {"dataset": args.dataset, "latent_dim": args.latent_dim, "folders": folders, "args": vars(args), "models": results}
    write_json(os.path.join(args.out, "model_zoo.json"), summary)
    table = markdown_table(results)
    with open(os.path.join(args.out, "model_zoo.md"), "w") as f:
        f.write(table + "\n")
    print("\n" + table)

    models = {name: load_run(folders[name])[0] for name in MODELS if results[name]["outcome"] == "trained"}
    grey = load_dataset(args.dataset, batch_size=100, binarize="none", **split_of(folders["VAE"]))
    heldout = grey.unbinarized_heldout[:16]
    plot_samples_and_reconstructions(models, heldout, os.path.join(args.out, "model_zoo.png"),
                                     title=f"{args.dataset}, {args.latent_dim}-d latent: the same latent vectors and held-out images")
    plot_curves(folders, os.path.join(args.out, "model_zoo_curves.png"))
    print(f"\nWrote {args.out}/model_zoo.json, model_zoo.md, model_zoo.png and model_zoo_curves.png")


def split_of(vae_folder):
    run = read_json(os.path.join(vae_folder, "config.json"))
    return {
        "validation_size": run.get("validation_size", 500),
        "seed": run.get("split_seed", run.get("seed", 0)),
        "image_size": tuple(run["image_size"]) if run.get("image_size") else None,
    }


def summarize(metrics, folder):
    """The table's numbers from a `kerasgen evaluate` report and the run's history."""
    samples, reconstruction = metrics.get("samples", {}), metrics.get("reconstruction", {})
    history = read_history(os.path.join(folder, "history.csv")) if os.path.isfile(os.path.join(folder, "history.csv")) else {}
    quality = os.path.join(folder, "quality.json")
    records = read_json(quality)["records"] if os.path.isfile(quality) else []
    # Every logged number finite: NA cells (epochs a metric was not measured) are the only NaNs allowed.
    finite = all(np.all(np.isfinite(values)) for name, values in history.items() if name not in ("fd", "kid", "kid_std"))
    fractions = samples.get("predicted_class_fractions")
    return {
        "sample_fd": samples.get("frechet_distance"),
        "sample_kid": samples.get("kid"),
        "class_share_min": min(fractions) if fractions else None,
        "class_share_max": max(fractions) if fractions else None,
        "reconstruction_accuracy": reconstruction.get("accuracy"),
        "reconstruction_fd": reconstruction.get("frechet_distance"),
        "aggregated_posterior_mmd": metrics.get("aggregated_posterior", {}).get("mmd"),
        "log_likelihood": metrics.get("importance_weighted", {}).get("log_likelihood"),
        "training_seconds": (records[-1]["seconds"] if records else (history.get("seconds") or [None])[-1]),
        "epochs": len(history.get("epoch", [])),
        "history_finite": bool(finite),
        "fd_curve": [(r["epoch"], r["fd"]) for r in records],
    }


def markdown_table(results):
    def number(value, pattern):
        return "—" if value is None else pattern.format(value)

    rows = [
        "| model | sample FD | KID | class shares | recon. accuracy | recon. FD | MMD(q(z), p(z)) | log p(x) | epochs | train s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in results.items():
        if row["outcome"] != "trained":
            rows.append(f"| {name} | {row['outcome']} |||||||||")
            continue
        shares = "—" if row["class_share_min"] is None else f"{100 * row['class_share_min']:.1f}–{100 * row['class_share_max']:.1f}%"
        rows.append(
            f"| {name} | {number(row['sample_fd'], '{:.1f}')} | {number(row['sample_kid'], '{:.1f}')} | {shares} | "
            f"{number(row['reconstruction_accuracy'], '{:.1%}')} | {number(row['reconstruction_fd'], '{:.2f}')} | "
            f"{number(row['aggregated_posterior_mmd'], '{:.4f}')} | {number(row['log_likelihood'], '{:.2f}')} | "
            f"{row['epochs']} | {number(row['training_seconds'], '{:.0f}')} |"
        )
    return "\n".join(rows)


def plot_curves(folders, png_path):
    """Fréchet distance of prior samples and of reconstructions per epoch, and each adversarial run's d_loss and g_loss."""
    figure, (quality_axis, reconstruction_axis, loss_axis) = plt.subplots(1, 3, figsize=(16, 3.8))
    for name, folder in folders.items():
        quality = os.path.join(folder, "quality.json")
        if os.path.isfile(quality):
            records = read_json(quality)["records"]
            quality_axis.plot([r["epoch"] for r in records], [r["fd"] for r in records], "o-", markersize=3, label=name)
            measured = [r for r in records if r.get("reconstruction_fd") is not None]
            if measured:
                reconstruction_axis.plot([r["epoch"] for r in measured], [r["reconstruction_fd"] for r in measured],
                                         "o-", markersize=3, label=name)
        history = os.path.join(folder, "history.csv")
        if name in ("VAE-GAN", "AAE") and os.path.isfile(history):
            values = read_history(history)
            epochs = [int(e) + 1 for e in values["epoch"]]
            for metric, style in (("d_loss", "-"), ("g_loss", "--")):
                loss_axis.plot(epochs, values[metric], style, label=f"{name} {metric}")
    quality_axis.set(xlabel="epoch", ylabel="prior samples' Fréchet distance", yscale="log")
    reconstruction_axis.set(xlabel="epoch", ylabel="reconstructions' Fréchet distance")
    loss_axis.set(xlabel="epoch", ylabel="adversarial losses (nats)")
    for axis in (quality_axis, reconstruction_axis, loss_axis):
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=8)
    figure.suptitle("Training curves: samples, reconstructions of the held-out images and the adversarial losses (finite = no divergence)")
    _save(figure, png_path)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"Total {time.perf_counter() - started:.0f} s")
