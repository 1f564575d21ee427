"""Distributions built from network outputs: the posterior q(z|x), the prior p(z), the likelihood p(x|z).

`tfp.layers` are Keras 2 objects and cannot live in a Keras 3 model, so networks here return plain
parameter tensors and the small functions and classes below turn them into `tfd` objects inside
`call` / `train_step`. One likelihood object answers training and evaluation through `log_prob`.
"""

import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from kerasgen import logistic_mixture, validate
from kerasgen.options import GAUSSIAN_SCALES, LIKELIHOODS, POSTERIORS

tfd = tfp.distributions
tfb = tfp.bijectors

# PixelCNN++'s, NVAE's and VDVAE's choice on CIFAR-10; on colour it costs a 100-channel last convolution.
DEFAULT_MIXTURE_COMPONENTS = 10

# Floors keep learned scales strictly positive so log-densities stay finite early in training.
_MIN_POSTERIOR_SCALE = 1e-5
_MIN_PIXEL_SCALE = 1e-3
# The floor of the optimal σ, e^-6 = 0.0025 (Rybkin et al.'s code floors log σ at −6, softly).
_MIN_OPTIMAL_SCALE = math.exp(-6.0)


def standard_normal_prior(latent_dim):
    """The prior p(z) = N(0, I) over `latent_dim` dimensions."""
    return tfd.MultivariateNormalDiag(
        loc=tf.zeros([latent_dim]), scale_diag=tf.ones([latent_dim])
    )


def is_standard_normal(distribution):
    """True when `distribution` is N(0, I) over its event, as `standard_normal_prior` builds it.

    Lets code that shows a model's latents (`kerasgen.latent.prior_latents`) draw N(0, I) the one
    way every model shares, and any other prior with its own `sample`.
    """
    if not isinstance(distribution, tfd.MultivariateNormalDiag):
        return False
    loc, scale = (ops.convert_to_numpy(value) for value in (distribution.loc, distribution.stddev()))
    return bool(np.all(loc == 0.0) and np.all(scale == 1.0))


def feature_gaussian(loc, scale=1.0):
    """N(f | loc, scale² I) over whole feature maps: one `log_prob` per example.

    The VAE-GAN's likelihood of the discriminator's features of an image given those of its
    reconstruction (Larsen et al. 2016), `loc` `[B, ...]`; `scale` 1 is the paper's identity covariance.
    """
    loc = ops.cast(loc, "float32")
    return tfd.Independent(tfd.Normal(loc, ops.ones_like(loc) * scale), len(loc.shape) - 1)


def circle_mixture_prior(latent_dim, num_components=10, radius=4.0, component_scale=0.5):
    """p(z) as an equal-weight mixture of Gaussians whose means lie evenly on a circle.

    Component k has mean `radius · (cos 2πk/K, sin 2πk/K, 0, ..., 0)`: the circle lies in the plane
    of the first two latent axes. Its diagonal scale is `component_scale` on those two axes and 1
    on the others, so beyond the plane the prior is N(0, I), as the normal prior is.

    Args:
        latent_dim: int >= 2, D.
        num_components: int >= 1, K. Defaults to 10.
        radius: float > 0, the circle's radius. Defaults to 4.
        component_scale: float > 0, each component's standard deviation in the circle's plane.
            Defaults to 0.5.

    Returns:
        A `tfd.MixtureSameFamily` of `tfd.MultivariateNormalDiag`, event shape `[D]`.
    """
    angles = 2 * math.pi * np.arange(num_components) / num_components
    loc = np.zeros((num_components, latent_dim), np.float32)
    loc[:, 0], loc[:, 1] = radius * np.cos(angles), radius * np.sin(angles)
    scale = np.ones((num_components, latent_dim), np.float32)
    scale[:, :2] = component_scale
    return tfd.MixtureSameFamily(
        mixture_distribution=tfd.Categorical(logits=tf.zeros([num_components])),
        components_distribution=tfd.MultivariateNormalDiag(loc=tf.constant(loc), scale_diag=tf.constant(scale)),
    )


def diagonal_gaussian(params):
    """q(z|x) as a diagonal Gaussian from `[loc, raw_scale]` on the last axis."""
    loc, raw_scale = ops.split(params, 2, axis=-1)
    return tfd.MultivariateNormalDiag(loc, ops.softplus(raw_scale) + _MIN_POSTERIOR_SCALE)


def full_covariance_gaussian(params):
    """q(z|x) as a full-covariance Gaussian from `[loc, packed lower-triangular scale]`.

    The last axis holds `D` means followed by the `D * (D + 1) / 2` entries of the Cholesky
    factor, whose diagonal goes through a softplus.
    """
    latent_dim = posterior_latent_dim("full", params.shape[-1])
    loc, packed = params[..., :latent_dim], params[..., latent_dim:]
    scale_tril = tfb.FillScaleTriL(diag_shift=_MIN_POSTERIOR_SCALE)(packed)
    return tfd.MultivariateNormalTriL(loc, scale_tril)


def posterior_parameter_size(posterior, latent_dim):
    """How many numbers the encoder emits per image for a posterior family."""
    validate.one_of("posterior", posterior, POSTERIORS)
    if posterior == "diagonal":
        return 2 * latent_dim
    return latent_dim + latent_dim * (latent_dim + 1) // 2


def posterior_latent_dim(posterior, parameter_size):
    """Inverse of `posterior_parameter_size`."""
    if posterior == "diagonal":
        return parameter_size // 2
    # Solve D + D(D+1)/2 = n for D.
    return int((math.sqrt(8 * parameter_size + 9) - 3) / 2)


def make_posterior(posterior):
    """The function from encoder outputs to q(z|x) for a name in `options.POSTERIORS`."""
    return _POSTERIORS[validate.one_of("posterior", posterior, POSTERIORS)]


# One function per name of `options.POSTERIORS`.
_POSTERIORS = {"diagonal": diagonal_gaussian, "full": full_covariance_gaussian}


def posterior_scale(distribution):
    """The scale of q(z|x): the diagonal for a diagonal Gaussian, the Cholesky factor otherwise.

    A deterministic encoder's point mass (`tfd.Independent` of `tfd.Deterministic`) has scale 0 on
    the diagonal, `[B, D]`.
    """
    if isinstance(distribution, tfd.MultivariateNormalDiag):
        return distribution.stddev()
    if isinstance(distribution, tfd.Independent) and isinstance(distribution.distribution, tfd.Deterministic):
        return ops.zeros_like(distribution.mean())
    return distribution.scale.to_dense()


def kl_divergence(posterior, prior, z=None):
    """KL(q || p) per example: analytic where TFP registers it, else a one-sample Monte Carlo estimate.

    Args:
        posterior: `tfd.Distribution`, q(z|x) with batch shape `[B]`.
        prior: `tfd.Distribution`, p(z).
        z: optional tensor, a sample of q used for the Monte Carlo fallback (drawn if None).

    Returns:
        A `[B]` tensor of KL divergences in nats.
    """
    try:
        return tfd.kl_divergence(posterior, prior)
    except NotImplementedError:
        if z is None:
            z = posterior.sample()
        return posterior.log_prob(z) - prior.log_prob(z)


def kl_per_dimension(posterior, prior):
    """KL(q(z_i|x) ‖ p(z_i)) for every image and dimension, in closed form between Gaussian marginals.

    With q(z_i|x) = N(μ, s²) and p(z_i) = N(m, σ²): log(σ / s) + (s² + (μ − m)²) / (2σ²) − ½.
    The marginals come from `.mean()` and `.stddev()`, so a full-covariance q or p works too.

    Args:
        posterior: q(z|x), a multivariate normal (`MultivariateNormalDiag`, `...TriL`, ...) or
            independent normals, batch shape `[B]`, event shape `[D]`.
        prior: p(z), the same kinds of distribution, event shape `[D]`.

    Returns:
        Tensor `[B, D]`, nats.

    Raises:
        ValueError: q or p has no Gaussian marginals (a point mass, a mixture): their per-dimension
            KL has no closed form (a point mass's is infinite).

    Example:

        q = tfd.MultivariateNormalDiag([[0.2, 4.0]], [[1.2**0.5, 3**0.5]])
        kl_per_dimension(q, tfd.MultivariateNormalDiag(tf.zeros(2), tf.ones(2)))  # [[0.0288, 8.4506]]
    """
    refusal = kl_per_dimension_refusal(posterior, prior)
    if refusal:
        raise ValueError(
            "kl_per_dimension has a closed form only between Gaussian marginals (a multivariate normal or "
            f"independent normals); {refusal}. Received: posterior={type(posterior).__name__}, "
            f"prior={type(prior).__name__}"
        )
    mean, stddev = posterior.mean(), posterior.stddev()
    prior_mean, prior_stddev = prior.mean(), prior.stddev()
    return (
        tf.math.log(prior_stddev / stddev)
        + (tf.square(stddev) + tf.square(mean - prior_mean)) / (2.0 * tf.square(prior_stddev))
        - 0.5
    )


def kl_per_dimension_refusal(posterior, prior):
    """Why `kl_per_dimension` refuses this pair of distributions, or None when it has a closed form."""
    for name, distribution in (("posterior", posterior), ("prior", prior)):
        reason = _not_gaussian(distribution)
        if reason:
            return f"the {name} is a {type(distribution).__name__}: {reason}"
    return None


def _not_gaussian(distribution):
    """None when every 1-D marginal of `distribution` is Gaussian, else why not."""
    if isinstance(distribution, tfd.MultivariateNormalLinearOperator):
        return None
    if isinstance(distribution, tfd.Independent) and isinstance(distribution.distribution, tfd.Normal):
        return None
    if isinstance(distribution, tfd.Independent) and isinstance(distribution.distribution, tfd.Deterministic):
        return "a point mass, whose KL to a density is infinite"
    return "its marginals are not Gaussian, so their KL has no closed form"


def diagonal_gaussian_refusal(posterior, prior):
    """Why the per-dimension KLs of this pair do not sum to KL(q ‖ p), or None when they do.

    They do exactly when both are diagonal Gaussians (`MultivariateNormalDiag`, or `Independent`
    normals): then KL(q ‖ p) = Σ_i KL(q(z_i|x) ‖ p(z_i)). A full-covariance q's correlations hold
    KL that no single dimension has, and other families have no per-dimension closed form.
    """
    for name, distribution in (("posterior", posterior), ("prior", prior)):
        if isinstance(distribution, tfd.MultivariateNormalDiag):
            continue
        if isinstance(distribution, tfd.Independent) and isinstance(distribution.distribution, tfd.Normal):
            continue
        reason = _not_gaussian(distribution) or "a Gaussian with a non-diagonal covariance"
        return f"the {name} is a {type(distribution).__name__}: {reason}"
    return None


class Likelihood:
    """p(x|z) over whole images, built from the decoder's parameter tensor.

    Subclasses define `distribution(params)` (an image-level distribution, so `log_prob`
    returns one number per image) and `mean(params)` (the image the model "means").
    `decoder_head(image_shape)` optionally returns a Keras layer appended to the decoder, for
    parameters that do not depend on z (a learned pixel scale).

    Channels: for C image channels the decoder's network emits `network_channels(C)` per pixel,
    the head (if any) widens that to `parameter_channels(C)`, the tensor `distribution` takes;
    `image_channels(P)` is the inverse of `parameter_channels`.

    `discrete` says what `log_prob` is: True for a probability of the observed values (binary
    pixels, or the 256 levels of 8-bit pixels), False for a density on [0, 1] (see
    `bits_per_dimension` for the conversion).
    """

    name = None
    discrete = False

    def distribution(self, params):
        raise NotImplementedError

    def mean(self, params):
        return self.distribution(params).mean()

    def decoder_head(self, image_shape):
        return None

    def parameter_channels(self, channels):
        """Channels of the parameter tensor for images of `channels` channels."""
        return channels

    def network_channels(self, channels):
        """Channels the decoder network's last convolution emits (the head adds the rest)."""
        return self.parameter_channels(channels)

    def image_channels(self, parameter_channels):
        """The image channels C of a parameter tensor of `parameter_channels` channels."""
        return parameter_channels


class Bernoulli(Likelihood):
    """Bernoulli pixels from logits, for binarized images."""

    name = "bernoulli"
    discrete = True

    def distribution(self, params):
        return tfd.Independent(tfd.Bernoulli(logits=params, dtype=params.dtype), 3)

    def mean(self, params):
        return ops.sigmoid(params)


class ContinuousBernoulli(Likelihood):
    """The continuous Bernoulli of Loaiza-Ganem & Cunningham (2019): a proper density on [0, 1] pixels."""

    name = "continuous_bernoulli"

    def distribution(self, params):
        return tfd.Independent(tfd.ContinuousBernoulli(logits=params), 3)


class Gaussian(Likelihood):
    """Gaussian pixels around the decoder's output.

    Args:
        scale: str or float. `"pixel"` learns one scale per pixel and channel, `"global"` learns a
            single scale (both floored at 1e-3 so log-densities stay finite), `"optimal"` takes
            each image's maximum-likelihood σ² = its mean squared error (the σ-VAE of Rybkin et al.
            2021, see `OptimalScaleNormal`), a positive float fixes σ to exactly that value.
            Defaults to `"pixel"`.
    """

    name = "gaussian"

    def __init__(self, scale="pixel"):
        self.scale = validate.name_or_number("likelihood_scale", scale, GAUSSIAN_SCALES, above=0)

    def distribution(self, params):
        if self.scale == "optimal":
            return OptimalScaleNormal(params)
        loc, raw_scale = ops.split(params, 2, axis=-1)
        if isinstance(self.scale, str):
            scale = ops.softplus(raw_scale) + _MIN_PIXEL_SCALE
        else:
            # A fixed scale is exactly what was asked for: no floor on top, and not read back
            # through softplus(inverse_softplus(s)), which rounds in float32.
            scale = ops.full_like(loc, self.scale)
        return tfd.Independent(tfd.Normal(loc, scale), 3)

    def mean(self, params):
        if self.scale == "optimal":
            return params
        return ops.split(params, 2, axis=-1)[0]

    def decoder_head(self, image_shape):
        if self.scale == "optimal":
            return None
        return PixelScale(scale=self.scale, name="pixel_scale")

    def parameter_channels(self, channels):
        # `[loc, raw_scale]`; the optimal scale comes from the image, not the decoder.
        return channels if self.scale == "optimal" else 2 * channels

    def network_channels(self, channels):
        return channels

    def image_channels(self, parameter_channels):
        return parameter_channels if self.scale == "optimal" else parameter_channels // 2


class OptimalScaleNormal(tfd.Distribution):
    """N(x | loc, σ*(x)² I) over whole images, σ*(x)² the image's own mean squared error.

    The σ-VAE's "optimal σ" (Rybkin et al. 2021): for a Gaussian with one σ per image, the σ that
    maximizes log p(x|z) is σ*² = mean over pixels and channels of (x − loc)², so it is computed
    analytically from x instead of learned, and a decoder cannot explain the image away as noise
    with a wide learned σ. σ* is floored at e^−6 = 0.0025 (a perfect reconstruction would give an
    infinite density), as the paper's code floors log σ at −6; but with a hard floor, not its soft
    one (−6 + softplus(log σ + 6)), which inflates σ*² by 11% already at σ* = 0.044 (MSE 0.0019).
    No gradient is stopped, as in the paper's code: at σ = σ* the derivative in σ is 0, so the
    gradient with respect to `loc` is the same either way (away from the floor). The paper's code
    takes one σ* per batch; here it is per image, so an image's log-likelihood does not depend on
    the other images of its batch.

    Because σ depends on x, `log_prob` is a profile likelihood, log p(x | loc, σ*(x)) =
    −D/2 · (log(2π σ*²) + 1) at most: not a normalized density in x, so its nats (and bits per
    dimension) are optimistic beside a proper likelihood's. `sample` is refused (σ is undefined
    without an x); `mean()` is `loc`.

    Args:
        loc: float tensor `[B, H, W, C]`.
        name: str. Defaults to `"OptimalScaleNormal"`.
    """

    def __init__(self, loc, validate_args=False, allow_nan_stats=True, name="OptimalScaleNormal"):
        parameters = dict(locals())
        with tf.name_scope(name):
            self._loc = tf.convert_to_tensor(loc, tf.float32)
        super().__init__(
            dtype=tf.float32,
            reparameterization_type=tfd.FULLY_REPARAMETERIZED,
            validate_args=validate_args,
            allow_nan_stats=allow_nan_stats,
            parameters=parameters,
            name=name,
        )

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict(loc=tfp.util.ParameterProperties(event_ndims=3))

    @property
    def loc(self):
        return self._loc

    def optimal_scale(self, x):
        """σ*(x) = sqrt(mean squared error) per image, `[..., B]`, floored at e^−6."""
        squared_error = tf.reduce_mean(tf.square(tf.convert_to_tensor(x, tf.float32) - self._loc), axis=[-3, -2, -1])
        return tf.sqrt(tf.maximum(squared_error, _MIN_OPTIMAL_SCALE**2))

    def _log_prob(self, x):
        scale = self.optimal_scale(x)[..., None, None, None]
        return tf.reduce_sum(tfd.Normal(self._loc, scale).log_prob(x), axis=[-3, -2, -1])

    def _mean(self):
        return self._loc

    def _sample_n(self, n, seed=None):
        raise NotImplementedError(
            "The optimal-σ Gaussian has no σ without an image to measure it on, so it cannot be sampled; "
            "use mean(), or likelihood_scale='global' for a sampleable σ."
        )

    def _event_shape(self):
        return self._loc.shape[-3:]

    def _event_shape_tensor(self):
        return tf.shape(self._loc)[-3:]


class LogisticMixture(Likelihood):
    """The discretized logistic mixture of PixelCNN++ over 8-bit pixels (`logistic_mixture.py`).

    The decoder emits K(C + 1)(C + 2)/2 parameters per pixel (30 for K = 10 on grey images, 100 on
    colour): K logits, K·C means, K·C log-scales, K·C(C − 1)/2 coupling coefficients.

    Args:
        num_components: int >= 1, K. Defaults to `DEFAULT_MIXTURE_COMPONENTS` (10).
    """

    name = "logistic_mixture"
    discrete = True

    def __init__(self, num_components=DEFAULT_MIXTURE_COMPONENTS):
        self.num_components = validate.positive_int("likelihood_components", num_components)

    def distribution(self, params):
        channels = self.image_channels(params.shape[-1])
        return logistic_mixture.DiscretizedLogisticMixture(
            *logistic_mixture.split_parameters(params, channels, self.num_components)
        )

    def parameter_channels(self, channels):
        return self.num_components * logistic_mixture.parameters_per_component(channels)

    def image_channels(self, parameter_channels):
        return logistic_mixture.channels_of(parameter_channels, self.num_components)


def get_likelihood(likelihood, scale="pixel", num_components=DEFAULT_MIXTURE_COMPONENTS):
    """The `Likelihood` for a name in `options.LIKELIHOODS`.

    `scale` only matters for `"gaussian"`, `num_components` only for `"logistic_mixture"`.
    """
    return _LIKELIHOODS[validate.one_of("likelihood", likelihood, LIKELIHOODS)](scale, num_components)


# One builder per name of `options.LIKELIHOODS`, from `(scale, num_components)`.
_LIKELIHOODS = {
    "bernoulli": lambda scale, num_components: Bernoulli(),
    "gaussian": lambda scale, num_components: Gaussian(scale),
    "continuous_bernoulli": lambda scale, num_components: ContinuousBernoulli(),
    "logistic_mixture": lambda scale, num_components: LogisticMixture(num_components),
}


def bits_per_dimension(nats_per_image, num_dimensions, discrete):
    """A negative log-likelihood in nats per image as bits per dimension (pixel and channel).

    For a discrete likelihood (a probability of the observed values: Bernoulli on binary pixels,
    the logistic mixture on 256 levels) it is nats / (D ln 2). For a density on [0, 1] pixels
    (Gaussian, continuous Bernoulli) the density is read as the probability of the value's 8-bit
    bin, density × bin width 1/255, so log2(255) bits per dimension are added: nats / (D ln 2) +
    log2 255. That is the density at the bin centre k/255, without dequantization (no integral
    over the bin, which would be a lower bound), so it approximates the probability of the bin.

    Args:
        nats_per_image: float or array, −log p(x) (or the negative ELBO) in nats per image.
        num_dimensions: int, D = height · width · channels.
        discrete: bool, the likelihood's `discrete`.

    Returns:
        float (or array), bits per dimension.

    Example:

        bits_per_dimension(3072 * math.log(2), 3072, discrete=True)   # 1.0
        bits_per_dimension(0.0, 3072, discrete=False)                 # log2(255) = 7.994
    """
    validate.positive_int("num_dimensions", num_dimensions)
    bits = nats_per_image / (num_dimensions * math.log(2))
    return bits if discrete else bits + math.log2(255)


@keras.saving.register_keras_serializable(package="kerasgen")
class PixelScale(keras.layers.Layer):
    """Appends a z-independent raw scale to the decoder's means: `[loc] -> [loc, raw_scale]`.

    Args:
        scale: `"pixel"` (one learned value per pixel and channel), `"global"` (one learned value)
            or a positive float (fixed, not trained).
    """

    def __init__(self, scale="pixel", **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def build(self, input_shape):
        shape = tuple(input_shape[1:]) if self.scale == "pixel" else (1, 1, 1)
        fixed = not isinstance(self.scale, str)
        # Inverse softplus, so that softplus(raw) is the requested scale (0.1 when learned).
        target = float(self.scale) if fixed else 0.1
        initial = math.log(math.expm1(target))
        self.raw_scale = self.add_weight(
            shape=shape,
            initializer=keras.initializers.Constant(initial),
            trainable=not fixed,
            name="raw_scale",
        )

    def call(self, loc):
        raw = ops.broadcast_to(ops.cast(self.raw_scale, loc.dtype), ops.shape(loc))
        return ops.concatenate([loc, raw], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2 * input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}
