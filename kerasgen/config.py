"""Run configurations for the CLI and apps: frozen dataclasses, one command-line flag per field.

Each run writes its config as JSON next to its artifacts, so it can be reproduced.
"""

import argparse
import ast
import dataclasses
import re
import typing

from kerasgen import validate
from kerasgen.options import (
    AAE_ENCODERS,
    AAE_PRIORS,
    ARCHITECTURES,
    BINARIZATIONS,
    DECODERS,
    FEATURE_SCALES,
    GAUSSIAN_SCALES,
    GENERATOR_INITS,
    JIT_COMPILES,
    LATENT_LAYOUTS,
    LIKELIHOODS,
    LR_SCHEDULES,
    MIXED_PRECISIONS,
    PIXELCNN_CONDITIONINGS,
    POSTERIORS,
    STRATEGIES,
    VAE_INITS,
)


def _field(
    default, help, parse=None, required=False, check=None, choices=None, resumable=False, positional=None, requires=None
):
    """A config field: its default, its `--help`, and what makes a value valid.

    Args:
        check: `(operator, bound)` such as `(">", 0)` for numbers (each element of a tuple).
        choices: the accepted strings: a tuple of `kerasgen.options`, which the implementing code owns.
        resumable: True for a flag that may change on `--resume` (how long to train, where to
            write, what to log); every other flag must be the checkpoint's.
        positional: str or None, a metavar: the value is a positional argument (`--NAME` also works).
        requires: a `Requires`: what another field must hold for this one to have an effect.
            A value other than the default is refused without it.
    """
    metadata = {"help": help, "parse": parse, "required": required, "check": check, "choices": choices}
    metadata["positional"] = positional
    metadata["requires"] = requires
    return dataclasses.field(default=default, metadata={**metadata, "resumable": resumable})


@dataclasses.dataclass(frozen=True)
class Requires:
    """A flag that has an effect only with another flag: `--kl-cycle-ratio` only with `--kl-cycles`.

    Declared on the dependent field (`_field(..., requires=Requires("kl_cycles"))`) and checked by
    `Config` for every config: a dependent field whose value differs from its default is refused
    when the requirement is not met, naming both flags and what was received. "Differs from its
    default" rather than "typed on the command line": a config is also built in Python and rebuilt
    from `config.json` on `--resume`, where every field is given and only the values can tell.

    Attributes:
        name: the field required.
        values: the values of `name` that meet the requirement; None: any value other than its
            default (`--vae DIR` given, `--kl-cycles` above 0, `--aggressive` on). A None among
            them accepts a field left open to be chosen later (its config is then checked again
            with the chosen value).
    """

    name: str
    values: tuple | None = None

    def met(self, config):
        value = getattr(config, self.name)
        if self.values is None:
            return value != type(config).__dataclass_fields__[self.name].default
        return value in self.values

    def describe(self):
        """`--decoder pixelcnn`, `--kl-cycles`: what the requirement asks, as a user types it."""
        named = [value for value in self.values or () if value is not None]
        return " ".join([flag(self.name), " or ".join(map(str, named))]) if named else flag(self.name)

    def received(self, config):
        """`with --decoder conv` or `without --vae`: the required field as `config`, which does not meet it, holds it."""
        value = getattr(config, self.name)
        if self.values is None or value is None or value is False:
            return f"without {flag(self.name)}"
        return f"with {show_flag(self.name, value)}"


# A field's `check` as `validate.number`'s bounds.
_BOUNDS = {">": "above", ">=": "at_least", "<": "below", "<=": "at_most"}


def flag(name):
    """A config field's command-line spelling: `learning_rate` → `--learning-rate`."""
    return "--" + name.replace("_", "-")


def show_flag(name, value):
    """`--binarize none`, `--num-filters 32 64`, `--resume`: a value as a user types it."""
    if value is True:
        return flag(name)
    return f"{flag(name)} {_show(value)}"


# A value as `repr` writes it after `name=`: a quoted string, a tuple or list, or a word.
_REPR = r"""'[^']*'|"[^"]*"|\([^()]*\)|\[[^\[\]]*\]|[^\s,;]+"""


def to_flags(message, names):
    """A library message as the CLI says it: the Python arguments among `names` become their flags.

    `name=value` becomes the flag as typed (`show_flag`); a name with an underscore, or the
    message's first word, becomes its flag. Other words stay, so that "the decoder" stays prose.

        to_flags("latent_dim must be a positive int. Received: latent_dim=0", ["latent_dim"])
        # "--latent-dim must be a positive int. Received: --latent-dim 0"
    """
    for name in sorted(names, key=len, reverse=True):
        word = rf"(?<![\w.'\"-]){re.escape(name)}"
        message = re.sub(rf"{word}=({_REPR})", lambda match, name=name: _as_typed(name, match.group(1)), message)
        if "_" in name:
            message = re.sub(rf"{word}(?![\w'\"=-])", flag(name), message)
        elif re.match(rf"{re.escape(name)} ", message):
            message = flag(name) + message[len(name):]
    return message


def _as_typed(name, text):
    """`show_flag` of a value's repr: `'none'` → `--binarize none`, `(32, 0)` → `--num-filters 32 0`."""
    end = "." if text.endswith(".") and text[0] not in "'\"([" else ""
    try:
        value = ast.literal_eval(text[: len(text) - len(end)])
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return f"{flag(name)} {text}"
    return show_flag(name, tuple(value) if isinstance(value, list) else value) + end


class Config:
    """Validation shared by every run config: each field's checks, as the CLI spells its flag."""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                if field.metadata.get("required"):
                    raise ValueError(f"{flag(field.name)} is required.")
                continue
            _check_field(field, hints[field.name], value)
        for field in dataclasses.fields(self):
            requirement, value = field.metadata.get("requires"), getattr(self, field.name)
            if requirement is not None and value != field.default and not requirement.met(self):
                raise ValueError(
                    f"{flag(field.name)} requires {requirement.describe()}, without which it has no effect. "
                    f"Received: {show_flag(field.name, value)} {requirement.received(self)}"
                )

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def resumable_fields(cls):
        """The fields that may change on `--resume`."""
        return {field.name for field in dataclasses.fields(cls) if field.metadata.get("resumable")}


def _check_field(field, kind, value):
    """Checks one field's value with `kerasgen.validate`, as the CLI spells its flag."""
    try:
        _check_value(field.name, kind, value, field.metadata.get("check"), field.metadata.get("choices"))
    except ValueError as error:
        raise ValueError(to_flags(str(error), [field.name])) from None


def _check_value(name, kind, value, check, choices):
    if kind is bool or bool in typing.get_args(kind):
        validate.boolean(name, value)
        return
    if _is_tuple(kind):
        # Filters per level, layer widths, an image size: every tuple field holds positive ints.
        validate.positive_ints(name, value)
        return
    numeric = [t for t in (int, float) if t is kind or t in typing.get_args(kind)]
    bounds = {_BOUNDS[check[0]]: check[1]} if check else {}
    if not numeric:
        if choices:
            validate.one_of(name, value, choices)
        elif not isinstance(value, str):
            validate.refuse(name, "a str", value)
    elif choices:
        validate.name_or_number(name, value, choices, **bounds)
    elif numeric == [int]:
        # An int above b is an int of at least b + 1.
        validate.integer(name, value, minimum=None if not check else check[1] + (check[0] == ">"))
    else:
        validate.number(name, value, **bounds)


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


DATASET_HELP = "'mnist-5k', 'tfds:NAME', or a path to an .npz, an IDX folder or an image folder"
ARCHITECTURE_HELP = (
    "the encoder's and decoder's family: conv (the digits' strided convolutions) | resnet (residual blocks, "
    "average-pooling down, nearest-neighbour upsampling; for colour images) | dcgan (one strided (transposed) "
    "convolution per level)"
)
NUM_BLOCKS_HELP = "residual blocks per level of --architecture resnet"
CHOSEN_HELP = (
    "default: chosen from the data (near-binary grey images: bernoulli, dynamic binarization and the digit networks; "
    "8-bit grey or colour: logistic_mixture and the network preset for the image size)"
)
SPECTRAL_NORM_HELP = "spectral normalization of every discriminator layer (Miyato et al. 2018), besides the R1 penalty"
POSITIVE, NON_NEGATIVE = (">", 0), (">=", 0)


def _resume(default=False):
    return _field(default, "continue from OUT/checkpoint after a crash or kill (--epochs may grow)", resumable=True)


def _max_minutes():
    return _field(
        None, "stop after the first epoch that ends past this many minutes of training (time spent measuring "
        "--quality-every excluded); --epochs still caps the run, and its learning-rate schedule still spans --epochs",
        check=POSITIVE, resumable=True,
    )


def _overwrite():
    return _field(False, "delete an earlier run in OUT first", resumable=True)


def _out(default):
    return _field(default, "output folder", resumable=True)


def _logdir():
    return _field(None, "TensorBoard log folder (default: OUT/logs)", resumable=True)



def _strategy():
    return _field(
        "default",
        "tf.distribute strategy: default (one device) | mirrored (every local GPU, else the CPU) | multi-worker "
        "(MultiWorkerMirroredStrategy; TF_CONFIG names the cluster; only the chief writes OUT)",
        choices=STRATEGIES,
        resumable=True,
    )


def _mixed_precision():
    return _field(
        "none",
        "layers in half precision: none | float16 (with loss scaling; GPUs) | bfloat16 (TPUs, recent GPUs and CPUs); "
        "distributions, losses and optimizer state stay float32",
        choices=MIXED_PRECISIONS,
    )


def _jit_compile():
    return _field(
        "auto", "XLA-compile the train step: auto (on with a GPU, off on CPUs) | on (on a CPU: 1.1-1.3x faster GAN steps, "
        "slower first step) | off",
        choices=JIT_COMPILES, resumable=True,
    )


def _steps_per_execution():
    return _field(
        1, "train steps per compiled call (larger cuts per-step overhead; callbacks still run every epoch)",
        check=POSITIVE, resumable=True,
    )


SHARED_FIELDS = ("stream", "strategy", "mixed_precision", "jit_compile", "steps_per_execution")


def shared_flags(config):
    """How a run reads its data and uses its devices (`--stream`, `--strategy`, ...): what the runs
    it starts (a pipeline's stages, a classifier for sample quality) do the same way."""
    return {name: getattr(config, name) for name in SHARED_FIELDS}


def _stream():
    return _field(
        False,
        "read the training images from their files every epoch instead of into memory, for data larger "
        "than memory (image folders and tfds:NAME; the held-out splits are read at the start)",
    )


def _classifier(what):
    return _field(
        None,
        f"classifier folder for {what} (default: a shipped classifier, digits or CIFAR-10, when it scores this "
        "data's held-out images right often enough (digits: >= 80%%), else one trained on the data's labels into "
        "OUT/classifier)",
        resumable=True,
    )


@dataclasses.dataclass(frozen=True)
class TrainVAEConfig(Config):
    """Everything `kerasgen train-vae` needs; the defaults train a good VAE on mnist-5k in minutes."""

    dataset: str = _field("mnist-5k", DATASET_HELP)
    data_dir: str | None = _field(None, "tensorflow-datasets data_dir (tfds sources only)", resumable=True)
    stream: bool = _stream()
    image_size: tuple[int, int] | None = _field(None, "resize images to HEIGHT WIDTH", check=POSITIVE)
    binarize: str | None = _field(
        None, "none | static | dynamic; default: dynamic for the Bernoulli likelihood, else none", choices=BINARIZATIONS
    )
    validation_size: int | float = _field(
        500, "validation images: a count, or a fraction when below 1", parse=count_or_fraction, check=POSITIVE
    )
    likelihood: str | None = _field(
        None, "p(x|z): bernoulli | gaussian | continuous_bernoulli | logistic_mixture (8-bit pixels); " + CHOSEN_HELP,
        choices=LIKELIHOODS,
    )
    likelihood_scale: str | float = _field(
        "pixel", "the Gaussian's scale: pixel | global | optimal (each image's MSE, the sigma-VAE) | a fixed positive number",
        parse=number_or_name, check=POSITIVE, choices=GAUSSIAN_SCALES, requires=Requires("likelihood", ("gaussian",)),
    )
    # Open (None), the likelihood is chosen from the data, and the config checked again with it.
    likelihood_components: int = _field(
        10, "the logistic mixture's components", check=POSITIVE, requires=Requires("likelihood", ("logistic_mixture", None))
    )
    posterior: str = _field("diagonal", "q(z|x): diagonal | full (full-covariance Gaussian)", choices=POSTERIORS)
    latent_dim: int | None = _field(None, "size of z; " + CHOSEN_HELP + " (16 for digits)", check=POSITIVE)
    num_filters: tuple[int, ...] | None = _field(None, "filters per downsampling level; " + CHOSEN_HELP, check=POSITIVE)
    hidden_dim: int | None = _field(None, "width of the dense layer next to z; " + CHOSEN_HELP, check=POSITIVE)
    architecture: str | None = _field(None, ARCHITECTURE_HELP + "; " + CHOSEN_HELP, choices=ARCHITECTURES)
    num_blocks: int | None = _field(None, NUM_BLOCKS_HELP + "; " + CHOSEN_HELP, check=POSITIVE)
    latent_layout: str | None = _field(
        None, "z as a vector (dense layers to and from the networks) | map (a map at the coarsest resolution, "
        "latent-dim / (h * w) channels; better likelihoods and reconstructions, less image-like prior samples); "
        + CHOSEN_HELP, choices=LATENT_LAYOUTS,
    )
    decoder: str = _field(
        "conv", "p(x|z): conv (pixels independent given z) | pixelcnn (a Gated PixelCNN conditioned on z, which can "
        "model the image without z; needs --likelihood bernoulli; samples are drawn pixel by pixel)",
        choices=DECODERS,
    )
    pixelcnn_layers: int = _field(
        4, "the PixelCNN's gated layers: more see more of the image and need z less", check=POSITIVE,
        requires=Requires("decoder", ("pixelcnn",)),
    )
    pixelcnn_filters: int = _field(
        32, "the PixelCNN's width and the channels of its conditioning map", check=POSITIVE,
        requires=Requires("decoder", ("pixelcnn",)),
    )
    pixelcnn_conditioning: str = _field(
        "spatial", "how the PixelCNN takes z: spatial (the deconvolutional decoder's feature map, into every gate) | "
        "global (z itself, a linear map into every gate: the conditional PixelCNN, with which strong decoders are "
        "seen to ignore z)", choices=PIXELCNN_CONDITIONINGS, requires=Requires("decoder", ("pixelcnn",)),
    )
    pixelcnn_kernel_size: int = _field(
        3, "the PixelCNN's kernel, odd: each layer sees kernel // 2 more rows above", check=POSITIVE,
        requires=Requires("decoder", ("pixelcnn",)),
    )
    beta: float = _field(1.0, "weight of the KL term", check=NON_NEGATIVE)
    kl_warmup_epochs: int = _field(0, "epochs over which the KL weight grows linearly from 0 to beta", check=NON_NEGATIVE)
    kl_cycles: int = _field(
        0, "cyclical KL annealing (Fu et al. 2019): this many cycles over the whole run, in each the KL weight "
        "rises linearly from 0 to beta, then stays there; the learning rate is not restarted (0: off; not with "
        "--kl-warmup-epochs)",
        check=NON_NEGATIVE,
    )
    kl_cycle_ratio: float = _field(
        0.5, "the share of each KL cycle over which the weight rises, in (0, 1]", check=POSITIVE, requires=Requires("kl_cycles")
    )
    free_bits: float = _field(
        0.0, "free bits (Kingma et al. 2016): nats per latent dimension below which the batch-averaged KL is "
        "floored in the objective; the kl and elbo metrics are not floored (0: off; diagonal posterior, one importance sample)",
        check=NON_NEGATIVE,
    )
    importance_samples: int = _field(1, "K > 1 trains on the K-sample importance-weighted bound (IWAE)", check=POSITIVE)
    aggressive: bool = _field(
        False, "aggressive inference-network training (He et al. 2019): before each decoder step, encoder-only steps "
        "on fresh batches until a 10-step window's mean loss rises (at most 99), until I(x; z) on the "
        "--latent-images stops rising; slower epochs while it lasts (one device, no XLA)",
    )
    aggressive_patience: int = _field(
        5, "with --aggressive: epochs in a row without a new best I(x; z) after which encoder and decoder train jointly",
        check=POSITIVE, requires=Requires("aggressive"),
    )
    aggressive_max_steps: int = _field(
        99, "with --aggressive: the cap on encoder-only steps per batch (He et al.'s 99; the stopping rule takes at "
        "least 20, so 20 fixes an aggressive epoch's cost)",
        check=POSITIVE, requires=Requires("aggressive"),
    )
    epochs: int = _field(50, "training epochs", check=POSITIVE, resumable=True)
    max_minutes: float | None = _max_minutes()
    batch_size: int = _field(128, "images per step", check=POSITIVE)
    learning_rate: float = _field(2e-3, "Adam's initial learning rate", check=POSITIVE)
    lr_schedule: str = _field("cosine", "constant | cosine (decay to 5%% over the run)", choices=LR_SCHEDULES)
    seed: int = _field(0, "seeds the split, the binarization, the initialization and the noise", check=NON_NEGATIVE)
    strategy: str = _strategy()
    mixed_precision: str = _mixed_precision()
    jit_compile: str = _jit_compile()
    steps_per_execution: int = _steps_per_execution()
    out: str = _out("runs/vae")
    logdir: str | None = _logdir()
    grid_every: int = _field(5, "write sample grids every N epochs (0: none)", check=NON_NEGATIVE, resumable=True)
    quality_every: int = _field(
        0, "measure Fréchet distance and KID of prior samples vs held-out grey images, and the reconstructions' FD and "
        "accuracy, every N epochs (0: never)",
        check=NON_NEGATIVE, resumable=True,
    )
    classifier: str | None = _classifier("--quality-every")
    latent_images: int = _field(
        500, "validation images on which KL per dimension, active units, I(x; z) and the ELBO split are measured "
        "before training and after every epoch, into the history and latent.json (0: off)",
        check=NON_NEGATIVE,
    )
    resume: bool = _resume()
    overwrite: bool = _overwrite()

    def __post_init__(self):
        super().__post_init__()
        _check_num_blocks(self.architecture, self.num_blocks)
        if self.kl_cycle_ratio > 1:
            raise ValueError(f"--kl-cycle-ratio must be <= 1. Received: {show_flag('kl_cycle_ratio', self.kl_cycle_ratio)}")
        if self.kl_cycles and self.kl_warmup_epochs:
            raise ValueError(
                "--kl-cycles and --kl-warmup-epochs are two schedules of the KL weight; use one. Received: "
                f"{show_flag('kl_warmup_epochs', self.kl_warmup_epochs)}, {show_flag('kl_cycles', self.kl_cycles)}"
            )
        if self.free_bits and self.posterior != "diagonal":
            raise ValueError(
                "--free-bits needs --posterior diagonal: a full-covariance q's KL is not the sum of its dimensions'. "
                f"Received: {show_flag('free_bits', self.free_bits)}, {show_flag('posterior', self.posterior)}"
            )
        if self.free_bits and self.importance_samples > 1:
            raise ValueError(
                "--free-bits floors the ELBO's KL term, which the importance-weighted bound does not have; use "
                f"--importance-samples 1 with it. Received: {show_flag('free_bits', self.free_bits)}, "
                f"{show_flag('importance_samples', self.importance_samples)}"
            )
        if self.pixelcnn_kernel_size < 3 or self.pixelcnn_kernel_size % 2 == 0:
            raise ValueError(
                "--pixelcnn-kernel-size must be odd and at least 3. Received: "
                f"{show_flag('pixelcnn_kernel_size', self.pixelcnn_kernel_size)}"
            )
        if self.decoder == "pixelcnn" and self.likelihood not in (None, "bernoulli"):
            raise ValueError(
                "--decoder pixelcnn models binary pixels and needs --likelihood bernoulli. Received: "
                f"{show_flag('decoder', self.decoder)}, {show_flag('likelihood', self.likelihood)}"
            )
        if self.aggressive and not self.latent_images:
            raise ValueError(
                "--aggressive ends its phase when I(x; z) on held-out images stops rising, which --latent-images "
                f"measures; give it images (500 by default). Received: --aggressive, {show_flag('latent_images', 0)}"
            )
        if self.aggressive and self.jit_compile == "on":
            raise ValueError(
                "--aggressive cannot be XLA-compiled: the encoder's inner loop reads a tf.data iterator. Use "
                f"--jit-compile off or auto. Received: --aggressive, {show_flag('jit_compile', self.jit_compile)}"
            )


@dataclasses.dataclass(frozen=True)
class TrainGANConfig(Config):
    """Everything `kerasgen train-gan` needs: a GAN whose generator starts as a trained VAE's decoder."""

    vae: str = _field(None, "a train-vae output folder or a .keras file holding the VAE", required=True)
    dataset: str | None = _field(None, "the real images (default: the VAE run's dataset from its config.json, else mnist-5k)")
    data_dir: str | None = _field(None, "tensorflow-datasets data_dir (tfds sources only)", resumable=True)
    stream: bool = _stream()
    init: str = _field(
        "decoder", "the generator's weights: decoder (the VAE's) | scratch (fresh, same architecture)", choices=GENERATOR_INITS
    )
    epochs: int = _field(30, "training epochs", check=POSITIVE, resumable=True)
    max_minutes: float | None = _max_minutes()
    batch_size: int = _field(64, "images per step", check=POSITIVE)
    d_learning_rate: float = _field(2e-4, "the discriminator's Adam learning rate", check=POSITIVE)
    g_learning_rate: float = _field(2e-4, "the generator's Adam learning rate", check=POSITIVE)
    beta_1: float = _field(0.5, "Adam's beta_1 for both optimizers", check=NON_NEGATIVE)
    r1_weight: float = _field(10.0, "gamma of the R1 penalty on real images (0: none)", check=NON_NEGATIVE)
    d_steps: int = _field(1, "discriminator updates per generator update", check=POSITIVE)
    label_smoothing: float = _field(0.0, "one-sided smoothing of the real labels", check=NON_NEGATIVE)
    ema_decay: float = _field(
        0.99, "decay of the generator's weight average used for samples (0: none); 0.99 averages over about 100 steps",
        check=NON_NEGATIVE,
    )
    spectral_norm: bool = _field(False, SPECTRAL_NORM_HELP)
    grid_every: int = _field(5, "write sample grids every N epochs (0: none)", check=NON_NEGATIVE, resumable=True)
    quality_every: int = _field(
        0, "measure Fréchet distance and KID of samples vs held-out images every N epochs (0: never)",
        check=NON_NEGATIVE, resumable=True,
    )
    classifier: str | None = _classifier("--quality-every")
    seed: int = _field(
        0, "seeds the discriminator, the noise and the grid's fixed latents (the split reuses the VAE run's seed)",
        check=NON_NEGATIVE,
    )
    strategy: str = _strategy()
    mixed_precision: str = _mixed_precision()
    jit_compile: str = _jit_compile()
    steps_per_execution: int = _steps_per_execution()
    out: str = _out("runs/gan")
    logdir: str | None = _logdir()
    resume: bool = _resume()
    overwrite: bool = _overwrite()


def _check_num_blocks(architecture, num_blocks):
    """Refuses --num-blocks (other than the default 1) for a family without residual blocks."""
    if num_blocks not in (None, 1) and architecture != "resnet":
        raise ValueError(
            "--num-blocks counts residual blocks, which only --architecture resnet has. Received: "
            f"{show_flag('num_blocks', num_blocks)}, {show_flag('architecture', architecture or 'conv')}"
        )


def _scratch(help, **kwargs):
    """A from-scratch flag: None unless given; with --vae it is the VAE's, and giving it is refused."""
    return _field(None, help + " (without --vae)", **kwargs)


def _init():
    """How a model warm-started from `--vae` takes its networks; from scratch there is nothing to take."""
    return _field(
        "vae", "with --vae: vae (its weights) | scratch (its architecture, fresh weights)", choices=VAE_INITS,
        requires=Requires("vae"),
    )


@dataclasses.dataclass(frozen=True)
class TrainVAEGANConfig(Config):
    """Everything `kerasgen train-vaegan` needs: the VAE-GAN of Larsen et al. (2016), from a trained VAE or from scratch."""

    vae: str | None = _field(
        None, "a train-vae output folder or .keras file to start from: its encoder, decoder, data and split "
        "(default: none, a VAE-GAN from scratch)",
    )
    init: str = _init()
    dataset: str | None = _field(None, "the images (default: the VAE run's dataset, else mnist-5k)")
    data_dir: str | None = _field(None, "tensorflow-datasets data_dir (tfds sources only)", resumable=True)
    stream: bool = _stream()
    image_size: tuple[int, int] | None = _scratch("resize images to HEIGHT WIDTH", check=POSITIVE)
    validation_size: int | float | None = _scratch(
        "validation images, a count or a fraction (default 500)", parse=count_or_fraction, check=POSITIVE
    )
    latent_dim: int | None = _scratch("size of z (default 8)", check=POSITIVE)
    num_filters: tuple[int, ...] | None = _scratch("filters per downsampling level (default 32 64)", check=POSITIVE)
    hidden_dim: int | None = _scratch("width of the dense layer next to z (default 256)", check=POSITIVE)
    architecture: str | None = _scratch(ARCHITECTURE_HELP + " (default conv)", choices=ARCHITECTURES)
    num_blocks: int | None = _scratch(NUM_BLOCKS_HELP + " (default 1)", check=POSITIVE)
    gamma: float = _field(
        1e-4, "weight of the feature reconstruction loss against the adversarial loss in the decoder's update "
        "(smaller: more realistic samples, less faithful reconstructions)",
        check=NON_NEGATIVE,
    )
    beta: float = _field(1.0, "weight of the KL term in the encoder's loss (1: the paper's)", check=NON_NEGATIVE)
    feature_scale: str | float = _field(
        "fitted", "sigma of the Gaussian likelihood of D's features: fitted (each batch's maximum-likelihood value, "
        "the RMS feature error) | a fixed positive number (1: the paper's)", parse=number_or_name, check=POSITIVE,
        choices=FEATURE_SCALES,
    )
    feature_layer: str | None = _field(None, "name of D's layer whose features are compared (default: its last convolution)")
    r1_weight: float = _field(10.0, "gamma of the R1 penalty on real images (0: none)", check=NON_NEGATIVE)
    spectral_norm: bool = _field(False, SPECTRAL_NORM_HELP)
    ema_decay: float = _field(
        0.99, "decay of the encoder's and decoder's weight averages used to encode, decode and sample (0: none)",
        check=NON_NEGATIVE,
    )
    equilibrium_margin: float | None = _field(
        None, "the reference code's equilibrium rule: skip D while it wins by more than this margin around ln 2, "
        "the decoder while it loses by more (default: off; on mnist-5k it froze the decoder and hurt the samples, see docs/model_family.md)", check=NON_NEGATIVE,
    )
    epochs: int = _field(30, "training epochs", check=POSITIVE, resumable=True)
    max_minutes: float | None = _max_minutes()
    batch_size: int = _field(64, "images per step", check=POSITIVE)
    e_learning_rate: float = _field(2e-4, "the encoder's Adam learning rate", check=POSITIVE)
    g_learning_rate: float = _field(2e-4, "the decoder's Adam learning rate", check=POSITIVE)
    d_learning_rate: float = _field(2e-4, "the discriminator's Adam learning rate", check=POSITIVE)
    beta_1: float = _field(0.5, "Adam's beta_1 for the three optimizers", check=NON_NEGATIVE)
    grid_every: int = _field(
        5, "write sample and reconstruction grids every N epochs (0: none)", check=NON_NEGATIVE, resumable=True
    )
    quality_every: int = _field(
        0, "measure Fréchet distance and KID of prior samples vs held-out images, and the reconstructions' FD and "
        "accuracy, every N epochs (0: never)",
        check=NON_NEGATIVE, resumable=True,
    )
    classifier: str | None = _classifier("--quality-every")
    seed: int = _field(0, "seeds the networks, the noise and the grids (with --vae the split is the VAE run's)", check=NON_NEGATIVE)
    strategy: str = _strategy()
    mixed_precision: str = _mixed_precision()
    jit_compile: str = _jit_compile()
    steps_per_execution: int = _steps_per_execution()
    out: str = _out("runs/vaegan")
    logdir: str | None = _logdir()
    resume: bool = _resume()
    overwrite: bool = _overwrite()

    SCRATCH_FLAGS = ("image_size", "validation_size", "latent_dim", "num_filters", "hidden_dim", "architecture", "num_blocks")

    def __post_init__(self):
        super().__post_init__()
        _check_num_blocks(self.architecture, self.num_blocks)


@dataclasses.dataclass(frozen=True)
class TrainAAEConfig(Config):
    """Everything `kerasgen train-aae` needs: the adversarial autoencoder of Makhzani et al. (2015), from a VAE or from scratch."""

    vae: str | None = _field(
        None, "a train-vae output folder or .keras file to start from: its encoder, decoder, likelihood, data, split "
        "and binarization (default: none, an AAE from scratch)",
    )
    init: str = _init()
    dataset: str | None = _field(None, "the images (default: the VAE run's dataset, else mnist-5k)")
    data_dir: str | None = _field(None, "tensorflow-datasets data_dir (tfds sources only)", resumable=True)
    stream: bool = _stream()
    image_size: tuple[int, int] | None = _scratch("resize images to HEIGHT WIDTH", check=POSITIVE)
    validation_size: int | float | None = _scratch(
        "validation images, a count or a fraction (default 500)", parse=count_or_fraction, check=POSITIVE
    )
    latent_dim: int | None = _scratch("size of z (default 8)", check=POSITIVE)
    num_filters: tuple[int, ...] | None = _scratch("filters per downsampling level (default 32 64)", check=POSITIVE)
    hidden_dim: int | None = _scratch("width of the dense layer next to z (default 256)", check=POSITIVE)
    architecture: str | None = _scratch(ARCHITECTURE_HELP + " (default conv)", choices=ARCHITECTURES)
    num_blocks: int | None = _scratch(NUM_BLOCKS_HELP + " (default 1)", check=POSITIVE)
    likelihood: str | None = _scratch(
        "p(x|z): bernoulli | gaussian | continuous_bernoulli | logistic_mixture (default bernoulli)", choices=LIKELIHOODS
    )
    likelihood_scale: str | float | None = _scratch(
        "the Gaussian's scale: pixel | global | optimal | a fixed positive number (default pixel)",
        parse=number_or_name, check=POSITIVE, choices=GAUSSIAN_SCALES, requires=Requires("likelihood", ("gaussian",)),
    )
    likelihood_components: int | None = _scratch(
        "the logistic mixture's components (default 10)", check=POSITIVE, requires=Requires("likelihood", ("logistic_mixture",))
    )
    latent_layout: str | None = _scratch("z as a vector | map (default vector)", choices=LATENT_LAYOUTS)
    binarize: str | None = _scratch(
        "none | static | dynamic (default: dynamic for the Bernoulli likelihood, else none)", choices=BINARIZATIONS
    )
    encoder: str = _field(
        "deterministic", "q(z|x): deterministic (z = the encoder's output) | gaussian (diagonal, sampled)",
        choices=AAE_ENCODERS,
    )
    prior: str = _field(
        "normal", "p(z): normal (N(0, I)) | mixture (Gaussians on a circle in the first two latent axes)",
        choices=AAE_PRIORS,
    )
    prior_components: int = _field(
        10, "the mixture prior's number of components", check=POSITIVE, requires=Requires("prior", ("mixture",))
    )
    prior_radius: float = _field(4.0, "the mixture prior's circle radius", check=POSITIVE, requires=Requires("prior", ("mixture",)))
    discriminator_units: tuple[int, ...] = _field((512, 512), "hidden widths of the latent discriminator", check=POSITIVE)
    epochs: int = _field(30, "training epochs", check=POSITIVE, resumable=True)
    max_minutes: float | None = _max_minutes()
    batch_size: int = _field(64, "images per step", check=POSITIVE)
    learning_rate: float = _field(2e-4, "Adam's learning rate of the reconstruction phase (encoder and decoder)", check=POSITIVE)
    d_learning_rate: float = _field(
        3e-3, "the latent discriminator's Adam learning rate (mnist-5k, 10 epochs from the VAE: MMD(q(z), p(z)) 0.027 / 0.015 / "
        "0.010 at 2e-4 / 1e-3 / 3e-3)", check=POSITIVE,
    )
    g_learning_rate: float = _field(2e-4, "the encoder's Adam learning rate in the adversarial phase", check=POSITIVE)
    beta_1: float = _field(0.5, "Adam's beta_1 for the three optimizers", check=NON_NEGATIVE)
    grid_every: int = _field(
        5, "write sample and reconstruction grids every N epochs (0: none)", check=NON_NEGATIVE, resumable=True
    )
    quality_every: int = _field(
        0, "measure Fréchet distance and KID of prior samples vs held-out images, and the reconstructions' FD and "
        "accuracy, every N epochs (0: never)",
        check=NON_NEGATIVE, resumable=True,
    )
    classifier: str | None = _classifier("--quality-every")
    seed: int = _field(0, "seeds the networks, the noise and the grids (with --vae the split is the VAE run's)", check=NON_NEGATIVE)
    strategy: str = _strategy()
    mixed_precision: str = _mixed_precision()
    jit_compile: str = _jit_compile()
    steps_per_execution: int = _steps_per_execution()
    out: str = _out("runs/aae")
    logdir: str | None = _logdir()
    resume: bool = _resume()
    overwrite: bool = _overwrite()

    SCRATCH_FLAGS = (
        "image_size", "validation_size", "latent_dim", "num_filters", "hidden_dim", "likelihood", "likelihood_scale",
        "likelihood_components", "latent_layout", "binarize", "architecture", "num_blocks",
    )

    def __post_init__(self):
        super().__post_init__()
        _check_num_blocks(self.architecture, self.num_blocks)


@dataclasses.dataclass(frozen=True)
class TrainClassifierConfig(Config):
    """Everything `kerasgen train-classifier` needs; the defaults train the shipped mnist-5k classifier."""

    dataset: str = _field("mnist-5k", "a labelled source: " + DATASET_HELP)
    data_dir: str | None = _field(None, "tensorflow-datasets data_dir (tfds sources only)", resumable=True)
    stream: bool = _stream()
    image_size: tuple[int, int] | None = _field(None, "resize images to HEIGHT WIDTH", check=POSITIVE)
    validation_size: int | float = _field(
        500, "validation images: a count, or a fraction when below 1", parse=count_or_fraction, check=POSITIVE
    )
    num_filters: tuple[int, ...] = _field(
        (16, 32, 64), "filters per level (--convs-per-level convolutions and a max pooling each)", check=POSITIVE
    )
    feature_dim: int = _field(
        128, "width of the penultimate layer: the features for Fréchet distance and KID", check=POSITIVE
    )
    dropout: float = _field(0.3, "dropout rate between the features and the logits", check=NON_NEGATIVE)
    translation: float = _field(
        0.1, "largest random shift during training, as a fraction of height and width (0: none)", check=NON_NEGATIVE
    )
    flip: bool = _field(False, "mirror training images left-right at random (natural images, not digits)")
    batch_norm: bool = _field(False, "batch normalization after each convolution (moving statistics at inference)")
    convs_per_level: int = _field(2, "3x3 convolutions per level", check=POSITIVE)
    epochs: int = _field(30, "training epochs", check=POSITIVE, resumable=True)
    max_minutes: float | None = _max_minutes()
    batch_size: int = _field(64, "images per step", check=POSITIVE)
    learning_rate: float = _field(2e-3, "Adam's initial learning rate", check=POSITIVE)
    lr_schedule: str = _field("cosine", "constant | cosine (decay to 5%% over the run)", choices=LR_SCHEDULES)
    seed: int = _field(0, "seeds the split, the initialization, the augmentation and the dropout", check=NON_NEGATIVE)
    strategy: str = _strategy()
    mixed_precision: str = _mixed_precision()
    jit_compile: str = _jit_compile()
    steps_per_execution: int = _steps_per_execution()
    out: str = _out("runs/classifier")
    logdir: str | None = _logdir()
    resume: bool = _resume()
    overwrite: bool = _overwrite()


@dataclasses.dataclass(frozen=True)
class EvaluateConfig(Config):
    """Everything `kerasgen evaluate` needs; the defaults finish in minutes on mnist-5k."""

    model: str = _field(None, "a train-vae, train-gan, train-vaegan or train-aae output folder, or a .keras file", required=True)
    dataset: str | None = _field(None, "the data to evaluate on (default: the run's own, from its config.json)")
    data_dir: str | None = _field(None, "tensorflow-datasets data_dir (tfds sources only)")
    k: int = _field(500, "importance samples per image for log p(x) (5000 for paper-grade numbers)", check=POSITIVE)
    chunk_size: int | None = _field(
        None, "importance samples decoded at once per image: bounds memory for any K (default: 100; with a PixelCNN "
        "decoder, whose every sample is a full network pass over the image, 1000 / --batch-size)",
        check=POSITIVE,
    )
    classifier: str | None = _classifier("Fréchet distance / KID")
    num_samples: int = _field(5000, "generated images for the sample-quality metrics", check=(">=", 2))
    batch_size: int = _field(100, "images per evaluation batch", check=POSITIVE)
    diagnostics_batch_size: int = _field(
        500, "images per batch for the mutual information, which is bounded by log(batch)", check=(">=", 2)
    )
    seed: int = _field(0, "seeds the importance samples, the generated images and the codes of the posterior MMD", check=NON_NEGATIVE)
    report: str | None = _field(None, "output folder (default: MODEL/report)")


def _same_as(config_class, name):
    """A field as another config declares it: one flag, one help text, one set of checks."""
    field = config_class.__dataclass_fields__[name]
    return dataclasses.field(default=field.default, metadata=field.metadata)


@dataclasses.dataclass(frozen=True)
class PipelineConfig(Config):
    """Everything `kerasgen pipeline` needs: VAE, then the GAN from its decoder, then both evaluated.

    The defaults are the README's main command: mnist-5k, about 10 minutes on 2 CPU cores.
    """

    dataset: str = _field("mnist-5k", DATASET_HELP)
    data_dir: str | None = _field(None, "tensorflow-datasets data_dir (tfds sources only)", resumable=True)
    stream: bool = _stream()
    image_size: tuple[int, int] | None = _field(None, "resize images to HEIGHT WIDTH", check=POSITIVE)
    validation_size: int | float = _same_as(TrainVAEConfig, "validation_size")
    # Smaller than train-vae's 16 (which serves likelihood) for digits: an 8-d VAE's prior samples
    # are much closer to the data (FD 136 vs 224 on mnist-5k), and the GAN starts from them.
    latent_dim: int | None = _field(
        None, "size of the VAE's z, and so of the GAN's; " + CHOSEN_HELP + " (8 for digits)", check=POSITIVE
    )
    likelihood: str | None = _same_as(TrainVAEConfig, "likelihood")
    binarize: str | None = _same_as(TrainVAEConfig, "binarize")
    likelihood_scale: str | float = _same_as(TrainVAEConfig, "likelihood_scale")
    likelihood_components: int = _same_as(TrainVAEConfig, "likelihood_components")
    architecture: str | None = _same_as(TrainVAEConfig, "architecture")
    num_filters: tuple[int, ...] | None = _same_as(TrainVAEConfig, "num_filters")
    num_blocks: int | None = _same_as(TrainVAEConfig, "num_blocks")
    latent_layout: str | None = _same_as(TrainVAEConfig, "latent_layout")
    hidden_dim: int | None = _same_as(TrainVAEConfig, "hidden_dim")
    vae_epochs: int = _field(TrainVAEConfig.epochs, "VAE training epochs", check=POSITIVE, resumable=True)
    gan_epochs: int = _field(TrainGANConfig.epochs, "GAN training epochs", check=POSITIVE, resumable=True)
    k: int = _field(EvaluateConfig.k, "importance samples per image for the VAE's log p(x)", check=POSITIVE, resumable=True)
    num_samples: int = _field(
        10_000, "generated images per model for Fréchet distance, KID and the class shares", check=(">=", 2), resumable=True
    )
    classifier: str | None = _classifier("Fréchet distance / KID")
    seed: int = _field(0, "seeds everything: the split, both trainings and the evaluation", check=NON_NEGATIVE)
    strategy: str = _strategy()
    mixed_precision: str = _mixed_precision()
    jit_compile: str = _jit_compile()
    steps_per_execution: int = _steps_per_execution()
    out: str = _field("runs/pipeline", "output folder: OUT/vae, OUT/gan and OUT/comparison.png", resumable=True)
    resume: bool = _field(
        False, "after a crash or kill: skip finished trainings, continue the interrupted one from its checkpoint",
        resumable=True,
    )
    overwrite: bool = _overwrite()


@dataclasses.dataclass(frozen=True)
class SampleConfig(Config):
    """Everything `kerasgen sample` needs."""

    model: str = _field(None, "a train-vae, train-gan, train-vaegan or train-aae output folder, or a .keras file", required=True)
    n: int = _field(64, "how many samples", check=POSITIVE)
    out: str = _field("samples.png", "the PNG grid to write")
    seed: int = _field(0, "seeds the latent vectors", check=NON_NEGATIVE)


@dataclasses.dataclass(frozen=True)
class ExportConfig(Config):
    """Everything `kerasgen export` needs."""

    model: str = _field(
        None, "a kerasgen run folder or .keras file (VAE, GAN, VAE-GAN, AAE or classifier)", required=True, positional="RUN_OR_KERAS_FILE"
    )
    out: str = _field(None, "the SavedModel folder to write", required=True)


def add_arguments(parser, config_class):
    """Adds one `--flag` per field of `config_class` to an argparse parser."""
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        help_text = field.metadata.get("help", "")
        if field.default is not None:
            help_text += f" (default: {_show(field.default)})"
        if field.metadata.get("positional"):
            # `kerasgen export RUN --out DIR`; `--model RUN` works as well.
            group = parser.add_mutually_exclusive_group(required=True)
            group.add_argument(field.name, nargs="?", metavar=field.metadata["positional"], help=help_text)
            group.add_argument(flag, dest=field.name + "_flag", help=argparse.SUPPRESS)
        elif kind is bool:
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
        if field.metadata.get("positional") and value is None:
            value = getattr(namespace, field.name + "_flag", None)
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
