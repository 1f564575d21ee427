"""A GAN with the non-saturating loss and the R1 penalty, warm-started from a trained VAE's decoder."""

import keras
import tensorflow as tf
from keras import ops

from kerasgen import distribute, distributions, validate
from kerasgen.losses import discriminator_loss, non_saturating_generator_loss, weighted_mean
from kerasgen.models.adversarial import (
    SeveralOptimizers,
    apply_gradients,
    clone_in_policy,
    compile_optimizers,
    default_discriminator,
    load_vae,
    outputs_and_r1,
    r1_metric,
    real_images,
    update_weight_average,
    weight_average,
)
from kerasgen.options import GENERATOR_INITS


@keras.saving.register_keras_serializable(package="kerasgen")
class DistributionMean(keras.layers.Layer):
    """The mean image of a likelihood p(x|z) from the decoder's parameters: `params -> images`.

    Appended to a VAE decoder it turns the decoder into a generator in pixel space, computing
    exactly what `VAE.decode` computes.

    Args:
        likelihood: str, a name in `distributions.LIKELIHOODS`.
        likelihood_scale: the Gaussian's scale setting (see `VAE`); ignored by other likelihoods.
        likelihood_components: the logistic mixture's components (see `VAE`); ignored by other likelihoods.
    """

    def __init__(
        self, likelihood="bernoulli", likelihood_scale="pixel",
        likelihood_components=distributions.DEFAULT_MIXTURE_COMPONENTS, **kwargs,
    ):
        super().__init__(**kwargs)
        self.likelihood = likelihood
        self.likelihood_scale = likelihood_scale
        self.likelihood_components = likelihood_components
        self._likelihood = distributions.get_likelihood(likelihood, likelihood_scale, likelihood_components)

    def call(self, params):
        return self._likelihood.mean(ops.cast(params, "float32"))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self._likelihood.image_channels(input_shape[-1]))

    def get_config(self):
        return {
            **super().get_config(),
            "likelihood": self.likelihood,
            "likelihood_scale": self.likelihood_scale,
            "likelihood_components": self.likelihood_components,
        }


@keras.saving.register_keras_serializable(package="kerasgen")
class GAN(distribute.FirstReplicaBuild, SeveralOptimizers, keras.Model):
    """A generative adversarial network trained by `fit()` on batches of real images.

    Each step trains the discriminator `d_steps` times on the logistic loss (real → 1, generated
    → 0) plus the R1 penalty (γ/2)·E||∇_x D(x)||² on real images (Mescheder et al. 2018), then the
    generator once on the non-saturating loss −log σ(D(G(z))), then moves an exponential moving
    average of the generator's weights, which `generate` and `sample` use. Metrics: `d_loss` (the
    cross-entropy without the penalty), `g_loss`, `r1`, `d_real` and `d_fake` (D's mean
    probability that real and generated images are real), each a mean over images.

    `evaluate(x)` and `fit(..., validation_data=...)` report the same metrics on held-out real
    images against a fresh batch from the (non-averaged) generator, without updating anything, so
    a `val_d_real` far above `d_real` says D memorizes the training images. Keras arguments a GAN
    has no meaning for are refused with a ValueError, never ignored: `compile(loss=...)`,
    `compile(metrics=...)`, `sample_weight` (and `class_weight`), and the callbacks that set
    `model.optimizer.learning_rate` (`LearningRateScheduler`, `ReduceLROnPlateau`): there are two
    optimizers, so give each its own `keras.optimizers.schedules.LearningRateSchedule`.

    Args:
        generator: `keras.Model` from z `[B, latent_dim]` to images `[B, H, W, C]` in pixel space.
        discriminator: `keras.Model` from images to one logit per image, `[B]` or `[B, 1]`.
        latent_dim: int, the size of z ~ N(0, I).
        r1_weight: float >= 0, γ; 0 disables the penalty. Defaults to 10.
        d_steps: int >= 1, discriminator updates per generator update; each draws fresh z and
            reuses the batch of real images. Defaults to 1.
        label_smoothing: float in [0, 1), one-sided smoothing of the real labels. Defaults to 0.
        ema_decay: float in [0, 1), the decay of the generator's weight average; 0 disables it
            and `generate` uses the generator itself. Defaults to 0.99 (an average over about 100 steps).
        seed: int or None, seeds the latent noise of training. Defaults to None.

    Example:

        gan = GAN.from_vae("saved_models/vae-mnist-5k")
        gan.compile(
            d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
            g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        )
        gan.fit(splits.train, epochs=10)
        images = gan.sample(16)
    """

    optimizer_names = ("d_optimizer", "g_optimizer")
    what = "a GAN"

    def __init__(
        self,
        generator,
        discriminator,
        latent_dim,
        r1_weight=10.0,
        d_steps=1,
        label_smoothing=0.0,
        ema_decay=0.99,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for argument, value in (("generator", generator), ("discriminator", discriminator)):
            if not isinstance(value, keras.Model):
                raise ValueError(f"{argument} must be a keras.Model. Received: {argument}={value!r}")
        validate.positive_int("latent_dim", latent_dim)
        if generator.input_shape[-1] != latent_dim:
            raise ValueError(
                f"The generator takes z of size {generator.input_shape[-1]}, not latent_dim. "
                f"Received: latent_dim={latent_dim!r}"
            )
        if tuple(generator.output_shape[1:]) != tuple(discriminator.input_shape[1:]):
            raise ValueError(
                "The discriminator must take the generator's images. Received: generator output shape "
                f"{generator.output_shape[1:]}, discriminator input shape {discriminator.input_shape[1:]}"
            )
        validate.number("r1_weight", r1_weight, at_least=0)
        validate.positive_int("d_steps", d_steps)
        validate.number("label_smoothing", label_smoothing, at_least=0, below=1)
        validate.number("ema_decay", ema_decay, at_least=0, below=1)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.r1_weight = float(r1_weight)
        self.d_steps = d_steps
        self.label_smoothing = float(label_smoothing)
        self.ema_decay = float(ema_decay)
        self.seed = seed

        self.ema_generator = None
        if self.ema_decay:
            # Same architecture, same starting weights; only the moving average changes it.
            self.ema_generator = weight_average(generator)
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Validation and `evaluate` draw their own noise, so whether and how often a run validates
        # does not move the training noise (it did: a run with validation trained another GAN).
        self.eval_seed_generator = keras.random.SeedGenerator(None if seed is None else seed + 1)
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("d_loss", "g_loss", "r1", "d_real", "d_fake")
        }
        # Every weight exists now (the networks are functional), so a reloaded model can restore
        # its optimizers' state without a build call.
        self.built = True

    @classmethod
    def from_vae(cls, vae_or_path, discriminator=None, init="decoder", spectral_norm=False, **gan_kwargs):
        """A GAN whose generator is a VAE's decoder followed by its likelihood's mean.

        Before any GAN step, `gan.generator(z)` equals `vae.decode(z)`; z ~ N(0, I) is the VAE's prior.

        Args:
            vae_or_path: a `kerasgen.VAE`, a train-vae output folder (holding `vae.keras`) or a
                `.keras` file holding a VAE.
            discriminator: `keras.Model` or None, built for the VAE when None: the digits'
                `build_discriminator` for a `"conv"` VAE, else one of the VAE's architecture and
                widths (`adversarial.default_discriminator`). Defaults to None.
            init: `"decoder"` copies the decoder's weights; `"scratch"` builds the same
                architecture with freshly initialized weights. Defaults to `"decoder"`.
            spectral_norm: bool, spectral normalization in the discriminator built when
                `discriminator` is None (`build_discriminator`). Defaults to False.
            **gan_kwargs: the other `GAN` arguments (`r1_weight`, `d_steps`, ...).

        Returns:
            A `GAN`.
        """
        validate.one_of("init", init, GENERATOR_INITS)
        vae = load_vae(vae_or_path)
        decoder = clone_in_policy(vae.decoder)
        if init == "decoder":
            decoder.set_weights(vae.decoder.get_weights())
        z = keras.Input(shape=(vae.latent_dim,), name="z")
        images = DistributionMean(
            vae.likelihood, vae.likelihood_scale, vae.likelihood_components, name="likelihood_mean", dtype="float32"
        )(decoder(z))
        generator = keras.Model(z, images, name="generator")
        discriminator = default_discriminator(vae, discriminator, spectral_norm)
        return cls(generator, discriminator, vae.latent_dim, **gan_kwargs)

    # --- The user-facing operations ----------------------------------------------------------

    @property
    def image_shape(self):
        """The generated images' `(height, width, channels)`."""
        return tuple(self.generator.output_shape[1:])

    def generate(self, z):
        """Images for latents `z`, from the weight-averaged generator when `ema_decay` > 0."""
        generator = self.ema_generator if self.ema_generator is not None else self.generator
        return ops.cast(generator(z, training=False), "float32")

    def sample(self, n, seed=None):
        """`n` images from z ~ N(0, I); `seed` is an int, a `SeedGenerator` or None."""
        return self.generate(keras.random.normal((n, self.latent_dim), seed=seed))

    def call(self, z, training=False):
        return self.generate(z)

    # --- Training ----------------------------------------------------------------------------

    def compile(self, d_optimizer="adam", g_optimizer="adam", auto_scale_loss=True, **kwargs):
        """Configures training with one optimizer per network.

        Args:
            d_optimizer: optimizer or identifier for the discriminator. Defaults to `"adam"`.
            g_optimizer: optimizer or identifier for the generator; a different object from
                `d_optimizer`. Defaults to `"adam"`.
            auto_scale_loss: bool; under the `"mixed_float16"` policy each optimizer is wrapped
                in its own `LossScaleOptimizer`, so D and G scale their losses separately.
                Defaults to True.
            **kwargs: passed to `keras.Model.compile` (`run_eagerly`, `jit_compile`, ...).
                `optimizer`, `loss`, `loss_weights`, `metrics` and `weighted_metrics` are refused:
                the losses are the GAN's own and its metrics are fixed.
        """
        d_optimizer, g_optimizer = compile_optimizers(
            self, {"d_optimizer": d_optimizer, "g_optimizer": g_optimizer}, auto_scale_loss, kwargs,
            "d_loss, g_loss, r1, d_real, d_fake",
        )
        # No `optimizer` of its own: Keras would build slots for every weight that it never updates.
        super().compile(optimizer=None, auto_scale_loss=False, **kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        # Built now, so that a reloaded model has the variables its saved state fills.
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    def _logits(self, images, training):
        return ops.cast(ops.reshape(self.discriminator(images, training=training), (-1,)), "float32")

    def _real_logits_and_r1(self, real, training):
        """D's logits on real images, and the R1 penalty (0 when `r1_weight` is 0)."""
        return outputs_and_r1(lambda x: (self._logits(x, training=training),), real, self)

    def train_step(self, data):
        real = real_images(data, "a GAN")
        batch_size = ops.shape(real)[0]
        # This replica's share of the global batch's mean; Keras sums the replicas' gradients.
        share = distribute.replica_share(ops.cast(batch_size, "float32"))
        d_variables = self.discriminator.trainable_variables
        for _ in range(self.d_steps):
            fake = self.generator(self._latents(batch_size, self.seed_generator), training=True)
            with tf.GradientTape() as tape:
                real_logits, r1 = self._real_logits_and_r1(real, training=True)
                fake_logits = self._logits(fake, training=True)
                d_loss = discriminator_loss(real_logits, fake_logits, self.label_smoothing)
                scaled_loss = self.d_optimizer.scale_loss((d_loss + 0.5 * self.r1_weight * r1) * share)
            gradients = tape.gradient(scaled_loss, d_variables)
            self.d_optimizer.apply(gradients, d_variables)

        z = self._latents(batch_size, self.seed_generator)
        with tf.GradientTape() as tape:
            g_loss = non_saturating_generator_loss(self._logits(self.generator(z, training=True), training=True))
            scaled_loss = self.g_optimizer.scale_loss(g_loss * share)
        g_variables = self.generator.trainable_variables
        gradients = tape.gradient(scaled_loss, g_variables)
        apply_gradients(self.g_optimizer, gradients, g_variables)
        self._update_ema()
        return self._update_metrics(d_loss, g_loss, r1, real_logits, fake_logits)

    def test_step(self, data):
        real = real_images(data, "a GAN")
        z = self._latents(ops.shape(real)[0], self.eval_seed_generator)
        # The generator being trained, not its average: the numbers compare with the training ones.
        fake_logits = self._logits(self.generator(z, training=False), training=False)
        real_logits, r1 = self._real_logits_and_r1(real, training=False)
        d_loss = discriminator_loss(real_logits, fake_logits, self.label_smoothing)
        g_loss = non_saturating_generator_loss(fake_logits)
        return self._update_metrics(d_loss, g_loss, r1, real_logits, fake_logits)

    def _latents(self, batch_size, seed_generator):
        """z ~ N(0, I) for this replica's images: its own rows of one draw for the global batch."""
        seed = distribute.next_seed(seed_generator)
        return distribute.global_batch_rows(
            lambda n: tf.random.stateless_normal((n, self.latent_dim), seed=seed), batch_size
        )

    def _update_metrics(self, d_loss, g_loss, r1, real_logits, fake_logits):
        # Each value is a mean over the batch: weighting it by the batch size makes the epoch's
        # result a mean over images, ragged last batch included.
        batch_size = ops.cast(ops.shape(real_logits)[0], "float32")
        values = {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "r1": r1,
            "d_real": weighted_mean(ops.sigmoid(real_logits)),
            "d_fake": weighted_mean(ops.sigmoid(fake_logits)),
        }
        for name, value in values.items():
            weight = batch_size
            if name == "r1":
                value, weight = r1_metric(value, weight, self.discriminator)
            self.trackers[name].update_state(value, sample_weight=weight)
        return distribute.step_logs({m.name: m.result() for m in self.metrics})

    def _update_ema(self):
        """v_ema ← decay · v_ema + (1 − decay) · v for the generator's weights."""
        if self.ema_generator is not None:
            update_weight_average(self.ema_generator, self.generator, self.ema_decay)

    @property
    def metrics(self):
        return list(self.trackers.values())

    # --- Serialization -----------------------------------------------------------------------

    def get_config(self):
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim,
            "r1_weight": self.r1_weight,
            "d_steps": self.d_steps,
            "label_smoothing": self.label_smoothing,
            "ema_decay": self.ema_decay,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        return cls(**config)
