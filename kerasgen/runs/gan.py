"""`kerasgen train-gan`: a GAN whose generator starts as a trained VAE's decoder."""

import os

import keras

from kerasgen.artifacts import load_run
from kerasgen.callbacks import DivergenceGuard
from kerasgen.config import TrainClassifierConfig, TrainGANConfig, shared_flags, show_flag
from kerasgen.data import load_dataset
from kerasgen.export import export_gan
from kerasgen.models import GAN
from kerasgen.runs.harness import Run


def train_gan(config, verbose=None):
    """Trains a GAN as `config` (a `TrainGANConfig`) says; the run harness writes the rest.

    The generator is the VAE's decoder followed by its likelihood's mean (`GAN.from_vae`), so it
    works on grey [0, 1] images: the data is loaded with `binarize="none"`, split like the VAE
    run's (same validation size, seed and image size, from its `config.json`), so the GAN never
    trains on the images its VAE held out. Output folder (`config.out`): `gan.keras`,
    `saved_model/` (`generate`, `sample`), `config.json`, `history.csv`, `samples/epoch_NNN.png`
    (fixed z; `epoch_000` is the VAE's own grid with `init="decoder"`), `checkpoint/`,
    TensorBoard logs and, with `quality_every`, `quality.json`.

    Raises:
        ValueError: bad settings, or data whose image shape is not the VAE's.
        FloatingPointError: training diverged (NaN/inf, or D won for good); nothing is saved and
            the last good epoch stays in `checkpoint/`.

    Returns:
        `RunResult`.
    """
    run = Run(config, "gan.keras", verbose)
    if not os.path.exists(config.vae):
        raise FileNotFoundError(
            f"No VAE found: expected a train-vae output folder or a .keras file. Received: --vae {config.vae}"
        )
    vae, vae_run, _ = load_run(config.vae, filenames=("vae.keras",), flag="--vae")
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
        stream=config.stream,
    )
    if tuple(splits.image_shape) != tuple(vae.image_shape):
        raise ValueError(
            f"The VAE in {config.vae} makes images of shape {tuple(vae.image_shape)}, but the dataset has "
            f"shape {tuple(splits.image_shape)}. Received: {show_flag('dataset', dataset)}"
        )
    run.describe_data(splits)
    run.check_classifier(splits, vae.image_shape)

    keras.utils.set_random_seed(config.seed)
    with run.scope():
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
            **run.compile_options(),
        )
    run.open({**split, "dataset": dataset, "image_shape": splits.image_shape})
    run.restore(gan)
    classifier_config = TrainClassifierConfig(
        dataset=dataset,
        data_dir=config.data_dir,
        image_size=split["image_size"],
        validation_size=split["validation_size"],
        seed=split["split_seed"],
        **shared_flags(config),
    )
    quality = run.quality(splits, splits.unbinarized_heldout, classifier_config, vae.image_shape)
    guard = DivergenceGuard()
    # Batches are (images, labels); the GAN ignores the labels. Validation reports D on held-out
    # images (val_d_real): a D that tells them from training images has started to memorize.
    history = run.fit(gan, splits, callbacks=[guard], quality=quality)
    final, model, saved_model = run.finish(gan, history, export=export_gan, guard=guard)
    return run.result(final, model, saved_model, quality)
