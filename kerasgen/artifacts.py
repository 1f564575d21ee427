"""Writing artifacts so that a crash or kill never leaves one half-written.

Everything is written under a temporary name in the target's own folder and then moved into
place with `os.replace`, which is atomic on POSIX file systems.
"""

import contextlib
import json
import os
import shutil
import tempfile
import zipfile

import keras

from kerasgen import specs


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; on success it replaces `path` in one step.

    Works for files and for folders (a SavedModel): on failure the temporary is removed and
    `path` keeps its previous content.

    Example:

        with atomic_path("out/vae.keras") as tmp:
            model.save(tmp)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    stem, extension = os.path.splitext(base)
    # Keep the extension: Keras chooses the format from it.
    scratch = tempfile.mkdtemp(prefix=f".{stem}.", dir=folder)
    tmp = os.path.join(scratch, base)
    try:
        yield tmp
        if os.path.isdir(tmp) and os.path.isdir(path):
            # A folder cannot be replaced atomically when the target exists: swap it aside first.
            old = os.path.join(scratch, f"{stem}.old{extension}")
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_json(path, data):
    """Writes `data` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")


def read_json(path):
    with open(path) as f:
        return json.load(f)


# The generative models' files in a run folder, in the order `load_run` looks for them (from the specs).
MODEL_FILES = specs.model_files()


def load_run(model_path, filenames=MODEL_FILES, flag="--model"):
    """A saved model and the run config beside it.

    Args:
        model_path: str, a run's output folder (holding one of `filenames`) or a `.keras` file.
        filenames: the model files a run folder may hold, tried in order. Defaults to
            `MODEL_FILES`: the generative models' (a VAE's, a GAN's, a VAE-GAN's, an adversarial
            autoencoder's, ...).
        flag: str, the command-line flag that named `model_path`, for error messages.

    Returns:
        `(model, run_config, folder)`; `run_config` is `{}` when no `config.json` is beside it.

    Keras rebuilds only registered classes: kerasgen's register when `kerasgen.models` is
    imported. This module does not import it (the models use it, and nothing here needs them),
    so the callers that read kerasgen models (the evaluation, the runs, the CLI) import them.
    """
    path = model_path
    if os.path.isdir(model_path):
        found = [os.path.join(model_path, name) for name in filenames if os.path.isfile(os.path.join(model_path, name))]
        path = found[0] if found else os.path.join(model_path, filenames[0])
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No model found: expected a run folder holding {' or '.join(filenames)}, or a .keras file. "
            f"Received: {flag} {model_path}"
        )
    # Keras reports a file that is not a zip archive as "File not found"; say what is wrong instead.
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is corrupt or not a .keras file: a .keras file is a zip archive, this is not one.")
    folder = os.path.dirname(path)
    config_path = os.path.join(folder, "config.json")
    run_config = read_json(config_path) if os.path.isfile(config_path) else {}
    # Keras finds kerasgen's classes without importing them here: `import kerasgen` registered them.
    try:
        model = keras.saving.load_model(path)
    except (KeyError, OSError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is corrupt or incomplete: {error}") from error
    return model, run_config, folder


def inference_copy(model):
    """An uncompiled copy of `model` with the same config and weights, and no optimizer state.

    Saving it instead of `model` leaves the optimizer's moments out of the `.keras` file (a third
    of the size with Adam): the artifact to ship or serve. A checkpoint that resumes training
    saves the model itself.
    """
    copy = model.__class__.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy
