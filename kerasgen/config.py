"""Run configurations for the CLI and apps: frozen dataclasses, one command-line flag per field.

Each run writes its config as JSON next to its artifacts, so it can be reproduced.
"""

import argparse
import dataclasses
import typing


def _field(default, help, parse=None, required=False):
    return dataclasses.field(default=default, metadata={"help": help, "parse": parse, "required": required})


def count_or_fraction(text):
    """`"500"` → 500 (a count), `"0.1"` → 0.1 (a fraction)."""
    number = float(text)
    return int(number) if number >= 1 and number == int(number) else number


def number_or_name(text):
    """`"0.1"` → 0.1, `"pixel"` → `"pixel"`."""
    try:
        return float(text)
    except ValueError:
        return text


@dataclasses.dataclass(frozen=True)
class TrainVAEConfig:
    """Everything `kerasgen train-vae` needs; the defaults train a good VAE on mnist-5k in minutes."""

    dataset: str = _field("mnist-5k", "'mnist-5k', 'tfds:NAME', or a path to an .npz, an IDX folder or an image folder")
    data_dir: str | None = _field(None, "tensorflow-datasets data_dir (tfds sources only)")
    image_size: tuple[int, int] | None = _field(None, "resize images to HEIGHT WIDTH")
    binarize: str | None = _field(None, "none | static | dynamic; default: dynamic for the Bernoulli likelihood, else none")
    validation_size: int | float = _field(
        500, "validation images: a count, or a fraction when below 1", parse=count_or_fraction
    )
    likelihood: str = _field("bernoulli", "p(x|z): bernoulli | gaussian | continuous_bernoulli")
    likelihood_scale: str | float = _field(
        "pixel", "the Gaussian's scale: pixel | global | a fixed positive number", parse=number_or_name
    )
    posterior: str = _field("diagonal", "q(z|x): diagonal | full (full-covariance Gaussian)")
    latent_dim: int = _field(16, "size of z")
    num_filters: tuple[int, ...] = _field((32, 64), "filters per downsampling level")
    hidden_dim: int = _field(256, "width of the dense layer next to z")
    beta: float = _field(1.0, "weight of the KL term")
    kl_warmup_epochs: int = _field(0, "epochs over which the KL weight grows linearly from 0 to beta")
    importance_samples: int = _field(1, "K > 1 trains on the K-sample importance-weighted bound (IWAE)")
    epochs: int = _field(50, "training epochs")
    batch_size: int = _field(128, "images per step")
    learning_rate: float = _field(2e-3, "Adam's initial learning rate")
    lr_schedule: str = _field("cosine", "constant | cosine (decay to 5%% over the run)")
    seed: int = _field(0, "seeds the split, the binarization, the initialization and the noise")
    out: str = _field("runs/vae", "output folder")
    logdir: str | None = _field(None, "TensorBoard log folder (default: OUT/logs)")
    grid_every: int = _field(5, "write sample grids every N epochs")
    quality_every: int = _field(
        0, "measure Fréchet distance and KID of prior samples vs held-out grey images every N epochs (0: never)"
    )
    classifier: str | None = _field(None, "classifier folder for --quality-every (default: the shipped mnist-5k one)")
    resume: bool = _field(False, "continue from OUT/checkpoint after a crash or kill")

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class TrainGANConfig:
    """Everything `kerasgen train-gan` needs: a GAN whose generator starts as a trained VAE's decoder."""

    vae: str = _field(None, "a train-vae output folder or a .keras file holding the VAE", required=True)
    dataset: str | None = _field(None, "the real images (default: the VAE run's dataset from its config.json, else mnist-5k)")
    data_dir: str | None = _field(None, "tensorflow-datasets data_dir (tfds sources only)")
    init: str = _field("decoder", "the generator's weights: decoder (the VAE's) | scratch (fresh, same architecture)")
    epochs: int = _field(30, "training epochs")
    batch_size: int = _field(64, "images per step")
    d_learning_rate: float = _field(2e-4, "the discriminator's Adam learning rate")
    g_learning_rate: float = _field(2e-4, "the generator's Adam learning rate")
    beta_1: float = _field(0.5, "Adam's beta_1 for both optimizers")
    r1_weight: float = _field(10.0, "gamma of the R1 penalty on real images (0: none)")
    d_steps: int = _field(1, "discriminator updates per generator update")
    label_smoothing: float = _field(0.0, "one-sided smoothing of the real labels")
    ema_decay: float = _field(0.99, "decay of the generator's weight average used for samples (0: none); 0.99 averages over about 100 steps")
    grid_every: int = _field(5, "write sample grids every N epochs")
    quality_every: int = _field(0, "measure Fréchet distance and KID of samples vs held-out images every N epochs (0: never)")
    classifier: str | None = _field(None, "classifier folder for --quality-every (default: the shipped mnist-5k one)")
    seed: int = _field(0, "seeds the discriminator, the noise and the grid's fixed latents (the split reuses the VAE run's seed)")
    out: str = _field("runs/gan", "output folder")
    logdir: str | None = _field(None, "TensorBoard log folder (default: OUT/logs)")
    resume: bool = _field(False, "continue from OUT/checkpoint after a crash or kill")

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class TrainClassifierConfig:
    """Everything `kerasgen train-classifier` needs; the defaults train the shipped mnist-5k classifier."""

    dataset: str = _field("mnist-5k", "a labelled source: 'mnist-5k', 'tfds:NAME', or a path to an .npz, an IDX folder or an image folder")
    data_dir: str | None = _field(None, "tensorflow-datasets data_dir (tfds sources only)")
    image_size: tuple[int, int] | None = _field(None, "resize images to HEIGHT WIDTH")
    validation_size: int | float = _field(
        500, "validation images: a count, or a fraction when below 1", parse=count_or_fraction
    )
    num_filters: tuple[int, ...] = _field((16, 32, 64), "filters per level (two convolutions and a max pooling each)")
    feature_dim: int = _field(128, "width of the penultimate layer: the features for Fréchet distance and KID")
    dropout: float = _field(0.3, "dropout rate between the features and the logits")
    translation: float = _field(0.1, "largest random shift during training, as a fraction of height and width (0: none)")
    epochs: int = _field(30, "training epochs")
    batch_size: int = _field(64, "images per step")
    learning_rate: float = _field(2e-3, "Adam's initial learning rate")
    lr_schedule: str = _field("cosine", "constant | cosine (decay to 5%% over the run)")
    seed: int = _field(0, "seeds the split, the initialization, the augmentation and the dropout")
    out: str = _field("runs/classifier", "output folder")

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """Everything `kerasgen evaluate` needs; the defaults finish in minutes on mnist-5k."""

    model: str = _field(None, "a train-vae or train-gan output folder, or a .keras file", required=True)
    dataset: str | None = _field(None, "the data to evaluate on (default: the run's own, from its config.json)")
    data_dir: str | None = _field(None, "tensorflow-datasets data_dir (tfds sources only)")
    k: int = _field(500, "importance samples per image for log p(x) (5000 for paper-grade numbers)")
    chunk_size: int = _field(100, "importance samples decoded at once: bounds memory for any K")
    classifier: str | None = _field(None, "classifier folder for Fréchet distance / KID (default: the shipped mnist-5k one)")
    num_samples: int = _field(5000, "generated images for the sample-quality metrics")
    batch_size: int = _field(100, "images per evaluation batch")
    diagnostics_batch_size: int = _field(500, "images per batch for the mutual information, which is bounded by log(batch)")
    seed: int = _field(0, "seeds the importance samples and the generated images")
    report: str | None = _field(None, "output folder (default: MODEL/report)")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Everything `kerasgen pipeline` needs: VAE, then the GAN from its decoder, then both evaluated.

    The defaults are the README's main command: mnist-5k, about 10 minutes on 2 CPU cores.
    """

    dataset: str = _field("mnist-5k", "'mnist-5k', 'tfds:NAME', or a path to an .npz, an IDX folder or an image folder")
    # Smaller than train-vae's 16 (which serves likelihood): an 8-d VAE's prior samples are much
    # closer to the data (FD 136 vs 224 on mnist-5k), and the GAN starts from them.
    latent_dim: int = _field(8, "size of the VAE's z, and so of the GAN's")
    vae_epochs: int = _field(TrainVAEConfig.epochs, "VAE training epochs")
    gan_epochs: int = _field(TrainGANConfig.epochs, "GAN training epochs")
    k: int = _field(EvaluateConfig.k, "importance samples per image for the VAE's log p(x)")
    classifier: str | None = _field(None, "classifier folder for Fréchet distance / KID (default: the shipped mnist-5k one)")
    seed: int = _field(0, "seeds everything: the split, both trainings and the evaluation")
    out: str = _field("runs/pipeline", "output folder: OUT/vae, OUT/gan and OUT/comparison.png")
    resume: bool = _field(False, "after a crash or kill: skip finished trainings, continue the interrupted one from its checkpoint")


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    """Everything `kerasgen sample` needs."""

    model: str = _field(None, "a train-vae output folder or a .keras file", required=True)
    n: int = _field(64, "how many samples")
    out: str = _field("samples.png", "the PNG grid to write")
    seed: int = _field(0, "seeds the latent vectors")


def add_arguments(parser, config_class):
    """Adds one `--flag` per field of `config_class` to an argparse parser."""
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        help_text = field.metadata.get("help", "")
        if field.default is not None:
            help_text += f" (default: {_show(field.default)})"
        if kind is bool:
            parser.add_argument(flag, action="store_true", help=help_text)
        elif _is_tuple(kind):
            parser.add_argument(flag, type=int, nargs="+", default=field.default, help=help_text)
        else:
            parser.add_argument(
                flag,
                type=field.metadata.get("parse") or _scalar_type(kind),
                default=field.default,
                required=field.metadata.get("required", False),
                help=help_text,
            )


def from_arguments(config_class, namespace):
    """Builds `config_class` from parsed arguments."""
    values = {}
    for field in dataclasses.fields(config_class):
        value = getattr(namespace, field.name)
        values[field.name] = tuple(value) if isinstance(value, list) else value
    return config_class(**values)


def _is_tuple(kind):
    """True for `tuple[...]` and `tuple[...] | None`."""
    return tuple in (typing.get_origin(kind), *map(typing.get_origin, typing.get_args(kind)))


def _scalar_type(kind):
    for candidate in (int, float):
        if kind is candidate or candidate in typing.get_args(kind):
            return candidate
    return str


def _show(value):
    return " ".join(map(str, value)) if isinstance(value, tuple) else value
