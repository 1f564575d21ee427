import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasgen import VAE
from kerasgen.artifacts import inference_copy
from kerasgen.evaluation.sample_quality import SHIPPED_CLASSIFIER
from kerasgen.losses import discriminator_loss, non_saturating_generator_loss, r1_penalty
from kerasgen.models import GAN
from kerasgen.networks import build_discriminator

CLASSIFIER_PATH = os.path.join(SHIPPED_CLASSIFIER, "classifier.keras")


def _small_vae(**kwargs):
    defaults = dict(image_shape=(16, 16, 1), latent_dim=2, num_filters=(8, 16), hidden_dim=32, seed=0)
    return VAE(**{**defaults, **kwargs})


def _trained_looking_vae(**kwargs):
    """A VAE whose decoder's weights are moved off their initialization, so its images vary with z."""
    vae = _small_vae(**kwargs)
    rng = np.random.default_rng(0)
    vae.decoder.set_weights([w + rng.normal(0, 0.3, w.shape).astype("float32") for w in vae.decoder.get_weights()])
    return vae


def _small_gan(vae=None, **kwargs):
    vae = vae or _small_vae()
    discriminator = build_discriminator(vae.image_shape, num_filters=(8, 16))
    return GAN.from_vae(vae, discriminator=discriminator, **{"seed": 0, **kwargs})


def _compile(gan):
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))


def _latents(n=4):
    return np.random.default_rng(1).standard_normal((n, 2)).astype("float32")


def _softplus(x):
    return np.log1p(np.exp(x))


# --- Losses ----------------------------------------------------------------------------------


def test_non_saturating_loss_keeps_its_gradient_when_the_discriminator_rejects_fakes():
    logits = tf.constant([-8.0, 0.0, 3.0])
    sigmoid = 1 / (1 + np.exp(-logits.numpy()))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        non_saturating = non_saturating_generator_loss(logits)
        # The minimax generator loss: minimize log(1 − σ(d)).
        saturating = tf.reduce_mean(tf.math.log(1 - tf.sigmoid(logits)))
    np.testing.assert_allclose(float(non_saturating), np.mean(-np.log(sigmoid)), rtol=1e-6)
    # d/dd of mean(−log σ(d)) is −(1 − σ(d)) / B.
    gradient = tape.gradient(non_saturating, logits).numpy() * 3
    np.testing.assert_allclose(gradient, -(1 - sigmoid), rtol=1e-5)
    # At d = −8 (D confidently rejects the fake) the non-saturating gradient is close to −1,
    # while the saturating loss's gradient −σ(d) has all but vanished.
    saturating_gradient = tape.gradient(saturating, logits).numpy() * 3
    assert abs(gradient[0]) > 0.99
    assert abs(saturating_gradient[0]) < 1e-3


def test_discriminator_loss_known_values_and_label_smoothing():
    zeros = tf.zeros([4])
    assert float(discriminator_loss(zeros, zeros)) == pytest.approx(2 * np.log(2), rel=1e-6)
    real, fake = np.array([2.0, -1.0], "float32"), np.array([-1.0, 0.5], "float32")
    expected = np.mean(0.9 * _softplus(-real) + 0.1 * _softplus(real)) + np.mean(_softplus(fake))
    assert float(discriminator_loss(real, fake, label_smoothing=0.1)) == pytest.approx(expected, rel=1e-6)
    # Smoothing penalizes a confident D on real images: the loss grows with the logit.
    assert float(discriminator_loss(real + 5, fake, 0.1)) > float(discriminator_loss(real + 5, fake, 0.0))


def test_r1_of_a_linear_discriminator_is_the_squared_weight_norm():
    w = tf.constant(np.random.default_rng(0).standard_normal((16 * 16,)).astype("float32"))
    x = tf.constant(np.random.default_rng(1).uniform(size=(8, 16, 16, 1)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        logit_sum = tf.reduce_sum(tf.reshape(x, (8, -1)) @ w[:, None])
    assert float(r1_penalty(tape.gradient(logit_sum, x))) == pytest.approx(float(tf.reduce_sum(w**2)), rel=1e-5)


# --- Networks and construction ---------------------------------------------------------------


@pytest.mark.parametrize("image_shape", [(28, 28, 1), (32, 32, 3), (64, 64, 3)])
def test_discriminator_gives_one_logit_per_image(image_shape):
    discriminator = build_discriminator(image_shape, num_filters=(8, 16))
    images = np.random.default_rng(0).uniform(size=(2, *image_shape)).astype("float32")
    assert discriminator(images).shape == (2, 1)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in discriminator.layers)


@pytest.mark.parametrize(
    "kwargs", [dict(), dict(likelihood="gaussian"), dict(likelihood="continuous_bernoulli")]
)
def test_warm_started_generator_equals_the_vae_decoder(kwargs):
    vae = _trained_looking_vae(**kwargs)
    gan = _small_gan(vae)
    z = _latents()
    assert np.ptp(np.asarray(vae.decode(z))) > 0.1
    assert gan.latent_dim == 2 and gan.image_shape == (16, 16, 1)
    np.testing.assert_allclose(gan.generator(z), vae.decode(z), atol=1e-6, rtol=0)
    np.testing.assert_allclose(gan.generate(z), vae.decode(z), atol=1e-6, rtol=0)
    scratch = _small_gan(vae, init="scratch")
    assert np.abs(np.asarray(scratch.generator(z)) - np.asarray(vae.decode(z))).max() > 0.05


def test_from_vae_reads_a_run_folder(tmp_path):
    vae = _trained_looking_vae()
    vae.save(tmp_path / "vae.keras")
    gan = GAN.from_vae(str(tmp_path), ema_decay=0.0)
    z = _latents()
    np.testing.assert_allclose(gan.generate(z), vae.decode(z), atol=1e-6, rtol=0)


def test_from_vae_errors_name_what_was_received():
    with pytest.raises(ValueError, match="holds a Classifier"):
        GAN.from_vae(CLASSIFIER_PATH)
    with pytest.raises(ValueError, match="init='pretrained'"):
        GAN.from_vae(_small_vae(), init="pretrained")
    with pytest.raises(ValueError, match="Received: Sequential"):
        GAN.from_vae(keras.Sequential([keras.layers.Dense(1)]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(r1_weight=-1.0), "r1_weight=-1.0"),
        (dict(d_steps=0), "d_steps=0"),
        (dict(ema_decay=1.0), "ema_decay=1.0"),
        (dict(label_smoothing=1.0), "label_smoothing=1.0"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _small_gan(**kwargs)


# --- Training --------------------------------------------------------------------------------


def test_training_changes_both_networks_and_reports_finite_metrics(binary_images):
    gan = _small_gan(d_steps=2)
    _compile(gan)
    generator_before = [w.copy() for w in gan.generator.get_weights()]
    discriminator_before = [w.copy() for w in gan.discriminator.get_weights()]
    history = gan.fit(binary_images, epochs=2, batch_size=8, verbose=0).history
    assert set(history) == {"d_loss", "g_loss", "r1", "d_real", "d_fake"}
    assert all(np.isfinite(values).all() for values in history.values())
    assert history["r1"][-1] > 0
    for before, after in ((generator_before, gan.generator), (discriminator_before, gan.discriminator)):
        assert any(not np.array_equal(b, a) for b, a in zip(before, after.get_weights()))
    # Two discriminator updates per generator update, over 4 batches.
    assert int(gan.d_optimizer.iterations) == 8 and int(gan.g_optimizer.iterations) == 4


def test_ema_moves_at_the_configured_rate(binary_images):
    decay = 0.9
    gan = _small_gan(ema_decay=decay)
    _compile(gan)
    start = gan.generator.get_weights()
    gan.fit(binary_images, epochs=1, batch_size=16, verbose=0)  # one step
    after = gan.generator.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(start, after))
    for average, v0, v1 in zip(gan.ema_generator.get_weights(), start, after):
        np.testing.assert_allclose(average, decay * v0 + (1 - decay) * v1, rtol=1e-5, atol=1e-7)
    assert all(not v.trainable for v in gan.ema_generator.weights)


def test_keras_file_round_trip_restores_weights_and_both_optimizers(tmp_path, binary_images):
    gan = _small_gan(d_steps=2, ema_decay=0.5)
    _compile(gan)
    gan.fit(binary_images, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "gan.keras"
    gan.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, GAN)
    assert restored.d_steps == 2 and restored.ema_decay == 0.5 and restored.r1_weight == 10.0
    z = _latents()
    np.testing.assert_array_equal(restored.generate(z), gan.generate(z))
    np.testing.assert_array_equal(restored.generator(z), gan.generator(z))
    assert int(restored.d_optimizer.iterations) == 4 and int(restored.g_optimizer.iterations) == 2
    # The shipped artifact: same images, no optimizer.
    copy = inference_copy(gan)
    np.testing.assert_array_equal(copy.generate(z), gan.generate(z))
    assert not copy.compiled
    # Adam's moments come back too, not just the step counts.
    for saved, loaded in zip(gan.d_optimizer.variables, restored.d_optimizer.variables):
        np.testing.assert_array_equal(saved, loaded)
    # Training resumes where it stopped.
    before = restored.generator.get_weights()
    restored.fit(binary_images, epochs=1, batch_size=8, verbose=0)
    assert int(restored.d_optimizer.iterations) == 8 and int(restored.g_optimizer.iterations) == 4
    assert any(not np.array_equal(b, a) for b, a in zip(before, restored.generator.get_weights()))


# --- Keras's arguments: refused clearly, never ignored ----------------------------------------


@pytest.mark.parametrize("key", ["optimizer", "loss", "loss_weights", "metrics", "weighted_metrics"])
def test_compile_refuses_what_a_gan_does_not_take(key):
    value = "adam" if key == "optimizer" else ["mae"]
    with pytest.raises(ValueError, match=rf"GAN.compile .*{key}.*Received: {key}="):
        _small_gan().compile(**{key: value})


def test_sample_weight_is_refused_in_fit_and_evaluate(binary_images):
    gan = _small_gan()
    _compile(gan)
    weights = np.ones(16, "float32")
    weighted = tf.data.Dataset.from_tensor_slices((binary_images, np.zeros(16), weights)).batch(8)
    calls = [
        lambda: gan.fit(binary_images, sample_weight=weights, verbose=0),
        lambda: gan.fit(binary_images, np.zeros(16), class_weight={0: 1.0}, verbose=0),
        lambda: gan.fit(weighted, verbose=0),
        lambda: gan.evaluate(binary_images, sample_weight=weights, verbose=0),
        lambda: gan.evaluate(weighted, verbose=0),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="A GAN does not weight images.*Received: a (sample|class)_weight"):
            call()
    assert int(gan.d_optimizer.iterations) == 0


@pytest.mark.parametrize(
    "callback",
    [keras.callbacks.LearningRateScheduler(lambda epoch, rate: rate * 0.5), keras.callbacks.ReduceLROnPlateau("d_loss")],
)
def test_learning_rate_callbacks_are_refused_with_the_per_optimizer_alternative(binary_images, callback):
    gan = _small_gan()
    _compile(gan)
    with pytest.raises(ValueError, match=rf"{type(callback).__name__} sets model.optimizer.learning_rate.*schedules"):
        gan.fit(binary_images, epochs=1, verbose=0, callbacks=[keras.callbacks.History(), callback])


def test_per_optimizer_schedules_drive_each_rate_and_survive_a_round_trip(tmp_path, binary_images):
    gan = _small_gan()
    decay = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=1, decay_rate=0.5)
    gan.compile(d_optimizer=keras.optimizers.Adam(decay), g_optimizer=keras.optimizers.Adam(2e-4))
    gan.fit(binary_images, epochs=1, batch_size=8, verbose=0)  # two steps
    assert float(gan.d_optimizer.learning_rate) == pytest.approx(1e-3 * 0.5**2)
    assert float(gan.g_optimizer.learning_rate) == pytest.approx(2e-4)
    gan.save(tmp_path / "gan.keras")
    restored = keras.saving.load_model(tmp_path / "gan.keras")
    assert float(restored.d_optimizer.learning_rate) == pytest.approx(1e-3 * 0.5**2)


def test_the_discriminator_of_a_latent_map_vae_goes_on_to_4x4():
    from kerasgen.models.adversarial import discriminator_filters

    # An encoder that stops at 8x8 (z an 8x8 map) gets one more level; one at 4x4 keeps its own.
    assert discriminator_filters((32, 32, 3), (32, 64)) == (32, 64, 128)
    assert discriminator_filters((32, 32, 3), (32, 64, 128)) == (32, 64, 128)
    assert discriminator_filters((40, 40, 3), (8,)) == (8, 16, 32)  # 20 -> 10 -> 5: an odd side stops
    vae = _small_vae(
        image_shape=(32, 32, 3), latent_dim=64, num_filters=(8, 16), architecture="resnet", latent_layout="map",
        likelihood="logistic_mixture", likelihood_components=2,
    )
    gan = GAN.from_vae(vae, ema_decay=0.0)
    features = [layer.output.shape for layer in gan.discriminator.layers if "conv" in layer.name.lower()]
    assert tuple(features[-1][1:3]) == (4, 4)
    assert tuple(gan.discriminator(np.zeros((2, 32, 32, 3), "float32")).shape) == (2, 1)
