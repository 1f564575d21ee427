"""What `kerasgen pipeline` does, as a function: a VAE, the GAN warm-started from its decoder, both evaluated."""

import dataclasses
import os
import time


from kerasgen.artifacts import load_run, write_json
from kerasgen.config import EvaluateConfig, TrainGANConfig, TrainVAEConfig
from kerasgen.evaluation.report import evaluate
from kerasgen.gan_training import train_gan
from kerasgen.plots import plot_same_latents
from kerasgen.training import train_vae

NUM_SAMPLES = 10_000


@dataclasses.dataclass(frozen=True)
class PipelineResult:
    """Where the pipeline put its outputs, and the headline numbers (also in `summary.json`)."""

    vae: str
    gan: str
    vae_report: str
    gan_report: str
    comparison: str
    summary_path: str
    summary: dict


def run_pipeline(config, verbose="auto"):
    """Trains a VAE, then a GAN whose generator starts as its decoder, then evaluates both.

    Everything uses each stage's defaults (`TrainVAEConfig`, `TrainGANConfig`, `EvaluateConfig`)
    except what `config` (a `PipelineConfig`) sets. Output folder layout (`config.out`): `vae/`
    (a train-vae run, with `report/`), `gan/` (a train-gan run, with `report/`),
    `comparison.png` (VAE and GAN samples from the same latent vectors) and `summary.json`.
    Sample quality is measured on 10,000 samples of each model. With `resume`, a finished
    training stage (its final model exists) is skipped and an interrupted one continues from its
    checkpoint, so a crash or kill costs at most the epoch in progress.

    Returns:
        `PipelineResult`.
    """
    started = time.perf_counter()
    vae_dir, gan_dir = os.path.join(config.out, "vae"), os.path.join(config.out, "gan")
    # 10,000 samples each: enough to see whether every class keeps its share.
    quality = {"classifier": config.classifier, "num_samples": NUM_SAMPLES, "seed": config.seed}
    vae_config = TrainVAEConfig(
        dataset=config.dataset, latent_dim=config.latent_dim, epochs=config.vae_epochs, seed=config.seed, out=vae_dir
    )
    gan_config = TrainGANConfig(vae=vae_dir, epochs=config.gan_epochs, seed=config.seed, out=gan_dir)
    stages = (
        ("Training the VAE", lambda: _train(train_vae, vae_config, "vae.keras", config.resume, verbose)),
        ("Training the GAN from the VAE's decoder", lambda: _train(train_gan, gan_config, "gan.keras", config.resume, verbose)),
        ("Evaluating the VAE", lambda: evaluate(EvaluateConfig(model=vae_dir, k=config.k, **quality))),
        ("Evaluating the GAN", lambda: evaluate(EvaluateConfig(model=gan_dir, **quality))),
    )
    results, seconds = [], []
    for number, (what, stage) in enumerate(stages, start=1):
        print(f"\n[{number}/{len(stages)}] {what} ...", flush=True)
        began = time.perf_counter()
        results.append(stage())
        seconds.append(time.perf_counter() - began)
    _, _, vae_report, gan_report = results

    comparison = os.path.join(config.out, "comparison.png")
    vae, _, _ = load_run(vae_dir, filenames=("vae.keras",))
    gan, _, _ = load_run(gan_dir, filenames=("gan.keras",))
    plot_same_latents(
        {"VAE: decoder mean": vae, "GAN: generator warm-started from that decoder": gan},
        comparison,
        title=f"The same 64 latent vectors, {config.dataset}",
        seed=config.seed,
    )

    vae_samples, gan_samples = vae_report.metrics["samples"], gan_report.metrics["samples"]
    summary = {
        "dataset": config.dataset,
        "vae": {
            "elbo": vae_report.metrics["elbo"]["elbo"],
            "log_likelihood": vae_report.metrics["importance_weighted"]["log_likelihood"],
            "importance_samples": config.k,
            **_quality(vae_samples),
        },
        "gan": _quality(gan_samples),
        "seconds": {
            "train_vae": seconds[0],
            "train_gan": seconds[1],
            "evaluate_vae": seconds[2],
            "evaluate_gan": seconds[3],
            "total": time.perf_counter() - started,
        },
        "config": dataclasses.asdict(config),
    }
    if "frechet_distance" in summary["vae"] and "frechet_distance" in summary["gan"]:
        summary["gan_fd_reduction"] = 1.0 - summary["gan"]["frechet_distance"] / summary["vae"]["frechet_distance"]
    summary_path = os.path.join(config.out, "summary.json")
    write_json(summary_path, summary)
    return PipelineResult(
        vae=vae_dir,
        gan=gan_dir,
        vae_report=vae_report.path,
        gan_report=gan_report.path,
        comparison=comparison,
        summary_path=summary_path,
        summary=summary,
    )


def _train(train, stage_config, model_file, resume, verbose):
    """One training stage; with `resume`, skipped when its final model exists, else resumed from its checkpoint."""
    if resume and os.path.exists(os.path.join(stage_config.out, model_file)):
        print(f"{stage_config.out}/{model_file} exists: skipped.")
        return None
    return train(dataclasses.replace(stage_config, resume=resume), verbose)


def _quality(samples):
    keys = ("frechet_distance", "kid", "kid_std", "classifier_score", "predicted_class_fractions")
    return {key: samples[key] for key in keys if key in samples}
