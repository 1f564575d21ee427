"""What a user types works: `import kerasgen, keras; keras.saving.load_model(path)` loads every kerasgen file, and `kerasgen --help` is instant.

The loads run in a fresh interpreter that imports nothing but kerasgen and Keras, as a user's
script does (this test process has imported every model already, so Keras would find them here
whatever `import kerasgen` did). One child loads every file, to pay for TensorFlow's start once.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from kerasgen import _registry, specs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = sorted(
    os.path.relpath(path, ROOT)
    for pattern in ("saved_models/**/*.keras", "kerasgen/assets/**/*.keras")
    for path in glob.glob(os.path.join(ROOT, pattern), recursive=True)
)

# In the fresh interpreter: load each file as a user would, and say what came back.
_CHILD = r"""
import io, json, sys, zipfile
import h5py
import numpy as np

import kerasgen, keras

report = {
    "modules_before": sorted(m for m in sys.modules if m.startswith("kerasgen")),
    "stand_ins": {
        name: getattr(obj, "stands_in_for", None)
        for name, obj in keras.saving.get_custom_objects().items() if name.startswith("kerasgen>")
    },
    "files": {},
}


def same_arrays(a, b):
    key = lambda x: (x.shape, x.dtype.str, x.tobytes())
    return len(a) == len(b) and sorted(map(key, a)) == sorted(map(key, b))


for path, expected in json.loads(sys.argv[1]).items():
    model = keras.saving.load_model(path)
    if expected is None:  # a shipped file: the arrays in the file, read with h5py
        weights_file = h5py.File(io.BytesIO(zipfile.ZipFile(path).read("model.weights.h5")), "r")
        expected = []
        weights_file.visititems(lambda name, item: expected.append(item[()]) if isinstance(item, h5py.Dataset) else None)
    else:  # a file this test wrote: the arrays it saved beside it
        arrays = np.load(expected)
        expected = [arrays[name] for name in arrays.files]
    report["files"][path] = {
        "class": type(model).__module__ + "." + type(model).__name__,
        "weights": len(model.weights),
        "same_weights": same_arrays([np.asarray(w) for w in model.weights], [np.asarray(w) for w in expected]),
    }

# Every module of the package imported: what they register, by name.
import pkgutil, importlib, inspect
for module in pkgutil.walk_packages(kerasgen.__path__, "kerasgen."):
    if module.name != "kerasgen.__main__":  # runs the command line
        importlib.import_module(module.name)
report["registered"] = {
    name: [obj.__module__, obj.__name__, inspect.isclass(obj)]
    for name, obj in keras.saving.get_custom_objects().items() if name.startswith("kerasgen>")
}
print(json.dumps(report))
"""


def _environment():
    """This environment, with this source tree first on the child's path."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}


def _tiny_models():
    """One small model per spec, by class name (a new model's spec needs one here)."""
    from kerasgen.models import AAE, GAN, VAE, VAEGAN, AggressiveVAE, Classifier

    small = {"image_shape": (16, 16, 1), "latent_dim": 2, "num_filters": (4, 8), "hidden_dim": 8, "seed": 0}
    # A resnet VAE with a per-pixel Gaussian scale: its VAE-GAN's config names kerasgen's pooling,
    # upsampling, PixelScale and leaky_relu; a dcgan VAE's GAN names Conv2DTranspose and DistributionMean.
    vae = VAE(architecture="resnet", likelihood="gaussian", **small)
    aggressive = AggressiveVAE(decoder="pixelcnn", pixelcnn_layers=1, pixelcnn_filters=4, **small)
    # Compiled with a schedule, the file carries its optimizers and the encoder's `OnModelSteps`.
    aggressive.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, 10)))
    return {
        "VAE": vae,
        "AggressiveVAE": aggressive,
        "GAN": GAN.from_vae(VAE(architecture="dcgan", **small), seed=0),
        "VAEGAN": VAEGAN.from_vae(vae, seed=0),
        "AAE": AAE.from_vae(vae, seed=0),
        "Classifier": Classifier(image_shape=(16, 16, 1), num_classes=3, num_filters=(4,), feature_dim=4, seed=0),
    }


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The child's report on every shipped file and one fresh file per model type."""
    folder = tmp_path_factory.mktemp("models")
    models = _tiny_models()
    assert sorted(models) == sorted(spec.class_name for spec in specs.SPECS)
    rng = np.random.default_rng(0)
    files = {os.path.join(ROOT, path): None for path in SHIPPED}
    for name, model in models.items():
        # Weights that no seeded initializer gives: a load that skipped them would show.
        for weight in model.weights:
            if "float" in weight.dtype:
                weight.assign(weight + rng.normal(size=weight.shape).astype(weight.dtype))
        path = str(folder / f"{name}.keras")
        model.save(path)
        np.savez(folder / f"{name}.npz", *[np.asarray(w) for w in model.weights])
        files[path] = str(folder / f"{name}.npz")
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(files)], capture_output=True, text=True, env=_environment(), cwd=str(folder)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return report, folder


def test_the_shipped_files_are_found():
    assert len(SHIPPED) >= 8 and "saved_models/vae-mnist-5k/vae.keras" in SHIPPED
    assert "kerasgen/assets/classifier-mnist-5k/classifier.keras" in SHIPPED


@pytest.mark.slow
def test_import_kerasgen_imports_no_model_and_lets_keras_find_every_name(loaded):
    report, _ = loaded
    # Only what reads the specs: no model, layer or TensorFlow-importing module.
    assert set(report["modules_before"]) <= {"kerasgen", "kerasgen._backend", "kerasgen._registry", "kerasgen.config", "kerasgen.options", "kerasgen.specs", "kerasgen.validate"}
    # A stand-in under every name the package registers, pointing at the module that defines it.
    assert report["stand_ins"] == {name: f"{module}.{attribute}" for name, (module, attribute, _) in _registry.REGISTERED.items()}


@pytest.mark.slow
def test_every_shipped_file_loads_after_import_kerasgen(loaded):
    report, _ = loaded
    by_file = {spec.file: spec for spec in reversed(specs.SPECS)}  # vae.keras: the VAE's, not AggressiveVAE's
    for path in SHIPPED:
        found = report["files"][os.path.join(ROOT, path)]
        spec = by_file[os.path.basename(path)]
        assert found["class"] == f"{spec.module}.{spec.class_name}", path
        assert found["weights"] > 0 and found["same_weights"], (path, found)


@pytest.mark.slow
@pytest.mark.parametrize("spec", specs.SPECS, ids=lambda spec: spec.class_name)
def test_every_model_type_loads_after_import_kerasgen(loaded, spec):
    report, folder = loaded
    found = report["files"][str(folder / f"{spec.class_name}.keras")]
    assert found["class"] == f"{spec.module}.{spec.class_name}"
    assert found["weights"] > 0 and found["same_weights"], found


@pytest.mark.slow
def test_the_lazy_registry_lists_what_the_modules_register(loaded):
    # Every `register_keras_serializable(package="kerasgen")` in the package, found by importing
    # every module, is in `_registry.REGISTERED` with its module, and nothing else is: a new
    # registered class or function cannot be forgotten there.
    report, _ = loaded
    assert report["registered"] == {name: [module, attribute, is_class] for name, (module, attribute, is_class) in _registry.REGISTERED.items()}


@pytest.mark.slow
@pytest.mark.parametrize(
    "imports",
    [
        # Keras first: `import kerasgen` registers the stand-ins at once.
        "import keras, kerasgen",
        # TensorFlow first, through kerasgen's data pipeline: TensorFlow looks Keras up
        # (`importlib.util.find_spec`) before anything imports it, and the stand-ins must still
        # come with the import that follows.
        "import kerasgen, kerasgen.data; import keras",
    ],
)
def test_a_file_loads_whatever_was_imported_before_keras(imports):
    code = f"import sys\n{imports}\nmodel = keras.saving.load_model(sys.argv[1])\nprint(type(model).__module__ + '.' + type(model).__name__)"
    path = os.path.join(ROOT, "kerasgen", "assets", "classifier-mnist-5k", "classifier.keras")
    env = {**_environment(), "KERAS_BACKEND": "tensorflow"}
    result = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "kerasgen.models.classifier.Classifier"


def test_kerasgen_help_answers_within_a_second():
    kerasgen = shutil.which("kerasgen", path=os.path.dirname(sys.executable)) or shutil.which("kerasgen")
    assert kerasgen, "the kerasgen console script is missing: install the package with pip install -e ."
    env = _environment()

    def seconds():
        start = time.perf_counter()
        result = subprocess.run([kerasgen, "--help"], capture_output=True, text=True, env=env)
        assert result.returncode == 0 and "train-vae" in result.stdout, result.stderr
        return time.perf_counter() - start

    seconds()  # warm-up: the first run reads the files from disk
    # The best of three: other work on the machine can stall any one run (0.1-0.3 s here when idle).
    best = min(seconds() for _ in range(3))
    assert best < 1.0, f"kerasgen --help took {best:.2f} s"
