"""The discretized logistic mixture of PixelCNN++ (Salimans et al. 2017) over whole 8-bit images.

Pixels are values in [0, 1] on the 256-level grid k/255. Each pixel's channels come from one of
K mixture components; in component k, channel c is a logistic with scale s_kc whose mean is
shifted linearly by the pixel's earlier channels, as in PixelCNN++ (G by R, B by R and G):

    m_kc = μ_kc + Σ_(j<c) α_kcj · x_j,        α = tanh(raw coefficient)

and is discretized into bins of width 1/255 centred on k/255, the edge bins at 0 and 1 taking the
tails (−∞ and +∞). So a pixel's probability is exact and the 256 bins of a channel sum to 1.
"""

import math

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

NUM_LEVELS = 256
# Half a bin: the grid k/255 has spacing 1/255.
_HALF_BIN = 0.5 / (NUM_LEVELS - 1)
# log s is floored here, as PixelCNN++ floors it at −7 on [−1, 1] pixels (−7.7 on [0, 1]):
# s ≥ 3.4e-4, a fifth of a half-bin, already puts 99% of a component's mass in one bin.
MIN_LOG_SCALE = -8.0
# And capped at s = e^3 = 20, far wider than [0, 1]: beyond e^88 the bin width over s underflows and
# log_prob becomes −inf (a decoder whose weights jumped in one step reached log s = 2790 on CIFAR-10).
MAX_LOG_SCALE = 3.0


def num_coefficients(channels):
    """The coupling coefficients per component: one per pair j < c, C(C − 1)/2."""
    return channels * (channels - 1) // 2


def parameters_per_component(channels):
    """1 logit, C means, C log-scales and C(C − 1)/2 coefficients: (C + 1)(C + 2)/2 (10 for RGB)."""
    return 1 + 2 * channels + num_coefficients(channels)


def channels_of(parameter_channels, num_components):
    """The image channels C of a `[..., K (C + 1)(C + 2)/2]` parameter tensor; inverse of the above."""
    per_component, remainder = divmod(parameter_channels, num_components)
    channels = int(round((math.sqrt(8 * per_component + 1) - 3) / 2))
    if remainder or channels < 1 or parameters_per_component(channels) != per_component:
        raise ValueError(
            f"A logistic mixture of {num_components} components needs K(C + 1)(C + 2)/2 parameter channels "
            f"(3K for grey, 10K for colour). Received: {parameter_channels} parameter channels"
        )
    return channels


def split_parameters(params, channels, num_components):
    """`[B, H, W, P]` → logits `[B, H, W, K]`, loc and log_scale `[B, H, W, K, C]`, coefficients `[B, H, W, K, C(C−1)/2]`.

    The last axis holds K logits, then K·C means, K·C raw log-scales and K·C(C − 1)/2 raw
    coefficients, each block component-major. Log-scales are floored at `MIN_LOG_SCALE` and
    coefficients go through tanh, as in PixelCNN++ (log-scales also capped at `MAX_LOG_SCALE`).
    """
    params = tf.convert_to_tensor(params, tf.float32)
    k, c = num_components, channels
    logits, loc, log_scale, coefficients = tf.split(params, [k, k * c, k * c, k * num_coefficients(c)], axis=-1)
    shape = tf.shape(params)[:-1]

    def per_component(t, size):
        return tf.reshape(t, tf.concat([shape, [k, size]], 0))

    return (
        logits,
        per_component(loc, c),
        tf.clip_by_value(per_component(log_scale, c), MIN_LOG_SCALE, MAX_LOG_SCALE),
        tf.tanh(per_component(coefficients, num_coefficients(c))),
    )


class DiscretizedLogisticMixture(tfd.Distribution):
    """p(x) = Π_pixels Σ_k π_k Π_c DiscretizedLogistic(x_c | m_kc(x_<c), s_kc) over images `[B, H, W, C]`.

    Batch shape `[B]`, event shape `[H, W, C]`: `log_prob` is one number per image, in nats, of
    images whose values are k/255.

    - `log_prob(x)`: a bin's log-probability is computed in closed form in log space,
      log(σ(a) − σ(b)) = log σ(a) + log σ(−b) + log(1 − e^(b−a)), a − b = (1/255)/s. It never
      underflows, so PixelCNN++'s fallback (log of the density at the bin centre times the bin
      width, taken where the CDF difference is below 1e-5) is not needed: this is exact where that
      one approximates. The edge bins are log σ(a) (x = 0) and log σ(−b) (x = 1).
    - `sample(n, seed=...)`: a component per pixel, then channel by channel a logistic draw around
      the mean shifted by the already drawn (discretized) earlier channels, rounded to the grid and
      clipped to [0, 1]; so samples come from exactly the distribution `log_prob` scores.
      `seed` is anything `tfp.random.sanitize_seed` takes (an int, a stateless int32 pair).
    - `mean()`: Σ_k π_k E_k[X_c], differentiable, with E[clip(Y, 0, 1)] = s·(softplus(m/s) −
      softplus((m − 1)/s)) for a logistic Y of mean m and scale s. Two approximations: it is the
      mean of the continuous clipped logistic, before rounding to the grid (off by well under a bin,
      1/255); and the coupling is taken at the earlier channels' component means (m_kc uses
      E_k[X_j] for x_j), exact when clipping does not bite (the mean is then linear in x_j) and a
      plug-in approximation near 0 and 1.

    Args:
        logits: float tensor `[B, H, W, K]`, the mixture weights' logits.
        loc: float tensor `[B, H, W, K, C]`, μ (before the coupling).
        log_scale: float tensor `[B, H, W, K, C]`, log s.
        coefficients: float tensor `[B, H, W, K, C(C − 1)/2]`, α for the pairs (1, 0), (2, 0),
            (2, 1), ... (channel c from the earlier channel j), already in (−1, 1).
        validate_args: bool. Defaults to False.
        allow_nan_stats: bool. Defaults to True.
        name: str. Defaults to `"DiscretizedLogisticMixture"`.
    """

    def __init__(
        self, logits, loc, log_scale, coefficients, validate_args=False, allow_nan_stats=True,
        name="DiscretizedLogisticMixture",
    ):
        parameters = dict(locals())
        with tf.name_scope(name):
            self._logits = tf.convert_to_tensor(logits, tf.float32)
            self._loc = tf.convert_to_tensor(loc, tf.float32)
            self._log_scale = tf.convert_to_tensor(log_scale, tf.float32)
            self._coefficients = tf.convert_to_tensor(coefficients, tf.float32)
            self._channels = int(self._loc.shape[-1])
            if int(self._coefficients.shape[-1]) != num_coefficients(self._channels):
                raise ValueError(
                    f"coefficients must have C(C - 1)/2 = {num_coefficients(self._channels)} entries on the last axis "
                    f"for C = {self._channels} channels. Received: coefficients with shape {self._coefficients.shape}"
                )
        super().__init__(
            dtype=tf.float32,
            reparameterization_type=tfd.NOT_REPARAMETERIZED,
            validate_args=validate_args,
            allow_nan_stats=allow_nan_stats,
            parameters=parameters,
            name=name,
        )

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict(
            logits=tfp.util.ParameterProperties(event_ndims=3),
            loc=tfp.util.ParameterProperties(event_ndims=4),
            log_scale=tfp.util.ParameterProperties(event_ndims=4),
            coefficients=tfp.util.ParameterProperties(event_ndims=4),
        )

    @property
    def logits(self):
        return self._logits

    @property
    def loc(self):
        return self._loc

    @property
    def log_scale(self):
        return self._log_scale

    @property
    def coefficients(self):
        return self._coefficients

    def _event_shape(self):
        return tf.TensorShape([*self._loc.shape[-4:-2], self._channels])

    def _event_shape_tensor(self):
        return tf.concat([tf.shape(self._loc)[-4:-2], [self._channels]], 0)

    def _shifted_loc(self, x):
        """m `[..., K, C]`: μ shifted by the earlier channels of `x` `[..., C]` (broadcast over K)."""
        x = x[..., None, :]
        columns, pair = [], 0
        for c in range(self._channels):
            # Broadcast against x, so that every column has the sample dimensions of x.
            column = self._loc[..., c] + tf.zeros_like(x[..., 0])
            for j in range(c):
                column = column + self._coefficients[..., pair] * x[..., j]
                pair += 1
            columns.append(column)
        return tf.stack(columns, axis=-1)

    def pixel_log_prob(self, x):
        """log p of every pixel (its channels jointly), `[..., B, H, W]`."""
        x = tf.convert_to_tensor(x, tf.float32)
        centred = x[..., None, :] - self._shifted_loc(x)
        inverse_scale = tf.exp(-self._log_scale)
        upper = (centred + _HALF_BIN) * inverse_scale
        lower = (centred - _HALF_BIN) * inverse_scale
        log_cdf_upper = tf.math.log_sigmoid(upper)
        log_survival_lower = tf.math.log_sigmoid(-lower)
        # log(1 − e^(−d)), d = (1/255)/s > 0: -expm1 keeps it accurate when d is small (s wide).
        log_width = tf.math.log(-tf.math.expm1(-2.0 * _HALF_BIN * inverse_scale))
        interior = log_cdf_upper + log_survival_lower + log_width
        channel_log_prob = tf.where(
            x[..., None, :] < _HALF_BIN,
            log_cdf_upper,
            tf.where(x[..., None, :] > 1.0 - _HALF_BIN, log_survival_lower, interior),
        )
        log_weights = tf.nn.log_softmax(self._logits, axis=-1)
        return tf.reduce_logsumexp(log_weights + tf.reduce_sum(channel_log_prob, axis=-1), axis=-1)

    def _log_prob(self, x):
        return tf.reduce_sum(self.pixel_log_prob(x), axis=[-2, -1])

    def _sample_n(self, n, seed=None):
        component_seed, *channel_seeds = tfp.random.split_seed(
            tfp.random.sanitize_seed(seed), n=1 + self._channels
        )
        logits = tf.broadcast_to(self._logits, tf.concat([[n], tf.shape(self._logits)], 0))
        component = tfd.Categorical(logits=logits).sample(seed=component_seed)
        one_hot = tf.one_hot(component, tf.shape(self._logits)[-1])[..., None]  # [n, B, H, W, K, 1]

        def chosen(t):
            return tf.reduce_sum(one_hot * t, axis=-2)  # [n, B, H, W, size]

        loc, log_scale, coefficients = chosen(self._loc), chosen(self._log_scale), chosen(self._coefficients)
        pixels, pair = [], 0
        for c in range(self._channels):
            mean = loc[..., c]
            for j in range(c):
                mean = mean + coefficients[..., pair] * pixels[j]
                pair += 1
            u = tf.random.stateless_uniform(tf.shape(mean), seed=channel_seeds[c], minval=1e-5, maxval=1.0 - 1e-5)
            value = mean + tf.exp(log_scale[..., c]) * (tf.math.log(u) - tf.math.log1p(-u))
            # Rounding to the nearest level is the bin that holds the value; the clip gives the edge bins the tails.
            pixels.append(tf.clip_by_value(tf.round(value * (NUM_LEVELS - 1)), 0.0, NUM_LEVELS - 1.0) / (NUM_LEVELS - 1))
        return tf.stack(pixels, axis=-1)

    def _mean(self):
        scale = tf.exp(self._log_scale)
        means, pair = [], 0
        for c in range(self._channels):
            shifted = self._loc[..., c]
            for j in range(c):
                shifted = shifted + self._coefficients[..., pair] * means[j]
                pair += 1
            s = scale[..., c]
            means.append(s * (tf.math.softplus(shifted / s) - tf.math.softplus((shifted - 1.0) / s)))
        weights = tf.nn.softmax(self._logits, axis=-1)[..., None]
        return tf.reduce_sum(weights * tf.stack(means, axis=-1), axis=-2)
