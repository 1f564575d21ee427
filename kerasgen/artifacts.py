"""Writing artifacts so that a crash or kill never leaves one half-written.

Everything is written under a temporary name in the target's own folder and then moved into
place with `os.replace`, which is atomic on POSIX file systems.
"""

import contextlib
import json
import os
import shutil
import tempfile


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
