"""What must hold before Keras and TensorFlow load (the TensorFlow backend), and an opt-in quiet start.

`import kerasgen` runs `prepare()`, which only sets environment defaults and checks the backend: it
imports neither Keras nor TensorFlow (so `kerasgen --help` answers at once) and leaves the process's
file descriptors alone. `quiet_tensorflow_startup()` is for programs that own their terminal — the
`kerasgen` command, the apps, the benchmarks — not for a library user or a notebook.

Why more than `TF_CPP_MIN_LOG_LEVEL`: TensorFlow 2.21 writes its first lines while its shared
libraries load, before absl logging is initialized, and those ignore the variable —

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.

once per library that bundles its own absl (twice), and, on a machine without CUDA, an
`E... cuda_platform.cc] failed call to cuInit` line when the devices are first listed. No
environment variable reaches them (tried: TF_CPP_MIN_LOG_LEVEL=3, GLOG_minloglevel,
ABSL_MIN_LOG_LEVEL), so after `quiet_tensorflow_startup()` the first `import tensorflow` runs with
stderr captured at the file-descriptor level and is then replayed through a filter that applies
TensorFlow's own rule to those early lines: a `[IWEF]MMDD ...] ` line is kept when its severity
reaches `TF_CPP_MIN_LOG_LEVEL` (default 2 here: errors and fatals stay visible, info and warnings
go). Every other line — Python warnings, tracebacks — is replayed unchanged, and everything is
replayed unfiltered if the import fails. `TF_CPP_MIN_LOG_LEVEL=0` turns the capture off.

The trade-offs: output written during the import reaches the terminal when the import ends (a
few seconds late), and is lost if the process dies inside it; one error line is dropped on
purpose, `failed call to cuInit`, and only when TensorFlow has just said it found no CUDA runtime
(so the GPU could not be used anyway, which TensorFlow itself reports at the info level).
"""

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

_DEFAULT_MIN_LOG_LEVEL = "2"

# absl / TensorFlow C++ log lines: severity letter, MMDD, time, thread id, file:line] message.
_LOG_LINE = re.compile(rb"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^ \]]+:\d+\] ")
_SEVERITIES = b"IWEF"
_ABSL_BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_NO_CUDA_RUNTIME = b"Could not find cuda drivers on your machine"
_CUINIT_FAILED = b"failed call to cuInit"


def prepare():
    """Sets the environment Keras and TensorFlow read at import and checks the backend.

    Idempotent and cheap: it imports neither Keras nor TensorFlow and touches no file descriptor.

    Raises:
        ImportError: Keras runs (or is set to run) on another backend than TensorFlow.
    """
    # The distributions are TensorFlow Probability objects, so Keras must run on TensorFlow.
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # TensorFlow's C++ info and warning lines (oneDNN, CPU features, CUDA probing) drown the
    # progress output; errors stay.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", _DEFAULT_MIN_LOG_LEVEL)
    check_backend()


def quiet_tensorflow_startup():
    """Filters the log lines TensorFlow writes while it loads, for a program that owns its terminal.

    The next `import tensorflow` (direct, or through Keras or kerasgen) runs with stderr captured
    at the file-descriptor level and replayed without the start-up lines below
    `TF_CPP_MIN_LOG_LEVEL` (see the module docstring). Call it first thing in a script, before
    Keras is imported; the `kerasgen` command, the apps and the benchmarks do. `import kerasgen`
    alone never does this. Idempotent; does nothing once TensorFlow is imported, or with
    `TF_CPP_MIN_LOG_LEVEL=0`.

    Example:

        import kerasgen

        kerasgen.quiet_tensorflow_startup()
        import keras
    """
    prepare()
    if (
        "tensorflow" not in sys.modules
        and _min_log_level() > 0
        and not any(isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path)
    ):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


def check_backend():
    """Raises ImportError unless Keras runs on TensorFlow (imported already) or will (KERAS_BACKEND)."""
    keras = sys.modules.get("keras")
    # An imported Keras has chosen its backend; otherwise KERAS_BACKEND decides (it overrides keras.json).
    backend = keras.config.backend() if keras is not None else os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend != "tensorflow":
        raise ImportError(
            "kerasgen needs the TensorFlow Keras backend (its distributions are TensorFlow Probability "
            f"objects). Received: KERAS_BACKEND={backend!r}. "
            "Set KERAS_BACKEND=tensorflow before importing keras."
        )


def _min_log_level():
    """TF_CPP_MIN_LOG_LEVEL as TensorFlow reads it (an integer prefix, else 0)."""
    match = re.match(r"\s*(\d+)", os.environ.get("TF_CPP_MIN_LOG_LEVEL", ""))
    return int(match.group(1)) if match else 0


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Hands the first `import tensorflow` to `_QuietLoader`, then steps aside."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    """Runs TensorFlow's own loader with stderr filtered (see the module docstring)."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # The module keeps TensorFlow's own loader, for anything that asks it for resources or source.
        module.__loader__ = self._loader
        module.__spec__.loader = self._loader
        with _filtered_stderr(_min_log_level()) as captured:
            self._loader.exec_module(module)
            if _NO_CUDA_RUNTIME in captured():
                # No CUDA runtime: listing the GPUs now lets the filter take the cuInit failure
                # that the first device use would print. It leaves devices configurable.
                module.config.list_physical_devices("GPU")


@contextlib.contextmanager
def _filtered_stderr(min_level):
    """Captures file descriptor 2; on exit replays it, without the lines `_keep` rejects.

    Yields a function returning the bytes captured so far. If the body raises, everything is
    replayed unfiltered.
    """
    try:
        saved = os.dup(2)
    except OSError:  # No stderr to protect.
        yield lambda: b""
        return
    # Append mode: reading the capture midway must not move where the next write lands.
    capture = tempfile.TemporaryFile(mode="a+b", buffering=0)
    _flush_python_streams()
    os.dup2(capture.fileno(), 2)

    def captured():
        _flush_python_streams()
        capture.seek(0)
        return capture.read()

    failed = True
    try:
        yield captured
        failed = False
    finally:
        text = captured()
        os.dup2(saved, 2)
        os.close(saved)
        capture.close()
        _write_all(2, text if failed else _keep(text, min_level))


def _keep(text, min_level):
    """`text` without the absl banner and the log lines below `min_level`, line by line.

    Lines that are not log lines (Python warnings, tracebacks) are always kept, so a multi-line
    log message loses only its first line; the early messages are all one line.
    """
    no_cuda_runtime = _NO_CUDA_RUNTIME in text
    kept = []
    for line in text.splitlines(keepends=True):
        match = _LOG_LINE.match(line)
        severity = _SEVERITIES.index(match.group(1)) if match else None
        if line.rstrip() == _ABSL_BANNER:
            continue
        if severity is not None and severity < min_level:
            continue
        if severity == 2 and no_cuda_runtime and _CUINIT_FAILED in line:
            continue
        kept.append(line)
    return b"".join(kept)


def _flush_python_streams():
    for stream in (sys.stderr, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data) :]
