"""`kerasgen train-aae`: the adversarial autoencoder of Makhzani et al. (2015), from a trained VAE or from scratch."""

import keras

from kerasgen import specs
from kerasgen.callbacks import DivergenceGuard
from kerasgen.config import TrainAAEConfig
from kerasgen.export import export_autoencoder
from kerasgen.models import AAE, VAE
from kerasgen.runs.classifier import train_classifier
from kerasgen.runs.harness import Run
from kerasgen.runs.vae import check_pixels
from kerasgen.runs.warm_start import starting_point

# The architecture of an AAE from scratch, where its flags leave it open: the pipeline's VAE.
SCRATCH_DEFAULTS = {
    "latent_dim": 8, "num_filters": (32, 64), "hidden_dim": 256, "likelihood": "bernoulli", "likelihood_scale": "pixel",
    "likelihood_components": 10, "architecture": "conv", "num_blocks": 1, "latent_layout": "vector",
}


def train_aae(config=TrainAAEConfig(), verbose=None):
    """Trains an adversarial autoencoder as `config` says; the run harness writes the rest.

    With `--vae`, the encoder and decoder start as that VAE's (`AAE.from_vae`) and the data is
    split and binarized as its run did; without, they are built fresh (binarized dynamically for
    the Bernoulli likelihood, as train-vae does). Output folder (`config.out`): `aae.keras`,
    `saved_model/` (`decode`, `sample`, `encode`, `reconstruct`), `config.json`, `history.csv`,
    `history.png`, `samples/` and `reconstructions/` grids, `checkpoint/`, TensorBoard logs and,
    with `quality_every`, `quality.json`.

    Raises:
        ValueError: bad settings, or data whose image shape is not the VAE's.
        FloatingPointError: training diverged; nothing is saved and the last good epoch stays in
            `checkpoint/`.

    Returns:
        `RunResult`.
    """
    run = Run(config, specs.named("AAE").file, verbose)
    start = starting_point(config, TrainAAEConfig.SCRATCH_FLAGS)
    architecture = _architecture(config, start.vae)
    binarize = _binarize(config, start)
    splits = start.load(config, binarize=binarize)
    start.check_shape(splits, config)
    validation_images = check_pixels(splits, architecture["likelihood"], binarize)
    run.describe_data(splits)
    run.check_classifier(splits, splits.image_shape)

    keras.utils.set_random_seed(config.seed)
    with run.scope():
        vae = start.vae or VAE(image_shape=splits.image_shape, **architecture, seed=config.seed)
        model = AAE.from_vae(
            vae,
            encoder=config.encoder,
            prior=config.prior,
            init=config.init if start.vae is not None else "vae",
            prior_components=config.prior_components,
            prior_radius=config.prior_radius,
            discriminator_units=config.discriminator_units,
            seed=config.seed,
        )
        model.compile(
            *(keras.optimizers.Adam(rate, beta_1=config.beta_1)
              for rate in (config.learning_rate, config.d_learning_rate, config.g_learning_rate)),
            **run.compile_options(),
        )
    run.open({**start.facts(splits), "binarize": binarize, **architecture})
    run.restore(model)
    # Samples are mean images (Bernoulli probabilities): compared with the grey held-out images.
    quality = run.quality(splits, splits.unbinarized_heldout, start.classifier_config(config), splits.image_shape, train=train_classifier)
    guard = DivergenceGuard()
    history = run.fit(model, splits, callbacks=[guard], grid_images=validation_images[:32], quality=quality)
    final, model_path, saved_model = run.finish(
        model, history, export=export_autoencoder, guard=guard, plot_title=f"Adversarial autoencoder on {start.dataset}"
    )
    return run.result(final, model_path, saved_model, quality)


def _architecture(config, vae):
    """The encoder's and decoder's architecture: the VAE's, or the scratch flags over their defaults."""
    if vae is not None:
        return {name: getattr(vae, name) for name in SCRATCH_DEFAULTS}
    return {name: getattr(config, name) or default for name, default in SCRATCH_DEFAULTS.items()}


def _binarize(config, start):
    """The VAE run's binarization, or a from-scratch run's: its flag, else dynamic for a Bernoulli likelihood."""
    if start.vae is not None:
        return start.vae_run.get("binarize") or ("dynamic" if start.vae.likelihood == "bernoulli" else "none")
    if config.binarize is not None:
        return config.binarize
    return "dynamic" if (config.likelihood or "bernoulli") == "bernoulli" else "none"
