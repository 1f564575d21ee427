import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasgen import VAE


def _small_vae(**kwargs):
    defaults = dict(image_shape=(16, 16, 1), latent_dim=2, num_filters=(8, 16), hidden_dim=32, seed=0)
    return VAE(**{**defaults, **kwargs})


def _tiny_vae(**kwargs):
    """The smallest VAE the tests of Keras arguments need; its weights are seeded."""
    keras.utils.set_random_seed(0)
    return VAE(image_shape=(16, 16, 1), latent_dim=2, num_filters=(4,), hidden_dim=8, seed=0, **kwargs)


def _closed_form_kl(vae, images):
    """KL(q(z|x) || N(0, I)) per image, in numpy from the encoder's (loc, scale)."""
    loc, scale = (keras.ops.convert_to_numpy(t).astype("float64") for t in vae.encode(images))
    return 0.5 * np.sum(scale**2 + loc**2 - 1 - np.log(scale**2), axis=1)


def test_training_lowers_the_negative_elbo(binary_images):
    keras.utils.set_random_seed(0)
    vae = _small_vae()
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = vae.fit(binary_images, epochs=15, batch_size=8, verbose=0).history
    assert set(history) == {"loss", "elbo", "reconstruction", "kl"}
    assert history["loss"][-1] < 0.7 * history["loss"][0]


def test_evaluate_reports_the_kl_in_closed_form_averaged_over_images(binary_images):
    vae = _tiny_vae()
    vae.compile(optimizer="adam")
    # Batches of 6, 6 and 4: a mean of batch means would weight the last four images too much.
    metrics = vae.evaluate(binary_images, batch_size=6, verbose=0, return_dict=True)
    assert set(metrics) == {"loss", "elbo", "reconstruction", "kl"}
    kl = _closed_form_kl(vae, binary_images)
    assert metrics["kl"] == pytest.approx(kl.mean(), rel=1e-5)
    assert abs(np.mean([kl[:6].mean(), kl[6:12].mean(), kl[12:].mean()]) - kl.mean()) > 1e-4 * kl.mean()


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


# --- Keras's compile and fit arguments: honoured or refused, never ignored --------------------


@pytest.mark.parametrize("kwargs", [dict(loss="mse"), dict(loss=keras.losses.BinaryCrossentropy()), dict(loss_weights=[1.0])])
def test_compile_refuses_a_loss_and_says_what_it_received(kwargs):
    (name, value), = kwargs.items()
    with pytest.raises(ValueError, match=rf"VAE.compile does not take {name}.*Received: {name}="):
        _tiny_vae().compile(optimizer="adam", **kwargs)


def test_compiled_metrics_compare_the_images_with_their_reconstructions(tmp_path, binary_images):
    vae = _tiny_vae()
    vae.compile(optimizer="adam", metrics=["mae"])
    labels = np.arange(16)  # labels in the data are not targets
    history = vae.fit(binary_images, labels, batch_size=8, epochs=1, verbose=0, validation_data=(binary_images, labels))
    assert {"mae", "val_mae"} <= set(history.history)
    metrics = vae.evaluate(binary_images, labels, batch_size=6, verbose=0, return_dict=True)
    expected = np.abs(binary_images - keras.ops.convert_to_numpy(vae.reconstruct(binary_images))).mean()
    assert metrics["mae"] == pytest.approx(expected, rel=1e-5)
    # A reloaded model is compiled with the same metrics and its optimizer state.
    vae.save(tmp_path / "vae.keras")
    restored = keras.saving.load_model(tmp_path / "vae.keras")
    assert int(restored.optimizer.iterations) == 2
    again = restored.evaluate(binary_images, batch_size=6, verbose=0, return_dict=True)
    assert again["mae"] == pytest.approx(expected, rel=1e-5)


def test_sample_weight_gives_weighted_means_over_images_in_evaluate(binary_images):
    vae = _tiny_vae()
    vae.compile(optimizer="adam")
    weights = np.r_[np.ones(5), np.zeros(11)].astype("float32")
    metrics = vae.evaluate(binary_images, sample_weight=weights, batch_size=6, verbose=0, return_dict=True)
    assert metrics["kl"] == pytest.approx(_closed_form_kl(vae, binary_images)[:5].mean(), rel=1e-5)

    # Scaling every weight leaves the means unchanged (Keras's sum-over-batch loss would double).
    # Twins with the same seed draw the same z, so every metric, stochastic ones included, agrees.
    results = []
    for sample_weight in (None, np.full(16, 2.0, "float32")):
        twin = _tiny_vae()
        twin.compile(optimizer="adam")
        results.append(twin.evaluate(binary_images, sample_weight=sample_weight, batch_size=6, verbose=0, return_dict=True))
    for name in ("loss", "elbo", "reconstruction", "kl"):
        assert results[1][name] == pytest.approx(results[0][name], rel=1e-6)


@pytest.mark.parametrize("as_dataset", [True, False])
def test_sample_weight_weights_the_gradient_in_fit(binary_images, as_dataset):
    vae = _tiny_vae()
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = vae.get_weights()
    zeros = np.zeros(16, "float32")
    if as_dataset:
        data = dict(x=tf.data.Dataset.from_tensor_slices((binary_images, zeros, zeros)).batch(8))
    else:
        # Keras's own adapter would drop sample_weight here, as there is no y.
        data = dict(x=binary_images, sample_weight=zeros, batch_size=8)
    history = vae.fit(**data, epochs=1, verbose=0).history
    # Zero weight on every image: a zero gradient, so Adam leaves every weight exactly where it was.
    assert all(np.array_equal(b, a) for b, a in zip(before, vae.get_weights()))
    assert history["loss"] == [0.0]
    vae.fit(binary_images, sample_weight=np.ones(16, "float32"), batch_size=8, epochs=1, verbose=0)
    assert any(not np.array_equal(b, a) for b, a in zip(before, vae.get_weights()))


def test_per_pixel_sample_weight_is_refused(binary_images):
    vae = _tiny_vae()
    vae.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"one weight per image.*Received: sample_weight with shape"):
        vae.evaluate(binary_images, sample_weight=np.ones_like(binary_images), batch_size=8, verbose=0)


@pytest.mark.parametrize("scale", [0.001, 0.3])
def test_a_fixed_gaussian_scale_is_exactly_sigma(scale):
    vae = _tiny_vae(likelihood="gaussian", likelihood_scale=scale)
    likelihood = vae.likelihood_distribution(np.zeros((3, 2), "float32"))
    np.testing.assert_array_equal(likelihood.distribution.stddev().numpy(), np.float32(scale))
