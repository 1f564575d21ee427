"""`kerasgen train-vae`: a VAE on a dataset, with every artifact a run writes."""

import math

import keras
import numpy as np

from kerasgen import specs
from kerasgen.callbacks import AggressivePhase
from kerasgen.config import TrainClassifierConfig, TrainVAEConfig, shared_flags, show_flag
from kerasgen.data import load_dataset
from kerasgen.export import export_vae
from kerasgen.models import VAE, AggressiveVAE
from kerasgen.runs.choose import choose_for_config
from kerasgen.runs.classifier import train_classifier
from kerasgen.runs.harness import Run
from kerasgen.runs.schedules import learning_rate


def resolve_binarize(config):
    """The binarization a config asks for: its own, or dynamic for a Bernoulli likelihood, else none."""
    if config.binarize is not None:
        return config.binarize
    return "dynamic" if config.likelihood == "bernoulli" else "none"


def check_pixels(splits, likelihood, binarize):
    """The validation images, once checked to suit the likelihood (binary pixels for a Bernoulli).

    Raises:
        ValueError: a Bernoulli likelihood on grey images, naming the flags to change.
    """
    validation_images = np.concatenate([x for x, _ in splits.validation.as_numpy_iterator()])
    if likelihood == "bernoulli" and not np.isin(validation_images, (0.0, 1.0)).all():
        raise ValueError(
            "The Bernoulli likelihood needs binary pixels, but this data has grey levels. Use --binarize dynamic "
            "(or static), or a likelihood for [0, 1] pixels (gaussian, continuous_bernoulli). Received: "
            f"{show_flag('likelihood', likelihood)}, {show_flag('binarize', binarize)}"
        )
    return validation_images


def kl_cycle_length(config, steps_per_epoch):
    """The optimizer steps per KL cycle, C = ceil(epochs · steps_per_epoch / kl_cycles); 0 without cycles.

    Like the cosine learning rate, the cycles span the whole run: a resumed run with more
    `--epochs` stretches the cycles still to come.

    Raises:
        ValueError: more cycles than the run has steps for two per cycle.
    """
    if not config.kl_cycles:
        return 0
    total_steps = config.epochs * steps_per_epoch
    cycle_steps = math.ceil(total_steps / config.kl_cycles)
    if cycle_steps < 2:
        raise ValueError(
            f"--kl-cycles asks for cycles of {cycle_steps} step, but a cycle needs at least 2 (the KL weight starts "
            f"each at 0); this run has {total_steps} steps. Received: {show_flag('kl_cycles', config.kl_cycles)}"
        )
    return cycle_steps


# The encoder's fresh batches under --aggressive are the training data's passes from this epoch on:
# epochs a run never reaches, so their order (a function of the seed and the epoch) is not training's.
ENCODER_DATA_FIRST_EPOCH = 1_000_000


def train_vae(config=TrainVAEConfig(), verbose=None):
    """Trains a VAE as `config` says; the run harness writes the rest.

    Output folder (`config.out`): `vae.keras`, `saved_model/` (`decode`, `sample`, `encode`,
    `reconstruct`), `config.json`, `history.csv`, `history.png`, `samples/epoch_NNN.png`,
    `reconstructions/epoch_NNN.png`, `checkpoint/` and TensorBoard logs. With `quality_every`,
    the Fréchet distance and KID of 5,000 prior samples against the grey held-out images go into
    the history and `quality.json`, scored by a classifier of the data's domain (`evaluation.domain`).
    With `latent_images` (500 by default), the latent instruments on that many validation images
    (KL per dimension, active units, I(x; z), the ELBO split) go into the history, `latent.json`
    and TensorBoard before training and after every epoch (`callbacks.LatentDiagnostics`).
    With `aggressive`, an `AggressiveVAE` (He et al. 2019) whose phase `callbacks.AggressivePhase`
    ends once that I(x; z) has had no new best for `aggressive_patience` epochs; the history gets
    `aggressive` and `encoder_steps`.

    Returns:
        `RunResult`.
    """
    run = Run(config, specs.named("VAE").file, verbose)
    config, choice = choose_for_config(config, digit_latent_dim=16)
    if choice is not None:
        print(choice.line())
    # The run records and checks on --resume the config as resolved for its data.
    run.config = config
    binarize = resolve_binarize(config)
    splits = load_dataset(
        config.dataset,
        batch_size=config.batch_size,
        validation_size=config.validation_size,
        binarize=binarize,
        image_size=config.image_size,
        seed=config.seed,
        data_dir=config.data_dir,
        stream=config.stream,
    )
    validation_images = check_pixels(splits, config.likelihood, binarize)
    run.describe_data(splits)
    run.check_classifier(splits, splits.image_shape)

    steps_per_epoch = math.ceil(splits.num_train / config.batch_size)
    kl_cycle_steps = kl_cycle_length(config, steps_per_epoch)
    keras.utils.set_random_seed(config.seed)
    with run.scope():
        aggressive = {"max_encoder_steps": config.aggressive_max_steps} if config.aggressive else {}
        vae = (AggressiveVAE if config.aggressive else VAE)(
            **aggressive,
            image_shape=splits.image_shape,
            latent_dim=config.latent_dim,
            likelihood=config.likelihood,
            likelihood_scale=config.likelihood_scale,
            likelihood_components=config.likelihood_components,
            posterior=config.posterior,
            num_filters=config.num_filters,
            hidden_dim=config.hidden_dim,
            architecture=config.architecture,
            num_blocks=config.num_blocks,
            latent_layout=config.latent_layout,
            decoder=config.decoder,
            pixelcnn_layers=config.pixelcnn_layers,
            pixelcnn_filters=config.pixelcnn_filters,
            pixelcnn_conditioning=config.pixelcnn_conditioning,
            pixelcnn_kernel_size=config.pixelcnn_kernel_size,
            beta=config.beta,
            kl_warmup_steps=config.kl_warmup_epochs * steps_per_epoch,
            kl_cycle_steps=kl_cycle_steps,
            kl_cycle_ratio=config.kl_cycle_ratio,
            free_bits=config.free_bits,
            num_importance_samples=config.importance_samples,
            seed=config.seed,
        )
        options = run.compile_options()
        if config.aggressive:
            # The encoder's optimizer is a copy of this one; the inner loop's iterator rules out XLA.
            options["jit_compile"] = False
        vae.compile(optimizer=keras.optimizers.Adam(learning_rate(config, steps_per_epoch)), **options)

    run.open({"binarize": binarize, "image_shape": splits.image_shape})
    run.restore(vae)
    # The VAE's samples are mean images (Bernoulli probabilities, say): compared with grey images.
    quality = run.quality(splits, splits.unbinarized_heldout, _classifier_config(config), splits.image_shape, train=train_classifier)
    latent = run.latent_diagnostics(validation_images)
    callbacks = []
    if config.aggressive:
        # A resumed run draws the encoder's batches afresh; its phase is the checkpoint's.
        vae.set_encoder_data(splits.train_from(ENCODER_DATA_FIRST_EPOCH + run.initial_epoch))
        callbacks.append(AggressivePhase(config.aggressive_patience))
    history = run.fit(
        vae, splits, grid_images=validation_images[:32], quality=quality, latent=latent, callbacks=callbacks
    )
    final, model, saved_model = run.finish(vae, history, export=export_vae, plot_title=f"VAE on {config.dataset}")
    return run.result(final, model, saved_model, quality, latent)


def _classifier_config(config):
    """A domain classifier for the VAE's data, on the VAE's own split."""
    return TrainClassifierConfig(
        dataset=config.dataset,
        data_dir=config.data_dir,
        image_size=config.image_size,
        validation_size=config.validation_size,
        seed=config.seed,
        **shared_flags(config),
    )
