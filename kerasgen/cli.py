"""The `kerasgen` command line: `pipeline`, a `train-*` command per model (`train-vae`, `train-gan`, ...), `sample`, `evaluate`, `export`.

The training commands come from the model specs (`kerasgen.specs`): each spec's command, config,
run function, `--help` line and headline. Nothing here imports TensorFlow at module level, so
`kerasgen --help` answers at once."""

import argparse
import dataclasses
import errno
import os
import sys

import kerasgen
from kerasgen import specs
from kerasgen.config import EvaluateConfig, ExportConfig, PipelineConfig, SampleConfig, add_arguments, from_arguments, to_flags


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


def train_command(spec):
    """The command that trains `spec`'s model with its run function and prints what the run wrote."""

    def command(config):
        result = spec.run_function()(config)
        print("\n" + spec.headline.format_map({**_fields(result), **result.final_metrics}))
        _print_outputs(result)

    return command


def _fields(result):
    """A run result's fields, without copying them (`dataclasses.asdict` would)."""
    return {field.name: getattr(result, field.name) for field in dataclasses.fields(result)}


def _print_outputs(result):
    """What a training run wrote (each file or folder that exists), its measurements and TensorBoard."""
    rows = (
        ("Model (.keras)", result.model),
        ("SavedModel", result.saved_model),
        ("Run config", result.config),
        ("Metadata", os.path.join(result.out, "metadata.json")),
        ("History", result.history, result.history_plot),
        ("Sample grids", result.samples, result.reconstructions),
        ("Checkpoint", result.checkpoint),
    )
    for label, *paths in rows:
        written = [path + "/" if os.path.isdir(path) else path for path in paths if path and os.path.exists(path)]
        if written:
            print(f"{label + ':':21}{' and '.join(written)}")
    _print_quality(result)
    _print_latent(result)
    if os.path.isdir(result.logdir):
        print(f"TensorBoard:         tensorboard --logdir {result.logdir}")


def _print_quality(result):
    """One line for a run's `--quality-every` measurements: the last and the best Fréchet distance."""
    if not result.quality:
        return
    last = result.quality[-1]
    best = min(result.quality, key=lambda record: record["fd"])
    path = os.path.join(result.out, "quality.json")
    print(
        f"Sample quality:      {path} (Fréchet distance {last['fd']:.1f} after epoch {last['epoch']}, "
        f"best {best['fd']:.1f} after epoch {best['epoch']})"
    )
    accuracy = result.classifier["heldout_accuracy"]
    print(
        f"  scored by the {result.classifier['origin']} classifier {result.classifier['path']}"
        + ("" if accuracy is None else f" ({100 * accuracy:.1f}% right on held-out images)")
    )


def _print_latent(result):
    """One line for a run's latent instruments (`--latent-images`): the last epoch's."""
    if not result.latent:
        return
    last = result.latent[-1]
    print(
        f"Latent instruments:  {os.path.join(result.out, 'latent.json')} ({last['active_units']} of "
        f"{len(last['active_unit_variances'])} units active, I(x; z) {last['mutual_information']:.2f} nats, "
        f"KL {last['kl']:.2f} after epoch {last['epoch']})"
    )


def sample_command(config):
    import keras

    import kerasgen.models  # noqa: F401  (registers the model classes that load_run reads)
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
    from kerasgen.runs.classifier import train_classifier

    # A data set that no shipped classifier serves gets one trained on its labels.
    report = evaluate(config, train=train_classifier)
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


_EXPORT_HELP = (
    "write a SavedModel for serving from a kerasgen .keras file or run folder "
    f"({', '.join(spec.class_name for spec in specs.SPECS[:-1])} or {specs.SPECS[-1].class_name})"
)


def _export_description():
    """`export --help`'s description: the models it takes and the endpoints each gets."""
    models_by_endpoints = {}
    for spec in specs.SPECS:
        models_by_endpoints.setdefault(spec.endpoints, []).append(spec.class_name)
    endpoints = "; ".join(f"{', '.join(models)}: {', '.join(names)}" for names, models in models_by_endpoints.items())
    return f"{_EXPORT_HELP}. The endpoints: {endpoints}."


# `command: (config class, function, --help line[, description])`; the training commands come from the specs.
COMMANDS = {
    "pipeline": (
        PipelineConfig,
        pipeline_command,
        "train a VAE, then a GAN from its decoder, then evaluate both (the defaults: mnist-5k in about 10 minutes)",
    ),
    **{name: (spec.config, train_command(spec), spec.summary) for name, spec in specs.commands().items()},
    "sample": (SampleConfig, sample_command, "draw samples from a trained model into a PNG grid"),
    "evaluate": (
        EvaluateConfig,
        evaluate_command,
        "likelihood (ELBO, importance-weighted log p(x)), posterior diagnostics, sample quality and plots",
    ),
    "export": (ExportConfig, export_command, _EXPORT_HELP, _export_description()),
}


def build_parser():
    parser = argparse.ArgumentParser(prog="kerasgen", description="Keras 3 generative models with TFP distributions.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (config_class, _, help_text, *description) in COMMANDS.items():
        add_arguments(subparsers.add_parser(name, help=help_text, description=(description or [help_text])[0]), config_class)
    return parser


def main(argv=None):
    # The command owns its terminal: TensorFlow's start-up lines are filtered (a library user's are not).
    kerasgen.quiet_tensorflow_startup()
    arguments = build_parser().parse_args(argv)
    config_class, command, *_ = COMMANDS[arguments.command]
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
