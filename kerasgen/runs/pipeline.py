"""`kerasgen pipeline`: a VAE, the GAN warm-started from its decoder, both evaluated and compared."""

import dataclasses
import os
import time

from kerasgen import distribute
from kerasgen.artifacts import load_run, read_json, write_json
from kerasgen.config import (
    EvaluateConfig,
    PipelineConfig,
    TrainClassifierConfig,
    TrainGANConfig,
    TrainVAEConfig,
    shared_flags,
)
from kerasgen.data import load_dataset
from kerasgen.evaluation.domain import choose_classifier
from kerasgen.evaluation.report import evaluate
from kerasgen.plots import plot_same_latents
from kerasgen.runs.choose import CHOSEN_FIELDS, choose_for_config
from kerasgen.runs.classifier import train_classifier
from kerasgen.runs.gan import train_gan
from kerasgen.runs.harness import CONFIG_FILE, check_folder, check_same_run, prepare_folder
from kerasgen.runs.vae import train_vae

# The VAE's model flags a pipeline passes through to its VAE stage.
VAE_MODEL_FIELDS = (
    "latent_dim", "likelihood", "binarize", "likelihood_scale", "likelihood_components", "architecture", "num_filters",
    "num_blocks", "hidden_dim", "latent_layout",
)
# The pipeline's digit VAE has an 8-d latent (see PipelineConfig.latent_dim).
DIGIT_LATENT_DIM = 8


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


def run_pipeline(config=PipelineConfig(), verbose=None):
    """Trains a VAE, then a GAN whose generator starts as its decoder, then evaluates both.

    Every stage uses its own defaults (`TrainVAEConfig`, `TrainGANConfig`, `EvaluateConfig`)
    except what `config` sets. Output folder (`config.out`): `config.json`, `vae/` and `gan/`
    (training runs, each with `report/`), `classifier/` (when the data needs its own classifier),
    `comparison.png` (VAE and GAN samples from the same latent vectors) and `summary.json`.
    Sample quality is measured on `config.num_samples` (10,000) samples of each model with a classifier of the data's
    domain (`evaluation.domain.choose_classifier`); `summary.json` says which and how accurate. With
    `resume`, a finished training stage is skipped and an interrupted one continues from its
    checkpoint, so a crash or kill costs at most the epoch in progress.

    Returns:
        `PipelineResult`.
    """
    started = time.perf_counter()
    # First: a multi-worker strategy must exist before TensorFlow runs any op.
    if not distribute.is_chief(distribute.get_strategy(config.strategy)):
        # The other workers run every stage in step with the chief, into a temporary folder.
        config = dataclasses.replace(config, out=distribute.worker_folder(config.out, config.resume))
    check_folder(config.out, config.resume, config.overwrite)
    vae_dir, gan_dir = os.path.join(config.out, "vae"), os.path.join(config.out, "gan")
    shared = shared_flags(config)
    vae_config = TrainVAEConfig(
        dataset=config.dataset, data_dir=config.data_dir, image_size=config.image_size,
        validation_size=config.validation_size, epochs=config.vae_epochs, seed=config.seed, out=vae_dir,
        **{name: getattr(config, name) for name in VAE_MODEL_FIELDS}, **shared,
    )
    # The likelihood, binarization and networks the flags leave open are chosen for the data, once,
    # here: the VAE stage gets them as given, so a resumed pipeline rebuilds the same VAE.
    vae_config, data_choice = choose_for_config(vae_config, digit_latent_dim=DIGIT_LATENT_DIM)
    if data_choice is not None:
        print(data_choice.line())
    gan_config = TrainGANConfig(
        vae=vae_dir, data_dir=config.data_dir, epochs=config.gan_epochs, seed=config.seed, out=gan_dir, **shared
    )

    # The data's held-out images decide the classifier before anything is written.
    splits = load_dataset(
        config.dataset, batch_size=vae_config.batch_size, validation_size=vae_config.validation_size,
        image_size=config.image_size, seed=config.seed, data_dir=config.data_dir, stream=config.stream,
    )
    if config.classifier:
        choose_classifier(config.classifier, splits, config.out)  # a bad --classifier is an input error
    prepare_folder(config.out, config.overwrite)
    config_path = os.path.join(config.out, CONFIG_FILE)
    if config.resume and os.path.isfile(config_path):
        check_same_run(read_json(config_path), config.to_dict(), PipelineConfig.resumable_fields(), config.out)
    write_json(config_path, {**config.to_dict(), "vae": {name: getattr(vae_config, name) for name in CHOSEN_FIELDS}})

    classifier_config = TrainClassifierConfig(
        dataset=config.dataset, data_dir=config.data_dir, image_size=config.image_size,
        validation_size=vae_config.validation_size, seed=config.seed, **shared,
    )
    quality = {"num_samples": config.num_samples, "seed": config.seed}
    stages = (
        ("Training the VAE", lambda: _train(train_vae, vae_config, "vae.keras", config.resume, verbose)),
        ("Training the GAN from the VAE's decoder", lambda: _train(train_gan, gan_config, "gan.keras", config.resume, verbose)),
        ("Choosing the classifier that scores samples", lambda: choose_classifier(
            config.classifier, splits, config.out, classifier_config, train=train_classifier
        )),
        ("Evaluating the VAE", lambda: evaluate(EvaluateConfig(model=vae_dir, k=config.k, **quality), results[2])),
        ("Evaluating the GAN", lambda: evaluate(EvaluateConfig(model=gan_dir, **quality), results[2])),
    )
    results, seconds = [], []
    for number, (what, stage) in enumerate(stages, start=1):
        print(f"\n[{number}/{len(stages)}] {what} ...", flush=True)
        began = time.perf_counter()
        results.append(stage())
        seconds.append(time.perf_counter() - began)
        if number == 3:
            choice, reason = results[-1]
            print(choice.summary() if choice else f"No classifier: {reason}.")
    _, _, (choice, reason), vae_report, gan_report = results

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
        "classifier": choice.describe() if choice else {"skipped": reason},
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
            "choose_classifier": seconds[2],
            "evaluate_vae": seconds[3],
            "evaluate_gan": seconds[4],
            "total": time.perf_counter() - started,
        },
        "config": config.to_dict(),
        "data_choice": data_choice.describe() if data_choice else None,
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
    resumable = resume and os.path.isdir(stage_config.out)
    return train(dataclasses.replace(stage_config, resume=resumable), verbose)


def _quality(samples):
    keys = ("frechet_distance", "kid", "kid_std", "classifier_score", "predicted_class_fractions")
    return {key: samples[key] for key in keys if key in samples}
