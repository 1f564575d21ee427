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


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: a process per core, at most 4 (each holds TensorFlow and up to a few GB)."""
    return max(1, min(os.cpu_count() or 1, 4))


# The longest test files (`pytest -n 0 --durations=80`, 2 cores: 236 s down to 77 s), started
# first so that parallel processes (`--dist loadfile`) do not end with one long file running
# alone. Only the order changes: a file missing here runs after these, in its usual place.
LONGEST_FIRST = (
    "test_distribute.py", "test_pipeline.py", "test_apps.py", "test_gan_training.py", "test_cli.py",
    "test_resume.py", "test_model_family.py", "test_networks.py", "test_collapse_benchmark.py",
)


def pytest_collection_modifyitems(session, config, items):
    """Runs the `LONGEST_FIRST` files first; the order within a file is kept."""
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture
def binary_images():
    """Sixteen seeded 16x16 binary images with structure (bars), so a VAE can learn them."""
    rng = np.random.default_rng(0)
    images = np.zeros((16, 16, 16, 1), dtype=np.float32)
    for i in range(16):
        images[i, :, rng.integers(2, 14) - 2 : rng.integers(2, 14) + 2, 0] = 1.0
    return images
