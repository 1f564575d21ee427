"""The `kerasgen` command line: `pipeline`, `train-vae`, `train-gan`, `train-vaegan`, `train-aae`, `sample`, `evaluate`, `export`, `train-classifier`.

Nothing here imports TensorFlow at module level, so `kerasgen --help` answers at once."""

import argparse
import dataclasses
import errno
import os
import sys

from kerasgen.config import (
    EvaluateConfig,
    ExportConfig,
    PipelineConfig,
    SampleConfig,
    TrainAAEConfig,
    TrainClassifierConfig,
    TrainGANConfig,
    TrainVAEConfig,
    TrainVAEGANConfig,
    add_arguments,
    from_arguments,
    to_flags,
)


def pipeline_command(config):
    from kerasgen.runs.pipeline import run_pipeline

    result = run_pipeline(config)
    summary = result.summary
    vae, gan = summary["vae"], summary["gan"]
    classifier = summary["classifier"]
    if "skipped" in classifier:
        print(f"\nSample quality skipped: {classifier['skipped']}.")
    else:
        accuracy = classifier["heldout_accuracy"]
        print(
            f"\nSamples scored by the {classifier['origin']} classifier {classifier['path']}"
            + ("" if accuracy is None else f" ({100 * accuracy:.1f}% right on the data's held-out images)")
        )
    print(f"\nVAE: ELBO {vae['elbo']:.2f}, log p(x) {vae['log_likelihood']:.2f} nats (K={vae['importance_samples']})")
    if "gan_fd_reduction" in summary:
        print(f"{'':22}{'VAE':>9}{'GAN':>9}")
        print(f"{'Fréchet distance':22}{vae['frechet_distance']:>9.1f}{gan['frechet_distance']:>9.1f}   "
              f"(GAN {100 * summary['gan_fd_reduction']:.0f}% lower)")
        print(f"{'KID':22}{vae['kid']:>9.1f}{gan['kid']:>9.1f}")
        print(f"{'classifier score':22}{vae['classifier_score']:>9.2f}{gan['classifier_score']:>9.2f}")
        fractions = gan["predicted_class_fractions"]
        print(f"GAN samples per predicted class: {100 * min(fractions):.1f}% to {100 * max(fractions):.1f}%")
    print(f"\nDone in {summary['seconds']['total'] / 60:.1f} min.")
    print(f"VAE run:             {result.vae}   (report: {result.vae_report})")
    print(f"GAN run:             {result.gan}   (report: {result.gan_report})")
    print(f"VAE vs GAN samples:  {result.comparison}")
    print(f"Summary:             {result.summary_path}")
    # TensorBoard finds both runs' logs below the pipeline's folder.
    print(f"TensorBoard:         tensorboard --logdir {os.path.dirname(result.vae)}")


def train_vae_command(config):
    from kerasgen.runs.vae import train_vae

    artifacts = train_vae(config)
    metrics = artifacts.final_metrics
    print(
        f"\nValidation −ELBO {-metrics['val_elbo']:.2f} nats per image "
        f"(reconstruction {metrics['val_reconstruction']:.2f}, KL {metrics['val_kl']:.2f})."
    )
    print(f"Model (.keras):      {artifacts.model}")
    print(f"SavedModel:          {artifacts.saved_model}")
    print(f"Run config:          {artifacts.config}")
    print(f"History:             {artifacts.history} and {artifacts.history_plot}")
    print(f"Sample grids:        {artifacts.samples}/ and {artifacts.reconstructions}/")
    _print_quality(artifacts)
    _print_latent(artifacts)
    print(f"TensorBoard:         tensorboard --logdir {artifacts.logdir}")


def _print_latent(artifacts):
    """One line for a run's latent instruments (`--latent-images`): the last epoch's."""
    if not artifacts.latent:
        return
    last = artifacts.latent[-1]
    print(
        f"Latent instruments:  {os.path.join(artifacts.out, 'latent.json')} ({last['active_units']} of "
        f"{len(last['active_unit_variances'])} units active, I(x; z) {last['mutual_information']:.2f} nats, "
        f"KL {last['kl']:.2f} after epoch {last['epoch']})"
    )


def train_gan_command(config):
    from kerasgen.runs.gan import train_gan

    artifacts = train_gan(config)
    metrics = artifacts.final_metrics
    print(
        f"\nLast epoch: d_loss {metrics['d_loss']:.3f}, g_loss {metrics['g_loss']:.3f}, "
        f"D(x) {metrics['d_real']:.3f}, D(G(z)) {metrics['d_fake']:.3f}."
    )
    print(f"Model (.keras):      {artifacts.model}")
    print(f"SavedModel:          {artifacts.saved_model}")
    print(f"Run config:          {artifacts.config}")
    print(f"History:             {artifacts.history}")
    print(f"Sample grids:        {artifacts.samples}/")
    print(f"Checkpoint:          {artifacts.checkpoint}/")
    _print_quality(artifacts)
    print(f"TensorBoard:         tensorboard --logdir {artifacts.logdir}")


def train_vaegan_command(config):
    from kerasgen.runs.vae_gan import train_vaegan

    _print_autoencoder(train_vaegan(config))


def train_aae_command(config):
    from kerasgen.runs.aae import train_aae

    _print_autoencoder(train_aae(config))


def _print_autoencoder(artifacts):
    """What a VAE-GAN or adversarial autoencoder run wrote, and its last epoch."""
    metrics = artifacts.final_metrics
    print(
        f"\nLast epoch: reconstruction {metrics['reconstruction']:.2f}, d_loss {metrics['d_loss']:.3f}, "
        f"g_loss {metrics['g_loss']:.3f}, D(x) {metrics['d_real']:.3f}, D(fake) {metrics['d_fake']:.3f}."
    )
    print(f"Model (.keras):      {artifacts.model}")
    print(f"SavedModel:          {artifacts.saved_model}")
    print(f"Run config:          {artifacts.config}")
    print(f"History:             {artifacts.history} and {artifacts.history_plot}")
    print(f"Sample grids:        {artifacts.samples}/ and {artifacts.reconstructions}/")
    print(f"Checkpoint:          {artifacts.checkpoint}/")
    _print_quality(artifacts)
    print(f"TensorBoard:         tensorboard --logdir {artifacts.logdir}")


def _print_quality(artifacts):
    """One line for a run's `--quality-every` measurements: the last and the best Fréchet distance."""
    if not artifacts.quality:
        return
    last = artifacts.quality[-1]
    best = min(artifacts.quality, key=lambda record: record["fd"])
    path = os.path.join(artifacts.out, "quality.json")
    print(
        f"Sample quality:      {path} (Fréchet distance {last['fd']:.1f} after epoch {last['epoch']}, "
        f"best {best['fd']:.1f} after epoch {best['epoch']})"
    )
    accuracy = artifacts.classifier["heldout_accuracy"]
    print(
        f"  scored by the {artifacts.classifier['origin']} classifier {artifacts.classifier['path']}"
        + ("" if accuracy is None else f" ({100 * accuracy:.1f}% right on held-out images)")
    )


def sample_command(config):
    import keras

    from kerasgen.artifacts import load_run
    from kerasgen.images import image_grid, save_png

    if os.path.isdir(config.out):
        raise IsADirectoryError(errno.EISDIR, "--out is a folder; give the PNG file to write", config.out)
    model, _, folder = load_run(config.model)
    if not hasattr(model, "sample"):
        raise ValueError(f"The model in {folder} cannot sample (it is a {type(model).__name__}).")
    images = keras.ops.convert_to_numpy(model.sample(config.n, seed=config.seed))
    save_png(config.out, image_grid(images))
    print(f"Wrote {config.n} samples to {config.out}")


def evaluate_command(config):
    from kerasgen.evaluation.report import evaluate, format_table

    report = evaluate(config)
    print()
    print(format_table(report.metrics))
    print(f"\nMetrics: {report.path}")
    print("Plots:   " + "\n         ".join(report.plots))


def export_command(config):
    from kerasgen.export import export_saved_model

    path, endpoints = export_saved_model(config.model, config.out)
    print(f"SavedModel:          {path}")
    print(f"Endpoints:           {', '.join(endpoints)}")
    print(f"Inspect:             saved_model_cli show --dir {path} --all")


def train_classifier_command(config):
    from kerasgen.runs.classifier import train_classifier

    artifacts = train_classifier(config)
    print(
        f"\nHeld-out ({artifacts.heldout_split}) accuracy {100 * artifacts.heldout_accuracy:.2f}% "
        f"after {artifacts.training_seconds:.0f} s of training."
    )
    print(f"Classifier (.keras): {artifacts.model}")
    print(f"Metadata:            {artifacts.metadata}")


COMMANDS = {
    "pipeline": (
        PipelineConfig,
        pipeline_command,
        "train a VAE, then a GAN from its decoder, then evaluate both (the defaults: mnist-5k in about 10 minutes)",
    ),
    "train-vae": (TrainVAEConfig, train_vae_command, "train a VAE and write its model, SavedModel and grids"),
    "train-gan": (
        TrainGANConfig,
        train_gan_command,
        "train a GAN whose generator starts as a trained VAE's decoder; write its model, SavedModel and grids",
    ),
    "train-vaegan": (
        TrainVAEGANConfig,
        train_vaegan_command,
        "train the VAE-GAN of Larsen et al. (2016), from a trained VAE (--vae) or from scratch",
    ),
    "train-aae": (
        TrainAAEConfig,
        train_aae_command,
        "train the adversarial autoencoder of Makhzani et al. (2015), from a trained VAE (--vae) or from scratch",
    ),
    "sample": (SampleConfig, sample_command, "draw samples from a trained model into a PNG grid"),
    "evaluate": (
        EvaluateConfig,
        evaluate_command,
        "likelihood (ELBO, importance-weighted log p(x)), posterior diagnostics, sample quality and plots",
    ),
    "export": (
        ExportConfig,
        export_command,
        "write a SavedModel for serving from a kerasgen .keras file or run folder (VAE, GAN, VAE-GAN, AAE or classifier)",
    ),
    "train-classifier": (
        TrainClassifierConfig,
        train_classifier_command,
        "train the domain classifier whose features measure sample quality (Fréchet distance, KID)",
    ),
}


def build_parser():
    parser = argparse.ArgumentParser(prog="kerasgen", description="Keras 3 generative models with TFP distributions.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (config_class, _, help_text) in COMMANDS.items():
        add_arguments(subparsers.add_parser(name, help=help_text, description=help_text), config_class)
    return parser


def main(argv=None):
    arguments = build_parser().parse_args(argv)
    config_class, command, _ = COMMANDS[arguments.command]
    try:
        command(from_arguments(config_class, arguments))
    except (ValueError, FloatingPointError, RuntimeError) as error:
        # Input problems get one clear line, not a trace; the library names its Python arguments,
        # the user typed flags.
        names = [field.name for field in dataclasses.fields(config_class)]
        return _fail(arguments.command, to_flags(str(error), names))
    except OSError as error:
        # Not writable, a file where a folder should be, disk full, a missing path: one line too.
        where = f": {error.filename}" if error.filename else ""
        return _fail(arguments.command, f"{error.strerror or error}{where}")
    return 0


def _fail(command, message):
    sys.stdout.flush()
    print(f"kerasgen {command}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
