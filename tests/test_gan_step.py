"""One GAN step at a time: which network each update moves, what R1 adds to D's gradient, and test_step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasgen import VAE, distribute
from kerasgen.models import GAN
from kerasgen.networks import build_discriminator

LATENT_DIM = 2
IMAGE_SHAPE = (8, 8, 1)


def _images(n=8, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, *IMAGE_SHAPE)).astype("float32")


def _softplus(x):
    return np.log1p(np.exp(x))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _linear_gan(w, generator_bias=None, **kwargs):
    """G: z -> Dense -> 8x8 images; D(x) = w·x, so ∇_x D = w for every image and R1 = ||w||².

    With `generator_bias`, G's kernel is zero and its images are that constant, whatever z.
    """
    z = keras.Input((LATENT_DIM,))
    dense = keras.layers.Dense(int(np.prod(IMAGE_SHAPE)), kernel_initializer=keras.initializers.RandomNormal(0, 0.3, seed=1))
    generator = keras.Model(z, keras.layers.Reshape(IMAGE_SHAPE)(dense(z)))
    if generator_bias is not None:
        dense.set_weights([np.zeros((LATENT_DIM, w.size), "float32"), generator_bias.reshape(-1)])
    images = keras.Input(IMAGE_SHAPE)
    logit = keras.layers.Dense(1, use_bias=False)
    discriminator = keras.Model(images, logit(keras.layers.Flatten()(images)))
    logit.set_weights([w.reshape(-1, 1)])
    return GAN(generator, discriminator, LATENT_DIM, **{"seed": 0, "ema_decay": 0.5, **kwargs})


def _conv_gan(**kwargs):
    """The real networks, tiny: a VAE decoder as G (seeded weights) and a one-level conv D."""
    keras.utils.set_random_seed(0)
    vae = VAE(image_shape=IMAGE_SHAPE, latent_dim=LATENT_DIM, num_filters=(4,), hidden_dim=8, seed=0)
    discriminator = build_discriminator(IMAGE_SHAPE, num_filters=(4,))
    return GAN.from_vae(vae, discriminator=discriminator, **{"seed": 0, "ema_decay": 0.5, **kwargs})


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


def _identical(before, model):
    return all(np.array_equal(b, a) for b, a in zip(before, model.get_weights()))


def _w(seed=2):
    return (0.1 * np.random.default_rng(seed).standard_normal(int(np.prod(IMAGE_SHAPE)))).astype("float32")


# --- Each optimizer moves only its own network ---------------------------------------------------


@pytest.mark.parametrize("build", [_conv_gan, lambda **kwargs: _linear_gan(_w(), **kwargs)])
@pytest.mark.parametrize("frozen", ["generator", "discriminator"])
def test_each_update_moves_only_its_own_network(build, frozen):
    # A zero learning rate freezes one network's own update; whatever the other update does must
    # then leave it bit-identical. The EMA at decay 0.5 of an unchanged G is exactly G.
    gan = build(d_steps=2)
    rates = {"generator": (0.1, 0.0), "discriminator": (0.0, 0.1)}[frozen]
    gan.compile(d_optimizer=keras.optimizers.SGD(rates[0]), g_optimizer=keras.optimizers.SGD(rates[1]))
    generator, discriminator, average = (_weights(m) for m in (gan.generator, gan.discriminator, gan.ema_generator))
    gan.fit(_images(), batch_size=8, epochs=1, verbose=0)
    assert int(gan.d_optimizer.iterations) == 2 and int(gan.g_optimizer.iterations) == 1
    if frozen == "generator":
        assert _identical(generator, gan.generator) and _identical(average, gan.ema_generator)
        assert not _identical(discriminator, gan.discriminator)
    else:
        assert _identical(discriminator, gan.discriminator)
        assert not _identical(generator, gan.generator)
        for before, after, moved in zip(average, gan.ema_generator.get_weights(), gan.generator.get_weights()):
            np.testing.assert_allclose(after, 0.5 * before + 0.5 * moved, rtol=1e-6, atol=1e-8)


# --- R1 ------------------------------------------------------------------------------------------


def _one_discriminator_step(gan, learning_rate):
    gan.compile(d_optimizer=keras.optimizers.SGD(learning_rate), g_optimizer=keras.optimizers.SGD(0.0))
    history = gan.fit(_images(), batch_size=8, epochs=1, verbose=0).history
    return _weights(gan.discriminator), history


def test_r1_adds_gamma_w_to_the_gradient_of_a_linear_discriminator():
    # D(x) = w·x: ∇_x D = w, so R1 = ||w||² and (γ/2)·R1 adds γ·w to D's gradient. Same data,
    # same weights, same seed (so the same fakes): one SGD step apart by exactly −η·γ·w.
    w, gamma, rate = _w(), 10.0, 0.01
    with_r1, history = _one_discriminator_step(_linear_gan(w, r1_weight=gamma), rate)
    without_r1, history_without = _one_discriminator_step(_linear_gan(w, r1_weight=0.0), rate)
    np.testing.assert_allclose(with_r1[0].reshape(-1) - without_r1[0].reshape(-1), -rate * gamma * w, rtol=1e-4, atol=1e-8)
    assert history["r1"][0] == pytest.approx(float(np.sum(w.astype("float64") ** 2)), rel=1e-5)
    assert history_without["r1"][0] == 0.0
    assert history["d_loss"] == pytest.approx(history_without["d_loss"], rel=1e-6)  # the penalty is not in d_loss


def test_r1_changes_a_conv_discriminators_gradient():
    with_r1, _ = _one_discriminator_step(_conv_gan(r1_weight=10.0), 0.1)
    without_r1, _ = _one_discriminator_step(_conv_gan(r1_weight=0.0), 0.1)
    assert any(np.abs(a - b).max() > 1e-6 for a, b in zip(with_r1, without_r1))


# --- test_step -----------------------------------------------------------------------------------


def test_evaluate_reports_the_known_values_of_a_linear_gan_and_moves_nothing():
    w = _w()
    fake = np.random.default_rng(3).uniform(size=IMAGE_SHAPE).astype("float32")
    gan = _linear_gan(w, generator_bias=fake, label_smoothing=0.1)
    gan.compile(d_optimizer="adam", g_optimizer="adam")
    before = [_weights(m) for m in (gan.generator, gan.discriminator, gan.ema_generator)]
    images = _images(10)
    # Batches of 4, 4 and 2: the metrics are means over images, not over batches.
    metrics = gan.evaluate(images, batch_size=4, verbose=0, return_dict=True)
    real = images.reshape(10, -1).astype("float64") @ w
    fake_logit = float(fake.reshape(-1).astype("float64") @ w)
    expected = {
        "d_real": _sigmoid(real).mean(),
        "d_fake": _sigmoid(fake_logit),
        "d_loss": np.mean(0.9 * _softplus(-real) + 0.1 * _softplus(real)) + _softplus(fake_logit),
        "g_loss": _softplus(-fake_logit),
        "r1": float(np.sum(w.astype("float64") ** 2)),
    }
    assert set(metrics) == set(expected)
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, rel=1e-5), name
    for weights, model in zip(before, (gan.generator, gan.discriminator, gan.ema_generator)):
        assert _identical(weights, model)
    assert int(gan.d_optimizer.iterations) == 0 and int(gan.g_optimizer.iterations) == 0


def test_validation_metrics_are_the_held_out_images_and_draws_are_seeded():
    gan = _conv_gan()
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
    held_out = _images(6, seed=1)
    history = gan.fit(_images(), batch_size=8, epochs=1, verbose=0, validation_data=(held_out,)).history
    names = {"d_loss", "g_loss", "r1", "d_real", "d_fake"}
    assert set(history) == names | {f"val_{name}" for name in names}
    # D's numbers on real images do not depend on z: evaluate after fit gives the same.
    metrics = gan.evaluate(held_out, verbose=0, return_dict=True)
    for name in ("d_real", "r1"):
        assert metrics[name] == pytest.approx(history[f"val_{name}"][0], rel=1e-5)
    # The fakes come from the model's seed generator: a fresh twin repeats them, a second call does not.
    twins = [_conv_gan(), _conv_gan()]
    for twin in twins:
        twin.compile(d_optimizer="adam", g_optimizer="adam")
    first = [twin.evaluate(held_out, verbose=0, return_dict=True)["d_fake"] for twin in twins]
    assert first[0] == first[1]
    assert twins[0].evaluate(held_out, verbose=0, return_dict=True)["d_fake"] != first[0]


def test_validating_does_not_change_what_training_learns():
    # Validation draws its own noise: a run with validation_data trains the same weights as one without.
    images, held_out = _images(), _images(6, seed=1)

    def gan():
        model = _conv_gan()
        model.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
        return model

    def vae():
        keras.utils.set_random_seed(0)
        model = VAE(image_shape=IMAGE_SHAPE, latent_dim=LATENT_DIM, num_filters=(4,), hidden_dim=8, seed=0)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        return model

    for build in (gan, vae):
        weights = []
        for validation in (None, (held_out,)):
            model = build()
            model.fit(images, batch_size=4, epochs=2, verbose=0, validation_data=validation)
            weights.append(model.get_weights())
        for a, b in zip(*weights):
            np.testing.assert_array_equal(a, b)


# --- The generator's objective -------------------------------------------------------------------


def test_the_generator_follows_the_non_saturating_loss_not_the_saturating_one():
    """G's applied gradient is ∇ of −log D(G(z)) averaged over the batch, not of log(1 − D(G(z))).

    D's bias is set to −4 so that it rejects the fakes (σ(d) ≈ 0.02): there the two losses'
    gradients in d are −(1 − σ(d)) and −σ(d), about fifty times apart, so the test tells them apart.
    D's own rate is 0, so G's step sees the D the reference uses; z is the step's second draw
    (the first is D's fakes).
    """
    gan = _conv_gan()
    logits = gan.discriminator.get_layer("logits")
    logits.bias.assign(np.full(logits.bias.shape, -4.0, "float32"))
    recorded = []

    class RecordingSGD(keras.optimizers.SGD):
        def apply(self, grads, trainable_variables=None):
            recorded.extend((variable, np.array(gradient)) for gradient, variable in zip(grads, trainable_variables))
            return super().apply(grads, trainable_variables)

    gan.compile(d_optimizer=keras.optimizers.SGD(0.0), g_optimizer=RecordingSGD(0.0), run_eagerly=True)
    twin = keras.random.SeedGenerator(0)
    twin.state.assign(gan.seed_generator.state)
    distribute.next_seed(twin)
    z = tf.random.stateless_normal((8, LATENT_DIM), seed=distribute.next_seed(twin))
    variables = gan.generator.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        d = tf.reshape(gan.discriminator(gan.generator(z, training=True), training=True), (-1,))
        non_saturating = tf.reduce_mean(-tf.math.log(tf.sigmoid(d)))
        saturating = tf.reduce_mean(tf.math.log(1.0 - tf.sigmoid(d)))
    assert float(tf.reduce_max(tf.sigmoid(d))) < 0.1
    wanted, unwanted = tape.gradient(non_saturating, variables), tape.gradient(saturating, variables)

    gan.train_on_batch(_images())

    applied = {id(variable): gradient for variable, gradient in recorded}
    assert set(applied) == {id(v) for v, g in zip(variables, wanted) if g is not None}
    for variable, want, other in zip(variables, wanted, unwanted):
        if want is None:
            continue
        size = float(np.max(np.abs(want)))
        np.testing.assert_allclose(applied[id(variable)], want, rtol=1e-4, atol=1e-5 * size, err_msg=variable.path)
        assert np.max(np.abs(applied[id(variable)] - other)) > 0.5 * size, variable.path
