import keras
import numpy as np
import pytest

from kerasgen import VAE


def _small_vae(**kwargs):
    defaults = dict(image_shape=(16, 16, 1), latent_dim=2, num_filters=(8, 16), hidden_dim=32, seed=0)
    return VAE(**{**defaults, **kwargs})


def test_training_lowers_the_negative_elbo(binary_images):
    keras.utils.set_random_seed(0)
    vae = _small_vae()
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = vae.fit(binary_images, epochs=15, batch_size=8, verbose=0).history
    assert set(history) == {"loss", "elbo", "reconstruction", "kl"}
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert history["elbo"][-1] == pytest.approx(-(history["reconstruction"][-1] + history["kl"][-1]), rel=1e-4)


def test_evaluate_reports_the_same_metrics(binary_images):
    vae = _small_vae()
    vae.compile(optimizer="adam")
    metrics = vae.evaluate(binary_images, batch_size=8, verbose=0, return_dict=True)
    assert set(metrics) == {"loss", "elbo", "reconstruction", "kl"}
    assert metrics["elbo"] < 0


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(posterior="full", likelihood="gaussian", likelihood_scale="global"),
        dict(likelihood="continuous_bernoulli"),
        dict(likelihood="gaussian", likelihood_scale=0.1),
    ],
)
def test_keras_file_round_trip_gives_identical_outputs(tmp_path, binary_images, kwargs):
    vae = _small_vae(**kwargs)
    vae.compile(optimizer="adam")
    vae.fit(binary_images, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "vae.keras"
    vae.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, VAE)
    assert restored.get_config() == vae.get_config()
    np.testing.assert_array_equal(restored.reconstruct(binary_images), vae.reconstruct(binary_images))
    z = np.random.default_rng(0).standard_normal((4, 2)).astype("float32")
    np.testing.assert_array_equal(restored.decode(z), vae.decode(z))
    # The optimizer state comes back too, so training resumes where it stopped.
    assert int(restored.optimizer.iterations) == int(vae.optimizer.iterations) == 2


@pytest.mark.parametrize("image_shape, num_filters", [((28, 28, 1), (32, 64)), ((32, 32, 3), (32, 64, 64)), ((64, 64, 3), (16, 32, 64, 64))])
def test_builds_for_common_image_shapes(image_shape, num_filters):
    vae = VAE(image_shape=image_shape, latent_dim=4, num_filters=num_filters, likelihood="continuous_bernoulli")
    images = np.random.default_rng(0).uniform(size=(2, *image_shape)).astype("float32")
    assert vae.reconstruct(images).shape == (2, *image_shape)
    assert vae.sample(3, seed=1).shape == (3, *image_shape)
    loc, scale = vae.encode(images)
    assert loc.shape == (2, 4) and scale.shape == (2, 4)


def test_full_covariance_encode_returns_cholesky_factor(binary_images):
    loc, scale = _small_vae(posterior="full").encode(binary_images[:3])
    scale = keras.ops.convert_to_numpy(scale)
    assert loc.shape == (3, 2) and scale.shape == (3, 2, 2)
    np.testing.assert_array_equal(np.triu(scale, k=1), 0.0)
    assert (np.diagonal(scale, axis1=1, axis2=2) > 0).all()


def test_samples_are_reproducible_for_a_seed():
    vae = _small_vae()
    np.testing.assert_array_equal(vae.sample(4, seed=3), vae.sample(4, seed=3))
    assert not np.array_equal(vae.sample(4, seed=3), vae.sample(4, seed=4))


def test_kl_warmup_ramps_linearly_to_beta(binary_images):
    vae = _small_vae(beta=2.0, kl_warmup_steps=4)
    vae.compile(optimizer="adam")
    weights = []
    for _ in range(6):
        weights.append(float(vae.kl_weight()))
        vae.fit(binary_images[:8], epochs=1, batch_size=8, verbose=0)
    np.testing.assert_allclose(weights, [0.5, 1.0, 1.5, 2.0, 2.0, 2.0])
    # Uncompiled (as a reloaded inference copy is), there is no step: the full weight applies.
    assert _small_vae(beta=2.0, kl_warmup_steps=4).kl_weight() == 2.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(image_shape=(28, 28)), r"image_shape must be three positive ints.*Received: image_shape=\(28, 28\)"),
        (dict(image_shape=(30, 30, 1)), r"divisible by 4.*Received: image_shape=\(30, 30, 1\)"),
        (dict(latent_dim=0), "latent_dim must be a positive int. Received: latent_dim=0"),
        (dict(likelihood="poisson"), "Received: likelihood='poisson'"),
        (dict(posterior="flow"), "Received: posterior='flow'"),
        (dict(beta=-1), "Received: beta=-1"),
        (dict(hidden_dim=0), "Received: hidden_dim=0"),
        (dict(num_filters=()), r"Received: num_filters=\(\)"),
    ],
)
def test_bad_arguments_name_what_was_received(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VAE(**{"latent_dim": 2, **kwargs})


def test_importance_weighted_training_lowers_its_bound_and_round_trips(tmp_path, binary_images):
    keras.utils.set_random_seed(0)
    vae = _small_vae(num_importance_samples=4)
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = vae.fit(binary_images, epochs=10, batch_size=8, verbose=0).history
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    # The K-sample bound is tighter than the ELBO it averages.
    assert all(loss <= -elbo + 1e-3 for loss, elbo in zip(history["loss"], history["elbo"]))
    vae.save(tmp_path / "iwae.keras")
    assert keras.saving.load_model(tmp_path / "iwae.keras").num_importance_samples == 4
    with pytest.raises(ValueError, match="Received: num_importance_samples=0"):
        _small_vae(num_importance_samples=0)
