"""Warm start vs scratch: the GAN whose generator starts as the pretrained VAE decoder, against the
same GAN with freshly initialized weights.

By default it pre-trains the VAE itself (the `train-vae` defaults with an 8-d latent, 50 epochs),
measuring its decoder's prior samples every `--every` epochs, so the warm start's wall-clock is
measured here, pre-training included. Both GAN runs share the data, the discriminator's
architecture and initial weights, the seeds, the optimizers and the epoch budget; only the
generator's starting weights differ. Every `--every` epochs (and before the first) each run
measures the classifier Fréchet distance and KID of 5,000 samples against the held-out images
(the `SampleQuality` callback, as `kerasgen train-gan --quality-every`). Seconds leave the
measuring out.

    python benchmarks/warm_start.py                                   # mnist-5k: benchmarks/results/mnist_5k/
    python benchmarks/warm_start.py --latent-dim 16 --out runs/ws16   # train-vae's default VAE
    python benchmarks/warm_start.py --vae runs/vae --out runs/ws      # from an existing VAE run
    python benchmarks/warm_start.py --dataset ../shared/data/mnist --vae-epochs 10 \\
        --epochs 10 --every 2 --out runs/warm_start_mnist             # full MNIST (the data stays out of git)

Writes OUT/warm_start.json, OUT/warm_start_fd.png, OUT/warm_start_kid.png, OUT/warm_start_samples.png
(the VAE decoder and both GANs on the same 64 latent vectors) and the runs' folders.
"""

import argparse
import dataclasses
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import kerasgen  # noqa: E402

kerasgen.quiet_tensorflow_startup()  # this script owns its terminal: TensorFlow's start-up lines are filtered

from kerasgen.artifacts import load_run, read_json, write_json  # noqa: E402
from kerasgen.config import TrainGANConfig, TrainVAEConfig  # noqa: E402
from kerasgen.runs.gan import train_gan  # noqa: E402
from kerasgen.plots import plot_quality_curves, plot_same_latents, read_history  # noqa: E402
from kerasgen.runs.vae import train_vae  # noqa: E402


def vae_pretraining(vae_dir):
    """The VAE run's training wall-clock and its decoder's quality records (empty if not measured).

    With records (`train-vae --quality-every`), the time is the last record's, which leaves out the
    measuring; else the `seconds` column of history.csv.
    """
    quality = os.path.join(vae_dir, "quality.json")
    records = read_json(quality)["records"] if os.path.isfile(quality) else []
    if records:
        return records[-1]["seconds"], records
    history = os.path.join(vae_dir, "history.csv")
    if not os.path.isfile(history):
        sys.exit(f"{vae_dir} has no history.csv, so its pre-training time is unknown; leave out --vae to train one here.")
    return read_history(history)["seconds"][-1], []


def time_to_reach(records, target, start_seconds):
    """Seconds (from `start_seconds` on) until the first measurement with FD <= target, else None."""
    for record in records:
        if record["fd"] <= target:
            return start_seconds + record["seconds"], record["epoch"]
    return None, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--vae", default=None, help="a trained VAE run to start from (default: train one here)")
    parser.add_argument("--vae-epochs", type=int, default=TrainVAEConfig.epochs, help="when training the VAE")
    # 8 rather than train-vae's 16: the prior samples of an 8-d VAE are much closer to the data
    # (FD 136 vs 224 after 50 epochs on mnist-5k), and the GAN starts from them.
    parser.add_argument("--latent-dim", type=int, default=8, help="when training the VAE")
    parser.add_argument("--epochs", type=int, default=30, help="GAN epochs for both runs")
    parser.add_argument("--every", type=int, default=3, help="measure FD and KID every N epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/warm_start")
    args = parser.parse_args()

    vae_dir = args.vae
    if vae_dir is None:
        vae_dir = os.path.join(args.out, "vae")
        vae_config = TrainVAEConfig(
            dataset=args.dataset,
            epochs=args.vae_epochs,
            latent_dim=args.latent_dim,
            quality_every=args.every,  # the decoder's FD during pre-training, on the warm start's clock
            seed=args.seed,
            out=vae_dir,
            overwrite=True,  # a benchmark reruns from scratch
        )
        train_vae(vae_config, verbose=2)
    pretraining, vae_records = vae_pretraining(vae_dir)

    runs = {}
    for init in ("decoder", "scratch"):
        config = TrainGANConfig(
            vae=vae_dir,
            dataset=args.dataset,
            init=init,
            epochs=args.epochs,
            quality_every=args.every,
            seed=args.seed,
            out=os.path.join(args.out, f"gan_{init}"),
            overwrite=True,
        )
        artifacts = train_gan(config, verbose=2)
        runs[init] = {"records": artifacts.quality, "start_seconds": pretraining if init == "decoder" else 0.0}

    warm, scratch = runs["decoder"], runs["scratch"]
    best = {name: min(run["records"], key=lambda r: r["fd"]) for name, run in runs.items()}
    scratch_best_time = best["scratch"]["seconds"]
    warm_time, warm_epoch = time_to_reach(warm["records"], best["scratch"]["fd"], warm["start_seconds"])
    decoder_time, decoder_epoch = time_to_reach(vae_records, best["scratch"]["fd"], 0.0)
    summary = {
        "dataset": args.dataset,
        "vae": vae_dir,
        "vae_pretraining_seconds": pretraining,
        "gan_epochs": args.epochs,
        "best_fd": {name: record["fd"] for name, record in best.items()},
        "best_fd_ratio_warm_over_scratch": best["decoder"]["fd"] / best["scratch"]["fd"],
        "scratch_best_reached_by_scratch": {"seconds": scratch_best_time, "epoch": best["scratch"]["epoch"]},
        "scratch_best_reached_by_warm": {"seconds": warm_time, "epoch": warm_epoch},
        "scratch_best_reached_by_the_decoder_during_pretraining": {"seconds": decoder_time, "vae_epoch": decoder_epoch},
        "vae_records": vae_records,
        "runs": runs,
    }
    write_json(os.path.join(args.out, "warm_start.json"), summary)
    title = f"GAN on {args.dataset}: generator from the VAE decoder vs from scratch"
    curves = {"from the VAE decoder": (warm["records"], warm["start_seconds"]), "from scratch": (scratch["records"], 0.0)}
    for metric in ("fd", "kid"):
        plot_quality_curves(
            curves,
            os.path.join(args.out, f"warm_start_{metric}.png"),
            title=title,
            metric=metric,
            pretraining={"VAE decoder during pre-training": vae_records} if vae_records else None,
        )
    models = {"VAE decoder (GAN epoch 0)": load_run(vae_dir, filenames=("vae.keras",))[0]}
    for init, caption in (("decoder", "GAN from the decoder"), ("scratch", "GAN from scratch")):
        models[f"{caption}, {args.epochs} epochs"] = load_run(os.path.join(args.out, f"gan_{init}"), filenames=("gan.keras",))[0]
    samples_png = os.path.join(args.out, "warm_start_samples.png")
    plot_same_latents(models, samples_png, title=f"{args.dataset}: the same 64 latent vectors", seed=args.seed)

    print(f"\nVAE pre-training: {pretraining:.0f} s ({vae_dir})")
    if vae_records:
        print("VAE decoder's FD during pre-training: " + ", ".join(f"{r['fd']:.1f} (epoch {r['epoch']})" for r in vae_records))
    print(f"{'epoch':>5}  {'FD warm':>8}  {'FD scratch':>10}  {'KID warm':>9}  {'KID scratch':>11}  {'min/max class % (warm, scratch)':>32}")
    for w, s in zip(warm["records"], scratch["records"]):
        classes = "  ".join(f"{100 * min(r['class_fractions']):.1f}/{100 * max(r['class_fractions']):.1f}" for r in (w, s))
        print(f"{w['epoch']:>5}  {w['fd']:>8.1f}  {s['fd']:>10.1f}  {w['kid']:>9.1f}  {s['kid']:>11.1f}  {classes:>32}")
    print(
        f"\nBest FD: warm {best['decoder']['fd']:.1f} (epoch {best['decoder']['epoch']}), scratch {best['scratch']['fd']:.1f} "
        f"(epoch {best['scratch']['epoch']}); ratio {summary['best_fd_ratio_warm_over_scratch']:.3f}"
    )
    reached = f"{warm_time:.0f} s (epoch {warm_epoch}, VAE included)" if warm_time is not None else "never"
    print(f"Scratch's best FD reached: by scratch after {scratch_best_time:.0f} s; by the warm-started GAN after {reached}")
    if vae_records:
        during = f"{decoder_time:.0f} s (VAE epoch {decoder_epoch})" if decoder_time is not None else "never"
        print(f"  and by the VAE decoder during pre-training (its prior samples) after {during}")
    print(f"Wrote {os.path.join(args.out, 'warm_start.json')}, warm_start_fd.png, warm_start_kid.png and warm_start_samples.png")


if __name__ == "__main__":
    main()
