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


def test_kl_falls_back_to_monte_carlo_when_not_registered():
    mixture = tfd.MixtureSameFamily(
        tfd.Categorical(logits=[0.0, 0.0]), tfd.Normal([-1.0, 1.0], [0.5, 0.5])
    )
    prior = tfd.Normal(0.0, 1.0)
    z = tf.constant(0.3)
    kl = distributions.kl_divergence(mixture, prior, z)
    assert kl.numpy() == pytest.approx((mixture.log_prob(z) - prior.log_prob(z)).numpy())


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


def test_gaussian_likelihood_with_fixed_scale():
    head = distributions.PixelScale(scale=0.3)
    loc = tf.constant(np.full((2, 4, 4, 1), 0.5, dtype=np.float32))
    params = head(loc)
    assert not head.trainable_weights
    likelihood = distributions.Gaussian(scale=0.3)
    distribution = likelihood.distribution(params)
    np.testing.assert_allclose(distribution.distribution.stddev().numpy(), 0.3 + 1e-3, rtol=1e-5)
    np.testing.assert_allclose(likelihood.mean(params).numpy(), loc.numpy())
    assert distribution.log_prob(loc).shape == [2]


@pytest.mark.parametrize("scale, trainable_shape", [("pixel", (4, 4, 1)), ("global", (1, 1, 1))])
def test_gaussian_learned_scale_shapes(scale, trainable_shape):
    head = distributions.PixelScale(scale=scale)
    head(tf.zeros((2, 4, 4, 1)))
    assert tuple(head.trainable_weights[0].shape) == trainable_shape


def test_negative_elbo_terms_add_up():
    x = tf.ones((2, 2, 2, 1))
    likelihood = distributions.Bernoulli().distribution(tf.zeros((2, 2, 2, 1)))
    posterior = distributions.diagonal_gaussian(tf.constant([[4.0, 1.0], [0.2, 0.5]]))
    loss, terms = negative_elbo(x, likelihood, posterior, distributions.standard_normal_prior(1), beta=0.5)
    assert terms["reconstruction"].numpy() == pytest.approx(4 * np.log(2), rel=1e-5)
    assert loss.numpy() == pytest.approx((terms["reconstruction"] + 0.5 * terms["kl"]).numpy(), rel=1e-6)
    assert terms["elbo"].numpy() == pytest.approx(-(terms["reconstruction"] + terms["kl"]).numpy(), rel=1e-6)


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
    assert terms["elbo"].numpy() == pytest.approx(-(terms["reconstruction"] + terms["kl"]).numpy(), rel=1e-5)
    # One sample: the bound is that sample's ELBO, with the Monte Carlo KL.
    one_loss, one_terms = negative_iwae_bound(x, z[:1], posterior, prior, likelihood_fn)
    elbo_loss, _ = negative_elbo(x, likelihood_fn(z[0]), posterior, prior, z=z[0])
    kl_mc = np.mean(posterior.log_prob(z[0]).numpy() - prior.log_prob(z[0]).numpy())
    assert one_loss.numpy() == pytest.approx(one_terms["reconstruction"].numpy() + kl_mc, rel=1e-5)
    assert one_terms["reconstruction"].numpy() == pytest.approx(
        (elbo_loss - tf.reduce_mean(distributions.kl_divergence(posterior, prior))).numpy(), rel=1e-5
    )
