"""`kerasgen train-vaegan`: the VAE-GAN of Larsen et al. (2016), warm-started from a trained VAE or from scratch."""

import keras
import numpy as np

from kerasgen import specs
from kerasgen.callbacks import DivergenceGuard
from kerasgen.config import TrainVAEGANConfig
from kerasgen.export import export_autoencoder
from kerasgen.models import VAE, VAEGAN
from kerasgen.runs.classifier import train_classifier
from kerasgen.runs.harness import Run
from kerasgen.runs.warm_start import starting_point

# The architecture of a VAE-GAN from scratch, where its flags leave it open: the pipeline's VAE.
SCRATCH_DEFAULTS = {"latent_dim": 8, "num_filters": (32, 64), "hidden_dim": 256, "architecture": "conv", "num_blocks": 1}


def train_vaegan(config=TrainVAEGANConfig(), verbose=None):
    """Trains a VAE-GAN as `config` says; the run harness writes the rest.

    With `--vae`, the encoder and decoder start as that VAE's (`VAEGAN.from_vae`) and the data is
    split as its run split it; without, they are built fresh. The discriminator compares grey
    [0, 1] images (`binarize="none"`) with the decoder's likelihood means. Output folder
    (`config.out`): `vaegan.keras`, `saved_model/` (`decode`, `sample`, `encode`, `reconstruct`),
    `config.json`, `history.csv`, `history.png`, `samples/` and `reconstructions/` grids,
    `checkpoint/`, TensorBoard logs and, with `quality_every`, `quality.json`.

    Raises:
        ValueError: bad settings, or data whose image shape is not the VAE's.
        FloatingPointError: training diverged; nothing is saved and the last good epoch stays in
            `checkpoint/`.

    Returns:
        `RunResult`.
    """
    run = Run(config, specs.named("VAEGAN").file, verbose)
    start = starting_point(config, TrainVAEGANConfig.SCRATCH_FLAGS)
    splits = start.load(config, binarize="none")
    start.check_shape(splits, config)
    run.describe_data(splits)
    run.check_classifier(splits, splits.image_shape)
    validation_images = np.concatenate([x for x, _ in splits.validation.take(1).as_numpy_iterator()])

    keras.utils.set_random_seed(config.seed)
    with run.scope():
        vae = start.vae or VAE(image_shape=splits.image_shape, **_scratch_architecture(config), seed=config.seed)
        model = VAEGAN.from_vae(
            vae,
            spectral_norm=config.spectral_norm,
            init=config.init if start.vae is not None else "vae",
            gamma=config.gamma,
            beta=config.beta,
            ema_decay=config.ema_decay,
            feature_scale=config.feature_scale,
            feature_layer=config.feature_layer,
            r1_weight=config.r1_weight,
            equilibrium_margin=config.equilibrium_margin,
            seed=config.seed,
        )
        model.compile(
            *(keras.optimizers.Adam(rate, beta_1=config.beta_1)
              for rate in (config.e_learning_rate, config.g_learning_rate, config.d_learning_rate)),
            **run.compile_options(),
        )
    # Grey images, not binarized: what D compares with the decoder's means (and what evaluate reads).
    run.open({**start.facts(splits), "binarize": "none", "latent_dim": model.latent_dim})
    run.restore(model)
    quality = run.quality(splits, splits.unbinarized_heldout, start.classifier_config(config), splits.image_shape, train=train_classifier)
    guard = DivergenceGuard()
    history = run.fit(model, splits, callbacks=[guard], grid_images=validation_images[:32], quality=quality)
    final, model_path, saved_model = run.finish(
        model, history, export=export_autoencoder, guard=guard, plot_title=f"VAE-GAN on {start.dataset}"
    )
    return run.result(final, model_path, saved_model, quality)


def _scratch_architecture(config):
    return {name: getattr(config, name) or default for name, default in SCRATCH_DEFAULTS.items()}
