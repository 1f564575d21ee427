"""The convolutional VAE whose q(z|x) and p(x|z) are TensorFlow Probability distributions."""

import keras
import tensorflow as tf
from keras import ops

from kerasgen import distribute, distributions, validate
from kerasgen.losses import negative_elbo, negative_iwae_bound
from kerasgen.networks import (
    build_decoder, build_encoder, check_architecture, check_image_shape, check_latent_layout, map_channels,
)
from kerasgen.options import DECODERS, PIXELCNN_CONDITIONINGS
from kerasgen.pixelcnn import AutoregressiveBernoulli, build_pixelcnn


@keras.saving.register_keras_serializable(package="kerasgen")
class VAE(distribute.FirstReplicaBuild, keras.Model):
    """Convolutional variational autoencoder trained by `fit()` on the negative ELBO.

    The encoder maps an image to the parameters of q(z|x), the decoder maps z to the parameters
    of p(x|z); both distributions are `tfd` objects, so one `log_prob` serves training and
    evaluation. Metrics, all in nats per image: `loss` (the objective minimized: β-weighted, with
    `free_bits` floored), `elbo`, `reconstruction` (−E_q[log p(x|z)]) and `kl`, KL(q(z|x) ‖ p(z))
    unweighted and unfloored: in closed form with one sample of z, but with
    `num_importance_samples` K > 1 a Monte Carlo estimate, the mean of log q(z_k|x) − log p(z_k)
    over the K samples.

    Keras's training arguments, as an autoencoder user would expect them:

    - `compile(loss=...)` is refused: the loss is the model's negative ELBO (or IWAE bound).
    - `compile(metrics=..., weighted_metrics=...)` are honoured with the input images as targets
      and the model's output, `reconstruct(x)`, as predictions (`metrics=["mae"]` reports the
      mean absolute reconstruction error). Labels in the data are ignored, as the loss ignores them.
    - `sample_weight` (a third element of the data, or `fit(..., sample_weight=w)`), one weight
      per image: every loss term, the gradient and the metrics become weighted means over images
      (Σ w·ℓ / Σ w), in `fit` and in `evaluate`. Per-pixel weights are refused.

    Args:
        image_shape: tuple `(height, width, channels)`; height and width divisible by
            `2 ** len(num_filters)`. Defaults to `(28, 28, 1)`.
        latent_dim: int, size of z. Defaults to 16.
        likelihood: str, p(x|z): `"bernoulli"` (binarized images), `"gaussian"` or
            `"continuous_bernoulli"` (densities on [0, 1] pixels), or `"logistic_mixture"` (the
            discretized logistic mixture of PixelCNN++ over 8-bit pixels, channels coupled).
            Defaults to `"bernoulli"`.
        likelihood_scale: `"pixel"`, `"global"`, `"optimal"` or a positive float: the Gaussian's
            scale, learned per pixel, learned once, each image's maximum-likelihood σ (σ-VAE), or
            fixed at exactly that σ. Ignored by other likelihoods. Defaults to `"pixel"`.
        likelihood_components: int >= 1, the logistic mixture's components K. Ignored by other
            likelihoods. Defaults to 10.
        posterior: str, `"diagonal"` or `"full"` (full-covariance) Gaussian q(z|x).
            Defaults to `"diagonal"`.
        num_filters: sequence of ints, filters per downsampling level. Defaults to `(32, 64)`.
        hidden_dim: int, width of the dense layer between the convolutions and z. Defaults to 256.
        architecture: str, the encoder's and decoder's family (`kerasgen.networks`): `"conv"`
            (the digits' networks), `"resnet"` (residual blocks, nearest-neighbour upsampling)
            or `"dcgan"`. `kerasgen.networks.network_preset(image_shape)` suggests one per image
            size. Defaults to `"conv"`.
        num_blocks: int >= 1, residual blocks per level of a `"resnet"`; ignored by the others.
            Defaults to 1.
        latent_layout: `"vector"` or `"map"`: z read as a map of `latent_dim / (h * w)` channels
            at the networks' coarsest resolution h x w (`kerasgen.networks`); needs the diagonal
            posterior, and `hidden_dim` is not used. Defaults to `"vector"`.
        beta: float, the weight on the KL term (β-VAE). Defaults to 1.
        kl_warmup_steps: int, the KL weight grows linearly from 0 to `beta` over this many
            optimizer steps (0 disables warm-up). Defaults to 0.
        kl_cycle_steps: int, C: cyclical KL annealing (Fu et al. 2019), exclusive with
            `kl_warmup_steps`. At optimizer step t (from 0) the KL weight is
            `beta * min(1, (t mod C) / (R * C))`: 0 at the start of every cycle, rising linearly
            to `beta` over the cycle's first R·C steps and held there for the rest. 0 disables
            it; otherwise at least 2. The learning rate is not restarted with each cycle (the
            reference code restarts it): it follows the optimizer's own schedule over the whole
            run (`kerasgen train-vae`'s `--lr-schedule`). Defaults to 0.
        kl_cycle_ratio: float in (0, 1], R, the share of each cycle over which the weight
            rises. Defaults to 0.5 (the paper's).
        free_bits: float >= 0, λ in nats per latent dimension (Kingma et al. 2016), in the
            batch-averaged form of the IAF and He et al. (2019) code: the objective's KL is
            Σ_d max(λ, mean over the batch of KL(q(z_d|x) ‖ p(z_d))), so a dimension whose
            average KL is under λ gets no gradient towards the prior. The KL weight (`beta`,
            warm-up, cycles) multiplies this floored KL. Only the objective (`loss`, and so the
            gradient) changes: `kl`, `reconstruction` and `elbo` stay unweighted and unfloored. Needs
            `posterior="diagonal"` and the single-sample ELBO (`num_importance_samples=1`).
            0 disables it. Defaults to 0.
        num_importance_samples: int, K. Above 1, training maximizes the K-sample
            importance-weighted bound of Burda et al. (2016) (the IWAE objective), tighter than the
            ELBO, at K times the decoding cost. The metrics are then estimates over the K samples:
            `elbo` is the single-sample ELBO averaged over them and `kl` the average of
            log q(z_k|x) − log p(z_k), not the closed-form KL. Defaults to 1.
        seed: int or None, seeds the reparameterization noise (and the PixelCNN's sampling).
            Defaults to None.
        decoder: str, `"conv"` (p(x|z) factorizes over pixels given z) or `"pixelcnn"`: an
            autoregressive Gated PixelCNN p(x|z) = Π p(x_ij | x_<ij, z) (`kerasgen.pixelcnn`),
            conditioned on z through the deconvolutional decoder's `pixelcnn_filters`-channel
            feature map. The PixelCNN can model the image without z, which makes posterior
            collapse possible; it needs `likelihood="bernoulli"`. Its p(x|z) has no tractable
            mean, so `decode`, `sample` and `reconstruct` return binary samples of p(x|z),
            generated pixel by pixel (H·W network passes). Defaults to `"conv"`.
        pixelcnn_layers: int >= 1, the PixelCNN's gated layers; more layers see more of the
            image, so they need z less. Ignored by `"conv"`. Defaults to 4.
        pixelcnn_filters: int >= 1, the PixelCNN's width and the conditioning map's channels.
            Ignored by `"conv"`. Defaults to 32.
        pixelcnn_conditioning: how the PixelCNN takes z. `"spatial"`: the deconvolutional
            decoder's feature map, through 1×1 convolutions into every gate (PixelVAE-style).
            `"global"`: z itself, through a linear map into every gate, the same bias at every
            pixel: the conditional PixelCNN of van den Oord et al. (2016), the decoder with which
            Bowman et al., Chen et al. and He et al. see the posterior collapse; its `decoder`
            network is then the identity on z. Ignored by `"conv"`. Defaults to `"spatial"`.
        pixelcnn_kernel_size: odd int >= 3, the PixelCNN's kernel: each layer sees
            `pixelcnn_kernel_size // 2` more rows above, so a larger kernel covers the image in
            fewer layers. Ignored by `"conv"`. Defaults to 3.

    Example:

        vae = VAE(image_shape=(28, 28, 1), latent_dim=16)
        vae.compile(optimizer=keras.optimizers.Adam(1e-3))
        vae.fit(splits.train, validation_data=splits.validation, epochs=10)
        images = vae.sample(16)
    """

    # q(z|x) is a proper density and p(x|z) a likelihood, so the importance-weighted log p(x) of
    # `evaluation.likelihood` means something (a VAE-GAN's or deterministic AAE's would not).
    defines_likelihood = True

    def __init__(
        self,
        image_shape=(28, 28, 1),
        latent_dim=16,
        likelihood="bernoulli",
        likelihood_scale="pixel",
        likelihood_components=distributions.DEFAULT_MIXTURE_COMPONENTS,
        posterior="diagonal",
        num_filters=(32, 64),
        hidden_dim=256,
        beta=1.0,
        kl_warmup_steps=0,
        kl_cycle_steps=0,
        kl_cycle_ratio=0.5,
        free_bits=0.0,
        num_importance_samples=1,
        seed=None,
        decoder="conv",
        pixelcnn_layers=4,
        pixelcnn_filters=32,
        pixelcnn_conditioning="spatial",
        pixelcnn_kernel_size=3,
        architecture="conv",
        num_blocks=1,
        latent_layout="vector",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_architecture(architecture, num_blocks)
        check_latent_layout(latent_layout)
        validate.positive_int("latent_dim", latent_dim)
        validate.positive_ints("num_filters", num_filters)
        validate.positive_int("hidden_dim", hidden_dim)
        validate.number("beta", beta, at_least=0)
        validate.integer("kl_warmup_steps", kl_warmup_steps, minimum=0)
        validate.positive_int("num_importance_samples", num_importance_samples)
        _check_remedies(kl_warmup_steps, kl_cycle_steps, kl_cycle_ratio, free_bits, posterior, num_importance_samples)
        validate.one_of("decoder", decoder, DECODERS)
        if decoder == "pixelcnn" and likelihood != "bernoulli":
            raise ValueError(
                "decoder='pixelcnn' models binarized images and needs likelihood='bernoulli'. "
                f"Received: likelihood={likelihood!r}"
            )
        validate.positive_int("pixelcnn_layers", pixelcnn_layers)
        validate.positive_int("pixelcnn_filters", pixelcnn_filters)
        validate.one_of("pixelcnn_conditioning", pixelcnn_conditioning, PIXELCNN_CONDITIONINGS)
        validate.integer("pixelcnn_kernel_size", pixelcnn_kernel_size, minimum=3)
        if pixelcnn_kernel_size % 2 == 0:
            raise ValueError(f"pixelcnn_kernel_size must be odd. Received: pixelcnn_kernel_size={pixelcnn_kernel_size}")
        self.image_shape = check_image_shape(image_shape, len(num_filters))
        channels = self.image_shape[2]
        if decoder == "pixelcnn" and pixelcnn_filters % channels:
            raise ValueError(
                f"pixelcnn_filters must be a multiple of the image's {channels} channels: the PixelCNN gives each "
                f"colour channel an equal group of feature maps (R, G, B in order). Received: "
                f"pixelcnn_filters={pixelcnn_filters}, image_shape={self.image_shape}"
            )
        if latent_layout == "map":
            if posterior != "diagonal":
                raise ValueError(
                    "latent_layout='map' reads the posterior's parameters as maps, which only the diagonal posterior "
                    "has (a full posterior needs latent_layout='vector' and a latent_dim small enough for a full "
                    f"covariance). Received: posterior={posterior!r}"
                )
            map_channels(latent_dim, self.image_shape, len(num_filters))
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        self.likelihood_scale = likelihood_scale
        self.likelihood_components = likelihood_components
        self.posterior = posterior
        self.num_filters = tuple(num_filters)
        self.hidden_dim = hidden_dim
        self.beta = float(beta)
        self.kl_warmup_steps = kl_warmup_steps
        self.kl_cycle_steps = kl_cycle_steps
        self.kl_cycle_ratio = float(kl_cycle_ratio)
        self.free_bits = float(free_bits)
        self.num_importance_samples = num_importance_samples
        self.seed = seed
        # `self.decoder` is the network, so the `decoder` argument is kept as `decoder_type`.
        self.decoder_type = decoder
        self.pixelcnn_layers = pixelcnn_layers
        self.pixelcnn_filters = pixelcnn_filters
        self.pixelcnn_kernel_size = pixelcnn_kernel_size
        self.pixelcnn_conditioning = pixelcnn_conditioning
        self.architecture = architecture
        self.num_blocks = num_blocks
        self.latent_layout = latent_layout
        networks = {"architecture": architecture, "num_blocks": num_blocks, "latent_layout": latent_layout}

        self._likelihood = distributions.get_likelihood(likelihood, likelihood_scale, likelihood_components)
        self._posterior = distributions.make_posterior(posterior)
        self.encoder = build_encoder(
            self.image_shape,
            self.num_filters,
            hidden_dim,
            distributions.posterior_parameter_size(posterior, latent_dim),
            **networks,
        )
        if decoder == "pixelcnn" and pixelcnn_conditioning == "global":
            # The PixelCNN takes z itself: the decoder network passes it on.
            z = keras.Input((latent_dim,), name="z")
            self.decoder = keras.Model(z, keras.layers.Identity()(z), name="decoder")
            self.pixelcnn = build_pixelcnn(
                self.image_shape, latent_dim, pixelcnn_layers, pixelcnn_filters, pixelcnn_kernel_size, conditioning="global"
            )
        elif decoder == "pixelcnn":
            # The deconvolutional decoder maps z to the PixelCNN's conditioning map h, [B, H, W, C_h].
            self.decoder = build_decoder(
                latent_dim, (*self.image_shape[:2], pixelcnn_filters), self.num_filters, hidden_dim, **networks
            )
            self.pixelcnn = build_pixelcnn(
                self.image_shape, pixelcnn_filters, pixelcnn_layers, pixelcnn_filters, pixelcnn_kernel_size
            )
        else:
            self.decoder = build_decoder(
                latent_dim,
                (*self.image_shape[:2], self._likelihood.network_channels(self.image_shape[2])),
                self.num_filters,
                hidden_dim,
                head=self._likelihood.decoder_head(self.image_shape),
                **networks,
            )
            self.pixelcnn = None
        if self.pixelcnn is not None:
            # Pixel-by-pixel sampling draws its own noise, apart from training's and evaluation's.
            self.sample_seed_generator = keras.random.SeedGenerator(None if seed is None else seed + 2)
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Validation and `evaluate` draw their own noise, so whether and how often a run validates
        # does not move the training noise.
        self.eval_seed_generator = keras.random.SeedGenerator(None if seed is None else seed + 1)
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("loss", "elbo", "reconstruction", "kl")
        }
        # Every weight exists now (the networks are functional), so a reloaded model can restore
        # its optimizer state without a build call.
        self.built = True

    # --- The distributions -------------------------------------------------------------------

    def prior(self):
        """p(z) = N(0, I)."""
        return distributions.standard_normal_prior(self.latent_dim)

    def posterior_distribution(self, x, training=False):
        """q(z|x) for a batch of images, as a `tfd.Distribution` with batch shape `[B]`."""
        return self._posterior(ops.cast(self.encoder(x, training=training), "float32"))

    def likelihood_distribution(self, z, training=False):
        """p(x|z) for a batch of latents, as a `tfd.Distribution` over whole images.

        With `decoder="pixelcnn"` an `AutoregressiveBernoulli`, whose `log_prob(x)` runs the
        PixelCNN on x (teacher forcing): one decoder pass and one PixelCNN pass per batch.
        """
        params = ops.cast(self.decoder(z, training=training), "float32")
        if self.pixelcnn is not None:
            return AutoregressiveBernoulli(self.pixelcnn, params)
        return self._likelihood.distribution(params)

    # --- The user-facing operations ----------------------------------------------------------

    def encode(self, x):
        """Posterior parameters `(loc, scale)`: scale is `[B, D]` (diagonal) or `[B, D, D]` (full)."""
        posterior = self.posterior_distribution(x)
        return posterior.mean(), distributions.posterior_scale(posterior)

    def decode(self, z, seed=None):
        """The mean image of p(x|z); with `decoder="pixelcnn"`, a binary sample of p(x|z).

        `seed` only matters for the PixelCNN: an int, a `SeedGenerator`, a stateless int32 pair,
        or None (the model's own sampling stream, seeded by `seed` at construction).
        """
        if self.pixelcnn is not None:
            return self.likelihood_distribution(z).sample(seed=self._sampling_seed(seed))
        return self._likelihood.mean(ops.cast(self.decoder(z), "float32"))

    def sample(self, n, seed=None):
        """`n` images decoded from z ~ p(z); `seed` is an int, a `SeedGenerator` or None.

        Mean images, or with `decoder="pixelcnn"` binary samples of p(x|z).
        """
        if self.pixelcnn is not None:
            seed = self._sampling_seed(seed)
            z = tf.random.stateless_normal((n, self.latent_dim), seed=tf.random.experimental.stateless_fold_in(seed, 0))
            return self.decode(z, seed=tf.random.experimental.stateless_fold_in(seed, 1))
        return self.decode(keras.random.normal((n, self.latent_dim), seed=seed))

    def _sampling_seed(self, seed):
        """A stateless int32 pair for the PixelCNN's sampling; None takes the model's own stream."""
        if seed is None:
            seed = self.sample_seed_generator
        if isinstance(seed, (int, keras.random.SeedGenerator)):
            return distribute.stateless_seed(seed)
        return tf.cast(seed, tf.int32)

    def reconstruct(self, x, seed=None):
        """The mean image of p(x|z) at the posterior mean of z (a sample of it for the PixelCNN).

        `seed` is `decode`'s: it only matters for the PixelCNN.
        """
        return self.decode(self.posterior_distribution(x).mean(), seed=seed)

    def call(self, x, training=False):
        return self.reconstruct(x)

    # --- Training ----------------------------------------------------------------------------

    def kl_weight(self):
        """The KL weight at the current optimizer step: `beta`, ramped by warm-up or in cycles (see the class)."""
        # An uncompiled model (a reloaded inference copy) has no optimizer, hence no step count.
        if not (self.kl_warmup_steps or self.kl_cycle_steps) or getattr(self, "optimizer", None) is None:
            return self.beta
        if self.kl_cycle_steps:
            # The step's place in its cycle, t mod C, is taken in integers: exact for any t.
            position = ops.cast(ops.mod(self.optimizer.iterations, self.kl_cycle_steps), "float32")
            return self.beta * ops.minimum(1.0, position / (self.kl_cycle_ratio * self.kl_cycle_steps))
        step = ops.cast(self.optimizer.iterations + 1, "float32")
        return self.beta * ops.minimum(1.0, step / self.kl_warmup_steps)

    def compute_elbo(self, x, training=False, sample_weight=None):
        """The training objective of a batch with reparameterized samples, and its terms.

        The β-weighted negative ELBO, or with `num_importance_samples` K > 1 the negative
        K-sample importance-weighted bound; with `sample_weight` `[B]`, weighted means over images.
        With `free_bits`, the loss's KL is floored per dimension; the returned terms are not.
        """
        x = ops.cast(x, "float32")
        posterior = self.posterior_distribution(x, training=training)
        z = self._sample_latents(posterior, ops.shape(x)[0], training)
        if self.num_importance_samples > 1:
            return negative_iwae_bound(
                x, z, posterior, self.prior(), lambda z: self.likelihood_distribution(z, training=training),
                beta=self.kl_weight(), sample_weight=sample_weight,
            )
        likelihood = self.likelihood_distribution(z, training=training)
        dimension_mean = None
        if self.free_bits:
            # Floors the global batch's per-dimension KL on every replica (one device: this batch's).
            share = distribute.replica_share(_total_weight(x, sample_weight))

            def dimension_mean(local):
                return distribute.global_mean(local, share)

        return negative_elbo(
            x, likelihood, posterior, self.prior(), z=z, beta=self.kl_weight(), sample_weight=sample_weight,
            free_bits=self.free_bits, dimension_mean=dimension_mean,
        )

    def _sample_latents(self, posterior, batch_size, training):
        """Reparameterized z ~ q(z|x), `[B, D]` (or `[K, B, D]` for K importance samples).

        Under a distribution strategy each replica takes its own rows of one draw for the global
        batch (`distribute.global_batch_rows`), so replicas never share noise and N devices train
        exactly as one does.
        """
        seed = distribute.next_seed(self.seed_generator if training else self.eval_seed_generator)
        samples = (self.num_importance_samples,) if self.num_importance_samples > 1 else ()
        # Drawn as TFP draws the standard normal under `posterior.sample(seed=seed)`, latent axis
        # first, so one device gets exactly the samples `posterior.sample` would give.
        noise = distribute.global_batch_rows(
            lambda n: tf.random.stateless_normal((*samples, self.latent_dim, n), seed=seed), batch_size, axis=-1
        )
        return posterior.bijector.forward(tf.linalg.matrix_transpose(noise))

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, **kwargs):
        """Configures training; the loss is the model's own, `metrics` compare `x` with `reconstruct(x)`.

        Args:
            optimizer: optimizer or identifier. Defaults to `"rmsprop"`, as `keras.Model.compile`.
            loss: must be None: the VAE minimizes its negative ELBO (or IWAE bound).
            loss_weights: must be None, for the same reason.
            **kwargs: passed to `keras.Model.compile` (`metrics`, `weighted_metrics`,
                `run_eagerly`, `jit_compile`, ...).
        """
        for name, value in (("loss", loss), ("loss_weights", loss_weights)):
            if value is not None:
                raise ValueError(
                    f"VAE.compile does not take {name}: the VAE minimizes its own negative ELBO "
                    "(reported as loss, reconstruction and kl); use beta, kl_warmup_steps, kl_cycle_steps, "
                    f"free_bits or num_importance_samples to change it. Received: {name}={value!r}"
                )
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config):
        # Keras skips a custom `compile` on load unless the model says how: the same arguments.
        self.compile(**keras.saving.deserialize_keras_object(config))
        # Built now, so that a reloaded model has the variables its saved state fills.
        self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, y=None, *args, sample_weight=None, **kwargs):
        return super().fit(x, _targets(x, y, sample_weight), *args, sample_weight=sample_weight, **kwargs)

    def evaluate(self, x=None, y=None, *args, sample_weight=None, **kwargs):
        return super().evaluate(x, _targets(x, y, sample_weight), *args, sample_weight=sample_weight, **kwargs)

    def train_step(self, data):
        x, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        sample_weight = _image_weights(sample_weight)
        if self._compile_metrics is not None:
            reconstruction = self(x, training=False)
        with tf.GradientTape() as tape:
            loss, terms = self.compute_elbo(x, training=True, sample_weight=sample_weight)
            # This replica's share of the global batch's mean; Keras sums the replicas' gradients.
            share = distribute.replica_share(_total_weight(x, sample_weight))
            scaled_loss = self.optimizer.scale_loss(loss * share)
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        if self._compile_metrics is not None:
            self.compute_metrics(x, None, reconstruction, sample_weight)
        return self._update_metrics(x, loss, terms, sample_weight)

    def test_step(self, data):
        x, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        sample_weight = _image_weights(sample_weight)
        loss, terms = self.compute_elbo(x, sample_weight=sample_weight)
        if self._compile_metrics is not None:
            self.compute_metrics(x, None, self(x, training=False), sample_weight)
        return self._update_metrics(x, loss, terms, sample_weight)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        # The target of a reconstruction is the image itself; labels in the data are not targets.
        return super().compute_metrics(x, ops.cast(x, "float32"), y_pred, sample_weight)

    def _update_metrics(self, x, loss, terms, sample_weight):
        # The terms are means over the batch: weighting each by the batch's total weight (its size
        # when unweighted) makes the epoch's result the mean over images, ragged last batch included.
        total_weight = _total_weight(x, sample_weight)
        self.trackers["loss"].update_state(loss, sample_weight=total_weight)
        for name, value in terms.items():
            self.trackers[name].update_state(value, sample_weight=total_weight)
        return distribute.step_logs(self.get_metrics_result())

    @property
    def metrics(self):
        compiled = [self._compile_metrics] if getattr(self, "_compile_metrics", None) is not None else []
        return [*self.trackers.values(), *compiled]

    # --- Serialization -----------------------------------------------------------------------

    def get_config(self):
        return {
            **super().get_config(),
            "image_shape": self.image_shape,
            "latent_dim": self.latent_dim,
            "likelihood": self.likelihood,
            "likelihood_scale": self.likelihood_scale,
            "likelihood_components": self.likelihood_components,
            "posterior": self.posterior,
            "num_filters": self.num_filters,
            "hidden_dim": self.hidden_dim,
            "beta": self.beta,
            "kl_warmup_steps": self.kl_warmup_steps,
            "kl_cycle_steps": self.kl_cycle_steps,
            "kl_cycle_ratio": self.kl_cycle_ratio,
            "free_bits": self.free_bits,
            "num_importance_samples": self.num_importance_samples,
            "seed": self.seed,
            "decoder": self.decoder_type,
            "pixelcnn_layers": self.pixelcnn_layers,
            "pixelcnn_filters": self.pixelcnn_filters,
            "pixelcnn_kernel_size": self.pixelcnn_kernel_size,
            "pixelcnn_conditioning": self.pixelcnn_conditioning,
            "architecture": self.architecture,
            "num_blocks": self.num_blocks,
            "latent_layout": self.latent_layout,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["image_shape"] = tuple(config["image_shape"])
        config["num_filters"] = tuple(config["num_filters"])
        return cls(**config)


def _check_remedies(kl_warmup_steps, kl_cycle_steps, kl_cycle_ratio, free_bits, posterior, num_importance_samples):
    """Refuses bad cyclical-annealing and free-bits arguments, naming what was received."""
    validate.integer("kl_cycle_steps", kl_cycle_steps, minimum=0)
    if kl_cycle_steps == 1:
        raise ValueError(
            "kl_cycle_steps must be 0 (off) or at least 2: a one-step cycle keeps the KL weight at 0 throughout. "
            "Received: kl_cycle_steps=1"
        )
    validate.number("kl_cycle_ratio", kl_cycle_ratio, above=0, at_most=1)
    if kl_cycle_steps and kl_warmup_steps:
        raise ValueError(
            "kl_cycle_steps and kl_warmup_steps are two schedules of the KL weight; use one. "
            f"Received: kl_warmup_steps={kl_warmup_steps!r}, kl_cycle_steps={kl_cycle_steps!r}"
        )
    validate.number("free_bits", free_bits, at_least=0)
    if free_bits and posterior != "diagonal":
        raise ValueError(
            "free_bits needs posterior='diagonal': a full-covariance q's KL is not the sum of its dimensions'. "
            f"Received: free_bits={free_bits!r}, posterior={posterior!r}"
        )
    if free_bits and num_importance_samples > 1:
        raise ValueError(
            "free_bits floors the ELBO's KL term, which the importance-weighted bound does not have; use "
            f"num_importance_samples=1 with it. Received: free_bits={free_bits!r}, "
            f"num_importance_samples={num_importance_samples!r}"
        )


def _image_weights(sample_weight):
    """`sample_weight` as one float weight per image, `[B]`; None stays None."""
    if sample_weight is None:
        return None
    sample_weight = ops.cast(sample_weight, "float32")
    if len(sample_weight.shape) > 1 and any(d != 1 for d in sample_weight.shape[1:]):
        raise ValueError(
            "A VAE's sample_weight holds one weight per image, shape [batch] or [batch, 1]. "
            f"Received: sample_weight with shape {tuple(sample_weight.shape)}"
        )
    return ops.reshape(sample_weight, (-1,))


def _targets(x, y, sample_weight):
    """`y` for Keras's data adapter: it drops `sample_weight` when `y` is None, so use the images."""
    # The VAE reads no targets (a reconstruction's target is its input), so this changes nothing else.
    return x if y is None and sample_weight is not None else y


def _total_weight(x, sample_weight):
    """The batch's total image weight: its size when unweighted."""
    if sample_weight is None:
        return ops.cast(ops.shape(x)[0], "float32")
    return ops.sum(sample_weight)
