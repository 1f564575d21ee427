import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPU devices (set before TensorFlow starts), so `--strategy mirrored` runs 2 replicas
# in-process; everything else places its ops on the first, as on a one-device machine.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)


@pytest.fixture
def binary_images():
    """Sixteen seeded 16x16 binary images with structure (bars), so a VAE can learn them."""
    rng = np.random.default_rng(0)
    images = np.zeros((16, 16, 16, 1), dtype=np.float32)
    for i in range(16):
        images[i, :, rng.integers(2, 14) - 2 : rng.integers(2, 14) + 2, 0] = 1.0
    return images
