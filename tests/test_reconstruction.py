import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from kerasgen.evaluation.reconstruction import (
    aggregated_posterior_mmd,
    imq_kernel_scales,
    reconstruct_images,
    reconstruction_quality,
    unbiased_mmd_squared,
)
from kerasgen.models import VAE

tfd = tfp.distributions


def _imq_mmd_by_hand(a, b):
    """Reference: the U-statistic with Σ_C C / (C + ‖x − y‖²), C ∈ {0.1 … 10}·2D, all pairs broadcast."""
    scales = 2.0 * a.shape[1] * np.array([0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0])

    def kernel(x, y):
        distances = np.sum((x[:, None, :] - y[None, :, :]) ** 2, axis=-1)
        return np.sum(scales / (scales + distances[..., None]), axis=-1)

    n, m = len(a), len(b)
    k_aa, k_bb = kernel(a, a), kernel(b, b)
    within = (k_aa.sum() - np.trace(k_aa)) / (n * (n - 1)) + (k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
    return within - 2.0 * kernel(a, b).mean()


# --- The estimator ------------------------------------------------------------------------------


def test_mmd_equals_the_hand_computation():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 3)), rng.normal(0.5, 2.0, size=(5, 3))
    expected = _imq_mmd_by_hand(a, b)
    # Blocks of 2 rows: the diagonal left out sits at another column in every block.
    for chunk_size in (2, 3, 512):
        assert unbiased_mmd_squared(a, b, chunk_size=chunk_size) == pytest.approx(expected, rel=1e-12)
    # Unequal sizes, float32 input.
    c = rng.normal(size=(7, 3)).astype(np.float32)
    assert unbiased_mmd_squared(a, c) == pytest.approx(_imq_mmd_by_hand(a, c.astype(np.float64)), rel=1e-6)
    np.testing.assert_allclose(imq_kernel_scales(3), [0.6, 1.2, 3.0, 6.0, 12.0, 30.0, 60.0])


def test_mmd_averages_zero_for_one_distribution_and_is_positive_for_shifted_gaussians():
    rng = np.random.default_rng(0)
    same = np.array([unbiased_mmd_squared(rng.normal(size=(100, 4)), rng.normal(size=(100, 4))) for _ in range(30)])
    shifted = np.array(
        [unbiased_mmd_squared(rng.normal(size=(100, 4)), rng.normal(0.5, 1.0, size=(100, 4))) for _ in range(30)]
    )
    standard_error = same.std(ddof=1) / np.sqrt(len(same))
    # Unbiased: the mean over repetitions is 0 within its noise, and single estimates go below 0.
    assert abs(same.mean()) < 3 * standard_error and (same < 0).any()
    assert (shifted > 0).all() and shifted.mean() > 10 * same.std()


# --- Tiny hand-written models -------------------------------------------------------------------


class _Encoder:
    """A plain-Python encoder model: q(z|x) = N((m, −m), I) for m = mean pixel + shift, p(z) = N(0, I)."""

    latent_dim = 2

    def __init__(self, shift=0.0, deterministic=False, prior=None):
        self.shift, self.deterministic, self._prior = shift, deterministic, prior

    def posterior_distribution(self, x):
        mean = tf.reduce_mean(tf.convert_to_tensor(x, tf.float32), axis=[1, 2, 3])[:, None] + self.shift
        loc = tf.concat([mean, -mean], axis=1)
        if self.deterministic:
            return tfd.Independent(tfd.Deterministic(loc), 1)
        return tfd.MultivariateNormalDiag(loc, tf.ones_like(loc))

    def prior(self):
        return self._prior or tfd.MultivariateNormalDiag(tf.zeros(2))

    def reconstruct(self, x):
        return x


class _Inverter(_Encoder):
    """Reconstructs every image as its negative, 1 − x."""

    def reconstruct(self, x):
        return 1.0 - x


class _BrightnessClassifier:
    """Class 1 when an image's mean pixel is above 1/2; its one feature is that mean."""

    num_classes = 2

    def features(self, x):
        return np.mean(np.asarray(x, np.float64), axis=(1, 2, 3))[:, None]

    def __call__(self, x, training=False):
        mean = self.features(x)
        return np.concatenate([0.5 - mean, mean - 0.5], axis=1)


class _Generator:
    """Stands in for a GAN: samples, no encoder."""

    latent_dim = 2

    def sample(self, n, seed=None):
        return np.zeros((n, 8, 8, 1), np.float32)


@pytest.fixture
def images_and_labels():
    """40 seeded 8x8 images, 3 in 4 dark, mean pixel away from 1/2, labelled right (by brightness) 3 times in 4."""
    rng = np.random.default_rng(0)
    brightness = np.where(np.arange(40) % 4 == 0, 0.75, 0.25) + rng.uniform(-0.1, 0.1, size=40)
    images = np.clip(brightness[:, None, None, None] + rng.normal(0, 0.05, size=(40, 8, 8, 1)), 0, 1).astype(np.float32)
    labels = (images.mean(axis=(1, 2, 3)) > 0.5).astype(np.int64)
    labels[:10] = 1 - labels[:10]
    return images, labels


def test_identity_reconstruction_scores_like_the_originals(images_and_labels):
    images, labels = images_and_labels
    quality = reconstruction_quality(_Encoder(), images, labels, _BrightnessClassifier(), batch_size=16)
    assert quality["heldout_accuracy"] == 0.75 and quality["accuracy"] == quality["heldout_accuracy"]
    assert quality["frechet_distance"] == pytest.approx(0.0, abs=1e-12)
    assert quality["mean_squared_error"] == 0.0 and quality["num_images"] == 40


def test_inverted_reconstruction_has_known_accuracy_distance_and_error(images_and_labels):
    images, labels = images_and_labels
    quality = reconstruction_quality(_Inverter(), images, labels, _BrightnessClassifier(), batch_size=16)
    # Every image changes class: right where the originals were wrong.
    assert quality["accuracy"] == 0.25 and quality["heldout_accuracy"] == 0.75
    # One feature m and 1 − m: equal spreads, so FD = (mean(m) − mean(1 − m))².
    mean = images.astype(np.float64).mean(axis=(1, 2, 3)).mean()
    assert quality["frechet_distance"] == pytest.approx((2 * mean - 1) ** 2, rel=1e-5)  # 1 − x in float32
    assert quality["frechet_distance"] > 0.04
    assert quality["mean_squared_error"] == pytest.approx(np.mean((2 * images.astype(np.float64) - 1) ** 2), rel=1e-6)
    no_labels = reconstruction_quality(_Inverter(), images, None, _BrightnessClassifier())
    assert no_labels["accuracy"] is None and no_labels["heldout_accuracy"] is None
    assert no_labels["frechet_distance"] == quality["frechet_distance"]


def test_aggregated_posterior_mmd_is_seeded_and_sees_a_shifted_posterior(images_and_labels):
    images, _ = images_and_labels
    images = np.tile(images, (5, 1, 1, 1))  # 200 codes
    # m = mean pixel − 1/2 = ±1/4: the aggregated posterior, a mixture of N(±(1/4, −1/4), I), is nearly N(0, I).
    matched = aggregated_posterior_mmd(_Encoder(shift=-0.5), images, seed=3, batch_size=64)
    assert matched == aggregated_posterior_mmd(_Encoder(shift=-0.5), images, seed=3, batch_size=64)
    assert matched["mmd"] != aggregated_posterior_mmd(_Encoder(shift=-0.5), images, seed=4, batch_size=64)["mmd"]
    assert matched["num_codes"] == 200 and matched["kernel"] == "imq" and len(matched["kernel_scales"]) == 7
    shifted = aggregated_posterior_mmd(_Encoder(shift=1.5), images, seed=3, batch_size=64)
    assert shifted["mmd"] > 0.1 and abs(matched["mmd"]) < 0.1 * shifted["mmd"]


def test_repeated_draws_make_the_mmd_less_noisy(images_and_labels):
    images = np.tile(images_and_labels[0], (5, 1, 1, 1))
    single = [aggregated_posterior_mmd(_Encoder(shift=-0.5), images, seed=s, repeats=1) for s in range(8)]
    averaged = [aggregated_posterior_mmd(_Encoder(shift=-0.5), images, seed=s, repeats=8) for s in range(8)]
    assert all(r["mmd_standard_error"] == 0.0 and r["repeats"] == 1 for r in single)
    assert all(r["mmd_standard_error"] > 0.0 and r["repeats"] == 8 for r in averaged)
    # The mean of 8 independent estimates spreads about √8 times less than one estimate.
    assert np.std([r["mmd"] for r in averaged]) < 0.6 * np.std([r["mmd"] for r in single])


def test_a_deterministic_encoder_gives_its_codes(images_and_labels):
    images, _ = images_and_labels
    # The AAE's q(z|x) and a prior that is one point: every draw is known, so is the MMD.
    point = tfd.Independent(tfd.Deterministic(tf.zeros(2)), 1)
    model = _Encoder(deterministic=True, prior=point)
    mean = images.mean(axis=(1, 2, 3))[:, None]
    expected = unbiased_mmd_squared(np.concatenate([mean, -mean], axis=1), np.zeros((40, 2)))
    assert aggregated_posterior_mmd(model, images, batch_size=7)["mmd"] == pytest.approx(expected, rel=1e-6)


class _ClusterEncoder(_Encoder):
    """q(z|x) = N(±(2, 2), I/4): the sign by brightness, 1 image in 4 bright (see images_and_labels)."""

    def posterior_distribution(self, x):
        bright = tf.reduce_mean(tf.convert_to_tensor(x, tf.float32), axis=[1, 2, 3]) > 0.5
        loc = tf.where(bright[:, None], 2.0, -2.0) * tf.ones([1, 2])
        return tfd.MultivariateNormalDiag(loc, 0.5 * tf.ones_like(loc))


def test_a_gaussian_mixture_prior_that_matches_the_codes_gives_a_small_mmd(images_and_labels):
    images = np.tile(images_and_labels[0], (5, 1, 1, 1))  # 200 codes, 50 of them bright
    mixture = tfd.MixtureSameFamily(
        tfd.Categorical(probs=[0.25, 0.75]),
        tfd.MultivariateNormalDiag([[2.0, 2.0], [-2.0, -2.0]], 0.5 * tf.ones([2, 2])),
    )
    matched = aggregated_posterior_mmd(_ClusterEncoder(prior=mixture), images, seed=1)
    assert matched == aggregated_posterior_mmd(_ClusterEncoder(prior=mixture), images, seed=1)
    standard = aggregated_posterior_mmd(_ClusterEncoder(), images, seed=1)  # p(z) = N(0, I)
    assert abs(matched["mmd"]) < 0.1 * standard["mmd"]


def test_a_vae_is_evaluated_through_the_same_interface():
    vae = VAE(image_shape=(16, 16, 1), latent_dim=2, num_filters=(4,), hidden_dim=8, seed=0)
    images = np.random.default_rng(0).uniform(size=(12, 16, 16, 1)).astype(np.float32)
    assert VAE.defines_likelihood is True
    np.testing.assert_allclose(reconstruct_images(vae, images, batch_size=5), vae.reconstruct(images), atol=1e-6)
    first = aggregated_posterior_mmd(vae, images, seed=1, batch_size=5)
    assert np.isfinite(first["mmd"]) and first == aggregated_posterior_mmd(vae, images, seed=1, batch_size=5)


# --- Bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: aggregated_posterior_mmd(_Generator(), np.zeros((4, 8, 8, 1))), r"_Generator has no encoder \(it is a GAN"),
        (lambda: reconstruction_quality(_Generator(), np.zeros((4, 8, 8, 1)), None, None), r"_Generator has no encoder \(it is a GAN"),
        (lambda: aggregated_posterior_mmd(_Encoder(), np.zeros((0, 8, 8, 1))), r"Received: 0 images, images.shape=\(0, 8, 8, 1\)"),
        (lambda: reconstruct_images(_Encoder(), np.zeros((4, 8, 8))), r"images.shape=\(4, 8, 8\)"),
        (lambda: aggregated_posterior_mmd(_Encoder(), np.zeros((4, 8, 8, 1)), kernel="rbf"), "Received: kernel='rbf'"),
        (lambda: aggregated_posterior_mmd(_Encoder(), np.zeros((4, 8, 8, 1)), seed=0.5), "Received: seed=0.5"),
        (lambda: aggregated_posterior_mmd(_Encoder(), np.zeros((4, 8, 8, 1)), batch_size=0), "Received: batch_size=0"),
        (lambda: aggregated_posterior_mmd(_Encoder(), np.zeros((4, 8, 8, 1)), repeats=0), "Received: repeats=0"),
        (lambda: reconstruction_quality(_Encoder(), np.zeros((4, 8, 8, 1)), [0, 1, 1], None), r"labels.shape=\(3,\)"),
        (lambda: reconstruction_quality(_Encoder(), np.zeros((2, 8, 8, 1)), [0, -1], None), "1 negative labels"),
        (lambda: unbiased_mmd_squared(np.zeros((4, 2)), np.zeros((4, 3))), r"codes_a.shape=\(4, 2\), codes_b.shape=\(4, 3\)"),
        (lambda: unbiased_mmd_squared(np.zeros((1, 2)), np.zeros((4, 2))), r"at least 2 codes.*codes_a.shape=\(1, 2\)"),
    ],
)
def test_bad_input_names_what_was_received(call, message):
    with pytest.raises(ValueError, match=message):
        call()
