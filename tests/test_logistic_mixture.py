"""The discretized logistic mixture, the σ-VAE's optimal scale, bits per dimension, and their wiring."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasgen import distributions
from kerasgen.logistic_mixture import DiscretizedLogisticMixture, split_parameters
from kerasgen.models.gan import GAN
from kerasgen.models.vae import VAE

LEVELS = np.arange(256, dtype=np.float32) / 255.0


def _mixture(channels, num_components=3, seed=0, batch=1, size=1, spread=1.0):
    """A random mixture over `[batch, size, size, channels]` images, from raw decoder-like parameters."""
    rng = np.random.default_rng(seed)
    likelihood = distributions.LogisticMixture(num_components)
    params = rng.normal(size=(batch, size, size, likelihood.parameter_channels(channels))).astype("float32")
    logits, loc, log_scale, coefficients = split_parameters(params, channels, num_components)
    # Means spread over [−0.2, 1.2], so that the edge bins hold mass; scales between 0.01 and 0.2.
    loc = 0.5 + 0.7 * spread * tf.tanh(loc)
    log_scale = tf.math.log(0.01 + 0.19 * tf.sigmoid(log_scale))
    return DiscretizedLogisticMixture(logits, loc, log_scale, coefficients)


def _all_pixels(channels):
    """Every colour of one pixel, `[256**C, 1, 1, 1, C]`: the batch axis of the mixture is 1."""
    grids = np.meshgrid(*[LEVELS] * channels, indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=-1).reshape(-1, 1, 1, 1, channels)


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@pytest.mark.parametrize("channels", [1, 3])
def test_probabilities_over_all_bins_sum_to_one(channels):
    mixture = _mixture(channels)
    pixels = _all_pixels(channels)
    log_prob = np.concatenate([mixture.log_prob(chunk).numpy() for chunk in np.array_split(pixels, 64)])
    assert log_prob.shape == (256**channels, 1)
    # Coupled channels: the sum over G and B of p(R, G, B) is still 1 only if the shifts are consistent.
    assert np.exp(log_prob.astype(np.float64)).sum() == pytest.approx(1.0, abs=1e-4)


def test_log_prob_of_one_pixel_matches_a_hand_computation():
    # Two components, RGB, one pixel; the coefficients couple G to R and B to R and G.
    logits = np.array([0.3, -0.4], np.float32)
    loc = np.array([[0.2, 0.5, 0.9], [0.6, 0.1, 0.4]], np.float32)
    log_scale = np.log(np.array([[0.05, 0.1, 0.02], [0.2, 0.03, 0.08]], np.float32))
    coefficients = np.array([[0.5, -0.3, 0.2], [-0.6, 0.1, 0.7]], np.float32)
    mixture = DiscretizedLogisticMixture(
        logits[None, None, None], loc[None, None, None], log_scale[None, None, None], coefficients[None, None, None]
    )
    half = 0.5 / 255
    for pixel in ([0.0, 0.4, 1.0], [37 / 255, 0.0, 200 / 255], [1.0, 1.0, 128 / 255]):
        weights = np.exp(logits) / np.exp(logits).sum()
        total = 0.0
        for k in range(2):
            means = [
                loc[k, 0],
                loc[k, 1] + coefficients[k, 0] * pixel[0],
                loc[k, 2] + coefficients[k, 1] * pixel[0] + coefficients[k, 2] * pixel[1],
            ]
            p = weights[k]
            for c in range(3):
                s = math.exp(log_scale[k, c])
                upper = _sigmoid((pixel[c] - means[c] + half) / s)
                lower = _sigmoid((pixel[c] - means[c] - half) / s)
                p *= upper if pixel[c] == 0.0 else (1.0 - lower if pixel[c] == 1.0 else upper - lower)
            total += p
        computed = mixture.log_prob(np.array(pixel, np.float32).reshape(1, 1, 1, 3)).numpy()[0]
        assert computed == pytest.approx(math.log(total), abs=1e-4)


def test_log_prob_stays_finite_where_the_cdf_difference_underflows():
    # A bin 59 scales from the mean: σ(a) − σ(b) is 0 in float32 (so PixelCNN++ falls back to the
    # mid-bin density there); in the tail it is e^−t · 2 sinh(h/s) up to a relative e^−t.
    s = 0.001
    mixture = DiscretizedLogisticMixture(
        np.zeros((1, 1, 1, 1), np.float32), np.full((1, 1, 1, 1, 1), 0.2, np.float32),
        np.full((1, 1, 1, 1, 1), math.log(s), np.float32), np.zeros((1, 1, 1, 1, 0), np.float32),
    )
    x = 0.2 + 60 * s
    x = round(x * 255) / 255
    t, h = (x - 0.2) / s, 0.5 / 255 / s
    assert np.float32(1 / (1 + np.exp(-(t + h)))) - np.float32(1 / (1 + np.exp(-(t - h)))) == 0.0
    computed = mixture.log_prob(np.full((1, 1, 1, 1), x, np.float32)).numpy()[0]
    assert computed == pytest.approx(-t + math.log(2 * math.sinh(h)), abs=1e-3)


@pytest.mark.parametrize("channels", [1, 3])
def test_samples_lie_on_the_grid_and_follow_the_probabilities(channels):
    mixture = _mixture(channels, seed=1, spread=0.3)
    samples = mixture.sample(20000, seed=(3, 4)).numpy()  # [n, 1, 1, 1, C]
    assert samples.shape == (20000, 1, 1, 1, channels)
    levels = samples * 255
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    # The red channel's marginal (the first channel does not depend on the others), in 16 coarse bins.
    pixels = _all_pixels(channels)
    probabilities = np.exp(np.concatenate([mixture.log_prob(c).numpy() for c in np.array_split(pixels, 64)])[:, 0])
    red = np.round(pixels[:, 0, 0, 0, 0] * 255).astype(int) // 16
    expected = np.bincount(red, weights=probabilities, minlength=16) * len(samples)
    observed = np.bincount(np.round(levels[:, 0, 0, 0, 0]).astype(int) // 16, minlength=16)
    keep = expected > 5
    chi_square = np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep])
    # 99.9% quantile of chi-square with ≤ 15 degrees of freedom is 37.7.
    assert chi_square < 37.7
    assert mixture.sample(3, seed=(3, 4)).numpy() == pytest.approx(mixture.sample(3, seed=(3, 4)).numpy())


@pytest.mark.parametrize("channels, spread", [(1, 1.0), (3, 0.5)])
def test_mean_matches_a_monte_carlo_mean(channels, spread):
    mixture = _mixture(channels, seed=2, batch=2, size=2, spread=spread)
    mean = mixture.mean().numpy()
    assert mean.shape == (2, 2, 2, channels)
    monte_carlo = mixture.sample(20000, seed=(5, 6)).numpy().mean(axis=0)
    # Standard error ≤ 0.5 / sqrt(20000) = 0.0035. The first channel's mean is exact up to rounding;
    # the coupled ones plug in the earlier channels' means, which is off where clipping bites.
    np.testing.assert_allclose(mean[..., 0], monte_carlo[..., 0], atol=0.012)
    np.testing.assert_allclose(mean, monte_carlo, atol=0.03)


def test_mean_is_differentiable():
    params = tf.Variable(np.random.default_rng(0).normal(size=(1, 2, 2, 30)).astype("float32"))
    likelihood = distributions.LogisticMixture(3)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(likelihood.mean(params))
    gradient = tape.gradient(value, params).numpy()
    assert np.isfinite(gradient).all() and np.abs(gradient).sum() > 0


@pytest.mark.parametrize("channels", [1, 3])
def test_likelihood_channels_round_trip(channels):
    likelihood = distributions.LogisticMixture(4)
    assert likelihood.parameter_channels(channels) == 4 * (channels + 1) * (channels + 2) // 2
    assert likelihood.image_channels(likelihood.parameter_channels(channels)) == channels
    gaussian = distributions.Gaussian("global")
    assert gaussian.image_channels(gaussian.parameter_channels(channels)) == channels
    assert distributions.Gaussian("optimal").parameter_channels(channels) == channels
    with pytest.raises(ValueError, match="Received: 7 parameter channels"):
        likelihood.image_channels(7)


def test_bits_per_dimension_of_known_values():
    assert distributions.bits_per_dimension(3072 * math.log(2), 3072, discrete=True) == pytest.approx(1.0)
    assert distributions.bits_per_dimension(0.0, 3072, discrete=False) == pytest.approx(math.log2(255))
    # A uniform distribution over the 256 levels is 8 bits; as a density on [0, 1] it is 1, i.e. 0 nats.
    assert distributions.bits_per_dimension(10 * math.log(256), 10, discrete=True) == pytest.approx(8.0)
    assert distributions.bits_per_dimension(-100 * math.log(2), 100, discrete=False) == pytest.approx(math.log2(255) - 1)
    assert distributions.LogisticMixture().discrete and distributions.Bernoulli().discrete
    assert not distributions.Gaussian().discrete and not distributions.ContinuousBernoulli().discrete
    with pytest.raises(ValueError, match="Received: num_dimensions=0"):
        distributions.bits_per_dimension(1.0, 0, discrete=True)


def test_optimal_scale_is_the_per_image_mean_squared_error():
    rng = np.random.default_rng(0)
    loc = rng.uniform(size=(3, 4, 4, 3)).astype("float32")
    x = np.clip(loc + rng.normal(scale=[[[[0.05]]], [[[0.1]]], [[[0.3]]]], size=loc.shape), 0, 1).astype("float32")
    distribution = distributions.Gaussian("optimal").distribution(tf.constant(loc))
    mse = ((x - loc) ** 2).reshape(3, -1).mean(axis=1)
    np.testing.assert_allclose(distribution.optimal_scale(x).numpy() ** 2, mse, rtol=1e-4)
    d = 4 * 4 * 3
    expected = -0.5 * d * (np.log(2 * np.pi * mse) + 1)
    np.testing.assert_allclose(distribution.log_prob(x).numpy(), expected, rtol=1e-4)
    np.testing.assert_allclose(distribution.mean().numpy(), loc)
    with pytest.raises(ValueError, match="Received: likelihood_scale='best'"):
        distributions.Gaussian("best")


def _colour_images():
    rng = np.random.default_rng(0)
    # 8 tiny colour images: smooth gradients with a random tint, quantized to 8 bits.
    ramp = np.linspace(0, 1, 16, dtype=np.float32)
    images = ramp[None, :, None, None] * rng.uniform(size=(8, 1, 1, 3)) + rng.uniform(0, 0.3, size=(8, 1, 16, 3))
    return (np.round(np.clip(images, 0, 1) * 255) / 255).astype("float32")


def _mixture_vae(**kwargs):
    keras.utils.set_random_seed(0)
    return VAE(
        image_shape=(16, 16, 3), latent_dim=2, num_filters=(4,), hidden_dim=8, seed=0,
        likelihood="logistic_mixture", likelihood_components=3, **kwargs,
    )


def test_vae_with_the_mixture_round_trips_and_turns_into_a_gan(tmp_path):
    vae = _mixture_vae()
    images = _colour_images()
    assert vae.decoder.output_shape[-1] == 30
    path = str(tmp_path / "vae.keras")
    vae.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.likelihood_components == 3
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded.reconstruct(images)), keras.ops.convert_to_numpy(vae.reconstruct(images)), atol=1e-6
    )
    gan = GAN.from_vae(vae, seed=0)
    assert gan.image_shape == (16, 16, 3)
    z = np.random.default_rng(0).normal(size=(2, 2)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(gan.generator(z)), keras.ops.convert_to_numpy(vae.decode(z)), atol=1e-5
    )


@pytest.mark.parametrize("kwargs", [dict(likelihood="logistic_mixture"), dict(likelihood="gaussian", likelihood_scale="optimal")])
def test_fit_loss_is_finite_and_goes_down_on_colour_images(kwargs):
    keras.utils.set_random_seed(0)
    kwargs = {"likelihood_components": 3, **kwargs}
    vae = VAE(image_shape=(16, 16, 3), latent_dim=2, num_filters=(4,), hidden_dim=8, seed=0, **kwargs)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = vae.fit(_colour_images(), batch_size=8, epochs=6, verbose=0).history["loss"]
    assert np.isfinite(history).all()
    assert history[-1] < history[0]


@pytest.mark.parametrize(
    "likelihood, scale, expected",
    [("logistic_mixture", "pixel", 1.0), ("gaussian", "optimal", 1.0 + math.log2(255)), ("bernoulli", "pixel", None)],
)
def test_report_adds_bits_per_dimension_beside_nats(likelihood, scale, expected):
    from types import SimpleNamespace

    from kerasgen.evaluation.report import _add_bits_per_dimension

    model = SimpleNamespace(likelihood=likelihood, likelihood_scale=scale, likelihood_components=3, image_shape=(4, 4, 3))
    nats = 48 * math.log(2)
    metrics = {"elbo": {"elbo": -nats}, "importance_weighted": {"log_likelihood": -nats / 2}}
    _add_bits_per_dimension(model, metrics)
    if expected is None:
        assert "bits_per_dimension" not in metrics["elbo"]
        return
    assert metrics["elbo"]["bits_per_dimension"] == pytest.approx(expected)
    assert metrics["importance_weighted"]["bits_per_dimension"] == pytest.approx(expected - 0.5)
