"""What `kerasgen train-gan` does, as a function: a GAN warm-started from a trained VAE's decoder."""

import dataclasses
import math
import os

import keras

from kerasgen.artifacts import atomic_path, inference_copy, load_run, write_json
from kerasgen.callbacks import (
    Checkpoint,
    DivergenceGuard,
    ElapsedTime,
    SampleGrid,
    SampleQuality,
    quality_classifier,
)
from kerasgen.config import TrainGANConfig
from kerasgen.data import load_dataset
from kerasgen.export import export_gan
from kerasgen.models import GAN
from kerasgen.models.gan import GENERATOR_INITS


@dataclasses.dataclass(frozen=True)
class GANRunArtifacts:
    """Where a GAN run put its outputs."""

    model: str
    saved_model: str
    config: str
    history: str
    samples: str
    checkpoint: str
    logdir: str
    final_metrics: dict
    quality: list


def train_gan(config, verbose="auto"):
    """Trains a GAN as `config` says and writes the model, its SavedModel, config, history and grids.

    The generator is the VAE's decoder followed by its likelihood's mean (`GAN.from_vae`), so it
    works in pixel space on grey [0, 1] images: the data is loaded with `binarize="none"`, split
    like the VAE run's (same validation size, seed and image size, from its `config.json`).
    Output folder layout (`config.out`): `gan.keras`, `saved_model/` (`generate`, `sample`),
    `config.json`, `history.csv`, `samples/epoch_NNN.png` (fixed z; `epoch_000` is the VAE's own
    grid when `init="decoder"`), `checkpoint/` (for `resume=True`) and TensorBoard logs. With
    `quality_every` > 0, the Fréchet distance and KID of 5,000 samples against the held-out
    images go into the history every that many epochs (and before the first epoch and after it),
    and into `quality.json`, rewritten after each measurement; a resumed run keeps the
    measurements up to its checkpoint.

    `verbose` is passed to `fit` ("auto", 0, 1 progress bar, 2 one line per epoch).

    Raises:
        ValueError: bad settings, or data whose image shape is not the VAE's.
        FloatingPointError: training diverged (NaN/inf, or D won for good); nothing is exported
            and the last good epoch stays in `checkpoint/`.

    Returns:
        `GANRunArtifacts` with the paths and the last epoch's metrics.
    """
    if config.init not in GENERATOR_INITS:
        raise ValueError(f"init must be one of {GENERATOR_INITS}. Received: init={config.init!r}")
    if not isinstance(config.epochs, int) or config.epochs < 1:
        raise ValueError(f"epochs must be a positive int. Received: epochs={config.epochs!r}")
    if not os.path.exists(config.vae):
        raise FileNotFoundError(
            f"No VAE found: expected a train-vae output folder or a .keras file. Received: --vae {config.vae!r}"
        )
    vae, vae_run, _ = load_run(config.vae, filenames=("vae.keras",))
    dataset = config.dataset or vae_run.get("dataset", "mnist-5k")
    image_size = vae_run.get("image_size")
    # The VAE's own split, so the GAN never trains on the images its VAE held out.
    split = {
        "validation_size": vae_run.get("validation_size", 500),
        "split_seed": vae_run.get("split_seed", vae_run.get("seed", config.seed)),
        "image_size": tuple(image_size) if image_size else None,
    }
    splits = load_dataset(
        dataset,
        batch_size=config.batch_size,
        validation_size=split["validation_size"],
        binarize="none",
        image_size=split["image_size"],
        seed=split["split_seed"],
        data_dir=config.data_dir,
    )
    if tuple(splits.image_shape) != tuple(vae.image_shape):
        raise ValueError(
            f"The VAE in {config.vae} makes images of shape {tuple(vae.image_shape)}, but the dataset has "
            f"shape {tuple(splits.image_shape)}. Received: --dataset {dataset!r}"
        )

    # Before anything is written: a classifier that cannot score these images is an input error.
    classifier = quality_classifier(config.quality_every, config.classifier, vae.image_shape)

    out = config.out
    paths = {
        "checkpoint": os.path.join(out, "checkpoint"),
        "model": os.path.join(out, "gan.keras"),
        "saved_model": os.path.join(out, "saved_model"),
        "config": os.path.join(out, "config.json"),
        "history": os.path.join(out, "history.csv"),
        "quality": os.path.join(out, "quality.json"),
    }
    logdir = config.logdir or os.path.join(out, "logs")

    gan, initial_epoch = Checkpoint.resume(paths["checkpoint"], config.epochs) if config.resume else (None, 0)
    if gan is None:
        keras.utils.set_random_seed(config.seed)
        gan = GAN.from_vae(
            vae,
            init=config.init,
            r1_weight=config.r1_weight,
            d_steps=config.d_steps,
            label_smoothing=config.label_smoothing,
            ema_decay=config.ema_decay,
            seed=config.seed,
        )
        gan.compile(
            d_optimizer=keras.optimizers.Adam(config.d_learning_rate, beta_1=config.beta_1),
            g_optimizer=keras.optimizers.Adam(config.g_learning_rate, beta_1=config.beta_1),
        )
    write_json(paths["config"], {**config.to_dict(), **split, "dataset": dataset, "image_shape": splits.image_shape})
    quality = None
    if classifier is not None:
        real = splits.unbinarized_heldout
        quality = SampleQuality.for_run(classifier, real, config.quality_every, config.seed, paths["quality"], initial_epoch)

    guard = DivergenceGuard()
    callbacks = [
        ElapsedTime(),
        *([quality] if quality else []),
        keras.callbacks.TerminateOnNaN(),
        guard,
        Checkpoint(paths["checkpoint"]),
        keras.callbacks.CSVLogger(paths["history"], append=initial_epoch > 0),
        SampleGrid(out, every=config.grid_every, seed=config.seed, logdir=logdir),
        keras.callbacks.TensorBoard(logdir),
    ]
    # Batches are (images, labels); GAN.train_step unpacks them and ignores the labels.
    history = gan.fit(
        splits.train,
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        shuffle=False,  # tf.data already reshuffles every epoch.
        verbose=verbose,
    )
    final = {name: float(values[-1]) for name, values in history.history.items()}
    if guard.stopped_reason or not all(math.isfinite(v) for v in final.values()):
        reason = guard.stopped_reason or f"a metric became NaN or inf: {final}"
        raise FloatingPointError(
            f"GAN training diverged ({reason}); the model was not exported. The last good epoch is in "
            f"{paths['checkpoint']}. Try lower learning rates or a larger --r1-weight."
        )

    # The final model is for loading and serving; checkpoint/ keeps the optimizer state for --resume.
    with atomic_path(paths["model"]) as tmp:
        inference_copy(gan).save(tmp)
    export_gan(gan, paths["saved_model"])
    return GANRunArtifacts(
        model=paths["model"],
        saved_model=paths["saved_model"],
        config=paths["config"],
        history=paths["history"],
        samples=os.path.join(out, "samples"),
        checkpoint=paths["checkpoint"],
        logdir=logdir,
        final_metrics=final,
        quality=quality.records if quality else [],
    )

