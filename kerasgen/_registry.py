"""Keras finds every kerasgen class in a `.keras` file after a bare `import kerasgen`.

A `.keras` file names each kerasgen object by its registered name (`"kerasgen>VAE"`), and Keras
looks that name up in its registry of custom objects (`keras.saving.get_custom_objects()`), which
a module's `@keras.saving.register_keras_serializable(package="kerasgen")` fills when the module is
imported. `import kerasgen` imports no model, so that `kerasgen --help` never loads TensorFlow;
instead, as soon as Keras itself is imported (at once if it already is), `install()` registers a
stand-in under each name that is not registered yet:

- for a class, a class whose `from_config` imports the module that defines the real class and
  returns the real class's `from_config(...)`: a real instance;
- for a function, a function of the same name that imports the module on its first call and
  calls the real function (registered under the same name, so a model holding it saves as before).

Importing the module registers the real object over its stand-in, so every later lookup finds it.
Only Keras's public registry is used: `get_custom_objects()` and `register_keras_serializable`.

`REGISTERED` lists every name the package registers, with the module that registers it: the
models from their specs (`kerasgen.specs`), the other classes and functions below.
tests/test_loading.py keeps it equal to what the modules register.
"""

import contextlib
import importlib
import importlib.abc
import importlib.util
import sys

from kerasgen import specs

PACKAGE = "kerasgen"

# Besides the models: the classes a model's config names, by the module that registers them.
_CLASSES = {
    "kerasgen.layers": ("Conv2D", "Conv2DTranspose", "MaxPooling2D", "AveragePooling2D", "Dropout", "UpSampling2D"),
    "kerasgen.distributions": ("PixelScale",),
    "kerasgen.pixelcnn": ("MaskedConv2D", "GatedActivation"),
    "kerasgen.distribute": ("ReplicaSeedGenerator",),
    "kerasgen.models.gan": ("DistributionMean",),
    "kerasgen.models.aggressive_vae": ("OnModelSteps",),
}
# ... and the functions.
_FUNCTIONS = {"kerasgen.layers": ("leaky_relu",)}

# `registered name → (module, attribute, is a class)`.
REGISTERED = {
    **{spec.registered_name: (spec.module, spec.class_name, True) for spec in specs.SPECS},
    **{f"{PACKAGE}>{name}": (module, name, True) for module, names in _CLASSES.items() for name in names},
    **{f"{PACKAGE}>{name}": (module, name, False) for module, names in _FUNCTIONS.items() for name in names},
}


def install():
    """Registers the stand-ins with Keras: now if Keras is imported, else right after its import.

    Idempotent; imports neither Keras nor TensorFlow.
    """
    keras = sys.modules.get("keras")
    if keras is not None:
        register_stand_ins(keras)
    elif not any(isinstance(finder, _AfterKerasImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasImport())


def register_stand_ins(keras):
    """Registers a stand-in under each name of `REGISTERED` that Keras does not know yet."""
    objects = keras.saving.get_custom_objects()
    for name, (module, attribute, is_class) in REGISTERED.items():
        if name in objects:
            continue
        if is_class:
            objects[name] = _stand_in_class(name, module, attribute)
        else:
            keras.saving.register_keras_serializable(package=PACKAGE, name=attribute)(_stand_in_function(name, module, attribute))


def resolve(name):
    """The real object registered as `name` (e.g. `"kerasgen>VAE"`), its module imported.

    Raises:
        TypeError: the module does not register `name` with that object (`REGISTERED` is wrong).
    """
    import keras

    module, attribute, _ = REGISTERED[name]
    real = getattr(importlib.import_module(module), attribute)
    if keras.saving.get_custom_objects().get(name) is not real:
        raise TypeError(
            f"{module}.{attribute} is not registered as {name!r}: kerasgen._registry.REGISTERED disagrees with "
            f"the code. Received: {keras.saving.get_custom_objects().get(name)!r}"
        )
    return real


def _stand_in_class(name, module, attribute):
    def from_config(cls, config, *args, **kwargs):
        return resolve(name).from_config(config, *args, **kwargs)

    return type(
        attribute,
        (),
        {
            "__module__": __name__,
            "__doc__": f"Stands in for `{module}.{attribute}` until that module is imported: `from_config` imports it.",
            "from_config": classmethod(from_config),
            "stands_in_for": f"{module}.{attribute}",
        },
    )


def _stand_in_function(name, module, attribute):
    def stand_in(*args, **kwargs):
        return resolve(name)(*args, **kwargs)

    stand_in.__name__ = stand_in.__qualname__ = attribute
    stand_in.__module__ = module
    stand_in.__doc__ = f"Calls `{module}.{attribute}`, importing that module on the first call."
    stand_in.stands_in_for = f"{module}.{attribute}"
    return stand_in


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Hands `import keras` to `_RegisteringLoader`, which takes this finder out once Keras has run.

    A lookup that imports nothing (`importlib.util.find_spec("keras")`, which TensorFlow's own
    import makes) also comes here: the finder stays until Keras is actually executed.
    """

    def __init__(self):
        self._finding = False

    def find_spec(self, name, path=None, target=None):
        if name != "keras" or self._finding:
            return None
        self._finding = True  # The lookup below asks the finders again, this one included.
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._finding = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _RegisteringLoader(spec.loader, self)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    """Runs Keras's own loader, then registers the stand-ins and retires the finder."""

    def __init__(self, loader, finder):
        self._loader = loader
        self._finder = finder

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # The module keeps Keras's own loader, for anything that asks it for resources or source.
        module.__loader__ = self._loader
        module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self._finder)
        register_stand_ins(module)
