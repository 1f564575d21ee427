import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from kerasgen import distributions
from kerasgen.losses import negative_elbo, negative_iwae_bound

tfd = tfp.distributions


def _diagonal_params(loc, variance):
    """Encoder outputs that give N(loc, variance) through the softplus scale (floor included)."""
    scale = np.sqrt(variance) - 1e-5
    raw = np.log(np.expm1(scale))
    return tf.constant([[loc, raw]], dtype=tf.float32)


@pytest.mark.parametrize("loc, variance, expected", [(0.2, 1.2, 0.0288), (4.0, 3.0, 8.4506)])
def test_kl_of_diagonal_gaussian_matches_closed_form(loc, variance, expected):
    posterior = distributions.diagonal_gaussian(_diagonal_params(loc, variance))
    kl = distributions.kl_divergence(posterior, distributions.standard_normal_prior(1))
    closed_form = 0.5 * (variance + loc**2 - 1 - np.log(variance))
    assert kl.numpy()[0] == pytest.approx(closed_form, abs=1e-4)
    assert kl.numpy()[0] == pytest.approx(expected, abs=1e-4)


def test_kl_of_full_covariance_gaussian_matches_closed_form():
    rng = np.random.default_rng(0)
    latent_dim = 3
    params = rng.normal(size=(4, distributions.posterior_parameter_size("full", latent_dim))).astype("float32")
    posterior = distributions.full_covariance_gaussian(tf.constant(params))
    kl = distributions.kl_divergence(posterior, distributions.standard_normal_prior(latent_dim)).numpy()
    mean = posterior.mean().numpy()
    covariance = posterior.covariance().numpy()
    closed_form = 0.5 * (
        np.trace(covariance, axis1=1, axis2=2)
        + np.sum(mean**2, axis=1)
        - latent_dim
        - np.linalg.slogdet(covariance)[1]
    )
    np.testing.assert_allclose(kl, closed_form, rtol=1e-4, atol=1e-4)
    assert posterior.event_shape == [latent_dim]
    assert distributions.posterior_latent_dim("full", params.shape[-1]) == latent_dim


def _normal_density(z, loc, scale):
    return np.exp(-0.5 * ((z - loc) / scale) ** 2) / (scale * np.sqrt(2 * np.pi))


def test_kl_falls_back_to_an_unbiased_monte_carlo_estimate_when_not_registered():
    # TFP has no closed form for a mixture against a Normal; the truth here is a quadrature in numpy.
    mixture = tfd.MixtureSameFamily(
        tfd.Categorical(logits=[0.0, 0.0]), tfd.Normal([-1.0, 1.0], [0.5, 0.5])
    )
    grid = np.linspace(-10.0, 10.0, 200_001)
    q = 0.5 * _normal_density(grid, -1.0, 0.5) + 0.5 * _normal_density(grid, 1.0, 0.5)
    exact = np.sum(q * (np.log(q) - np.log(_normal_density(grid, 0.0, 1.0)))) * (grid[1] - grid[0])
    z = mixture.sample(20_000, seed=(0, 1))
    estimates = distributions.kl_divergence(mixture, tfd.Normal(0.0, 1.0), z).numpy()
    assert estimates.shape == (20_000,)
    standard_error = estimates.std() / np.sqrt(len(estimates))
    assert abs(estimates.mean() - exact) < 4 * standard_error
    # Tight enough that an estimator returning 0, or the reversed KL(p || q) = 0.2278, would fail.
    assert exact == pytest.approx(0.1854, abs=1e-4) and 4 * standard_error < 0.02


def test_bernoulli_log_likelihood_is_minus_summed_binary_cross_entropy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 4, 4, 1)).astype("float32")
    x = (rng.uniform(size=logits.shape) < 0.5).astype("float32")
    log_prob = distributions.Bernoulli().distribution(tf.constant(logits)).log_prob(x).numpy()
    p = 1 / (1 + np.exp(-logits))
    bce = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(log_prob, -bce, rtol=1e-5)


def test_continuous_bernoulli_density_integrates_to_one():
    logits = tf.constant([[[[-3.0]]], [[[0.0]]], [[[2.5]]]])
    grid = np.linspace(0.0005, 0.9995, 1000, dtype=np.float32)
    likelihood = distributions.ContinuousBernoulli()
    densities = [np.exp(likelihood.distribution(logits).log_prob(np.full((3, 1, 1, 1), v)).numpy()) for v in grid]
    np.testing.assert_allclose(np.mean(densities, axis=0), 1.0, atol=2e-3)


@pytest.mark.parametrize("scale", [0.001, 0.3])
def test_gaussian_likelihood_with_fixed_scale_has_exactly_that_scale(scale):
    head = distributions.PixelScale(scale=scale)
    rng = np.random.default_rng(0)
    loc = tf.constant(rng.uniform(size=(2, 4, 4, 1)).astype(np.float32))
    params = head(loc)
    assert not head.trainable_weights
    likelihood = distributions.Gaussian(scale=scale)
    distribution = likelihood.distribution(params)
    np.testing.assert_array_equal(distribution.distribution.stddev().numpy(), np.float32(scale))
    np.testing.assert_allclose(likelihood.mean(params).numpy(), loc.numpy())
    # The density is N(x; loc, scale²) per pixel, summed per image, computed here in float64.
    x = rng.uniform(size=(2, 4, 4, 1))
    residual = (x - loc.numpy()) / scale
    expected = (-0.5 * residual**2 - np.log(scale) - 0.5 * np.log(2 * np.pi)).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(distribution.log_prob(x.astype(np.float32)).numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize("scale", ["pixel", "global"])
def test_learned_gaussian_scale_keeps_its_floor(scale):
    loc = tf.zeros((2, 4, 4, 1))
    params = tf.concat([loc, tf.fill((2, 4, 4, 1), -100.0)], axis=-1)  # softplus(-100) is 0 in float32
    stddev = distributions.Gaussian(scale=scale).distribution(params).distribution.stddev().numpy()
    np.testing.assert_allclose(stddev, 1e-3, rtol=1e-6)


@pytest.mark.parametrize("scale, trainable_shape", [("pixel", (4, 4, 1)), ("global", (1, 1, 1))])
def test_gaussian_learned_scale_shapes(scale, trainable_shape):
    head = distributions.PixelScale(scale=scale)
    head(tf.zeros((2, 4, 4, 1)))
    assert tuple(head.trainable_weights[0].shape) == trainable_shape


def _two_image_elbo_inputs():
    """Two all-ones 2x2 images, logits 0 and 2, and q = N(4, softplus(1)²), N(0.2, softplus(0.5)²).

    Known per-image values, in numpy: reconstruction 4·log 2 and 4·softplus(−2); the KL in closed form.
    """
    x = tf.ones((2, 2, 2, 1))
    logits = tf.constant(np.stack([np.zeros((2, 2, 1)), np.full((2, 2, 1), 2.0)]).astype("float32"))
    likelihood = distributions.Bernoulli().distribution(logits)
    posterior = distributions.diagonal_gaussian(tf.constant([[4.0, 1.0], [0.2, 0.5]]))
    reconstruction = np.array([4 * np.log(2), 4 * np.log1p(np.exp(-2.0))])
    loc, scale = np.array([4.0, 0.2]), np.log1p(np.exp([1.0, 0.5])) + 1e-5
    kl = 0.5 * (scale**2 + loc**2 - 1 - np.log(scale**2))
    return x, likelihood, posterior, reconstruction, kl


def test_negative_elbo_has_the_known_terms_of_a_bernoulli_model():
    x, likelihood, posterior, reconstruction, kl = _two_image_elbo_inputs()
    prior = distributions.standard_normal_prior(1)
    loss, terms = negative_elbo(x, likelihood, posterior, prior, beta=0.5)
    assert terms["reconstruction"].numpy() == pytest.approx(reconstruction.mean(), rel=1e-5)
    assert terms["kl"].numpy() == pytest.approx(kl.mean(), rel=1e-5)
    assert terms["elbo"].numpy() == pytest.approx(-(reconstruction + kl).mean(), rel=1e-5)
    assert loss.numpy() == pytest.approx((reconstruction + 0.5 * kl).mean(), rel=1e-5)


@pytest.mark.parametrize("weights", [[3.0, 1.0], [1.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
def test_sample_weight_gives_the_weighted_mean_over_images(weights):
    x, likelihood, posterior, reconstruction, kl = _two_image_elbo_inputs()
    w = np.array(weights)
    loss, terms = negative_elbo(
        x, likelihood, posterior, distributions.standard_normal_prior(1), sample_weight=tf.constant(w, tf.float32)
    )
    # Σ w ℓ / Σ w: weights of (2, 2) are the unweighted mean, not twice it.
    assert terms["reconstruction"].numpy() == pytest.approx(np.sum(w * reconstruction) / w.sum(), rel=1e-5)
    assert terms["kl"].numpy() == pytest.approx(np.sum(w * kl) / w.sum(), rel=1e-5)
    assert loss.numpy() == pytest.approx(np.sum(w * (reconstruction + kl)) / w.sum(), rel=1e-5)


def test_all_zero_weights_give_zero_not_nan():
    x, likelihood, posterior, _, _ = _two_image_elbo_inputs()
    loss, terms = negative_elbo(x, likelihood, posterior, distributions.standard_normal_prior(1), sample_weight=tf.zeros([2]))
    assert float(loss) == 0.0 and all(float(v) == 0.0 for v in terms.values())


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: distributions.get_likelihood("poisson"), "likelihood must be one of .* Received: likelihood='poisson'"),
        (lambda: distributions.make_posterior("flow"), "posterior must be one of .* Received: posterior='flow'"),
        (lambda: distributions.Gaussian(scale=-1.0), "Received: likelihood_scale=-1.0"),
        (lambda: distributions.Gaussian(scale="pixels"), "Received: likelihood_scale='pixels'"),
    ],
)
def test_bad_choices_name_what_was_received(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_importance_weighted_bound_is_above_the_average_elbo_and_equals_it_at_one_sample():
    rng = np.random.default_rng(3)
    x = tf.constant((rng.uniform(size=(3, 2, 2, 1)) < 0.5).astype("float32"))
    posterior = distributions.diagonal_gaussian(tf.constant(rng.normal(size=(3, 4)).astype("float32")))
    prior = distributions.standard_normal_prior(2)
    weights = tf.constant(rng.normal(size=(2, 4)).astype("float32"))

    def likelihood_fn(z):
        return distributions.Bernoulli().distribution(tf.reshape(z @ weights, (-1, 2, 2, 1)))

    z = posterior.sample(6, seed=(1, 2))
    loss, terms = negative_iwae_bound(x, z, posterior, prior, likelihood_fn)
    # Jensen, for every draw: log mean exp(log w) >= mean log w.
    assert -loss.numpy() >= terms["elbo"].numpy()
    # Weighting out all but the first image gives that image's own bound.
    first_loss, first_terms = negative_iwae_bound(x[:1], z[:, :1], posterior[:1], prior, likelihood_fn)
    weighted_loss, weighted_terms = negative_iwae_bound(
        x, z, posterior, prior, likelihood_fn, sample_weight=tf.constant([1.0, 0.0, 0.0])
    )
    assert weighted_loss.numpy() == pytest.approx(first_loss.numpy(), rel=1e-5)
    for name in ("reconstruction", "kl", "elbo"):
        assert weighted_terms[name].numpy() == pytest.approx(first_terms[name].numpy(), rel=1e-5)
    assert abs(first_loss.numpy() - loss.numpy()) > 1e-3  # the images differ, so the check has teeth
    # One sample: the bound is that sample's ELBO, with the Monte Carlo KL.
    one_loss, one_terms = negative_iwae_bound(x, z[:1], posterior, prior, likelihood_fn)
    elbo_loss, _ = negative_elbo(x, likelihood_fn(z[0]), posterior, prior, z=z[0])
    kl_mc = np.mean(posterior.log_prob(z[0]).numpy() - prior.log_prob(z[0]).numpy())
    assert one_loss.numpy() == pytest.approx(one_terms["reconstruction"].numpy() + kl_mc, rel=1e-5)
    assert one_terms["reconstruction"].numpy() == pytest.approx(
        (elbo_loss - tf.reduce_mean(distributions.kl_divergence(posterior, prior))).numpy(), rel=1e-5
    )
