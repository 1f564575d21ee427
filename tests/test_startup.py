"""`kerasgen --help` answers at once; the command filters TensorFlow's start-up noise, `import kerasgen` leaves stderr alone.

(How fast `kerasgen --help` answers: tests/test_loading.py.)
"""

import json
import os
import re
import subprocess
import sys

from kerasgen import _backend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What TensorFlow 2.21 writes while it starts, before absl logging is initialized.
NOISE = re.compile(r"absl|cudart|cuInit|cuda|oneDNN|cpu_feature_guard|^[IWEF]\d{4} ", re.MULTILINE)


def _environment(**changes):
    """This environment with this source tree first on the path, without the test suite's
    TF_CPP_MIN_LOG_LEVEL (so kerasgen's default applies)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    return {**env, **changes}


def test_help_answers_without_noise():
    result = subprocess.run([sys.executable, "-m", "kerasgen", "--help"], capture_output=True, text=True, env=_environment())

    assert result.returncode == 0, result.stderr
    assert "export" in result.stdout and "train-vae" in result.stdout
    assert result.stderr == ""


def test_importing_the_package_the_cli_and_the_config_imports_no_tensorflow():
    code = (
        "import sys, kerasgen, kerasgen.cli, kerasgen.config, kerasgen.specs\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'tensorflow_probability') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_environment())
    assert result.stdout.strip() == "[]"


# Records every call that could redirect file descriptor 2, then works as a library user does.
_LIBRARY_USER = r"""
import json, os, sys
calls = []
dup, dup2 = os.dup, os.dup2
os.dup = lambda fd, *rest: (calls.append(["dup", fd]), dup(fd, *rest))[1]
os.dup2 = lambda fd, fd2, *rest, **options: (calls.append(["dup2", fd, fd2]), dup2(fd, fd2, *rest, **options))[1]
before = os.fstat(2)

import kerasgen
import keras
vae = kerasgen.VAE(image_shape=(16, 16, 1), latent_dim=2, num_filters=(4,), hidden_dim=8, seed=0)
shape = tuple(vae.sample(2, seed=0).shape)

after = os.fstat(2)
print(json.dumps({
    "shape": shape,
    "stderr_calls": [call for call in calls if 2 in call[1:]],
    "same_stderr": (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino),
    "tensorflow": "tensorflow" in sys.modules,
}))
"""


def test_import_kerasgen_leaves_the_file_descriptors_alone():
    # A library user or a notebook keeps its stderr: no capture while TensorFlow loads, even at
    # kerasgen's default TF_CPP_MIN_LOG_LEVEL (TensorFlow's start-up lines reach it unfiltered).
    result = subprocess.run([sys.executable, "-c", _LIBRARY_USER], capture_output=True, text=True, env=_environment())

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["shape"] == [2, 16, 16, 1] and report["tensorflow"]
    assert report["stderr_calls"] == [] and report["same_stderr"]


def test_the_command_prints_no_startup_noise(tmp_path):
    # The command owns its terminal and asks for the filter: loading a model imports TensorFlow.
    out = tmp_path / "grid.png"
    command = [sys.executable, "-m", "kerasgen", "sample", "--model", os.path.join(ROOT, "saved_models", "vae-mnist-5k"),
               "--n", "4", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, env=_environment())

    assert result.returncode == 0, result.stderr
    assert out.is_file() and "Wrote 4 samples" in result.stdout
    assert not NOISE.search(result.stderr), result.stderr


def test_another_keras_backend_is_refused_before_keras_loads():
    code = "import kerasgen"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_environment(KERAS_BACKEND="jax"))
    assert result.returncode != 0
    assert "ImportError" in result.stderr and "KERAS_BACKEND='jax'" in result.stderr


# The filter on what TensorFlow writes while it loads: log lines by severity, everything else kept.
STARTUP = b"".join(
    line + b"\n"
    for line in (
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        b"I0000 00:00:1796294341.562384    4965 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
        b"W0000 00:00:1758131437.322781 3722519 computation_placer.cc:177] computation placer already registered.",
        b"/x/y.py:3: UserWarning: a Python warning",
        b"E0000 00:00:1796294634.692830    8309 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)",
        b"E0000 00:00:1758131437.297298 3722519 cuda_dnn.cc:8579] Unable to register cuDNN factory",
        b"F0000 00:00:1758131437.297298 3722519 x.cc:1] Check failed",
    )
)


def test_the_startup_filter_keeps_errors_and_drops_info_and_warnings():
    kept = _backend._keep(STARTUP, min_level=2).decode().splitlines()
    # The cuInit error goes too, because TensorFlow said above that it found no CUDA runtime.
    assert kept == [
        "/x/y.py:3: UserWarning: a Python warning",
        "E0000 00:00:1758131437.297298 3722519 cuda_dnn.cc:8579] Unable to register cuDNN factory",
        "F0000 00:00:1758131437.297298 3722519 x.cc:1] Check failed",
    ]


def test_the_startup_filter_keeps_a_cuinit_failure_when_cuda_was_found():
    with_cuda = STARTUP.replace(b"Could not find cuda drivers on your machine", b"Loaded cudart")
    kept = _backend._keep(with_cuda, min_level=2)
    assert b"failed call to cuInit" in kept


def test_the_startup_filter_follows_tf_cpp_min_log_level():
    assert len(_backend._keep(STARTUP, min_level=1).splitlines()) == 4  # + the warning line
    assert len(_backend._keep(STARTUP, min_level=3).splitlines()) == 2  # the Python warning and the fatal
