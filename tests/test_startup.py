"""`kerasgen --help` answers at once, and TensorFlow starts without its log noise."""

import os
import re
import subprocess
import sys
import time

from kerasgen import _backend

# What TensorFlow 2.21 writes while it starts, before absl logging is initialized.
NOISE = re.compile(r"absl|cudart|cuInit|cuda|oneDNN|cpu_feature_guard|^[IWEF]\d{4} ", re.MULTILINE)


def _environment(**changes):
    """This process's environment without the test suite's TF_CPP_MIN_LOG_LEVEL, so kerasgen's default applies."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return {**env, **changes}


def test_help_answers_within_a_second_without_noise():
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "kerasgen", "--help"], capture_output=True, text=True, env=_environment())
    seconds = time.perf_counter() - start

    assert result.returncode == 0, result.stderr
    assert "export" in result.stdout and "train-vae" in result.stdout
    assert result.stderr == ""
    # About 0.25 s here (9 s when `import kerasgen` imported TensorFlow); slack for a loaded machine.
    assert seconds < 2.0, f"kerasgen --help took {seconds:.2f} s"


def test_importing_the_package_the_cli_and_the_config_imports_no_tensorflow():
    code = (
        "import sys, kerasgen, kerasgen.cli, kerasgen.config\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'tensorflow_probability') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_environment())
    assert result.stdout.strip() == "[]"


def test_building_and_sampling_a_vae_prints_no_startup_noise():
    code = (
        "import kerasgen.models\n"
        "vae = kerasgen.VAE(image_shape=(16, 16, 1), latent_dim=2, num_filters=(4,), hidden_dim=8, seed=0)\n"
        "print(tuple(vae.sample(2, seed=0).shape))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_environment())

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(2, 16, 16, 1)"
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
