"""kerasgen: Keras 3 generative models with TensorFlow Probability distributions.

`import kerasgen` is cheap: Keras and TensorFlow load when a model is first used
(`kerasgen.VAE`, `from kerasgen import GAN`, `import kerasgen.models`), so `kerasgen --help`
answers at once. It sets the TensorFlow backend as the default (`_backend.prepare()`) and lets Keras
find kerasgen's classes in a `.keras` file (`_registry.install()`), so after it

    import keras
    vae = keras.saving.load_model("saved_models/vae-mnist-5k/vae.keras")

loads a `kerasgen.VAE`. It touches no file descriptor: a program that wants TensorFlow's start-up
log lines filtered calls `kerasgen.quiet_tensorflow_startup()` first.
"""

import importlib

from kerasgen import _backend, _registry, specs
from kerasgen._backend import quiet_tensorflow_startup

_backend.prepare()
_registry.install()

__version__ = "0.1.0"
# The models, from their specs.
_MODELS = {spec.class_name: spec.module for spec in specs.SPECS}
__all__ = [*sorted(_MODELS), "quiet_tensorflow_startup"]


def __getattr__(name):
    # PEP 562: a model's module (and with it Keras and TensorFlow) is imported on first access.
    if name in _MODELS:
        return getattr(importlib.import_module(_MODELS[name]), name)
    raise AttributeError(f"module 'kerasgen' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})
