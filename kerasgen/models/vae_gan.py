"""The VAE-GAN of Larsen et al. (2016): a VAE whose reconstruction likelihood lives in a discriminator's features."""

import math

import keras
import tensorflow as tf
from keras import ops

from kerasgen import distribute, distributions, validate
from kerasgen.losses import vaegan_losses, weighted_mean
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
from kerasgen.options import FEATURE_SCALES, VAE_INITS

# D's cross-entropy when it cannot tell real from fake (σ = 1/2): the balance point of the
# equilibrium rule (the reference code rounds it to 0.68).
EQUILIBRIUM = math.log(2.0)


@keras.saving.register_keras_serializable(package="kerasgen")
class VAEGAN(distribute.FirstReplicaBuild, SeveralOptimizers, keras.Model):
    """A VAE whose decoder is also a GAN's generator, trained by `fit()` on batches of images.

    "Autoencoding beyond pixels using a learned similarity metric" (Larsen et al. 2016): the
    reconstruction likelihood moves from the pixels to the discriminator's `feature_layer`,
    L_llike = −log N(D_l(x) | D_l(Dec(z)), σ² I) with z ~ q(z|x), so "similar" means similar to D.
    Each step makes one forward pass and updates the three parts with their own optimizers, as the
    paper's algorithm does:

    - encoder ← β·L_prior + L_llike, with L_prior = KL(q(z|x) ‖ p(z)) (β = 1 in the paper);
    - decoder ← γ·L_llike − L_GAN, where −L_GAN is the **non-saturating** loss −log σ(D(·)) on the
      reconstructions Dec(z) and on the prior samples Dec(z_p), z_p ~ p(z);
    - discriminator ← its cross-entropy on real images (1) and both kinds of fakes (0), plus the
      R1 penalty (γ_R1/2)·E‖∇_x D(x)‖² on real images, as kerasgen's GAN.

    Each gradient is taken with respect to its own part's variables only, so no loss reaches a
    part it does not belong to (the discriminator's loss never moves the decoder). As kerasgen's
    GAN, it keeps moving averages of the encoder's and the decoder's weights (`ema_decay`), which
    `encode`, `decode`, `sample`, `reconstruct` and `posterior_distribution` use; training and
    the validation metrics use the networks being trained. Metrics, means
    over images: `kl`, `reconstruction` (L_llike, nats), `d_loss` (without R1), `g_loss` (the
    decoder's adversarial loss), `r1`, `d_real`, `d_fake` and `d_reconstruction` (D's mean
    probability that real images, prior samples and reconstructions are real); with the
    equilibrium rule also `d_trained` and `g_trained`, the fractions of steps that updated D and
    the decoder.

    Args:
        encoder: `keras.Model` from images to the parameters of q(z|x) (as a VAE's encoder).
        decoder: `keras.Model` from z to the parameters of p(x|z) (as a VAE's decoder); its
            likelihood's mean is the generated image.
        discriminator: `keras.Model` from images to one logit per image, whose layer
            `feature_layer` gives D_l.
        latent_dim: int, the size of z ~ N(0, I).
        likelihood: str, the decoder's likelihood family (its mean makes the images). Defaults to
            `"bernoulli"`.
        likelihood_scale: the Gaussian's scale setting (see `VAE`). Defaults to `"pixel"`.
        likelihood_components: the logistic mixture's components (see `VAE`). Defaults to 10.
        posterior: `"diagonal"` or `"full"`, the family of q(z|x). Defaults to `"diagonal"`.
        feature_layer: str or None, the name of D's layer whose output is D_l; None takes the
            last `Conv2D` layer. Defaults to None.
        gamma: float >= 0, γ: the weight of L_llike in the decoder's loss against the adversarial
            loss. With the fitted σ, L_llike is n/2·log(mean squared feature error) plus a constant
            (n features), so γ·n/2 weighs the log error: 0.31 at the default for 28x28 images
            (n = 6,272). Defaults to 1e-4, measured on mnist-5k from the shipped VAE (3 epochs,
            5,000 samples): prior-sample FD 147 / 131 / 110 / 86 / 57 at γ = 1 / 1e-3 / 3e-4 /
            1e-4 / 1e-5 against the VAE's 147, reconstruction FD 9.2 / 9.3 / 9.4 / 10.4 / 13.7
            against its 11.0: smaller γ buys realistic samples with faithful reconstructions.
        beta: float >= 0, β: the weight of L_prior in the encoder's loss (1 is the paper's).
            Measured on mnist-5k from the shipped VAE (γ = 1e-4, 3 epochs): β = 0.5 left the
            reconstructions as they were at β = 1 (FD 10.3 vs 10.4, 91.4% vs 91.0% classified
            right) and the samples' FD at 87.5 vs 86.2. Defaults to 1.
        feature_scale: `"fitted"` or a float > 0: σ of the feature likelihood. A float fixes it
            (1 is the paper's identity covariance); `"fitted"` sets it, every step, to its
            maximum-likelihood value for the batch, the root-mean-square feature error (held
            constant in the gradient), as the σ-VAE of Rybkin et al. (2021) does for pixels: then
            L_llike does not depend on the scale of D's features, which D changes as it trains.
            Defaults to `"fitted"`.
        r1_weight: float >= 0, the R1 penalty's weight; 0 disables it. Defaults to 10.
        ema_decay: float in [0, 1), the decay of the encoder's and decoder's weight averages; 0
            disables them (the trained networks answer). Defaults to 0.99 (about 100 steps), as
            the GAN's: without it the reconstructions' FD of one run moved between 7.95 and 11.1
            from one measurement to the next (epochs 15 and 20 on mnist-5k).
        equilibrium_margin: float >= 0 or None: the "equilibrium" rule of the paper's code. With a
            margin m, D is not updated while its cross-entropy on real or on fake images is below
            ln 2 − m (it is winning), the decoder not while one is above ln 2 + m (it is losing),
            and both are when the rule would stop both. None (the default) updates both every step:
            measured on mnist-5k (γ = 1e-4, m = 0.35, 3 epochs) the rule froze the decoder in 95%
            of the steps (with two kinds of fakes an undecided D answers ⅓, so its real-image
            cross-entropy sits at ln 3 > ln 2 + m) and the samples' FD was 108.7 against 86.2.
        seed: int or None, seeds the noise. Defaults to None.

    Example:

        vaegan = VAEGAN.from_vae("saved_models/vae-mnist-5k")
        vaegan.compile(
            e_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
            g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
            d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        )
        vaegan.fit(grey_splits.train, epochs=10)
        images, reconstructions = vaegan.sample(16), vaegan.reconstruct(x)
    """

    # Training never fits p(x|z) to pixels, so importance-weighted log p(x) would not measure this model.
    defines_likelihood = False

    optimizer_names = ("e_optimizer", "g_optimizer", "d_optimizer")
    what = "a VAE-GAN"

    def __init__(
        self,
        encoder,
        decoder,
        discriminator,
        latent_dim,
        likelihood="bernoulli",
        likelihood_scale="pixel",
        likelihood_components=distributions.DEFAULT_MIXTURE_COMPONENTS,
        posterior="diagonal",
        feature_layer=None,
        gamma=1e-4,
        beta=1.0,
        feature_scale="fitted",
        r1_weight=10.0,
        ema_decay=0.99,
        equilibrium_margin=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for argument, value in (("encoder", encoder), ("decoder", decoder), ("discriminator", discriminator)):
            if not isinstance(value, keras.Model):
                raise ValueError(f"{argument} must be a keras.Model. Received: {argument}={value!r}")
        validate.positive_int("latent_dim", latent_dim)
        if decoder.input_shape[-1] != latent_dim:
            raise ValueError(
                f"The decoder takes z of size {decoder.input_shape[-1]}, not latent_dim. Received: latent_dim={latent_dim!r}"
            )
        expected = distributions.posterior_parameter_size(posterior, latent_dim)
        if encoder.output_shape[-1] != expected:
            raise ValueError(
                f"A {posterior} q(z|x) over {latent_dim} dimensions takes {expected} parameters, but the encoder "
                f"emits {encoder.output_shape[-1]}. Received: posterior={posterior!r}, latent_dim={latent_dim}"
            )
        validate.number("gamma", gamma, at_least=0)
        validate.number("beta", beta, at_least=0)
        validate.number("r1_weight", r1_weight, at_least=0)
        validate.number("ema_decay", ema_decay, at_least=0, below=1)
        validate.name_or_number("feature_scale", feature_scale, FEATURE_SCALES, above=0)
        if equilibrium_margin is not None:
            validate.number("equilibrium_margin", equilibrium_margin, at_least=0)
        self.encoder = encoder
        self.decoder = decoder
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        self.likelihood_scale = likelihood_scale
        self.likelihood_components = likelihood_components
        self.posterior = posterior
        self.feature_layer = feature_layer or _last_convolution(discriminator)
        self.gamma = float(gamma)
        self.beta = float(beta)
        self.feature_scale = feature_scale if feature_scale == "fitted" else float(feature_scale)
        self.r1_weight = float(r1_weight)
        self.ema_decay = float(ema_decay)
        self.equilibrium_margin = None if equilibrium_margin is None else float(equilibrium_margin)
        self.seed = seed

        # Same architecture and starting weights; only the moving averages change them.
        self.ema_encoder = weight_average(encoder) if self.ema_decay else None
        self.ema_decoder = weight_average(decoder) if self.ema_decay else None
        self._likelihood = distributions.get_likelihood(likelihood, likelihood_scale, likelihood_components)
        self._posterior = distributions.make_posterior(posterior)
        try:
            features = discriminator.get_layer(self.feature_layer).output
        except ValueError:
            names = [layer.name for layer in discriminator.layers]
            raise ValueError(
                f"The discriminator has no layer {self.feature_layer!r} for the features; it has {names}. "
                f"Received: feature_layer={feature_layer!r}"
            ) from None
        # D_l and D's logit from one pass. Held in a closure, not an attribute, so that Keras
        # neither tracks nor saves D's weights twice.
        both = keras.Model(discriminator.input, [features, discriminator.output], name="features_and_logits")
        self._features_and_logits = lambda images, training: both(images, training=training)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.eval_seed_generator = keras.random.SeedGenerator(None if seed is None else seed + 1)
        names = ["kl", "reconstruction", "d_loss", "g_loss", "r1", "d_real", "d_fake", "d_reconstruction"]
        if self.equilibrium_margin is not None:
            names += ["d_trained", "g_trained"]
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}
        self.built = True

    @classmethod
    def from_vae(cls, vae_or_path, discriminator=None, init="vae", spectral_norm=False, **kwargs):
        """A VAE-GAN whose encoder and decoder start as a trained VAE's.

        Before any step, `encode`, `decode`, `reconstruct` and `sample` equal the VAE's.

        Args:
            vae_or_path: a `kerasgen.VAE`, a train-vae output folder or a `.keras` file holding one.
            discriminator: `keras.Model` or None (built for the VAE's images and architecture,
                as `GAN.from_vae` builds it).
            init: `"vae"` copies the VAE's weights; `"scratch"` builds the same architecture with
                fresh weights (a VAE-GAN trained from scratch). Defaults to `"vae"`.
            spectral_norm: bool, spectral normalization in the discriminator built when
                `discriminator` is None. Defaults to False.
            **kwargs: the other `VAEGAN` arguments (`gamma`, `r1_weight`, ...).
        """
        validate.one_of("init", init, VAE_INITS)
        vae = load_vae(vae_or_path)
        encoder, decoder = clone_in_policy(vae.encoder), clone_in_policy(vae.decoder)
        if init == "vae":
            encoder.set_weights(vae.encoder.get_weights())
            decoder.set_weights(vae.decoder.get_weights())
        discriminator = default_discriminator(vae, discriminator, spectral_norm)
        return cls(
            encoder,
            decoder,
            discriminator,
            vae.latent_dim,
            likelihood=vae.likelihood,
            likelihood_scale=vae.likelihood_scale,
            likelihood_components=vae.likelihood_components,
            posterior=vae.posterior,
            **kwargs,
        )

    # --- The distributions and the user-facing operations ------------------------------------

    @property
    def image_shape(self):
        """The images' `(height, width, channels)`."""
        return tuple(self.encoder.input_shape[1:])

    def prior(self):
        """p(z) = N(0, I)."""
        return distributions.standard_normal_prior(self.latent_dim)

    def posterior_distribution(self, x):
        """q(z|x) for a batch of images, batch shape `[B]` (from the encoder's weight average)."""
        return self._posterior_of(self.ema_encoder or self.encoder, x, training=False)

    def encode(self, x):
        """Posterior parameters `(loc, scale)`, as `VAE.encode`."""
        posterior = self.posterior_distribution(x)
        return posterior.mean(), distributions.posterior_scale(posterior)

    def decode(self, z):
        """The generated image for latents `z`: the mean of the decoder's likelihood (its weight average)."""
        return self._images_of(self.ema_decoder or self.decoder, z, training=False)

    def sample(self, n, seed=None):
        """`n` images from z ~ N(0, I); `seed` is an int, a `SeedGenerator` or None."""
        return self.decode(keras.random.normal((n, self.latent_dim), seed=seed))

    def reconstruct(self, x):
        """The decoded image at the posterior mean of z."""
        return self.decode(self.posterior_distribution(x).mean())

    def call(self, x, training=False):
        return self.reconstruct(x)

    def _posterior_of(self, encoder, x, training):
        return self._posterior(ops.cast(encoder(x, training=training), "float32"))

    def _images_of(self, decoder, z, training):
        return self._likelihood.mean(ops.cast(decoder(z, training=training), "float32"))

    # --- Training ----------------------------------------------------------------------------

    def compile(self, e_optimizer="adam", g_optimizer="adam", d_optimizer="adam", auto_scale_loss=True, **kwargs):
        """Configures training with one optimizer per part.

        Args:
            e_optimizer: optimizer or identifier for the encoder. Defaults to `"adam"`.
            g_optimizer: for the decoder (the generator). Defaults to `"adam"`.
            d_optimizer: for the discriminator. Defaults to `"adam"`. Three different objects.
            auto_scale_loss: bool; under `"mixed_float16"` each optimizer gets its own
                `LossScaleOptimizer`. Defaults to True.
            **kwargs: passed to `keras.Model.compile` (`run_eagerly`, `jit_compile`, ...);
                `optimizer`, `loss`, `loss_weights`, `metrics` and `weighted_metrics` are refused.
        """
        optimizers = compile_optimizers(
            self, {"e_optimizer": e_optimizer, "g_optimizer": g_optimizer, "d_optimizer": d_optimizer},
            auto_scale_loss, kwargs, "kl, reconstruction, d_loss, g_loss, r1, d_real, d_fake, d_reconstruction",
        )
        super().compile(optimizer=None, auto_scale_loss=False, **kwargs)
        self.e_optimizer, self.g_optimizer, self.d_optimizer = optimizers
        for optimizer, part in zip(optimizers, self._parts()):
            optimizer.build(part.trainable_variables)

    def _parts(self):
        return self.encoder, self.decoder, self.discriminator

    def compute_losses(self, real, training=False, seed_generator=None):
        """The three parts' losses on a batch of real images, their terms and D's logits.

        Returns:
            `(losses, terms, logits)`: `losses` has `encoder`, `decoder` and `discriminator`
            (R1 included); `terms` the metrics' values; `logits` D's on real images, prior
            samples and reconstructions.
        """
        seed_generator = seed_generator or (self.seed_generator if training else self.eval_seed_generator)
        batch_size = ops.shape(real)[0]
        # The networks being trained (not their averages), in training and validation alike.
        posterior = self._posterior_of(self.encoder, real, training)
        # ε for z ~ q(z|x) and z_p ~ p(z): this replica's rows of one draw for the global batch.
        seed = distribute.next_seed(seed_generator)
        noise = distribute.global_batch_rows(
            lambda n: tf.random.stateless_normal((n, 2, self.latent_dim), seed=seed), batch_size
        )
        z = posterior.bijector.forward(noise[:, 0])
        # Both kinds of fakes through one decoder pass and one D pass: reconstructions, then prior samples.
        fakes = self._images_of(self.decoder, ops.concatenate([z, noise[:, 1]], axis=0), training)
        real_features, real_logits, r1 = self._real_features_logits_and_r1(real, training)
        fake_features, fake_logits = self._features_and_logits(fakes, training)
        fake_logits = _flat_logits(fake_logits)
        reconstruction_logits, prior_logits = fake_logits[:batch_size], fake_logits[batch_size:]
        real_features = ops.cast(real_features, "float32")
        reconstruction_features = ops.cast(fake_features[:batch_size], "float32")
        losses, terms = vaegan_losses(
            real_features,
            reconstruction_features,
            posterior,
            self.prior(),
            real_logits,
            reconstruction_logits,
            prior_logits,
            z=z,
            gamma=self.gamma,
            beta=self.beta,
            feature_scale=self._feature_scale(real_features, reconstruction_features),
        )
        losses["discriminator"] = losses["discriminator"] + 0.5 * self.r1_weight * r1
        terms["r1"] = r1
        return losses, terms, (real_logits, prior_logits, reconstruction_logits)

    def _feature_scale(self, real_features, reconstruction_features):
        """σ of the feature likelihood: fixed, or the global batch's root-mean-square feature error."""
        if self.feature_scale != "fitted":
            return self.feature_scale
        squared = ops.reshape(ops.square(real_features - reconstruction_features), (ops.shape(real_features)[0], -1))
        share = distribute.replica_share(ops.cast(ops.shape(real_features)[0], "float32"))
        mean_squared = distribute.global_mean(weighted_mean(ops.mean(squared, axis=1)), share)
        # The maximum-likelihood σ, a constant for the gradient; floored so identical features stay finite.
        return ops.sqrt(ops.maximum(ops.stop_gradient(mean_squared), 1e-12))

    def _real_features_logits_and_r1(self, real, training):
        """D_l(x), D's logits on real images, and the R1 penalty (0 when `r1_weight` is 0)."""

        def forward(images):
            features, logits = self._features_and_logits(images, training)
            return features, _flat_logits(logits)

        return outputs_and_r1(forward, ops.cast(real, "float32"), self)

    def train_step(self, data):
        real = real_images(data, "a VAE-GAN")
        # This replica's share of the global batch's mean; Keras sums the replicas' gradients.
        share = distribute.replica_share(ops.cast(ops.shape(real)[0], "float32"))
        optimizers = dict(zip(("encoder", "decoder", "discriminator"), (self.e_optimizer, self.g_optimizer, self.d_optimizer)))
        with tf.GradientTape(persistent=True) as tape:
            losses, terms, logits = self.compute_losses(real, training=True)
            scaled = {part: optimizers[part].scale_loss(losses[part] * share) for part in optimizers}
        gates = self._equilibrium_gates(logits, share)
        for (part, optimizer), network in zip(optimizers.items(), self._parts()):
            variables = network.trainable_variables
            # Each part's loss, differentiated with respect to that part's weights only.
            apply_gradients(optimizer, tape.gradient(scaled[part], variables), variables, gate=gates.get(part))
        del tape
        if self.ema_decay:
            update_weight_average(self.ema_encoder, self.encoder, self.ema_decay)
            update_weight_average(self.ema_decoder, self.decoder, self.ema_decay)
        return self._update_metrics(terms, logits, gates)

    def test_step(self, data):
        _, terms, logits = self.compute_losses(real_images(data, "a VAE-GAN"), training=False)
        return self._update_metrics(terms, logits, {})

    def _equilibrium_gates(self, logits, share):
        """`{"discriminator": bool, "decoder": bool}` tensors of the equilibrium rule, or `{}` without it."""
        if self.equilibrium_margin is None:
            return {}
        real_logits, prior_logits, reconstruction_logits = logits
        # The global batch's cross-entropies, so every replica takes the same decision.
        real_cost = distribute.global_mean(weighted_mean(ops.softplus(-real_logits)), share)
        fake_cost = distribute.global_mean(
            0.5 * (weighted_mean(ops.softplus(prior_logits)) + weighted_mean(ops.softplus(reconstruction_logits))), share
        )
        low, high = EQUILIBRIUM - self.equilibrium_margin, EQUILIBRIUM + self.equilibrium_margin
        train_d = ops.logical_not(ops.logical_or(real_cost < low, fake_cost < low))
        train_g = ops.logical_not(ops.logical_or(real_cost > high, fake_cost > high))
        neither = ops.logical_not(ops.logical_or(train_d, train_g))
        return {"discriminator": ops.logical_or(train_d, neither), "decoder": ops.logical_or(train_g, neither)}

    def _update_metrics(self, terms, logits, gates):
        real_logits, prior_logits, reconstruction_logits = logits
        batch_size = ops.cast(ops.shape(real_logits)[0], "float32")
        values = {
            **terms,
            "d_real": weighted_mean(ops.sigmoid(real_logits)),
            "d_fake": weighted_mean(ops.sigmoid(prior_logits)),
            "d_reconstruction": weighted_mean(ops.sigmoid(reconstruction_logits)),
        }
        if "discriminator" in gates:
            values["d_trained"] = ops.cast(gates["discriminator"], "float32")
            values["g_trained"] = ops.cast(gates["decoder"], "float32")
        for name, value in values.items():
            weight = batch_size
            if name == "r1":
                value, weight = r1_metric(value, weight, self.discriminator)
            self.trackers[name].update_state(value, sample_weight=weight)
        return distribute.step_logs({m.name: m.result() for m in self.metrics})

    @property
    def metrics(self):
        return list(self.trackers.values())

    # --- Serialization -----------------------------------------------------------------------

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim,
            "likelihood": self.likelihood,
            "likelihood_scale": self.likelihood_scale,
            "likelihood_components": self.likelihood_components,
            "posterior": self.posterior,
            "feature_layer": self.feature_layer,
            "gamma": self.gamma,
            "beta": self.beta,
            "feature_scale": self.feature_scale,
            "r1_weight": self.r1_weight,
            "ema_decay": self.ema_decay,
            "equilibrium_margin": self.equilibrium_margin,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("encoder", "decoder", "discriminator"):
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)


def _last_convolution(discriminator):
    convolutions = [layer.name for layer in discriminator.layers if _is_convolution(layer)]
    if not convolutions:
        raise ValueError(
            "The discriminator has no Conv2D layer to take the features from: pass feature_layer, the name of "
            f"one of its layers. Received: layers {[layer.name for layer in discriminator.layers]}"
        )
    return convolutions[-1]


def _is_convolution(layer):
    # A spectrally normalized convolution is a wrapper around one.
    if isinstance(layer, keras.layers.SpectralNormalization):
        layer = layer.layer
    return isinstance(layer, keras.layers.Conv2D)


def _flat_logits(logits):
    return ops.cast(ops.reshape(logits, (-1,)), "float32")
