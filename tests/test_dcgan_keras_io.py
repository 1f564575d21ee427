"""benchmarks/dcgan_keras_io.py: keras.io's DCGAN ported to 32x32, kept as the example has it."""

import importlib.util
import os

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def dcgan():
    spec = importlib.util.spec_from_file_location("dcgan_keras_io", os.path.join(HERE, "..", "benchmarks", "dcgan_keras_io.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_port_keeps_the_examples_discriminator_and_sizes_the_generator_for_32x32(dcgan):
    generator, discriminator = dcgan.build_generator(), dcgan.build_discriminator()
    assert generator.input_shape == (None, 128) and generator.output_shape == (None, 32, 32, 3)
    assert generator.layers[0].units == 4 * 4 * 128
    assert [l.filters for l in generator.layers if hasattr(l, "filters")] == [128, 256, 512, 3]
    assert [l.filters for l in discriminator.layers if hasattr(l, "filters")] == [64, 128, 128]
    # At 64x64 the generator is the example's own: an 8x8x128 map.
    assert dcgan.build_generator((64, 64, 3)).layers[0].units == 8 * 8 * 128


def test_a_step_moves_both_networks_and_samples_are_seeded_images_in_unit_range(dcgan):
    gan = dcgan.build()
    images = np.random.default_rng(0).random((8, 32, 32, 3)).astype("float32")
    before = [w.copy() for w in (gan.generator.get_weights()[0], gan.discriminator.get_weights()[0])]
    logs = gan.fit(images, batch_size=8, epochs=1, verbose=0).history
    after = (gan.generator.get_weights()[0], gan.discriminator.get_weights()[0])
    assert all(not np.allclose(b, a) for b, a in zip(before, after))
    assert np.isfinite(logs["d_loss"][0]) and np.isfinite(logs["g_loss"][0])
    a, b = np.asarray(gan.sample(4, seed=3)), np.asarray(gan.sample(4, seed=3))
    assert a.shape == (4, 32, 32, 3) and np.array_equal(a, b) and a.min() >= 0 and a.max() <= 1
