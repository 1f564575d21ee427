import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasgen.data import load_dataset
from kerasgen.evaluation.sample_quality import (
    KID,
    SHIPPED_CLASSIFIER,
    class_histogram,
    classifier_score,
    compute_features,
    compute_logits,
    frechet_distance,
    frechet_distance_from_statistics,
    kernel_inception_distance,
    polynomial_mmd_subsets,
)
from kerasgen.models import Classifier

SHIPPED = os.path.join(SHIPPED_CLASSIFIER, "classifier.keras")

# Two 2-D Gaussians whose covariances do not commute, so (Σa Σb)^½ is not elementwise.
MEAN_A, COV_A = np.array([0.0, 1.0]), np.array([[2.0, 0.6], [0.6, 1.0]])
MEAN_B, COV_B = np.array([1.0, -0.5]), np.array([[0.5, -0.2], [-0.2, 1.5]])


def _closed_form_2d(mean_a, cov_a, mean_b, cov_b):
    """FD of 2-D Gaussians: Tr((ΣaΣb)^½) = √λ1 + √λ2 = √(Tr(ΣaΣb) + 2√det(ΣaΣb))."""
    trace_sqrt = np.sqrt(np.trace(cov_a @ cov_b) + 2 * np.sqrt(np.linalg.det(cov_a) * np.linalg.det(cov_b)))
    return np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt


def _unbiased_mmd2(x, y):
    """Reference: Bińkowski et al.'s unbiased MMD² with k(x, y) = (xᵀy / d + 1)³, in plain numpy."""
    d, m = x.shape[1], len(x)
    k_xx, k_yy, k_xy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
    return (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1)) - 2 * k_xy.mean()


# --- Fréchet distance ----------------------------------------------------------------------------


def test_frechet_distance_of_statistics_equals_the_closed_form():
    expected = _closed_form_2d(MEAN_A, COV_A, MEAN_B, COV_B)
    assert frechet_distance_from_statistics(MEAN_A, COV_A, MEAN_B, COV_B) == pytest.approx(expected, rel=1e-12)
    # Diagonal covariances in 8-D: Tr((ΣaΣb)^½) = Σ √(σa σb).
    var_a, var_b = np.linspace(0.5, 4.0, 8), np.linspace(3.0, 0.2, 8)
    expected = 8 * 1.0**2 + np.sum(var_a + var_b - 2 * np.sqrt(var_a * var_b))
    got = frechet_distance_from_statistics(np.zeros(8), np.diag(var_a), np.ones(8), np.diag(var_b))
    assert got == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_of_samples_converges_to_the_gaussians():
    rng = np.random.default_rng(0)
    a = rng.multivariate_normal(MEAN_A, COV_A, size=200_000)
    b = rng.multivariate_normal(MEAN_B, COV_B, size=200_000)
    expected = _closed_form_2d(MEAN_A, COV_A, MEAN_B, COV_B)  # 2.6295
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.01)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)


def test_frechet_distance_of_a_set_to_itself_is_zero():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(300, 16)) @ rng.normal(size=(16, 16))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)
    # Fewer samples than dimensions: singular covariances still give a finite, zero self-distance.
    few = rng.normal(size=(10, 32))
    assert frechet_distance(few, few) == pytest.approx(0.0, abs=1e-8)
    assert np.isfinite(frechet_distance(few, rng.normal(size=(12, 32))))


# --- KID ------------------------------------------------------------------------------------------


def test_kid_is_the_unbiased_mmd_when_the_subset_is_the_whole_set():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(60, 8)), rng.normal(0.5, 1.0, size=(60, 8))
    mean, std = kernel_inception_distance(a, b, num_subsets=3, subset_size=1000)
    # Whole sets, in a permuted order: every subset gives the same number.
    assert mean == pytest.approx(_unbiased_mmd2(a, b), rel=1e-10) and std < 1e-12


def test_kid_is_about_zero_for_one_distribution_and_large_for_two():
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(1500, 16)), rng.normal(size=(1500, 16)), rng.normal(0.3, 1.0, size=(1500, 16))
    mean, std = kernel_inception_distance(a, b, num_subsets=20, subset_size=500)
    assert abs(mean) < 3 * std
    mean_shifted, std_shifted = kernel_inception_distance(a, c, num_subsets=20, subset_size=500)
    assert mean_shifted > 10 * std_shifted and mean_shifted > 50 * abs(mean)


def test_kid_subsets_depend_on_seed_and_rows_only():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 4)), rng.normal(size=(150, 4))
    assert kernel_inception_distance(a, b, 5, 50, seed=3) == kernel_inception_distance(a, b, 5, 50, seed=3)
    assert kernel_inception_distance(a, b, 5, 50, seed=3) != kernel_inception_distance(a, b, 5, 50, seed=4)
    # Rows past `count_b` are ignored and do not move the subsets: what lets KID keep a fixed-size buffer.
    padded = np.concatenate([b, rng.normal(size=(90, 4))])
    np.testing.assert_allclose(
        polynomial_mmd_subsets(a, padded, 5, 50, 3, count_b=150), polynomial_mmd_subsets(a, b, 5, 50, 3), rtol=1e-12
    )


class _Generator(keras.Model):
    """Stands in for a GAN: `evaluate` on images runs a compiled test_step that feeds KID."""

    def __init__(self, kid):
        super().__init__()
        self.kid = kid

    def test_step(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        self.kid.update_state(images)
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return [self.kid]


@pytest.mark.parametrize("jit_compile", [False, True])
def test_kid_metric_in_a_compiled_step_equals_the_function(jit_compile):
    rng = np.random.default_rng(0)
    classifier = Classifier(image_shape=(16, 16, 1), num_classes=3, num_filters=(4,), feature_dim=6, seed=0)
    real = rng.uniform(size=(40, 16, 16, 1)).astype("float32")
    generated = rng.uniform(size=(56, 16, 16, 1)).astype("float32") ** 2
    kid = KID(classifier, real_images=real, max_samples=48, num_subsets=4, subset_size=30, seed=2)
    model = _Generator(kid)
    model.compile(jit_compile=jit_compile)
    result = model.evaluate(generated, batch_size=16, verbose=0, return_dict=True)

    # max_samples=48: the last batch's 8 images are beyond it and ignored.
    expected, _ = kernel_inception_distance(
        compute_features(classifier, real), compute_features(classifier, generated[:48]), 4, 30, seed=2
    )
    assert int(kid.count.numpy()) == 48
    assert result["kid"] == pytest.approx(expected, rel=1e-5)
    kid.reset_state()
    assert int(kid.count.numpy()) == 0 and np.isnan(float(kid.result()))


def test_kid_metric_accumulates_eagerly_with_any_feature_extractor():
    rng = np.random.default_rng(0)
    real, generated = rng.normal(size=(30, 5)), rng.normal(size=(25, 5)).astype("float32")
    kid = KID(lambda x: x, real_features=real, num_subsets=3, subset_size=20)
    for start in range(0, 25, 10):
        kid.update_state(generated[start : start + 10])
    expected, _ = kernel_inception_distance(real, generated, 3, 20)
    assert float(kid.result()) == pytest.approx(expected, rel=1e-5)


# --- Classifier score and histogram ----------------------------------------------------------------


def test_classifier_score_known_values():
    confident = 50.0 * np.eye(10)[np.arange(200) % 10]
    mean, std = classifier_score(confident, num_splits=10)
    assert mean == pytest.approx(10.0, rel=1e-9) and std < 1e-9
    assert classifier_score(np.tile([[3.0, -1.0, 0.5]], (40, 1)), num_splits=4) == pytest.approx((1.0, 0.0), abs=1e-12)
    # Half confident in class 0, half uniform: p(y) = (3/4, 1/4).
    half = np.concatenate([np.tile([[60.0, 0.0]], (5, 1)), np.zeros((5, 2))])
    kl = 0.5 * np.log(4 / 3) + 0.5 * (0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25))
    assert classifier_score(half, num_splits=1)[0] == pytest.approx(np.exp(kl), rel=1e-9)


def test_class_histogram_counts_predictions():
    logits = np.eye(4)[[0, 0, 1, 3]]
    np.testing.assert_array_equal(class_histogram(logits), [0.5, 0.25, 0.0, 0.25])
    np.testing.assert_array_equal(class_histogram(logits, num_classes=5), [0.5, 0.25, 0.0, 0.25, 0.0])


# --- Bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: frechet_distance(np.zeros((5, 3)), np.zeros((5, 4))), r"features_a.shape=\(5, 3\), features_b.shape=\(5, 4\)"),
        (lambda: frechet_distance(np.zeros((1, 3)), np.zeros((5, 3))), r"at least 2 samples.*features_a.shape=\(1, 3\)"),
        (lambda: frechet_distance(np.zeros((5, 3, 2)), np.zeros((5, 3))), r"2-D array.*features_a.shape=\(5, 3, 2\)"),
        (lambda: frechet_distance(np.full((5, 3), np.nan), np.zeros((5, 3))), "features_a contains 15 NaN"),
        (lambda: kernel_inception_distance(np.zeros((5, 3)), np.zeros((5, 2))), r"features_b.shape=\(5, 2\)"),
        (lambda: kernel_inception_distance(np.zeros((5, 3)), np.zeros((5, 3)), subset_size=1), "Received: subset_size=1"),
        (lambda: kernel_inception_distance(np.zeros((5, 3)), np.zeros((1, 3))), r"features_b.shape=\(1, 3\)"),
        (lambda: classifier_score(np.zeros((5, 3)), num_splits=6), "Received: num_splits=6"),
        (lambda: classifier_score(np.zeros(5)), r"logits.shape=\(5,\)"),
        (lambda: compute_features(lambda x: x, np.zeros((4, 8))), r"images.shape=\(4, 8\)"),
        (lambda: KID(lambda x: x), "exactly one of real_images and real_features"),
        (lambda: KID(lambda x: x, real_features=np.zeros((4, 2)), max_samples=1), "Received: max_samples=1"),
    ],
)
def test_bad_input_names_what_was_received(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_kid_metric_rejects_features_of_another_size():
    kid = KID(lambda x: x, real_features=np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"\[batch, 3\].*shape \(2, 5\)"):
        kid.update_state(np.zeros((2, 5), np.float32))


# --- The shipped classifier ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped_features():
    classifier = keras.saving.load_model(SHIPPED)
    splits = load_dataset("mnist-5k", seed=0)
    digits = compute_features(classifier, splits.train)  # 4,500 digits in a seeded order
    noise = np.random.default_rng(0).uniform(size=(2250, 28, 28, 1)).astype("float32")
    return classifier, digits, compute_features(classifier, noise), splits


def test_shipped_features_tell_digits_from_noise(shipped_features):
    _, digits, noise, _ = shipped_features
    first, second = digits[:2250], digits[2250:]
    real_real, real_noise = frechet_distance(first, second), frechet_distance(first, noise)
    print(f"FD(real, real) = {real_real:.2f}, FD(real, noise) = {real_noise:.1f}")
    assert real_real < 0.05 * real_noise
    kid_real, kid_real_std = kernel_inception_distance(first, second, num_subsets=20, subset_size=1000)
    kid_noise, _ = kernel_inception_distance(first, noise, num_subsets=20, subset_size=1000)
    print(f"KID(real, real) = {kid_real:.3f} ± {kid_real_std:.3f}, KID(real, noise) = {kid_noise:.1f}")
    assert abs(kid_real) < 3 * kid_real_std and kid_noise > 100 * kid_real_std


def test_shipped_classifier_scores_real_digits_near_ten(shipped_features):
    classifier, _, _, splits = shipped_features
    logits = compute_logits(classifier, splits.validation)
    mean, _ = classifier_score(logits)
    assert 8.5 < mean <= 10.0
    np.testing.assert_allclose(class_histogram(logits), 0.1, atol=0.01)  # 50 digits per class
    noise_logits = compute_logits(classifier, np.random.default_rng(1).uniform(size=(200, 28, 28, 1)))
    assert classifier_score(noise_logits)[0] < 2.0


def test_compute_features_takes_arrays_and_datasets_alike(shipped_features):
    classifier, _, _, splits = shipped_features
    images = np.concatenate([x for x, _ in splits.validation.as_numpy_iterator()])
    from_dataset = compute_features(classifier, splits.validation)
    from_array = compute_features(classifier, images, batch_size=100)
    unlabelled = compute_features(classifier, tf.data.Dataset.from_tensor_slices(images).batch(64))
    assert from_dataset.shape == (500, 128) and from_dataset.dtype == np.float32
    np.testing.assert_allclose(from_array, from_dataset, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(unlabelled, from_dataset, rtol=1e-5, atol=1e-5)
