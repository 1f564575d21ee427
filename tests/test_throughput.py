"""benchmarks/throughput.py: the plain twins do kerasgen's work (the mixture by hand, the same networks)."""

import importlib.util
import os

import numpy as np
import pytest
import tensorflow as tf

from kerasgen import GAN, VAE
from kerasgen.distributions import LogisticMixture

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def throughput():
    path = os.path.join(HERE, "..", "benchmarks", "throughput.py")
    spec = importlib.util.spec_from_file_location("throughput_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_mixture(num_components=10, shape=(2, 4, 4), seed=0):
    """Random decoder parameters (log-scales beyond both clamps among them) and random 8-bit images with 0 and 255."""
    rng = np.random.default_rng(seed)
    params = rng.normal(0.0, 2.0, (*shape, num_components * 10)).astype(np.float32)
    log_scales = params[..., 4 * num_components:7 * num_components]
    log_scales[..., :3] = (-12.0, 6.0, -6.0)  # below the floor −8, above the cap 3, inside
    levels = rng.integers(0, 256, (*shape, 3))
    levels[0, 0, 0], levels[0, 0, 1] = (0, 0, 0), (255, 255, 255)
    return params, (levels / 255.0).astype(np.float32)


def test_the_hand_written_mixture_log_likelihood_is_kerasgens(throughput):
    params, images = random_mixture()
    ours = LogisticMixture(10).distribution(tf.constant(params)).log_prob(images).numpy()
    plain = np.asarray(throughput.mixture_log_prob(images, tf.constant(params), 10))
    assert ours.shape == plain.shape == (2,)
    np.testing.assert_allclose(plain, ours, rtol=1e-4)
    # A wrong coupling (channels independent) would not match: the test can fail.
    uncoupled = params.copy()
    uncoupled[..., 70:] = 0.0
    assert not np.allclose(throughput.mixture_log_prob(images, tf.constant(uncoupled), 10), ours, rtol=1e-4)


def test_the_hand_written_mixture_mean_is_kerasgens(throughput):
    params, _ = random_mixture(seed=1)
    ours = LogisticMixture(10).distribution(tf.constant(params)).mean().numpy()
    plain = np.asarray(throughput.mixture_mean(tf.constant(params), 10, 3))
    assert plain.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(plain, ours, rtol=1e-5, atol=1e-6)


def tiny_colour(throughput):
    return throughput.BenchmarkConfig(
        "tiny", (16, 16, 3), 8, (8, 16), 32, architecture="resnet", likelihood="logistic_mixture", binarize="none",
        models=("vae", "gan"), stream=True,
    )


def test_the_plain_colour_gan_is_kerasgens_networks(throughput):
    config = tiny_colour(throughput)
    gan = GAN.from_vae(throughput.kerasgen_vae(config), seed=0)
    plain = throughput.PlainGAN(throughput.plain_generator(config), throughput.plain_discriminator(config))
    for ours, theirs in ((gan.generator, plain.generator), (gan.discriminator, plain.discriminator)):
        assert [w.shape for w in ours.weights] == [w.shape for w in theirs.weights]
        theirs.set_weights(ours.get_weights())
    z = tf.random.stateless_normal((2, 8), (3, 4))
    # The plain generator's hand-written mixture mean gives kerasgen's images from the same decoder.
    np.testing.assert_allclose(plain.generator(z), gan.generator(z), rtol=1e-5, atol=1e-6)
    assert plain.generator(z).shape == (2, 16, 16, 3)


def test_the_plain_colour_vae_has_kerasgens_networks_and_steps(throughput):
    config = tiny_colour(throughput)
    vae, plain = throughput.kerasgen_vae(config), throughput.PlainVAE(config)
    assert vae.decoder.output_shape[-1] == plain.decoder.output_shape[-1] == 100  # 10 components x 10 parameters
    for ours, theirs in ((vae.encoder, plain.encoder), (vae.decoder, plain.decoder)):
        assert [w.shape for w in ours.weights] == [w.shape for w in theirs.weights]
    plain.compile(optimizer="adam")
    images = throughput.synthetic_images(config, 4)
    logs = plain.fit(images, tf.zeros((4,)), batch_size=4, epochs=1, verbose=0).history
    # The reconstruction is a negative log-likelihood of 768 8-bit values: positive, finite.
    assert 0 < logs["reconstruction"][0] < np.inf


def test_configs(throughput):
    from kerasgen.networks import network_preset

    digits = throughput.CONFIGS["digits"]
    # --config digits builds the VAE it built before there were configs.
    before = VAE(throughput.IMAGE_SHAPE, throughput.LATENT_DIM, num_filters=throughput.NUM_FILTERS,
                 hidden_dim=throughput.HIDDEN_DIM, seed=0)
    def config(vae):
        return {k: v for k, v in vae.get_config().items() if k != "name"}

    assert config(throughput.kerasgen_vae(digits)) == config(before)
    assert digits.binarize == "dynamic" and digits.out.endswith("throughput.json")
    for name, side in (("cifar32", 32), ("cifar64", 64)):
        config, preset = throughput.CONFIGS[name], network_preset((side, side, 3))
        assert (config.architecture, config.num_filters, config.hidden_dim, config.latent_dim, config.latent_layout) == (
            preset["architecture"], tuple(preset["num_filters"]), preset["hidden_dim"], preset["latent_dim"],
            preset["latent_layout"])
        assert config.likelihood == "logistic_mixture" and config.binarize == "none"
        assert config.out.endswith(f"throughput_{name}.json")
