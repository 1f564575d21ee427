"""What a run builds for its data when the flags leave it open: likelihood, binarization, networks.

Digits and photographs want different models. Grey images whose pixels sit almost all at black
or white (MNIST-like strokes) are modelled as binary: a Bernoulli p(x|z) on dynamically
binarized pixels, today's 28x28 networks. Anything else — 8-bit colour, or grey photographs — is
modelled as 8-bit pixels by the discretized logistic mixture, with the network preset for its
resolution (`networks.network_preset`).

`choose_settings` takes the data's shape and a sample of its pixels, fills in what the user did
not give (a `None` field), and says in one line what it chose and why; the run prints that line
and records the resolved values in its `config.json`.
"""

import dataclasses

import numpy as np

# A grey image set is "near-binary" when this share of its pixels lies within EDGE of 0 or 1.
# mnist-5k: 91%; CIFAR-10 converted to grey: 10%, in colour: 12%.
NEAR_BINARY_SHARE = 0.75
EDGE = 0.1
# The images looked at, evenly spaced over the data: enough for a stable share, few enough to be instant.
SAMPLE_IMAGES = 1000

# The fields a choice fills in, in the order the line names them.
CHOSEN_FIELDS = (
    "likelihood", "binarize", "architecture", "num_filters", "num_blocks", "hidden_dim", "latent_dim", "latent_layout",
)


@dataclasses.dataclass(frozen=True)
class DataChoice:
    """The settings chosen for a dataset, and why.

    Attributes:
        kind: `"near-binary grey"`, `"8-bit grey"` or `"8-bit colour"`.
        edge_share: the share of sampled pixels within `EDGE` of 0 or 1.
        settings: `{field: value}` for every field in `CHOSEN_FIELDS` (given values kept).
        given: the fields the user set, which the choice left alone.
    """

    kind: str
    edge_share: float
    settings: dict
    given: tuple

    def line(self):
        """One line: what the data looks like, what was chosen, what was given."""
        # A latent map is read straight from the networks' last level: no dense layer to name.
        unused = ("hidden_dim",) if self.settings.get("latent_layout") == "map" else ()
        chosen = ", ".join(
            f"{name.replace('_', ' ')} {_show(value)}"
            for name, value in self.settings.items()
            if name not in self.given and value is not None and name not in unused
        )
        given = f"; kept as given: {', '.join('--' + n.replace('_', '-') for n in self.given)}" if self.given else ""
        return (
            f"Chosen for {self.kind} images ({100 * self.edge_share:.0f}% of pixels within {EDGE:g} of black or white): "
            f"{chosen or 'nothing (all given)'}{given}."
        )

    def describe(self):
        """A JSON-ready record for config files and summaries."""
        return {"kind": self.kind, "edge_share": self.edge_share, "chosen": self.settings, "given": list(self.given)}


def pixel_kind(images):
    """`(kind, edge_share)` of uint8 or [0, 1] images `[N, H, W, C]` (see the module docstring)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"images must be a non-empty [N, H, W, C] array. Received: shape {images.shape}")
    # Spread over the whole array: an image folder is read class by class, so its first images
    # are one class (CIFAR-10's first 1,000 are all airplanes).
    sample = images[np.unique(np.linspace(0, len(images) - 1, min(len(images), SAMPLE_IMAGES)).astype(int))]
    unit = sample.astype(np.float32) / 255.0 if sample.dtype == np.uint8 else sample.astype(np.float32)
    edge_share = float(np.mean((unit <= EDGE) | (unit >= 1.0 - EDGE)))
    if images.shape[-1] != 1:
        return "8-bit colour", edge_share
    return ("near-binary grey" if edge_share >= NEAR_BINARY_SHARE else "8-bit grey"), edge_share


def choose_settings(images, given, preset, digit_defaults):
    """Fills the `None` entries of `given` for data like `images`.

    Args:
        images: a sample of the data, uint8 or [0, 1], `[N, H, W, C]` (the whole training set is fine:
            only `SAMPLE_IMAGES` of them, evenly spaced, are read).
        given: `{field: value or None}` for the fields of `CHOSEN_FIELDS` the run has; None means
            "choose". A field absent from `given` is neither chosen nor reported.
        preset: function `image_shape -> {field: value}` giving the network for 8-bit data
            (`networks.network_preset`).
        digit_defaults: `{field: value}`, the network for near-binary grey data (the run's own
            digit defaults, so mnist-5k keeps today's models exactly).

    Returns:
        `DataChoice`.
    """
    kind, edge_share = pixel_kind(images)
    if kind == "near-binary grey":
        chosen = {"likelihood": "bernoulli", **digit_defaults}
    else:
        chosen = {"likelihood": "logistic_mixture", **preset(tuple(int(d) for d in np.shape(images)[1:]))}
    likelihood = given.get("likelihood") or chosen["likelihood"]
    # Binarization follows the likelihood in force, chosen or given: only a Bernoulli wants binary pixels.
    chosen["binarize"] = "dynamic" if likelihood == "bernoulli" else "none"
    settings, kept = {}, []
    for name in CHOSEN_FIELDS:
        if name not in given:
            continue
        if given[name] is not None:
            settings[name] = given[name]
            kept.append(name)
        else:
            settings[name] = chosen.get(name)
    if "latent_layout" not in kept and settings.get("latent_layout") == "map" and not _fits_a_map(images, settings):
        # The preset's map, but given networks or a given latent size that no map of them holds.
        settings["latent_layout"] = "vector"
    return DataChoice(kind, edge_share, settings, tuple(kept))


def _fits_a_map(images, settings):
    """Whether `settings`' networks and latent_dim make a latent map of images like `images`."""
    from kerasgen.networks import check_image_shape, map_channels

    shape, levels = tuple(int(d) for d in np.shape(images)[1:]), len(settings["num_filters"])
    try:
        check_image_shape(shape, levels)
        map_channels(settings["latent_dim"], shape, levels)
    except ValueError:
        return False
    return True


def _show(value):
    return " ".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


# The digit networks: today's train-vae defaults, kept exactly for near-binary grey data.
DIGIT_NETWORK = {
    "architecture": "conv", "num_filters": (32, 64), "num_blocks": 1, "hidden_dim": 256, "latent_layout": "vector",
}


def choose_for_config(config, digit_latent_dim):
    """`config` with its open (`None`) fields of `CHOSEN_FIELDS` chosen for its data, and the choice.

    The data is read once more for this (`load_dataset` without binarization; an image folder is
    decoded only once per process), and only when a field is open.

    Args:
        config: a run config with `dataset`, `data_dir`, `stream`, `image_size`, `validation_size`,
            `batch_size`, `seed` and some of `CHOSEN_FIELDS`.
        digit_latent_dim: int, the latent size for near-binary grey data (16 for train-vae, 8 for
            the pipeline, whose GAN starts from the VAE's prior samples).

    Returns:
        `(config, DataChoice or None)`; None when every field was given.
    """
    # Imported here: the data pipeline and the networks import TensorFlow, which a multi-worker
    # run must not start before its strategy exists (the caller creates it first).
    from kerasgen.data import load_dataset
    from kerasgen.networks import network_preset

    given = {name: getattr(config, name) for name in CHOSEN_FIELDS if hasattr(config, name)}
    if all(value is not None for value in given.values()):
        return config, None
    splits = load_dataset(
        config.dataset, batch_size=config.batch_size, validation_size=config.validation_size, binarize="none",
        image_size=config.image_size, seed=config.seed, data_dir=config.data_dir, stream=config.stream,
    )
    choice = choose_settings(
        splits.unbinarized_heldout, given, network_preset, {**DIGIT_NETWORK, "latent_dim": digit_latent_dim}
    )
    return dataclasses.replace(config, **choice.settings), choice
