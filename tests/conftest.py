import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def binary_images():
    """Sixteen seeded 16x16 binary images with structure (bars), so a VAE can learn them."""
    rng = np.random.default_rng(0)
    images = np.zeros((16, 16, 16, 1), dtype=np.float32)
    for i in range(16):
        images[i, :, rng.integers(2, 14) - 2 : rng.integers(2, 14) + 2, 0] = 1.0
    return images
