"""One spec per model: what the CLI, export, artifact loading and `kerasgen.__all__` know of it.

A `ModelSpec` names the model's class, its run function and its exporter as strings and holds its
run config (a `kerasgen.config` dataclass), so reading the specs imports neither Keras nor
TensorFlow: `import kerasgen` and `kerasgen --help` read them at once. What is derived from `SPECS`:

- `kerasgen.__all__`, `kerasgen.VAE` & co. (imported on first access) and the names Keras finds in
  a `.keras` file after `import kerasgen` (`kerasgen._registry`);
- the CLI's training commands, their `--help` line and what they print when done (`kerasgen.cli`);
- which exporter and endpoints `kerasgen export` gives a model (`kerasgen.export`);
- the model files a run folder may hold (`kerasgen.artifacts.MODEL_FILES`).

Adding a model is its own files — the model (`kerasgen/models/NAME.py`), its run
(`kerasgen/runs/NAME.py`), its run config (a dataclass in `kerasgen/config.py`) — and one
`ModelSpec` in `SPECS`.
"""

import dataclasses
import importlib
import re

from kerasgen.config import (
    TrainAAEConfig,
    TrainClassifierConfig,
    TrainGANConfig,
    TrainVAEConfig,
    TrainVAEGANConfig,
)

_DOTTED = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What kerasgen needs to know of one model to train, save, load, export and list it.

    Args:
        class_name: str, the model's class, e.g. `"VAE"`: `kerasgen.VAE`, registered with Keras as
            `"kerasgen>VAE"`.
        module: str, the module that defines the class, imported on first use, e.g.
            `"kerasgen.models.vae"`.
        file: str, the `.keras` file its run writes, e.g. `"vae.keras"`.
        export: str, `"module:function"`: writes the model as a SavedModel, called as
            `function(model, path)` and returning the endpoint names.
        endpoints: tuple of str, the SavedModel's signatures, in the order `export` writes them.
        summary: str, one line: the training command's `--help`, or what the model is.
        command: str or None, the CLI command that trains it, e.g. `"train-vae"`; None for a model
            that another model's command trains (`AggressiveVAE`: `train-vae --aggressive`).
        config: the run config dataclass its command takes (from `kerasgen.config`, which imports
            no TensorFlow); None without a command.
        run: str or None, `"module:function"`: trains it from a `config`, called as
            `function(config)` and returning a `RunResult`; None without a command.
        headline: str or None, the line the command prints when training is done: a format
            string over the result's last-epoch metrics and its fields, e.g.
            `"Last epoch: d_loss {d_loss:.3f}."`; None without a command.
        generative: bool, False for a model that does not generate images (the classifier):
            `kerasgen sample` and `evaluate` do not look for its file. Defaults to True.
    """

    class_name: str
    module: str
    file: str
    export: str
    endpoints: tuple
    summary: str
    command: str | None = None
    config: type | None = None
    run: str | None = None
    headline: str | None = None
    generative: bool = True

    def __post_init__(self):
        if not self.class_name.isidentifier():
            raise ValueError(f"class_name must be a Python class name. Received: class_name={self.class_name!r}")
        if not self.file.endswith(".keras"):
            raise ValueError(f"file must name a .keras file. Received: file={self.file!r}")
        for name in ("export", "run"):
            value = getattr(self, name)
            if value is not None and not _DOTTED.match(value):
                raise ValueError(f"{name} must be 'module:function'. Received: {name}={value!r}")
        if not self.endpoints or not all(isinstance(name, str) for name in self.endpoints):
            raise ValueError(f"endpoints must be a non-empty tuple of names. Received: endpoints={self.endpoints!r}")
        with_command = (self.config, self.run, self.headline)
        if self.command is not None and None in with_command:
            raise ValueError(
                f"A model with a command needs its config, run and headline. Received: command={self.command!r}, "
                f"config={self.config!r}, run={self.run!r}, headline={self.headline!r}"
            )
        if self.command is None and any(value is not None for value in with_command):
            raise ValueError(f"config, run and headline belong to a model with a command. Received: command=None for {self.class_name}")

    @property
    def registered_name(self):
        """The name Keras stores in a `.keras` file: `"kerasgen>VAE"`."""
        return f"kerasgen>{self.class_name}"

    def model_class(self):
        """The model's class (imports its module, and with it Keras and TensorFlow)."""
        return getattr(importlib.import_module(self.module), self.class_name)

    def run_function(self):
        """The function that trains the model from a `config` (imports the run module)."""
        return resolve(self.run)

    def exporter(self):
        """The function that writes the model as a SavedModel (imports `kerasgen.export`)."""
        return resolve(self.export)


_AUTOENCODER_ENDPOINTS = ("decode", "sample", "encode", "reconstruct")
_AUTOENCODER_HEADLINE = (
    "Last epoch: reconstruction {reconstruction:.2f}, d_loss {d_loss:.3f}, g_loss {g_loss:.3f}, D(x) {d_real:.3f}, "
    "D(fake) {d_fake:.3f}."
)

# In the order a run folder is searched for a model file, and the CLI lists the commands.
SPECS = (
    ModelSpec(
        "VAE", "kerasgen.models.vae", "vae.keras", "kerasgen.export:export_vae", _AUTOENCODER_ENDPOINTS,
        "train a VAE and write its model, SavedModel and grids",
        command="train-vae", config=TrainVAEConfig, run="kerasgen.runs.vae:train_vae",
        headline="Validation ELBO {val_elbo:.2f} nats per image (reconstruction {val_reconstruction:.2f}, KL {val_kl:.2f}).",
    ),
    ModelSpec(
        "AggressiveVAE", "kerasgen.models.aggressive_vae", "vae.keras", "kerasgen.export:export_vae", _AUTOENCODER_ENDPOINTS,
        "a VAE with aggressive inference-network training (He et al. 2019): kerasgen train-vae --aggressive",
    ),
    ModelSpec(
        "GAN", "kerasgen.models.gan", "gan.keras", "kerasgen.export:export_gan", ("generate", "sample"),
        "train a GAN whose generator starts as a trained VAE's decoder; write its model, SavedModel and grids",
        command="train-gan", config=TrainGANConfig, run="kerasgen.runs.gan:train_gan",
        headline="Last epoch: d_loss {d_loss:.3f}, g_loss {g_loss:.3f}, D(x) {d_real:.3f}, D(G(z)) {d_fake:.3f}.",
    ),
    ModelSpec(
        "VAEGAN", "kerasgen.models.vae_gan", "vaegan.keras", "kerasgen.export:export_autoencoder", _AUTOENCODER_ENDPOINTS,
        "train the VAE-GAN of Larsen et al. (2016), from a trained VAE (--vae) or from scratch",
        command="train-vaegan", config=TrainVAEGANConfig, run="kerasgen.runs.vae_gan:train_vaegan",
        headline=_AUTOENCODER_HEADLINE,
    ),
    ModelSpec(
        "AAE", "kerasgen.models.aae", "aae.keras", "kerasgen.export:export_autoencoder", _AUTOENCODER_ENDPOINTS,
        "train the adversarial autoencoder of Makhzani et al. (2015), from a trained VAE (--vae) or from scratch",
        command="train-aae", config=TrainAAEConfig, run="kerasgen.runs.aae:train_aae",
        headline=_AUTOENCODER_HEADLINE,
    ),
    ModelSpec(
        "Classifier", "kerasgen.models.classifier", "classifier.keras", "kerasgen.export:export_classifier",
        ("predict", "features"),
        "train the domain classifier whose features measure sample quality (Fréchet distance, KID)",
        command="train-classifier", config=TrainClassifierConfig, run="kerasgen.runs.classifier:train_classifier",
        headline="Held-out ({heldout_split}) accuracy {heldout_accuracy:.2%} after {training_seconds:.0f} s of training.",
        generative=False,
    ),
)


def resolve(path):
    """The object a `"module:name"` string names (imports the module)."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def named(class_name):
    """The spec of the model class `class_name`, e.g. `named("GAN")`.

    Raises:
        KeyError: no model of that name.
    """
    for spec in SPECS:
        if spec.class_name == class_name:
            return spec
    raise KeyError(f"No kerasgen model is named {class_name!r}. Known: {', '.join(spec.class_name for spec in SPECS)}")


def spec_of(model):
    """The spec of `model`'s class, or of the closest kerasgen model class it derives from; None for another model.

    Matches classes by module and name, so it imports nothing.
    """
    by_class = {(spec.module, spec.class_name): spec for spec in SPECS}
    for cls in type(model).__mro__:
        spec = by_class.get((cls.__module__, cls.__name__))
        if spec is not None:
            return spec
    return None


def commands():
    """`{command: spec}` for the models the CLI trains, in `SPECS` order."""
    return {spec.command: spec for spec in SPECS if spec.command is not None}


def model_files(generative_only=True):
    """The `.keras` file names a run folder may hold, in `SPECS` order, each once.

    Args:
        generative_only: bool, only the generative models' files (those `sample` and `evaluate`
            take); False adds the others' (the classifier's). Defaults to True.
    """
    return tuple(dict.fromkeys(spec.file for spec in SPECS if spec.generative or not generative_only))
