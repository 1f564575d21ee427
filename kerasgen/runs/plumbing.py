"""The run harness's plumbing: callbacks that only `harness.Run` puts into `fit`.

- `ElapsedTime`: the wall-clock `seconds` of training in each epoch's logs, continued on resume;
- `TimeBudget`: `--max-minutes`, stopping after the epoch that reaches it;
- `HistoryCSV`: the epochs' logs as a CSV that keeps every column across resumes;
- `EpochLog`: one plain line per epoch when stdout is a file;
- `Backup`: the crash-safe checkpoint of the last finished epoch, which `--resume` restores.

They observe or persist a run; what a user adds to `fit` (sample grids, sample quality, the latent
instruments, the divergence guard) is in `kerasgen.callbacks`.
"""

import contextlib
import csv
import os
import re
import sys
import time

import keras
import numpy as np

from kerasgen import validate
from kerasgen.artifacts import atomic_path, read_json, write_json


class ElapsedTime(keras.callbacks.Callback):
    """Adds `seconds`, the wall-clock time of training so far, to each epoch's logs.

    Put it before `CSVLogger` and `TensorBoard` in the callback list so they record it.

    Args:
        start_seconds: float, the time already spent before this `fit` (a resumed run's
            checkpointed `seconds`), so the clock continues. Defaults to 0.
    """

    def __init__(self, start_seconds=0.0):
        super().__init__()
        self.start_seconds = float(start_seconds)

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = self.start_seconds + time.perf_counter() - self._start


class TimeBudget(keras.callbacks.Callback):
    """Stops training after the first epoch that ends with `minutes` of training or more (`--max-minutes`).

    The clock is a `SampleQuality`'s when one is given (training only: its measuring is left out,
    so runs that measure at different rates get the same training time), else the `seconds` that
    `ElapsedTime` adds to the logs (put it after `ElapsedTime` and before `SampleQuality`, which then
    measures the stopped epoch as the last). A resumed run's clock goes on from its checkpoint.

    Args:
        minutes: float > 0, the training time after which no new epoch starts.
        quality: a `SampleQuality` or None, whose clock to read.
    """

    def __init__(self, minutes, quality=None):
        super().__init__()
        validate.number("minutes", minutes, above=0)
        self.minutes = float(minutes)
        self.quality = quality
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        seconds = self.quality.training_seconds() if self.quality is not None else (logs or {}).get("seconds")
        if seconds is not None and seconds >= 60.0 * self.minutes:
            self.model.stop_training = True
            self.stopped_epoch = epoch + 1
            print(f"Stopping after epoch {epoch + 1}: {seconds / 60:.1f} minutes of training reached --max-minutes {self.minutes:g}.")


class HistoryCSV(keras.callbacks.Callback):
    """The epochs' logs as a CSV file (`epoch` and the metrics, sorted), rewritten atomically each epoch.

    Keras's `CSVLogger` fixes its columns at the first logs it sees and appends rows under
    whatever header the file already has, so a resumed run that logs a column more (or one
    fewer), or a metric that first appears later, writes values under the wrong names. This keeps
    every column ever logged: a new one is added to the header, with `NA` in the earlier rows,
    and an epoch without a value reads `NA`. The file is small (a row per epoch); a crash
    mid-write leaves the previous one.

    Args:
        path: str, the CSV file.
        append: bool, keep the rows already in `path` (a resumed run; `truncate_history` drops
            those of epochs that run again). Otherwise the file starts empty. Defaults to False.
    """

    def __init__(self, path, append=False):
        super().__init__()
        self.path = os.fspath(path)
        self.append = bool(append)

    def on_train_begin(self, logs=None):
        self._rows = []
        if self.append and os.path.isfile(self.path):
            with open(self.path, newline="") as f:
                self._rows = [dict(row) for row in csv.DictReader(f)]

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": str(epoch)}
        row.update((name, _csv_value(value)) for name, value in (logs or {}).items())
        self._rows = [kept for kept in self._rows if kept.get("epoch") != row["epoch"]] + [row]
        names = sorted({name for kept in self._rows for name in kept} - {"epoch"})
        with atomic_path(self.path) as tmp:
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, ["epoch", *names], restval="NA", lineterminator="\n")
                writer.writeheader()
                writer.writerows(self._rows)


def _csv_value(value):
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return str(value)


class EpochLog(keras.callbacks.Callback):
    """One plain line per epoch, for logs that are files (CI, nohup, a scheduler).

    Keras's progress bar rewrites its line with carriage returns and backspaces, which a file
    keeps; this prints `epoch 3/50  12.4 s  loss 101.2  val_loss 99.87 ...` and flushes it.

    Args:
        stream: a text stream. Defaults to `sys.stdout`.
    """

    def __init__(self, stream=None):
        super().__init__()
        self.stream = stream

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        parts = [f"epoch {epoch + 1}/{self.params.get('epochs', '?')}"]
        if "seconds" in logs:
            parts.append(f"{float(logs.pop('seconds')):.1f} s")
        parts += [f"{name} {_number(value)}" for name, value in logs.items()]
        print("  ".join(parts), file=self.stream or sys.stdout, flush=True)


def _number(value):
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)


class Backup(keras.callbacks.BackupAndRestore):
    """Keras's `BackupAndRestore`, made crash-safe and complete: the last finished epoch, restorable.

    Keras's callback saves the weights with every optimizer's state (`save_weights`) and the
    epoch count, and restores both. What it does not do, and this adds:

    - it writes `latest.weights.h5` and then `training_metadata.json` in place, so a kill during
      the write leaves a corrupt file, and a kill between them an epoch count that is not the
      weights'. Here each epoch's weights go to a new file by an atomic rename, and `state.json`,
      renamed into place last, names the file: the state is always one whole epoch.
    - it leaves out the `SeedGenerator` states (they are in `model.variables`, not in
      `model.weights`), so a resumed run would replay the first epoch's noise. They go into
      `state.json`.
    - it never saves a diverged epoch (NaN or inf in the logs): the last good one stays.
    - `read_state` and `restore` work before `fit`, so a run can position its data, history and
      quality records at the checkpointed epoch before training starts.

    It must be the last callback, so that everything an epoch writes (history row, grids,
    quality records) is on disk before the epoch counts as done. The checkpoint is kept after
    training (so `--epochs` can grow on `--resume`).

    Args:
        backup_dir: str, the checkpoint folder.
    """

    def __init__(self, backup_dir):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False)
        self._restored = False

    @staticmethod
    def state_path(directory):
        return os.path.join(directory, "state.json")

    @classmethod
    def read_state(cls, directory):
        """`{"epoch", "weights", "seeds", "logs"}` of the checkpoint in `directory`, or None."""
        path = cls.state_path(directory)
        return read_json(path) if os.path.isfile(path) else None

    def restore(self, model=None):
        """Loads the checkpoint into `model` (its optimizers built): returns the epochs it had done (0: none)."""
        model = model or self.model
        state = self.read_state(self.backup_dir)
        self._restored = True
        if state is None:
            return 0
        for optimizer in _optimizers(model):
            if not optimizer.built:
                optimizer.build(model.trainable_variables)
        model.load_weights(os.path.join(self.backup_dir, state["weights"]))
        seeds = _seed_states(model)
        # Paths get a `_N` suffix when a process builds several models: compare without it.
        expected, saved = ([_unnumbered(path) for path, _ in pairs] for pairs in (seeds, state["seeds"]))
        if expected != saved:
            raise ValueError(
                f"The checkpoint in {self.backup_dir} holds the random-number states of another model. "
                f"Received: {saved}, expected {expected}"
            )
        for (_, variable), (_, value) in zip(seeds, state["seeds"]):
            variable.assign(np.asarray(value, dtype=variable.dtype))
        # Keras skips an optimizer whose variables do not match with only a warning; a resume
        # that silently restarted Adam's moments and the learning-rate schedule would be wrong.
        steps = [int(keras.ops.convert_to_numpy(optimizer.iterations)) for optimizer in _optimizers(model)]
        if steps != state["optimizer_steps"]:
            raise ValueError(
                f"The checkpoint in {self.backup_dir} holds optimizer state that does not fit this model's "
                f"optimizers (steps restored {steps}, saved {state['optimizer_steps']}): resume with the run's "
                "own settings, or start over with --overwrite."
            )
        model._initial_epoch = int(state["epoch"])  # What BackupAndRestore sets for fit.
        return int(state["epoch"])

    def on_train_begin(self, logs=None):
        if not self._restored:
            self.restore()

    def on_epoch_end(self, epoch, logs=None):
        logs = {name: float(value) for name, value in (logs or {}).items()}
        if not all(np.isfinite(value) for value in logs.values()):
            return  # Keep the last good epoch rather than overwrite it with a diverged one.
        previous = self.read_state(self.backup_dir)
        weights = f"epoch_{epoch + 1:04d}.weights.h5"
        with atomic_path(os.path.join(self.backup_dir, weights)) as tmp:
            self.model.save_weights(tmp)
        seeds = [[path, keras.ops.convert_to_numpy(variable).tolist()] for path, variable in _seed_states(self.model)]
        steps = [int(keras.ops.convert_to_numpy(optimizer.iterations)) for optimizer in _optimizers(self.model)]
        state = {"epoch": epoch + 1, "weights": weights, "seeds": seeds, "optimizer_steps": steps, "logs": logs}
        write_json(self.state_path(self.backup_dir), state)
        if previous is not None and previous["weights"] != weights:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(self.backup_dir, previous["weights"]))


def _seed_states(model):
    """`[(path, variable)]` of every SeedGenerator state in `model`, in a fixed order."""
    weights = {id(variable) for variable in model.weights}
    return [(variable.path, variable) for variable in model.variables if id(variable) not in weights]


def _unnumbered(path):
    return "/".join(re.sub(r"_\d+$", "", part) for part in path.split("/"))


def _optimizers(model):
    """The model's optimizers: those it names (`optimizer_names`, a model with one per part), else its one."""
    found = [getattr(model, name, None) for name in getattr(model, "optimizer_names", ("optimizer",))]
    return [optimizer for optimizer in found if optimizer is not None]
