"""Training runs that write every artifact: what `kerasgen train-vae` does, as a function."""

import dataclasses
import math
import os

import keras
import numpy as np

from kerasgen.artifacts import atomic_path, inference_copy, write_json
from kerasgen.callbacks import (
    Checkpoint,
    ElapsedTime,
    SampleGrid,
    SampleQuality,
    quality_classifier,
)
from kerasgen.config import TrainVAEConfig
from kerasgen.data import load_dataset
from kerasgen.export import export_vae
from kerasgen.models import VAE
from kerasgen.plots import plot_history

LR_SCHEDULES = ("constant", "cosine")


@dataclasses.dataclass(frozen=True)
class RunArtifacts:
    """Where a run put its outputs."""

    model: str
    saved_model: str
    config: str
    history: str
    history_plot: str
    samples: str
    reconstructions: str
    logdir: str
    final_metrics: dict
    quality: list = dataclasses.field(default_factory=list)


def resolve_binarize(config):
    """The binarization a config asks for: its own, or dynamic for a Bernoulli likelihood, else none."""
    if config.binarize is not None:
        return config.binarize
    return "dynamic" if config.likelihood == "bernoulli" else "none"


def train_vae(config=TrainVAEConfig(), verbose="auto"):
    """Trains a VAE as `config` says and writes the model, its SavedModel, config, history and grids.

    Output folder layout (`config.out`): `vae.keras`, `saved_model/`, `config.json`,
    `history.csv`, `history.png`, `samples/epoch_NNN.png`, `reconstructions/epoch_NNN.png`,
    `checkpoint/` (the last finished epoch, for `resume=True`) and TensorBoard logs. With
    `quality_every` > 0, the Fréchet distance and KID of 5,000 prior samples against the grey
    held-out images go into the history and `quality.json`, as in `train_gan`, so the decoder's
    sample quality can be followed during pre-training.

    `verbose` is passed to `fit` ("auto", 0, 1 progress bar, 2 one line per epoch).

    Returns:
        `RunArtifacts` with the paths, the last epoch's metrics and the quality records.
    """
    if config.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}. Received: lr_schedule={config.lr_schedule!r}")
    if not isinstance(config.epochs, int) or config.epochs < 1:
        raise ValueError(f"epochs must be a positive int. Received: epochs={config.epochs!r}")
    binarize = resolve_binarize(config)
    splits = load_dataset(
        config.dataset,
        batch_size=config.batch_size,
        validation_size=config.validation_size,
        binarize=binarize,
        image_size=config.image_size,
        seed=config.seed,
        data_dir=config.data_dir,
    )
    validation_images = np.concatenate([x for x, _ in splits.validation.as_numpy_iterator()])
    if config.likelihood == "bernoulli" and not np.isin(validation_images, (0.0, 1.0)).all():
        raise ValueError(
            "The Bernoulli likelihood needs binary pixels, but this data has grey levels. Use "
            "--binarize dynamic (or static), or a likelihood for [0, 1] pixels (gaussian, "
            f"continuous_bernoulli). Received: likelihood='bernoulli', binarize={binarize!r}"
        )

    # Before anything is written: a classifier that cannot score these images is an input error.
    classifier = quality_classifier(config.quality_every, config.classifier, splits.image_shape)

    out = config.out
    paths = {
        "checkpoint": os.path.join(out, "checkpoint"),
        "model": os.path.join(out, "vae.keras"),
        "saved_model": os.path.join(out, "saved_model"),
        "config": os.path.join(out, "config.json"),
        "history": os.path.join(out, "history.csv"),
        "history_plot": os.path.join(out, "history.png"),
        "quality": os.path.join(out, "quality.json"),
    }
    logdir = config.logdir or os.path.join(out, "logs")
    steps_per_epoch = math.ceil(splits.num_train / config.batch_size)

    vae, initial_epoch = Checkpoint.resume(paths["checkpoint"], config.epochs) if config.resume else (None, 0)
    if vae is None:
        keras.utils.set_random_seed(config.seed)
        vae = VAE(
            image_shape=splits.image_shape,
            latent_dim=config.latent_dim,
            likelihood=config.likelihood,
            likelihood_scale=config.likelihood_scale,
            posterior=config.posterior,
            num_filters=config.num_filters,
            hidden_dim=config.hidden_dim,
            beta=config.beta,
            kl_warmup_steps=config.kl_warmup_epochs * steps_per_epoch,
            num_importance_samples=config.importance_samples,
            seed=config.seed,
        )
        vae.compile(optimizer=keras.optimizers.Adam(_learning_rate(config, steps_per_epoch)))
    elif tuple(vae.image_shape) != tuple(splits.image_shape):
        raise ValueError(
            f"The checkpoint in {paths['checkpoint']} was trained on images of shape {vae.image_shape}, "
            f"but the dataset has shape {splits.image_shape}. Received: dataset={config.dataset!r}"
        )
    write_json(paths["config"], {**config.to_dict(), "binarize": binarize, "image_shape": splits.image_shape})

    quality = None
    if classifier is not None:
        # The VAE's samples are mean images (Bernoulli probabilities, say): compared with grey digits.
        real = splits.unbinarized_heldout
        quality = SampleQuality.for_run(classifier, real, config.quality_every, config.seed, paths["quality"], initial_epoch)

    callbacks = [
        ElapsedTime(),
        *([quality] if quality else []),
        keras.callbacks.TerminateOnNaN(),
        Checkpoint(paths["checkpoint"]),
        keras.callbacks.CSVLogger(paths["history"], append=initial_epoch > 0),
        SampleGrid(out, images=validation_images[:32], every=config.grid_every, seed=config.seed, logdir=logdir),
        keras.callbacks.TensorBoard(logdir),
    ]
    history = vae.fit(
        splits.train,
        validation_data=splits.validation,
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        shuffle=False,  # tf.data already reshuffles every epoch.
        verbose=verbose,
    )
    final = {name: float(values[-1]) for name, values in history.history.items()}
    if not all(math.isfinite(v) for v in final.values()):
        raise FloatingPointError(
            "Training diverged (a loss became NaN or inf); the model was not exported. The last good "
            f"epoch is in {paths['checkpoint']}. Try a lower --learning-rate. Received: {final}"
        )

    # The final model is for loading and serving; checkpoint/ keeps the optimizer state for --resume.
    with atomic_path(paths["model"]) as tmp:
        inference_copy(vae).save(tmp)
    export_vae(vae, paths["saved_model"])
    plot_history(paths["history"], paths["history_plot"], title=f"VAE on {config.dataset}")
    return RunArtifacts(
        model=paths["model"],
        saved_model=paths["saved_model"],
        config=paths["config"],
        history=paths["history"],
        history_plot=paths["history_plot"],
        samples=os.path.join(out, "samples"),
        reconstructions=os.path.join(out, "reconstructions"),
        logdir=logdir,
        final_metrics=final,
        quality=quality.records if quality else [],
    )


def _learning_rate(config, steps_per_epoch):
    if config.lr_schedule == "constant":
        return config.learning_rate
    # Cosine decay to 5% of the initial rate over the whole run.
    return keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=config.epochs * steps_per_epoch, alpha=0.05
    )
