"""Evaluation checked against a linear-Gaussian model whose log p(x), ELBO and I(x; z) are known exactly.

p(z) = N(0, I_2), p(x|z) = N(W z + b, σ² I) over 2x2x1 images, so p(x) = N(b, W Wᵀ + σ² I) and
the exact posterior is N(Σ Wᵀ (x - b) / σ², Σ) with Σ = (I + Wᵀ W / σ²)⁻¹.
"""

import math
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from kerasgen import VAE
from kerasgen.evaluation.likelihood import elbo, importance_weighted_log_likelihood, posterior_diagnostics

tfd = tfp.distributions

W = np.array([[1.0, 0.5], [-0.3, 0.8], [0.6, -0.7], [0.2, 0.4]])
BIAS = np.array([0.1, -0.2, 0.3, 0.0])
SIGMA = 0.5
IMAGE_SHAPE = (2, 2, 1)
POSTERIOR_COVARIANCE = np.linalg.inv(np.eye(2) + W.T @ W / SIGMA**2)
POSTERIOR_GAIN = POSTERIOR_COVARIANCE @ W.T / SIGMA**2  # posterior mean = gain @ (x - b)


class LinearGaussianModel:
    """The evaluation interface over the linear-Gaussian model; q(z|x) from `posterior(flat_x)`."""

    latent_dim = 2

    def __init__(self, posterior):
        self._posterior = posterior

    def prior(self):
        return tfd.MultivariateNormalDiag(tf.zeros([2]), tf.ones([2]))

    def likelihood_distribution(self, z):
        loc = tf.matmul(z, tf.constant(W.T, tf.float32)) + tf.constant(BIAS, tf.float32)
        return tfd.Independent(tfd.Normal(tf.reshape(loc, [-1, *IMAGE_SHAPE]), SIGMA), 3)

    def posterior_distribution(self, x):
        return self._posterior(tf.reshape(x, [-1, 4]))


def _posterior_mean(flat_x):
    return tf.matmul(flat_x - tf.constant(BIAS, tf.float32), tf.constant(POSTERIOR_GAIN.T, tf.float32))


def exact_posterior(flat_x):
    scale = tf.constant(np.linalg.cholesky(POSTERIOR_COVARIANCE), tf.float32)
    return tfd.MultivariateNormalTriL(_posterior_mean(flat_x), scale)


def inflated_posterior(flat_x):
    """The right mean, but diagonal and 1.5 times too wide: the ELBO is strictly below log p(x)."""
    scale = tf.constant(1.5 * np.sqrt(np.diag(POSTERIOR_COVARIANCE)), tf.float32)
    return tfd.MultivariateNormalDiag(_posterior_mean(flat_x), scale)


def _images(n, seed=0):
    """Images drawn from the model itself, so p(x) is also the data distribution."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2)) @ W.T + BIAS + SIGMA * rng.standard_normal((n, 4))
    return x.reshape(n, *IMAGE_SHAPE).astype("float32")


def _dataset(images, batch_size=40):
    labels = np.zeros(len(images), "int32")
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)


def _exact_log_likelihood(images):
    marginal = tfd.MultivariateNormalTriL(BIAS, np.linalg.cholesky(W @ W.T + SIGMA**2 * np.eye(4)))
    return marginal.log_prob(images.reshape(len(images), 4).astype("float64")).numpy()


def _exact_elbo(images, scale_diag):
    """ELBO per image for q = N(exact mean, diag(scale_diag²)), and the KL term, in float64."""
    flat = images.reshape(len(images), 4).astype("float64")
    mean = (flat - BIAS) @ POSTERIOR_GAIN.T
    covariance = np.diag(scale_diag**2)
    residual = flat - mean @ W.T - BIAS
    expected_log_likelihood = (
        -2 * math.log(2 * math.pi * SIGMA**2)
        - (residual**2).sum(axis=1) / (2 * SIGMA**2)
        - np.trace(W @ covariance @ W.T) / (2 * SIGMA**2)
    )
    kl = 0.5 * (np.trace(covariance) + (mean**2).sum(axis=1) - 2 - np.log(np.linalg.det(covariance)))
    return expected_log_likelihood - kl, kl


INFLATED_SCALE = 1.5 * np.sqrt(np.diag(POSTERIOR_COVARIANCE))
IMAGES = _images(96)  # batches of 40, 40 and 16: the last one is ragged


def _iwae(model, num_samples, chunk_size=100, seed=0, images=IMAGES):
    return importance_weighted_log_likelihood(
        model, _dataset(images), num_samples=num_samples, chunk_size=chunk_size, seed=seed, progress=False
    )


# --- Importance-weighted log-likelihood -------------------------------------------------------


def test_exact_posterior_gives_log_p_of_x_with_a_single_sample():
    # With q = p(z|x) every weight p(x, z) / q(z|x) equals p(x): zero variance, any K.
    for num_samples, chunk_size in [(1, 1), (5, 2)]:
        result = _iwae(LinearGaussianModel(exact_posterior), num_samples, chunk_size)
        np.testing.assert_allclose(result["per_image_log_likelihood"], _exact_log_likelihood(IMAGES), atol=2e-4)
    assert result["num_images"] == 96 and result["num_samples"] == 5


def test_many_samples_recover_the_exact_log_likelihood_from_an_imperfect_posterior():
    exact = _exact_log_likelihood(IMAGES)
    result = _iwae(LinearGaussianModel(inflated_posterior), 2000, chunk_size=500)
    assert result["log_likelihood"] == pytest.approx(exact.mean(), abs=0.01)
    np.testing.assert_allclose(result["per_image_log_likelihood"], exact, atol=0.1)
    # The same posterior's ELBO is far below: the test would notice an estimator that is just the ELBO.
    assert _exact_elbo(IMAGES, INFLATED_SCALE)[0].mean() < exact.mean() - 0.3
    # The reported standard error is the spread over images.
    assert result["standard_error"] == pytest.approx(exact.std(ddof=1) / math.sqrt(96), rel=0.05)


def test_the_bound_tightens_with_more_samples_and_stays_below_log_p_of_x():
    model = LinearGaussianModel(inflated_posterior)
    exact = _exact_log_likelihood(IMAGES).mean()
    bounds = {k: np.mean([_iwae(model, k, seed=seed)["log_likelihood"] for seed in range(3)]) for k in (1, 10, 100)}
    assert bounds[1] < bounds[10] < bounds[100] < exact + 0.01
    assert bounds[1] < exact - 0.3


def test_one_sample_estimate_is_the_elbo_in_expectation():
    model = LinearGaussianModel(inflated_posterior)
    exact_elbo, exact_kl = _exact_elbo(IMAGES, INFLATED_SCALE)
    # Per image the difference to the exact ELBO is pure Monte Carlo noise; pool it over seeds.
    differences = np.concatenate([_iwae(model, 1, seed=seed)["per_image_log_likelihood"] - exact_elbo for seed in range(5)])
    assert abs(differences.mean()) < 4 * differences.std(ddof=1) / math.sqrt(len(differences))

    # elbo() agrees: its KL is analytic (so exact), its reconstruction is unbiased.
    estimates = [elbo(model, _dataset(IMAGES), seed=seed) for seed in range(5)]
    for estimate in estimates:
        assert estimate["kl"] == pytest.approx(exact_kl.mean(), abs=1e-4)
        assert estimate["num_images"] == 96
    values = np.array([estimate["elbo"] for estimate in estimates])
    assert abs(values.mean() - exact_elbo.mean()) < 4 * values.std(ddof=1) / math.sqrt(len(values)) + 1e-3
    assert abs(values.mean() - exact_elbo.mean()) < 0.1


@pytest.mark.parametrize("num_samples", [50, 49])
def test_chunk_size_changes_memory_not_the_answer(num_samples):
    model = LinearGaussianModel(inflated_posterior)
    results = [_iwae(model, num_samples, chunk_size=c, images=IMAGES[:20])["per_image_log_likelihood"] for c in (7, num_samples, 1000)]
    np.testing.assert_allclose(results[0], results[1], rtol=0, atol=1e-5)
    np.testing.assert_allclose(results[2], results[1], rtol=0, atol=1e-5)


def test_seeded_and_shows_progress_over_images_only_in_a_terminal(capsys, monkeypatch):
    model = LinearGaussianModel(inflated_posterior)
    dataset = _dataset(IMAGES[:20], batch_size=8)
    # Redirected to a file: no progress bar (it would write carriage returns and escape codes).
    importance_weighted_log_likelihood(model, dataset, num_samples=3, seed=4)
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    first = importance_weighted_log_likelihood(model, dataset, num_samples=3, seed=4)
    assert "20/Unknown" in capsys.readouterr().out
    monkeypatch.undo()
    again = importance_weighted_log_likelihood(model, dataset, num_samples=3, seed=4, progress=False)
    other = importance_weighted_log_likelihood(model, dataset, num_samples=3, seed=5, progress=False)
    assert capsys.readouterr().out == ""
    np.testing.assert_array_equal(first["per_image_log_likelihood"], again["per_image_log_likelihood"])
    assert first["log_likelihood"] != other["log_likelihood"]
    assert elbo(model, dataset, seed=4) == elbo(model, dataset, seed=4) != elbo(model, dataset, seed=5)


# --- Posterior diagnostics ---------------------------------------------------------------------


def _constant_posterior(loc, scale_tril):
    """q(z|x) that ignores x."""

    def posterior(flat_x):
        batch = tf.shape(flat_x)[0]
        return tfd.MultivariateNormalTriL(
            tf.broadcast_to(tf.constant(loc, tf.float32), [batch, 2]), tf.constant(scale_tril, tf.float32)
        )

    return posterior


@pytest.mark.parametrize("correlation", [0.0, 0.8])
def test_kl_per_dimension_equals_the_closed_form(correlation):
    # Marginals N(0.2, var 1.2) and N(4, var 3): KL 0.0288 and 8.4506 nats against N(0, 1), also
    # when the posterior is full-covariance (the marginal variance is not the Cholesky diagonal).
    off_diagonal = correlation * math.sqrt(3.0)
    scale_tril = [[math.sqrt(1.2), 0.0], [off_diagonal, math.sqrt(3.0 - off_diagonal**2)]]
    model = LinearGaussianModel(_constant_posterior([0.2, 4.0], scale_tril))
    result = posterior_diagnostics(model, _dataset(IMAGES[:20], batch_size=8), num_mi_samples=1)
    np.testing.assert_allclose(result["kl_per_dimension"], [0.0288, 8.4506], atol=1e-4)
    assert result["num_images"] == 20


def test_a_dimension_whose_mean_ignores_x_is_inactive():
    def posterior(flat_x):
        loc = tf.stack([_posterior_mean(flat_x)[:, 0], tf.fill([tf.shape(flat_x)[0]], 0.3)], axis=1)
        return tfd.MultivariateNormalDiag(loc, [0.5, 1.0])

    result = posterior_diagnostics(LinearGaussianModel(posterior), _dataset(IMAGES), num_mi_samples=1)
    means = IMAGES.reshape(-1, 4).astype("float64") @ POSTERIOR_GAIN.T - BIAS @ POSTERIOR_GAIN.T
    assert result["active_units"] == 1
    assert result["active_unit_threshold"] == 0.01
    np.testing.assert_allclose(result["active_unit_variances"], [means[:, 0].var(), 0.0], rtol=1e-4, atol=1e-10)
    assert result["active_unit_variances"][0] > 0.1


def test_mutual_information_is_zero_when_the_posterior_ignores_x():
    model = LinearGaussianModel(_constant_posterior([0.2, -0.1], [[0.7, 0.0], [0.3, 0.5]]))
    result = posterior_diagnostics(model, _dataset(IMAGES), num_mi_samples=3)
    assert abs(result["mutual_information"]) < 1e-5


def test_mutual_information_of_the_exact_posterior_is_the_models():
    # With the exact posterior and x ~ p(x), the aggregate posterior is p(z), so
    # I(x; z) = H(z) - H(z|x) = ½ log det(I + Wᵀ W / σ²) = 1.953 nats. The batch estimate
    # approaches it from below as the batch grows, and never passes log N.
    true_information = 0.5 * math.log(np.linalg.det(np.eye(2) + W.T @ W / SIGMA**2))
    model = LinearGaussianModel(exact_posterior)
    images = _images(1024, seed=1)
    large, small = (posterior_diagnostics(model, _dataset(images, batch_size=n)) for n in (256, 16))
    assert large["mutual_information_bound"] == pytest.approx(math.log(256))
    assert large["mutual_information"] == pytest.approx(true_information, abs=0.05)
    assert 0.5 < small["mutual_information"] < large["mutual_information"] - 0.2
    assert small["mutual_information"] < small["mutual_information_bound"] == pytest.approx(math.log(16))
    assert large["active_units"] == 2


# --- Arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function, kwargs, message",
    [
        (importance_weighted_log_likelihood, dict(num_samples=0), "Received: num_samples=0"),
        (importance_weighted_log_likelihood, dict(num_samples=2.5), "Received: num_samples=2.5"),
        (importance_weighted_log_likelihood, dict(chunk_size=0), "Received: chunk_size=0"),
        (importance_weighted_log_likelihood, dict(seed="a"), "Received: seed='a'"),
        (posterior_diagnostics, dict(num_mi_samples=-1), "Received: num_mi_samples=-1"),
        (posterior_diagnostics, dict(active_unit_threshold=-0.5), "Received: active_unit_threshold=-0.5"),
        (elbo, dict(seed=None), "Received: seed=None"),
    ],
)
def test_bad_arguments_say_what_was_received(function, kwargs, message):
    with pytest.raises(ValueError, match=message):
        function(LinearGaussianModel(exact_posterior), _dataset(IMAGES[:4]), **kwargs)


@pytest.mark.parametrize("function", [elbo, importance_weighted_log_likelihood, posterior_diagnostics])
def test_empty_dataset_is_refused(function):
    model = LinearGaussianModel(exact_posterior)
    with pytest.raises(ValueError, match="Received: an empty dataset"):
        function(model, _dataset(IMAGES[:0]))
    # A dataset whose size tf.data cannot know is caught after the loop.
    unknown = _dataset(IMAGES[:4]).filter(lambda x, y: False)
    with pytest.raises(ValueError, match="Received: a dataset with 0 images"):
        function(model, unknown)


# --- A real model ----------------------------------------------------------------------------


def test_importance_weighting_tightens_a_vaes_elbo(binary_images):
    keras.utils.set_random_seed(0)
    vae = VAE(image_shape=(16, 16, 1), latent_dim=2, num_filters=(8, 16), hidden_dim=32, seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    vae.fit(binary_images, epochs=10, batch_size=8, verbose=0)  # so that z matters to the decoder
    dataset = tf.data.Dataset.from_tensor_slices((binary_images, np.zeros(16, "int32"))).batch(8)
    # Each ELBO estimate uses one sample per image; average a few to compare expectations.
    bound = np.mean([elbo(vae, dataset, seed=seed)["elbo"] for seed in range(5)])
    result = importance_weighted_log_likelihood(vae, dataset, num_samples=50, chunk_size=20, progress=False)
    assert result["num_images"] == 16
    assert np.isfinite(result["per_image_log_likelihood"]).all()
    assert result["log_likelihood"] > bound


def test_a_vae_whose_encoder_ignores_the_image_in_one_dimension_has_one_active_unit(binary_images):
    keras.utils.set_random_seed(0)
    vae = VAE(image_shape=(16, 16, 1), latent_dim=2, num_filters=(4,), hidden_dim=8, seed=0)
    head = vae.encoder.get_layer("posterior_parameters")
    kernel, bias = head.get_weights()
    # Outputs are [loc_0, loc_1, raw_scale_0, raw_scale_1]: loc_1 becomes the constant 0.7, loc_0
    # is made to vary with the image.
    kernel[:, 1] = 0.0
    bias[1] = 0.7
    kernel[:, 0] *= 20.0
    head.set_weights([kernel, bias])
    dataset = tf.data.Dataset.from_tensor_slices((binary_images, np.zeros(16, "int32"))).batch(8)
    result = posterior_diagnostics(vae, dataset, num_mi_samples=1)
    loc = keras.ops.convert_to_numpy(vae.encode(binary_images)[0])
    assert result["active_units"] == 1
    np.testing.assert_allclose(result["active_unit_variances"], loc.var(axis=0), rtol=1e-4, atol=1e-10)
    assert result["active_unit_variances"][1] < 1e-10 < 0.01 < result["active_unit_variances"][0]
