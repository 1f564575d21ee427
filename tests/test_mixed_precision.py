"""Mixed precision: half-precision layers, float32 losses, one loss scale per optimizer, R1 intact.

Tolerance: the same seeded training under `mixed_float16` and float32 sees the same data and
noise; only the layers' arithmetic differs. float16 keeps 11 significant bits (~5e-4 relative per
rounding), and two epochs of Adam carry those roundings into the weights. Measured: every VAE
and GAN loss within 0.04% of float32's; we allow 1%. One exception is handled in nats: the KL of
these barely trained posteriors is ~0.25 nats, a small difference of O(1) numbers
(0.5(μ² + σ² − 1) − log σ with σ ≈ 1), so float16's error in σ moves it by 0.017 nats (7%
relative); it must be within 0.05 nats, a thousandth of the 44-nat loss. A lost loss scale or an
R1 flushed to zero is not a 1% effect: the test of R1 on a tiny-gradient discriminator sees 0
without the scaling.
"""

import keras
import numpy as np
import pytest

from kerasgen.models import GAN, VAE, VAEGAN
from kerasgen.networks import build_discriminator
from kerasgen.runs.harness import precision

IMAGE_SHAPE = (8, 8, 1)
TOLERANCE = 0.01
KL_TOLERANCE_NATS = 0.05


def _images(n=32, binary=False):
    x = np.random.default_rng(0).uniform(size=(n, *IMAGE_SHAPE)).astype("float32")
    return (x > 0.5).astype("float32") if binary else x


def _train_vae(mixed_precision):
    keras.utils.set_random_seed(0)
    with precision(mixed_precision):
        vae = VAE(image_shape=IMAGE_SHAPE, latent_dim=2, num_filters=(4,), hidden_dim=8, seed=0)
        vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    return vae, vae.fit(_images(binary=True), batch_size=8, epochs=2, verbose=0).history


def _train_gan(mixed_precision):
    keras.utils.set_random_seed(0)
    with precision(mixed_precision):
        vae = VAE(image_shape=IMAGE_SHAPE, latent_dim=2, num_filters=(4,), hidden_dim=8, seed=0)
        gan = GAN.from_vae(vae, discriminator=build_discriminator(IMAGE_SHAPE, num_filters=(4,)), seed=0)
        gan.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
    return gan, gan.fit(_images(), batch_size=8, epochs=2, verbose=0).history


def test_vae_trains_in_float16_layers_with_float32_losses():
    vae, history = _train_vae("float16")
    _, reference = _train_vae("none")
    assert vae.encoder.layers[1].compute_dtype == "float16"
    assert vae.encoder.layers[1].kernel.dtype == "float32"
    assert isinstance(vae.optimizer, keras.optimizers.LossScaleOptimizer)
    for name in ("loss", "reconstruction", "elbo", "kl"):
        assert np.all(np.isfinite(history[name])), name
        atol = KL_TOLERANCE_NATS if name == "kl" else 0.0
        np.testing.assert_allclose(history[name], reference[name], rtol=TOLERANCE, atol=atol, err_msg=name)


def test_gan_scales_each_loss_and_keeps_r1_in_float16():
    gan, history = _train_gan("float16")
    _, reference = _train_gan("none")
    assert keras.config.dtype_policy().name == "float32"  # the policy is back after the block
    assert gan.discriminator.compute_dtype == "float16" and gan.generator.compute_dtype == "float16"
    # Each optimizer scales its own loss: an overflow in D's step does not skip G's.
    assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert gan.d_optimizer is not gan.g_optimizer
    assert all(value > 0 for value in history["r1"])
    for name in ("d_loss", "g_loss", "r1", "d_real", "d_fake"):
        assert np.all(np.isfinite(history[name])), name
        np.testing.assert_allclose(history[name], reference[name], rtol=TOLERANCE, err_msg=name)
    # The samples are float32 images, as in float32.
    assert keras.backend.standardize_dtype(gan.sample(2, seed=0).dtype) == "float32"


def test_r1_survives_gradients_below_float16s_range():
    # D(x) = v·(W x) with weights of 1e-4: ∇_x D = Wᵀv, entries ~1e-8, below float16's smallest
    # number (6e-8), so an unscaled float16 backward pass gives R1 = 0. Scaled by D's loss scale
    # (2^15) the gradient is ~3e-4, and R1 comes out as the float32 closed form ||Wᵀv||².
    rng = np.random.default_rng(0)
    hidden = rng.choice([-1.0, 1.0], size=(64, 4)).astype("float32") * 1e-4
    head = rng.choice([-1.0, 1.0], size=(4, 1)).astype("float32") * 1e-4
    with precision("float16"):
        images = keras.Input(IMAGE_SHAPE)
        first = keras.layers.Dense(4, use_bias=False)
        last = keras.layers.Dense(1, use_bias=False)
        discriminator = keras.Model(images, last(first(keras.layers.Flatten()(images))))
        generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(64), keras.layers.Reshape(IMAGE_SHAPE)])
        gan = GAN(generator, discriminator, latent_dim=2, seed=0, ema_decay=0.0)
        gan.compile(d_optimizer=keras.optimizers.SGD(0.0), g_optimizer=keras.optimizers.SGD(0.0))
    first.set_weights([hidden])
    last.set_weights([head])
    # The weights as float16 holds them: what the half-precision forward pass multiplies by.
    gradient = hidden.astype("float16").astype("float64") @ head.astype("float16").astype("float64")
    expected = float(np.sum(gradient**2))
    history = gan.fit(_images(8), batch_size=8, epochs=1, verbose=0).history
    assert expected > 0
    assert history["r1"][0] == pytest.approx(expected, rel=1e-2)


# --- Warm starts take the active policy, not the VAE's ------------------------------------------


@pytest.fixture
def restore_policy():
    """The global dtype policy as it was before the test, whatever the test does to it."""
    previous = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(previous)


def _leaf_layers(model):
    """Every layer inside `model`, nested models opened, input layers left out."""
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _leaf_layers(layer)
        elif not isinstance(layer, keras.layers.InputLayer):
            yield layer


def _warm_started_layers(model):
    """The layers `from_vae` copied from the VAE: the GAN's generator, the VAE-GAN's encoder and decoder."""
    parts = (model.generator,) if isinstance(model, GAN) else (model.encoder, model.decoder)
    # The generator's likelihood mean is float32 by design (images are float32 in every policy).
    return [layer for part in parts for layer in _leaf_layers(part) if layer.name != "likelihood_mean"]


def _small_vae():
    return VAE(image_shape=IMAGE_SHAPE, latent_dim=2, num_filters=(4,), hidden_dim=8, seed=0)


def _decode(model, z):
    return keras.ops.convert_to_numpy(model.generate(z) if isinstance(model, GAN) else model.decode(z))


@pytest.mark.parametrize("model_class", [GAN, VAEGAN])
def test_from_a_mixed_float16_vae_in_a_float32_scope_gives_float32_layers(model_class, restore_policy):
    with precision("float16"):
        vae = _small_vae()
    assert vae.decoder.layers[1].compute_dtype == "float16"
    model = model_class.from_vae(vae, discriminator=build_discriminator(IMAGE_SHAPE, num_filters=(4,)), seed=0)
    model.compile()
    # Plain float32 training: float16 layers here would train with no optimizer scaling their loss.
    layers = _warm_started_layers(model)
    assert layers and {layer.compute_dtype for layer in layers} == {"float32"}
    assert not any(isinstance(getattr(model, name), keras.optimizers.LossScaleOptimizer) for name in model.optimizer_names)
    # Still the VAE's weights: the same images, up to the VAE's float16 rounding.
    z = np.random.default_rng(0).standard_normal((4, 2)).astype("float32")
    np.testing.assert_allclose(_decode(model, z), keras.ops.convert_to_numpy(vae.decode(z)), atol=2e-3)


@pytest.mark.parametrize("model_class", [GAN, VAEGAN])
def test_from_a_float32_vae_under_mixed_float16_scales_every_optimizer(model_class, restore_policy):
    vae = _small_vae()
    with precision("float16"):
        model = model_class.from_vae(vae, discriminator=build_discriminator(IMAGE_SHAPE, num_filters=(4,)), seed=0)
        model.compile()
    layers = _warm_started_layers(model)
    assert layers and {layer.compute_dtype for layer in layers} == {"float16"}
    optimizers = [getattr(model, name) for name in model.optimizer_names]
    assert all(isinstance(optimizer, keras.optimizers.LossScaleOptimizer) for optimizer in optimizers)
    assert len({id(optimizer) for optimizer in optimizers}) == len(optimizers)
    z = np.random.default_rng(0).standard_normal((4, 2)).astype("float32")
    np.testing.assert_allclose(_decode(model, z), keras.ops.convert_to_numpy(vae.decode(z)), atol=2e-3)
