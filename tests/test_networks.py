import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from kerasgen import VAE
from kerasgen.config import TrainVAEConfig
from kerasgen.models import AAE, GAN
from kerasgen.networks import PRESETS, build_decoder, build_discriminator, build_encoder, network_preset

SHIPPED_VAE = os.path.join(os.path.dirname(__file__), "..", "saved_models", "vae-mnist-5k", "vae.keras")
# Small widths with as many levels as the presets have at each size (down to 4x4).
SMALL_FILTERS = {32: (4, 8, 8), 64: (4, 4, 8, 8), 128: (2, 4, 4, 8, 8)}


def _colour_images(n=8, size=16, seed=0):
    """Smooth seeded colour images in [0, 1]: a random colour gradient each, so a VAE can learn them."""
    rng = np.random.default_rng(seed)
    line = np.linspace(0.0, 1.0, size, dtype="float32")
    ramp = (line[:, None] + line[None, :]) / 2
    start, end = rng.uniform(0.1, 0.9, (2, n, 1, 1, 3)).astype("float32")
    return start + (end - start) * ramp[None, :, :, None]


def _small_vae(architecture, size=16, **kwargs):
    defaults = dict(
        image_shape=(size, size, 3), latent_dim=4, likelihood="continuous_bernoulli", num_filters=(4, 8), hidden_dim=16,
        architecture=architecture, num_blocks=2 if architecture == "resnet" else 1, seed=0,
    )
    return VAE(**{**defaults, **kwargs})


@pytest.mark.parametrize("architecture", ["resnet", "dcgan"])
@pytest.mark.parametrize("size", [32, 64, 128])
def test_each_family_maps_colour_images_of_each_size(architecture, size):
    shape, filters = (size, size, 3), SMALL_FILTERS[size]
    images = _colour_images(2, size)
    encoder = build_encoder(shape, filters, 16, 6, architecture=architecture)
    decoder = build_decoder(3, shape, filters, 16, architecture=architecture)
    discriminator = build_discriminator(shape, filters, architecture=architecture, spectral_norm=size == 32)
    assert tuple(encoder(images).shape) == (2, 6)
    assert tuple(decoder(np.zeros((2, 3), "float32")).shape) == (2, size, size, 3)
    assert tuple(discriminator(images).shape) == (2, 1)
    if architecture == "resnet":
        # Nearest-neighbour upsampling, no transposed convolution (no checkerboard).
        assert not any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in decoder.layers)
        assert any(isinstance(layer, keras.layers.UpSampling2D) for layer in decoder.layers)


def test_no_layer_reads_batch_statistics():
    for architecture in ("resnet", "dcgan"):
        networks = (
            build_encoder((32, 32, 3), (4, 8, 8), 16, 6, architecture=architecture),
            build_decoder(3, (32, 32, 3), (4, 8, 8), 16, architecture=architecture),
            build_discriminator((32, 32, 3), (4, 8, 8), architecture=architecture),
        )
        for network in networks:
            assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in network.layers)
    # Each image's output depends on that image alone, in training mode too.
    encoder = build_encoder((32, 32, 3), (4, 8, 8), 16, 6, architecture="resnet")
    images = _colour_images(4, 32)
    together = encoder(images, training=True)
    alone = encoder(images[:1], training=True)
    np.testing.assert_allclose(together[:1], alone, rtol=1e-5, atol=1e-6)


def test_conv_networks_for_digits_are_unchanged():
    vae = keras.saving.load_model(SHIPPED_VAE)
    assert vae.get_config()["architecture"] == "conv"
    assert vae.num_blocks == 1
    # Measured with the networks before architectures existed (commit e820018).
    z = np.linspace(-1.5, 1.5, 3 * vae.latent_dim, dtype="float32").reshape(3, vae.latent_dim)
    images = np.asarray(vae.decode(z))
    np.testing.assert_allclose(images.reshape(3, -1).sum(1), [106.685394, 67.384781, 54.094486], rtol=1e-5)
    loc, _ = vae.encode(images)
    np.testing.assert_allclose(
        np.asarray(loc)[:, :3].ravel(),
        [-1.379208, -1.581853, -0.79896, -0.292173, -0.30292, -0.124192, 0.569029, 0.539152, 0.86361],
        atol=1e-5,
    )


@pytest.mark.parametrize("size", sorted(PRESETS))
def test_the_preset_of_each_resolution_builds_a_vae(size):
    shape = (size, size, 1 if size == 28 else 3)
    preset = network_preset(shape)
    assert preset["architecture"] == ("conv" if size == 28 else "resnet")
    vae = VAE(image_shape=shape, likelihood="continuous_bernoulli", **preset)
    assert tuple(vae.decode(np.zeros((1, preset["latent_dim"]), "float32")).shape) == (1, *shape)
    assert tuple(vae.encode(np.zeros((1, *shape), "float32"))[0].shape) == (1, preset["latent_dim"])


def test_network_preset_refuses_what_it_cannot_fit():
    with pytest.raises(ValueError, match="up to 128x128"):
        network_preset((256, 256, 3))
    with pytest.raises(ValueError, match="divisible by 4"):
        network_preset((30, 30, 3))
    with pytest.raises(ValueError, match="architecture must be one of"):
        VAE(architecture="vgg")
    with pytest.raises(ValueError, match="num_blocks must be a positive int"):
        VAE(architecture="resnet", num_blocks=0)
    with pytest.raises(ValueError, match="--num-blocks counts residual blocks"):
        TrainVAEConfig(num_blocks=2)


@pytest.mark.parametrize("architecture", ["conv", "resnet", "dcgan"])
def test_one_training_step_lowers_the_loss_of_each_family(architecture):
    keras.utils.set_random_seed(0)
    vae = _small_vae(architecture)
    vae.compile(optimizer=keras.optimizers.Adam(1e-4))
    images = _colour_images()
    noise_state = vae.seed_generator.state.numpy()
    before = vae.train_on_batch(images, return_dict=True)["loss"]
    # The same reparameterization noise as the step's, so the two losses differ by the update alone.
    vae.seed_generator.state.assign(noise_state)
    after, _ = vae.compute_elbo(images, training=True)
    assert float(after) < before


def _save_and_load(model, tmp_path, name):
    path = str(tmp_path / name)
    model.save(path)
    return keras.saving.load_model(path)


def test_resnet_vae_keras_round_trip(tmp_path):
    vae = _small_vae("resnet", size=32, num_filters=(4, 8, 8))
    images = _colour_images(4, 32)
    loaded = _save_and_load(vae, tmp_path, "vae.keras")
    assert (loaded.architecture, loaded.num_blocks) == ("resnet", 2)
    np.testing.assert_array_equal(loaded.reconstruct(images), vae.reconstruct(images))


def test_gan_with_spectral_norm_keras_round_trip(tmp_path):
    gan = GAN.from_vae(_small_vae("resnet"), spectral_norm=True, seed=0)
    images = _colour_images(4)
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
    gan.fit(images, batch_size=4, epochs=1, verbose=0)
    loaded = _save_and_load(gan, tmp_path, "gan.keras")
    assert any(isinstance(layer, keras.layers.SpectralNormalization) for layer in loaded.discriminator.layers)
    np.testing.assert_array_equal(loaded.discriminator(images), gan.discriminator(images))
    z = np.random.default_rng(0).normal(size=(4, 4)).astype("float32")
    np.testing.assert_array_equal(loaded.generate(z), gan.generate(z))


def test_spectrally_normalized_kernels_have_spectral_norm_one():
    keras.utils.set_random_seed(0)
    discriminator = build_discriminator((16, 16, 3), (8, 16), spectral_norm=True)
    gan = GAN.from_vae(_small_vae("conv"), discriminator=discriminator, seed=0, r1_weight=1.0)
    wrappers = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.SpectralNormalization)]
    assert len(wrappers) == 3  # two convolutions and the logit
    for wrapper in wrappers:
        # Five times the initial kernels: spectral norms of about 5, which training must bring to 1.
        wrapper.layer.kernel.assign(5.0 * wrapper.layer.kernel)
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-4), g_optimizer=keras.optimizers.Adam(1e-4))
    gan.fit(_colour_images(), batch_size=8, epochs=20, verbose=0)
    for wrapper in wrappers:
        kernel = np.asarray(wrapper.layer.kernel)
        sigma = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
        # One power iteration per call tracks the largest singular value; the last Adam step
        # moved the kernel a little after its normalization.
        assert abs(sigma - 1.0) < 0.1, (wrapper.name, sigma)


@pytest.mark.parametrize("size", [32, 64])
def test_gan_warm_starts_from_a_resnet_vae(size):
    vae = _small_vae("resnet", size=size, num_filters=SMALL_FILTERS[size])
    gan = GAN.from_vae(vae, ema_decay=0.0, seed=0)
    z = np.random.default_rng(1).normal(size=(3, vae.latent_dim)).astype("float32")
    np.testing.assert_allclose(gan.generate(z), vae.decode(z), rtol=1e-5, atol=1e-6)
    # The default discriminator follows the VAE's family and widths.
    assert any(layer.name == "level0_block0_add" for layer in gan.discriminator.layers)
    assert tuple(gan.discriminator(np.zeros((1, size, size, 3), "float32")).shape) == (1, 1)


def test_aae_takes_the_architecture_of_its_vae(tmp_path):
    vae = _small_vae("resnet")
    aae = AAE.from_vae(vae)
    assert (aae.architecture, aae.num_blocks) == ("resnet", 2)
    images = _colour_images(4)
    np.testing.assert_allclose(aae.reconstruct(images), vae.reconstruct(images), rtol=1e-5, atol=1e-6)
    loaded = _save_and_load(aae, tmp_path, "aae.keras")
    np.testing.assert_array_equal(loaded.reconstruct(images), aae.reconstruct(images))


def test_discriminator_leaky_relu_is_kerass_and_survives_a_keras_round_trip(tmp_path):
    import keras
    import numpy as np

    from kerasgen.layers import leaky_relu
    from kerasgen.networks import build_discriminator

    x = np.linspace(-3, 3, 61).astype("float32")
    np.testing.assert_array_equal(np.asarray(leaky_relu(x)), np.asarray(keras.activations.leaky_relu(x, 0.2)))
    discriminator = build_discriminator((16, 16, 3), num_filters=(8, 16))
    images = np.random.default_rng(0).random((4, 16, 16, 3)).astype("float32")
    discriminator.save(tmp_path / "d.keras")
    reloaded = keras.saving.load_model(tmp_path / "d.keras")
    np.testing.assert_allclose(np.asarray(reloaded(images)), np.asarray(discriminator(images)), rtol=1e-6)


# --- The latent map ----------------------------------------------------------------------------


def test_a_latent_map_is_z_read_at_the_coarsest_resolution():
    # 16x16 images, two levels: a 4x4 map, so 32 numbers are 2 channels per position.
    vae = _small_vae("resnet", latent_dim=32, latent_layout="map")
    assert vae.decoder.get_layer("z_map").output.shape[1:] == (4, 4, 2)
    assert vae.encoder.get_layer("posterior_loc").output.shape[1:] == (4, 4, 2)
    assert not any(isinstance(layer, keras.layers.Dense) for layer in [*vae.encoder.layers, *vae.decoder.layers])
    # The posterior's loc is the loc map, flattened: the first half of the encoder's output.
    images = _colour_images(4)
    loc_map = keras.Model(vae.encoder.input, vae.encoder.get_layer("posterior_loc").output)(images)
    np.testing.assert_allclose(vae.encode(images)[0], ops.reshape(loc_map, (4, 32)), rtol=1e-6, atol=1e-6)


def test_a_latent_map_vae_trains_round_trips_and_starts_a_gan_and_an_aae(tmp_path):
    keras.utils.set_random_seed(0)
    vae = _small_vae("resnet", latent_dim=32, latent_layout="map")
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    images = _colour_images()
    first = vae.fit(images, batch_size=8, epochs=1, verbose=0).history["loss"][0]
    last = vae.fit(images, batch_size=8, epochs=20, verbose=0).history["loss"][-1]
    assert last < first
    loaded = _save_and_load(vae, tmp_path, "vae.keras")
    assert loaded.latent_layout == "map"
    np.testing.assert_array_equal(loaded.reconstruct(images), vae.reconstruct(images))
    z = np.random.default_rng(1).normal(size=(3, 32)).astype("float32")
    np.testing.assert_allclose(GAN.from_vae(vae, ema_decay=0.0, seed=0).generate(z), vae.decode(z), rtol=1e-5, atol=1e-6)
    for encoder in ("deterministic", "gaussian"):  # the AAE keeps the VAE's posterior mean
        aae = AAE.from_vae(vae, encoder=encoder)
        np.testing.assert_allclose(aae.reconstruct(images), vae.reconstruct(images), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(latent_dim=30), "latent_dim must be a multiple of 16. Received: latent_dim=30"),
        (dict(latent_dim=32, posterior="full"), "only the diagonal posterior has (a full posterior needs latent_layout='vector'"),
        (dict(latent_dim=32, latent_layout="grid"), "latent_layout must be one of 'vector', 'map'. Received: latent_layout='grid'"),
    ],
)
def test_a_latent_map_refuses_what_it_cannot_read(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _small_vae("resnet", **{"latent_layout": "map", **kwargs})


def test_nearest_upsampling_is_kerass_to_the_bit_with_the_same_gradient_and_no_int32_shape_arithmetic():
    from kerasgen.layers import UpSampling2D

    x = np.random.default_rng(0).normal(size=(3, 4, 5, 2)).astype("float32")
    ours, stock = UpSampling2D((2, 3)), keras.layers.UpSampling2D((2, 3))
    np.testing.assert_array_equal(ours(x), stock(x))
    weights = np.random.default_rng(1).normal(size=(3, 8, 15, 2)).astype("float32")
    gradients = []
    for layer in (ours, stock):
        variable = tf.Variable(x)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(variable) * weights)
        gradients.append(tape.gradient(loss, variable).numpy())
    np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-5, atol=1e-6)  # sums in another order
    # In a graph of unknown batch size (as `fit` traces), no int32 op but the reshape's constant.
    graph = tf.function(ours).get_concrete_function(tf.TensorSpec((None, 4, 5, 2))).graph
    arithmetic = [op.type for op in graph.get_operations() if op.type in ("Mul", "FloorDiv", "Shape", "StridedSlice")
                  and op.outputs and op.outputs[0].dtype == tf.int32]
    assert arithmetic == []
