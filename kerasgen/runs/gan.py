"""`kerasgen train-gan`: a GAN whose generator starts as a trained VAE's decoder."""

import keras

from kerasgen import specs
from kerasgen.callbacks import DivergenceGuard
from kerasgen.export import export_gan
from kerasgen.models import GAN
from kerasgen.runs.classifier import train_classifier
from kerasgen.runs.harness import Run
from kerasgen.runs.warm_start import starting_point


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
    run = Run(config, specs.named("GAN").file, verbose)
    start = starting_point(config)
    vae = start.vae
    splits = start.load(config, binarize="none")
    start.check_shape(splits, config)
    run.describe_data(splits)
    run.check_classifier(splits, vae.image_shape)

    keras.utils.set_random_seed(config.seed)
    with run.scope():
        gan = GAN.from_vae(
            vae,
            init=config.init,
            spectral_norm=config.spectral_norm,
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
    run.open(start.facts(splits))
    run.restore(gan)
    quality = run.quality(splits, splits.unbinarized_heldout, start.classifier_config(config), vae.image_shape, train=train_classifier)
    guard = DivergenceGuard()
    # Batches are (images, labels); the GAN ignores the labels. Validation reports D on held-out
    # images (val_d_real): a D that tells them from training images has started to memorize.
    history = run.fit(gan, splits, callbacks=[guard], quality=quality)
    final, model, saved_model = run.finish(gan, history, export=export_gan, guard=guard)
    return run.result(final, model, saved_model, quality)
