"""The adversarial autoencoder of Makhzani et al. (2015): a latent discriminator matches the codes to a prior."""

import keras
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from kerasgen import distribute, distributions, validate
from kerasgen.losses import discriminator_loss, non_saturating_generator_loss, weighted_mean
from kerasgen.models.adversarial import (
    SeveralOptimizers,
    apply_gradients,
    compile_optimizers,
    load_vae,
    real_images,
)
from kerasgen.networks import (
    build_decoder,
    build_encoder,
    build_latent_discriminator,
    check_architecture,
    check_image_shape,
    check_latent_layout,
)
from kerasgen.options import AAE_ENCODERS, AAE_PRIORS, VAE_INITS

tfd = tfp.distributions

# Each mixture component's standard deviation in the circle's plane: with the default 10
# components on a circle of radius 4, neighbouring means are 2·4·sin(π/10) = 2.47 apart, about
# 5 standard deviations, so the clusters are distinct yet every code stays within a few units of 0.
MIXTURE_COMPONENT_SCALE = 0.5


@keras.saving.register_keras_serializable(package="kerasgen")
class AAE(distribute.FirstReplicaBuild, SeveralOptimizers, keras.Model):
    """Adversarial autoencoder trained by `fit()`: reconstruction plus a latent GAN that shapes q(z).

    Each step runs the three phases of Makhzani et al. (2015), each with its own optimizer:

    1. reconstruction: the encoder and decoder minimize −log p(x|z), z from q(z|x)
       (reparameterized for the Gaussian encoder), with `optimizer`;
    2. regularization, discriminator: a latent discriminator D learns to tell draws of the prior
       p(z) (label 1) from codes of the batch (label 0), with `d_optimizer`;
    3. regularization, generator: the encoder alone learns to make D call its codes prior draws
       (the non-saturating loss −log σ(D(z))), with `g_optimizer`.

    So the aggregated posterior q(z) = E_x q(z|x) is pushed to the prior, and decoding draws of the
    prior gives images. Metrics, each a mean over images: `reconstruction` (−log p(x|z), nats per
    image), `d_loss`, `g_loss`, `d_real` and `d_fake` (D's mean probability that prior draws and
    codes of the batch are prior draws).

    The networks are the VAE's (`build_encoder`, `build_decoder`), so the methods a `VAE` has work
    here with the same meaning: `prior`, `posterior_distribution`, `likelihood_distribution`,
    `encode`, `decode`, `sample`, `reconstruct`. The attribute `encoder` is the encoder network;
    the encoder type passed as `encoder=` is kept as `encoder_type` (and saved as `encoder`).
    Only the Gaussian encoder defines a likelihood of the data (`defines_likelihood`): its q(z|x)
    is a proposal for importance-weighted log p(x); a deterministic encoder's point mass is not.

    Keras arguments an AAE has no meaning for are refused with a ValueError: `compile(loss=...)`,
    `compile(metrics=...)`, `sample_weight` and `class_weight` (the adversarial losses compare a
    batch of codes with a batch of prior draws, which have no weights), and the callbacks that set
    `model.optimizer.learning_rate` (there are three optimizers: give each its own schedule).

    Args:
        image_shape: tuple `(height, width, channels)`; height and width divisible by
            `2 ** len(num_filters)`. Defaults to `(28, 28, 1)`.
        latent_dim: int, size of z. Defaults to 16.
        likelihood: str, p(x|z): `"bernoulli"`, `"gaussian"`, `"continuous_bernoulli"` or
            `"logistic_mixture"`, as in `VAE`. Defaults to `"bernoulli"`.
        likelihood_scale: `"pixel"`, `"global"`, `"optimal"` or a positive float, the Gaussian's
            scale, as in `VAE`. Defaults to `"pixel"`.
        likelihood_components: int, the logistic mixture's components, as in `VAE`. Defaults to 10.
        encoder: str, `"deterministic"` (z is the encoder's output) or `"gaussian"` (a diagonal
            Gaussian q(z|x), sampled with the reparameterization trick). Defaults to
            `"deterministic"`, Makhzani et al.'s choice for their MNIST results.
        prior: str, `"normal"` (N(0, I)) or `"mixture"` (an equal-weight mixture of
            `prior_components` Gaussians whose means lie evenly on a circle of radius
            `prior_radius` in the plane of the first two latent axes; each component's scale is
            0.5 in that plane and 1 on the other axes, see `distributions.circle_mixture_prior`).
            Defaults to `"normal"`.
        prior_components: int >= 1, the mixture's number of components (one per class of a
            10-class dataset by default). Ignored by the normal prior. Defaults to 10.
        prior_radius: float > 0, the mixture's circle radius. Ignored by the normal prior.
            Defaults to 4.
        num_filters: sequence of ints, filters per downsampling level. Defaults to `(32, 64)`.
        hidden_dim: int, width of the dense layer between the convolutions and z. Defaults to 256.
        architecture: str, the encoder's and decoder's family, `"conv"`, `"resnet"` or `"dcgan"`
            (see `VAE`). Defaults to `"conv"`.
        num_blocks: int >= 1, residual blocks per level of a `"resnet"`. Defaults to 1.
        latent_layout: `"vector"` or `"map"` (z read as a map at the networks' coarsest
            resolution, see `VAE`). Defaults to `"vector"`.
        discriminator_units: sequence of positive ints, the latent discriminator's hidden
            widths. Defaults to `(512, 512)`.
        seed: int or None, seeds the posterior noise and the prior draws of training (and, with
            `seed + 1`, of evaluation). Defaults to None.

    Example:

        aae = AAE(image_shape=(28, 28, 1), latent_dim=8, prior="mixture")
        aae.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
            g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        )
        aae.fit(splits.train, epochs=10)
        images = aae.sample(16, seed=0)
    """

    optimizer_names = ("optimizer", "d_optimizer", "g_optimizer")
    what = "an AAE"

    def __init__(
        self,
        image_shape=(28, 28, 1),
        latent_dim=16,
        likelihood="bernoulli",
        likelihood_scale="pixel",
        likelihood_components=distributions.DEFAULT_MIXTURE_COMPONENTS,
        encoder="deterministic",
        prior="normal",
        prior_components=10,
        prior_radius=4.0,
        num_filters=(32, 64),
        hidden_dim=256,
        discriminator_units=(512, 512),
        seed=None,
        architecture="conv",
        num_blocks=1,
        latent_layout="vector",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_architecture(architecture, num_blocks)
        check_latent_layout(latent_layout)
        validate.positive_int("latent_dim", latent_dim)
        validate.one_of("encoder", encoder, AAE_ENCODERS)
        validate.one_of("prior", prior, AAE_PRIORS)
        validate.positive_int("prior_components", prior_components)
        validate.number("prior_radius", prior_radius, above=0)
        if prior == "mixture" and latent_dim < 2:
            raise ValueError(
                "The mixture prior places its means on a circle in the plane of the first two latent "
                f"axes, so it needs latent_dim >= 2. Received: latent_dim={latent_dim!r}"
            )
        validate.positive_ints("num_filters", num_filters)
        validate.positive_int("hidden_dim", hidden_dim)
        validate.positive_ints("discriminator_units", discriminator_units)
        self.image_shape = check_image_shape(image_shape, len(num_filters))
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        self.likelihood_scale = likelihood_scale
        self.likelihood_components = likelihood_components
        # `encoder` names the network, as in `VAE`; the argument is kept under this name.
        self.encoder_type = encoder
        self.prior_type = prior
        self.prior_components = prior_components
        self.prior_radius = float(prior_radius)
        self.num_filters = tuple(num_filters)
        self.hidden_dim = hidden_dim
        self.discriminator_units = tuple(discriminator_units)
        self.seed = seed
        self.architecture = architecture
        self.num_blocks = num_blocks
        self.latent_layout = latent_layout

        self._likelihood = distributions.get_likelihood(likelihood, likelihood_scale, likelihood_components)
        self.encoder = build_encoder(
            self.image_shape,
            self.num_filters,
            hidden_dim,
            latent_dim if encoder == "deterministic" else 2 * latent_dim,
            architecture=architecture,
            num_blocks=num_blocks,
            latent_layout=latent_layout,
            parameter_parts=1 if encoder == "deterministic" else 2,
        )
        self.decoder = build_decoder(
            latent_dim,
            (*self.image_shape[:2], self._likelihood.network_channels(self.image_shape[2])),
            self.num_filters,
            hidden_dim,
            head=self._likelihood.decoder_head(self.image_shape),
            architecture=architecture,
            num_blocks=num_blocks,
            latent_layout=latent_layout,
        )
        self.discriminator = build_latent_discriminator(latent_dim, self.discriminator_units)
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Validation and `evaluate` draw their own noise, so whether and how often a run validates
        # does not move the training noise.
        self.eval_seed_generator = keras.random.SeedGenerator(None if seed is None else seed + 1)
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("reconstruction", "d_loss", "g_loss", "d_real", "d_fake")
        }
        # Every weight exists now (the networks are functional), so a reloaded model can restore
        # its optimizers' state without a build call.
        self.built = True

    @classmethod
    def from_vae(cls, vae, encoder="deterministic", prior="normal", init="vae", **aae_kwargs):
        """An AAE with a trained VAE's architecture, warm-started from its encoder and decoder.

        The decoder's weights are copied. A Gaussian encoder takes the whole encoder of a VAE with
        a diagonal posterior, so `aae.encode(x)` equals `vae.encode(x)`. A deterministic encoder
        takes every layer but the last and, of the last (`posterior_parameters`), the columns of
        the posterior's mean (the first `latent_dim` outputs, for both posterior families), so
        its code is the VAE's posterior mean and `aae.reconstruct(x)` equals `vae.reconstruct(x)`.

        Args:
            vae: a `kerasgen.VAE`, a train-vae output folder or a `.keras` file holding one.
            encoder: str, `"deterministic"` or `"gaussian"`. Defaults to `"deterministic"`.
            prior: str, `"normal"` or `"mixture"`. Defaults to `"normal"`.
            init: `"vae"` copies the weights; `"scratch"` builds the same architecture with
                freshly initialized weights. Defaults to `"vae"`.
            **aae_kwargs: the other `AAE` arguments (`prior_components`, `prior_radius`,
                `discriminator_units`, `seed`, `name`); the architecture is the VAE's.

        Returns:
            An `AAE`.
        """
        vae = load_vae(vae)
        validate.one_of("init", init, VAE_INITS)
        architecture = (
            "image_shape", "latent_dim", "likelihood", "likelihood_scale", "likelihood_components", "num_filters",
            "hidden_dim", "architecture", "num_blocks", "latent_layout",
        )
        taken = [key for key in architecture if key in aae_kwargs]
        if taken:
            received = ", ".join(f"{key}={aae_kwargs[key]!r}" for key in taken)
            raise ValueError(f"from_vae takes the architecture from the VAE. Received: {received}")
        if init == "vae" and encoder == "gaussian" and vae.posterior != "diagonal":
            raise ValueError(
                "A Gaussian AAE encoder is a diagonal Gaussian, so it can copy only a VAE encoder with "
                "posterior='diagonal'; use encoder='deterministic' to start from the posterior mean. "
                f"Received: a VAE with posterior={vae.posterior!r}"
            )
        aae = cls(
            **{key: getattr(vae, key) for key in architecture}, encoder=encoder, prior=prior, **aae_kwargs
        )
        if init == "scratch":
            return aae
        aae.decoder.set_weights(vae.decoder.get_weights())
        if encoder == "gaussian":
            aae.encoder.set_weights(vae.encoder.get_weights())
            return aae
        # The posterior mean's part of the VAE's encoder: with a latent map, the scale's layers go.
        sources = [layer for layer in vae.encoder.layers if not layer.name.startswith("posterior_scale")]
        for layer, source in zip(aae.encoder.layers, sources, strict=True):
            weights = source.get_weights()
            if layer.name == "posterior_parameters" and weights:  # the vector layout's dense layer
                kernel, bias = weights
                weights = [kernel[:, : vae.latent_dim], bias[: vae.latent_dim]]
            layer.set_weights(weights)
        return aae

    @property
    def defines_likelihood(self):
        """True when q(z|x) is a density (the Gaussian encoder), so log p(x) can be importance-sampled."""
        return self.encoder_type == "gaussian"

    # --- The distributions -------------------------------------------------------------------

    def prior(self):
        """p(z): N(0, I), or the mixture of Gaussians on a circle (see `AAE`)."""
        return _PRIORS[self.prior_type](self)

    def posterior_distribution(self, x, training=False):
        """q(z|x) with batch shape `[B]`: a diagonal Gaussian, or a point mass at the encoder's code."""
        params = ops.cast(self.encoder(x, training=training), "float32")
        if self.encoder_type == "gaussian":
            return distributions.diagonal_gaussian(params)
        return tfd.Independent(tfd.Deterministic(params), reinterpreted_batch_ndims=1)

    def likelihood_distribution(self, z, training=False):
        """p(x|z) for a batch of latents, as a `tfd.Distribution` over whole images."""
        return self._likelihood.distribution(ops.cast(self.decoder(z, training=training), "float32"))

    # --- The user-facing operations ----------------------------------------------------------

    def encode(self, x):
        """Posterior parameters `(loc, scale)`, both `[B, D]`; the scale is 0 for a deterministic encoder."""
        posterior = self.posterior_distribution(x)
        return posterior.mean(), distributions.posterior_scale(posterior)

    def decode(self, z):
        """The mean image of p(x|z)."""
        return self._likelihood.mean(ops.cast(self.decoder(z), "float32"))

    def sample(self, n, seed=None):
        """`n` mean images decoded from z ~ p(z); `seed` is an int, a `SeedGenerator` or None."""
        return self.decode(self.prior().sample(n, seed=distribute.stateless_seed(seed)))

    def reconstruct(self, x):
        """The mean image of p(x|z) at the posterior mean of z."""
        return self.decode(self.posterior_distribution(x).mean())

    def call(self, x, training=False):
        return self.reconstruct(x)

    # --- Training ----------------------------------------------------------------------------

    def compile(self, optimizer="adam", d_optimizer="adam", g_optimizer="adam", auto_scale_loss=True, **kwargs):
        """Configures training with one optimizer per phase.

        Args:
            optimizer: optimizer or identifier for the reconstruction phase (encoder and
                decoder). Defaults to `"adam"`.
            d_optimizer: optimizer or identifier for the latent discriminator. Defaults to `"adam"`.
            g_optimizer: optimizer or identifier for the encoder's adversarial phase. Defaults to
                `"adam"`. The three must be different objects.
            auto_scale_loss: bool; under the `"mixed_float16"` policy each optimizer is wrapped
                in its own `LossScaleOptimizer`, so each phase scales its loss separately.
                Defaults to True.
            **kwargs: passed to `keras.Model.compile` (`run_eagerly`, `jit_compile`, ...).
                `loss`, `loss_weights`, `metrics` and `weighted_metrics` are refused: the losses
                are the AAE's own and its metrics are fixed.
        """
        optimizers = compile_optimizers(
            self, {"optimizer": optimizer, "d_optimizer": d_optimizer, "g_optimizer": g_optimizer}, auto_scale_loss,
            kwargs, "reconstruction, d_loss, g_loss, d_real, d_fake",
        )
        # No `optimizer` through Keras: it would build slots for every weight, the discriminator's too.
        super().compile(optimizer=None, auto_scale_loss=False, **kwargs)
        self.optimizer, self.d_optimizer, self.g_optimizer = optimizers
        # Built now on their own variables, so that a reloaded model has the variables its saved
        # state fills.
        self.optimizer.build(self._autoencoder_variables())
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.encoder.trainable_variables)

    def train_step(self, data):
        x = real_images(data, "an AAE")
        batch_size = ops.shape(x)[0]
        # This replica's share of the global batch's mean; Keras sums the replicas' gradients.
        share = distribute.replica_share(ops.cast(batch_size, "float32"))

        # 1. Reconstruction: encoder and decoder.
        noise = self._posterior_noise(batch_size, self.seed_generator)
        variables = self._autoencoder_variables()
        with tf.GradientTape() as tape:
            z = self._codes(self.posterior_distribution(x, training=True), noise)
            reconstruction = self._reconstruction_loss(x, z, training=True)
            scaled_loss = self.optimizer.scale_loss(reconstruction * share)
        apply_gradients(self.optimizer, tape.gradient(scaled_loss, variables), variables)

        # 2. Regularization, discriminator: prior draws against the codes of the updated encoder.
        real = self._prior_draws(batch_size, self.seed_generator)
        noise = self._posterior_noise(batch_size, self.seed_generator)
        fake = ops.stop_gradient(self._codes(self.posterior_distribution(x, training=True), noise))
        variables = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            real_logits = self._logits(real, training=True)
            fake_logits = self._logits(fake, training=True)
            d_loss = discriminator_loss(real_logits, fake_logits)
            scaled_loss = self.d_optimizer.scale_loss(d_loss * share)
        apply_gradients(self.d_optimizer, tape.gradient(scaled_loss, variables), variables)

        # 3. Regularization, generator: the encoder alone, on the same codes (same noise), against
        # the updated discriminator.
        variables = self.encoder.trainable_variables
        with tf.GradientTape() as tape:
            z = self._codes(self.posterior_distribution(x, training=True), noise)
            g_loss = non_saturating_generator_loss(self._logits(z, training=True))
            scaled_loss = self.g_optimizer.scale_loss(g_loss * share)
        apply_gradients(self.g_optimizer, tape.gradient(scaled_loss, variables), variables)
        return self._update_metrics(reconstruction, d_loss, g_loss, real_logits, fake_logits)

    def test_step(self, data):
        x = real_images(data, "an AAE")
        batch_size = ops.shape(x)[0]
        noise = self._posterior_noise(batch_size, self.eval_seed_generator)
        z = self._codes(self.posterior_distribution(x), noise)
        reconstruction = self._reconstruction_loss(x, z)
        real_logits = self._logits(self._prior_draws(batch_size, self.eval_seed_generator), training=False)
        fake_logits = self._logits(z, training=False)
        d_loss = discriminator_loss(real_logits, fake_logits)
        g_loss = non_saturating_generator_loss(fake_logits)
        return self._update_metrics(reconstruction, d_loss, g_loss, real_logits, fake_logits)

    def _autoencoder_variables(self):
        return self.encoder.trainable_variables + self.decoder.trainable_variables

    def _reconstruction_loss(self, x, z, training=False):
        """−log p(x|z), averaged over the batch."""
        return weighted_mean(-self.likelihood_distribution(z, training=training).log_prob(x))

    def _logits(self, z, training):
        return ops.cast(ops.reshape(self.discriminator(z, training=training), (-1,)), "float32")

    def _posterior_noise(self, batch_size, seed_generator):
        """ε ~ N(0, I) `[B, D]` for the Gaussian encoder's codes (None for a deterministic one).

        Each replica takes its own rows of one draw for the global batch, so replicas never share
        noise and N devices train exactly as one does.
        """
        if self.encoder_type == "deterministic":
            return None
        seed = distribute.next_seed(seed_generator)
        # Drawn as TFP draws under `posterior.sample(seed=seed)`, latent axis first, so one device
        # gets exactly the samples `posterior.sample` would give.
        noise = distribute.global_batch_rows(
            lambda n: tf.random.stateless_normal((self.latent_dim, n), seed=seed), batch_size, axis=-1
        )
        return tf.linalg.matrix_transpose(noise)

    def _codes(self, posterior, noise):
        """z from q(z|x): loc + scale · ε for the Gaussian encoder (reparameterized), else the code."""
        if noise is None:
            return posterior.mean()
        return posterior.bijector.forward(noise)

    def _prior_draws(self, batch_size, seed_generator):
        """z ~ p(z) for this replica's images: its own rows of one stateless draw for the global batch."""
        seed = distribute.next_seed(seed_generator)
        prior = self.prior()
        return distribute.global_batch_rows(lambda n: prior.sample(n, seed=seed), batch_size)

    def _update_metrics(self, reconstruction, d_loss, g_loss, real_logits, fake_logits):
        # Each value is a mean over the batch: weighting it by the batch size makes the epoch's
        # result a mean over images, ragged last batch included.
        batch_size = ops.cast(ops.shape(real_logits)[0], "float32")
        values = {
            "reconstruction": reconstruction,
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_real": weighted_mean(ops.sigmoid(real_logits)),
            "d_fake": weighted_mean(ops.sigmoid(fake_logits)),
        }
        for name, value in values.items():
            self.trackers[name].update_state(value, sample_weight=batch_size)
        return distribute.step_logs({m.name: m.result() for m in self.metrics})

    @property
    def metrics(self):
        return list(self.trackers.values())

    # --- Serialization -----------------------------------------------------------------------

    def get_config(self):
        return {
            **super().get_config(),
            "image_shape": self.image_shape,
            "latent_dim": self.latent_dim,
            "likelihood": self.likelihood,
            "likelihood_scale": self.likelihood_scale,
            "likelihood_components": self.likelihood_components,
            "encoder": self.encoder_type,
            "prior": self.prior_type,
            "prior_components": self.prior_components,
            "prior_radius": self.prior_radius,
            "num_filters": self.num_filters,
            "hidden_dim": self.hidden_dim,
            "discriminator_units": self.discriminator_units,
            "seed": self.seed,
            "architecture": self.architecture,
            "num_blocks": self.num_blocks,
            "latent_layout": self.latent_layout,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("image_shape", "num_filters", "discriminator_units"):
            config[key] = tuple(config[key])
        return cls(**config)


# p(z) for each name of `options.AAE_PRIORS`, from the model.
_PRIORS = {
    "normal": lambda aae: distributions.standard_normal_prior(aae.latent_dim),
    "mixture": lambda aae: distributions.circle_mixture_prior(
        aae.latent_dim, aae.prior_components, aae.prior_radius, MIXTURE_COMPONENT_SCALE
    ),
}
