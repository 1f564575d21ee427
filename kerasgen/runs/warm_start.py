"""What a run that starts from a trained VAE (`train-gan`, `train-vaegan`, `train-aae`) reads from it.

The VAE run's `config.json` fixes the data and its split (source, validation size, split seed,
image size), so the new model never trains on the images its VAE held out and is evaluated on
the same ones. Without `--vae` (from scratch), the run's own `--dataset`, `--validation-size`
and `--image-size` do, with the train-vae defaults.
"""

import dataclasses
import os

from kerasgen.artifacts import load_run
from kerasgen.config import TrainClassifierConfig, shared_flags, show_flag
from kerasgen.data import load_dataset

# Where a from-scratch run's data comes from when its flags leave it open: train-vae's defaults.
DEFAULT_DATASET, DEFAULT_VALIDATION_SIZE = "mnist-5k", 500


@dataclasses.dataclass(frozen=True)
class StartingPoint:
    """The VAE a run starts from (None: from scratch) and the data split it must use.

    Attributes:
        vae: the loaded `VAE`, or None.
        vae_run: the VAE run's `config.json` (`{}` without one).
        dataset: the data source.
        split: `validation_size`, `split_seed` and `image_size` (None or a tuple).
    """

    vae: object
    vae_run: dict
    dataset: str
    split: dict

    def load(self, config, binarize="none"):
        """The dataset's splits at `config.batch_size`, split as the VAE's run split it."""
        return load_dataset(
            self.dataset,
            batch_size=config.batch_size,
            validation_size=self.split["validation_size"],
            binarize=binarize,
            image_size=self.split["image_size"],
            seed=self.split["split_seed"],
            data_dir=config.data_dir,
            stream=config.stream,
        )

    def check_shape(self, splits, config):
        """Refuses data whose image shape is not the VAE's."""
        if self.vae is not None and tuple(splits.image_shape) != tuple(self.vae.image_shape):
            raise ValueError(
                f"The VAE in {config.vae} makes images of shape {tuple(self.vae.image_shape)}, but the dataset has "
                f"shape {tuple(splits.image_shape)}. Received: {show_flag('dataset', self.dataset)}"
            )

    def facts(self, splits):
        """What the run records in `config.json` (and checks on `--resume`) about its data."""
        return {**self.split, "dataset": self.dataset, "image_shape": splits.image_shape}

    def classifier_config(self, config):
        """A domain classifier for this data, on this split (for `--quality-every`)."""
        return TrainClassifierConfig(
            dataset=self.dataset,
            data_dir=config.data_dir,
            image_size=self.split["image_size"],
            validation_size=self.split["validation_size"],
            seed=self.split["split_seed"],
            **shared_flags(config),
        )


def starting_point(config, scratch_flags=()):
    """The `StartingPoint` of a run config with a `vae` field (a folder, a `.keras` file or None).

    Args:
        config: the run config.
        scratch_flags: names of the config's fields that describe a from-scratch model and its
            data (`latent_dim`, `validation_size`, ...): None unless set; with `--vae` they come
            from the VAE, so giving one is refused.

    Raises:
        FileNotFoundError: `--vae` names no model.
        ValueError: `--vae` holds no VAE, or a from-scratch flag was given with it.
    """
    if config.vae is None:
        image_size = getattr(config, "image_size", None)
        return StartingPoint(
            vae=None,
            vae_run={},
            dataset=config.dataset or DEFAULT_DATASET,
            split={
                "validation_size": getattr(config, "validation_size", None) or DEFAULT_VALIDATION_SIZE,
                "split_seed": config.seed,
                "image_size": tuple(image_size) if image_size else None,
            },
        )
    given = [show_flag(name, getattr(config, name)) for name in scratch_flags if getattr(config, name) is not None]
    if given:
        raise ValueError(
            f"With --vae the model's architecture and the data's split are the VAE's: drop {', '.join(given)}, "
            f"or train from scratch without --vae. Received: --vae {config.vae}, {', '.join(given)}"
        )
    if not os.path.exists(config.vae):
        raise FileNotFoundError(
            f"No VAE found: expected a train-vae output folder or a .keras file. Received: --vae {config.vae}"
        )
    from kerasgen.models import VAE

    vae, vae_run, _ = load_run(config.vae, filenames=("vae.keras",), flag="--vae")
    if not isinstance(vae, VAE):
        raise ValueError(f"--vae must hold a kerasgen VAE. Received: --vae {config.vae} (a {type(vae).__name__})")
    image_size = vae_run.get("image_size")
    return StartingPoint(
        vae=vae,
        vae_run=vae_run,
        dataset=config.dataset or vae_run.get("dataset", DEFAULT_DATASET),
        split={
            "validation_size": vae_run.get("validation_size", DEFAULT_VALIDATION_SIZE),
            "split_seed": vae_run.get("split_seed", vae_run.get("seed", config.seed)),
            "image_size": tuple(image_size) if image_size else None,
        },
    )
