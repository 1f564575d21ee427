"""kerasgen: Keras 3 generative models with TensorFlow Probability distributions."""

import os

# The distributions are TensorFlow Probability objects, so Keras must run on TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow's C++ INFO and WARNING lines (oneDNN, CUDA probing) drown the progress output; errors stay.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        "kerasgen needs the TensorFlow Keras backend (its distributions are TensorFlow Probability "
        f"objects). Received: KERAS_BACKEND={keras.backend.backend()!r}. "
        "Set KERAS_BACKEND=tensorflow before importing keras."
    )

from kerasgen.models import GAN, VAE  # noqa: E402

__version__ = "0.1.0"
__all__ = ["GAN", "VAE"]
