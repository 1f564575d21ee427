"""kerasgen: Keras 3 generative models with TensorFlow Probability distributions.

`import kerasgen` is cheap: Keras and TensorFlow load when a model is first used
(`kerasgen.VAE`, `from kerasgen import GAN`, `import kerasgen.models`), so `kerasgen --help`
answers at once. `_backend.prepare()` first makes sure they will load on the TensorFlow backend
and without TensorFlow's start-up log lines.
"""

from kerasgen import _backend

_backend.prepare()

__version__ = "0.1.0"
__all__ = ["AAE", "AggressiveVAE", "Classifier", "GAN", "VAE", "VAEGAN"]


def __getattr__(name):
    # PEP 562: the models (and with them Keras and TensorFlow) are imported on first access.
    if name in __all__:
        from kerasgen import models

        return getattr(models, name)
    raise AttributeError(f"module 'kerasgen' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})
