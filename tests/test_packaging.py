"""The wheel carries its data: a non-editable install finds the shipped classifier and mnist-5k."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

PACKAGE_DATA = [
    "kerasgen/assets/classifier-mnist-5k/classifier.keras",
    "kerasgen/assets/classifier-mnist-5k/metadata.json",
    "kerasgen/assets/classifier-cifar10/classifier.keras",
    "kerasgen/assets/classifier-cifar10/metadata.json",
    "kerasgen/data/mnist_5k.npz",
]

# Runs from another folder against the installed copy only.
_LOADER = r"""
import json, sys
import kerasgen
from kerasgen.data.sources import mnist_5k_path
from kerasgen.evaluation.sample_quality import SHIPPED_CLASSIFIER, load_classifier
classifier = load_classifier(None, (28, 28, 1))
print(json.dumps({
    "package": kerasgen.__file__,
    "classifier": SHIPPED_CLASSIFIER,
    "mnist_5k": mnist_5k_path(),
    "num_classes": classifier.num_classes,
}))
"""


@pytest.mark.slow
def test_the_wheel_installs_the_shipped_classifier_and_data(tmp_path):
    # Build from a copy, so the working tree gets no build/ or egg-info; the installed setuptools
    # builds it (no isolation: no network).
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source)
    shutil.copytree(os.path.join(ROOT, "kerasgen"), source / "kerasgen", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("kerasgen-*.whl")
    assert set(PACKAGE_DATA) <= set(zipfile.ZipFile(wheel).namelist())

    target = tmp_path / "installed"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", _LOADER], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])

    for key in ("package", "classifier", "mnist_5k"):
        assert found[key].startswith(str(target)), (key, found[key])
    assert os.path.isfile(os.path.join(found["classifier"], "metadata.json"))
    assert found["num_classes"] == 10

    # The console script of the installed copy answers too.
    help_text = subprocess.run([str(target / "bin" / "kerasgen"), "--help"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert help_text.returncode == 0 and "export" in help_text.stdout
