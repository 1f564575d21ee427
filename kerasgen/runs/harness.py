"""One training run, whatever the model: its folder, config, resume, callbacks, fit and artifacts.

A run module (`runs/vae.py`, `runs/gan.py`, `runs/classifier.py`) loads its data, builds and
compiles its model and hands both to a `Run`, which does the rest the same way for every model:

- the folder: refused when it holds an earlier run, unless `--resume` (continue it) or
  `--overwrite` (delete it first); checked writable before any training;
- `config.json`: the flags and what the run derived from them; on `--resume` every model and
  data flag must equal the checkpoint's (training-length and output flags may change);
- resume: `checkpoint/` holds the last finished epoch (weights, every optimizer, the random-number
  states); the data order and noise, the history, the grids, the quality and latent records and the clock
  all continue from it, so a resumed run ends where the uninterrupted one would;
- callbacks: the clock, sample quality, the latent instruments, NaN and divergence checks, the history CSV, sample grids,
  TensorBoard, one plain line per epoch when stdout is not a terminal, and the checkpoint last;
- after `fit`: the finite check, the model saved atomically without optimizer state, the
  SavedModel export and the history plot.
"""

import contextlib
import csv
import dataclasses
import errno
import math
import os
import shutil
import sys
import tempfile

import keras

from kerasgen import distribute, validate
from kerasgen.artifacts import atomic_path, inference_copy, read_json, write_json
from kerasgen.callbacks import LatentDiagnostics, SampleGrid, SampleQuality
from kerasgen.config import show_flag
from kerasgen.evaluation.domain import choose_classifier, heldout_images_and_labels
from kerasgen.evaluation.sample_quality import load_classifier
from kerasgen.options import JIT_COMPILES, MIXED_PRECISIONS
from kerasgen.plots import plot_history
from kerasgen.runs.plumbing import Backup, ElapsedTime, EpochLog, HistoryCSV, TimeBudget

CONFIG_FILE = "config.json"


@dataclasses.dataclass(frozen=True)
class RunResult:
    """Where a run put its outputs, and what it measured.

    Attributes:
        out: the run folder.
        model: the final `.keras` file (weights and config, no optimizer state).
        saved_model: the SavedModel folder, or None for a model that is not exported.
        final_metrics: the last epoch's logs.
        quality: the `SampleQuality` records (empty without `--quality-every`).
        classifier: which classifier scored the samples (`evaluation.domain.ClassifierChoice.describe()`), or None.
        latent: the `LatentDiagnostics` records (empty for a run without them).
    """

    out: str
    model: str
    saved_model: str | None
    final_metrics: dict
    quality: list = dataclasses.field(default_factory=list)
    classifier: dict | None = None
    latent: list = dataclasses.field(default_factory=list)

    @property
    def config(self):
        return os.path.join(self.out, CONFIG_FILE)

    @property
    def history(self):
        return os.path.join(self.out, "history.csv")

    @property
    def history_plot(self):
        return os.path.join(self.out, "history.png")

    @property
    def samples(self):
        return os.path.join(self.out, "samples")

    @property
    def reconstructions(self):
        return os.path.join(self.out, "reconstructions")

    @property
    def checkpoint(self):
        return os.path.join(self.out, "checkpoint")

    @property
    def logdir(self):
        return read_json(self.config).get("logdir") or os.path.join(self.out, "logs")


class Run:
    """One training run in `config.out`; see the module docstring for what it takes care of.

    Use: `run = Run(config, "vae.keras")` (checks the folder, writes nothing), load the data and
    build the compiled model, `run.open(facts)` (writes `config.json`, returns the epoch to start
    from), `run.restore(model)`, `history = run.fit(model, splits, ...)`,
    `run.finish(model, history, export=...)`.

    Args:
        config: a run config (`TrainVAEConfig`, ...), with `out`, `epochs`, `seed`, `resume`,
            `overwrite` and optionally `logdir`.
        model_file: str, the final model's file name in the folder (`"vae.keras"`).
        verbose: what `fit` shows; None: Keras's progress bar in a terminal, else one plain line
            per epoch (`EpochLog`).
    """

    def __init__(self, config, model_file, verbose=None):
        self.config = config
        self.model_file = model_file
        self.verbose = verbose
        # First: a multi-worker strategy must exist before TensorFlow runs any op.
        self.strategy = distribute.get_strategy(getattr(config, "strategy", "default"))
        self.chief = distribute.is_chief(self.strategy)
        if self.chief:
            check_folder(config.out, config.resume, config.overwrite)
            self.out = config.out
            self.logdir = getattr(config, "logdir", None) or self.path("logs")
        else:
            # The other workers train in step with the chief and write into a temporary folder.
            self.out = distribute.worker_folder(config.out, config.resume)
            self.logdir = self.path("logs")
        self.initial_epoch = 0
        self.classifier_choice = None
        self._backup = Backup(self.path("checkpoint"))
        steps = getattr(config, "steps_per_execution", 1)
        if steps > 1 and self.strategy.num_replicas_in_sync > 1:
            raise ValueError(
                f"--steps-per-execution above 1 fails in Keras 3 with more than one replica (the {config.strategy} "
                f"strategy has {self.strategy.num_replicas_in_sync}): Keras's multi-step loop cannot run the "
                "distributed optimizer update (keras-team/keras#19246). Use --steps-per-execution 1. "
                f"Received: --steps-per-execution {steps}"
            )

    @contextlib.contextmanager
    def scope(self):
        """Build and compile the model in here: under the run's strategy and `--mixed-precision` policy."""
        with precision(getattr(self.config, "mixed_precision", "none")), self.strategy.scope():
            yield

    def compile_options(self):
        """`compile` keywords from `--jit-compile` and `--steps-per-execution`."""
        return {
            "jit_compile": use_xla(getattr(self.config, "jit_compile", "auto")),
            "steps_per_execution": getattr(self.config, "steps_per_execution", 1),
        }

    def path(self, *names):
        return os.path.join(self.out, *names)

    # --- Before training -----------------------------------------------------------------------

    def open(self, facts=None):
        """Prepares the folder and writes `config.json`; returns the epoch training starts from.

        Call it once the data and the model are known to be good, so a bad input writes nothing
        (and `--overwrite` deletes nothing).

        Args:
            facts: dict, what the run derived and must also match on `--resume` (the resolved
                binarization, the image shape, ...).

        Raises:
            ValueError: a flag differs from the checkpoint's, or the checkpoint is finished.
            OSError: the folder cannot be written.
        """
        record = {**self.config.to_dict(), **(facts or {}), "environment": environment(self.strategy)}
        prepare_folder(self.out, self.config.overwrite and self.chief, self.logdir)
        if self.config.resume:
            self.initial_epoch = self._resume_epoch(record)
        write_json(self.path(CONFIG_FILE), record)
        return self.initial_epoch

    def describe_data(self, splits):
        """Says which data the run read (for an .npz: which keys) and how it was split."""
        print(
            f"Data: {splits.description}. Training on {splits.num_train} images, validating on "
            f"{splits.num_validation}{f', testing on {splits.num_test}' if splits.num_test else ''}.",
            flush=True,
        )

    def _resume_epoch(self, record):
        state = Backup.read_state(self.path("checkpoint"))
        if state is None:
            print(f"No checkpoint in {self.path('checkpoint')}: training from the start.")
            return 0
        saved = read_json(self.path(CONFIG_FILE))
        check_same_run(saved, record, type(self.config).resumable_fields(), self.out)
        epochs_done = int(state["epoch"])
        if epochs_done >= self.config.epochs:
            raise ValueError(
                f"The run in {self.out} has already trained {epochs_done} epochs; ask for more to continue. "
                f"Received: --epochs {self.config.epochs}"
            )
        # A kill after an epoch's history row but before its checkpoint: that epoch runs again.
        truncate_history(self.path("history.csv"), epochs_done)
        self._start_seconds = float(state["logs"].get("seconds", 0.0))
        print(f"Resuming {self.out} after epoch {epochs_done}.")
        return epochs_done

    def restore(self, model):
        """Loads the checkpoint (on `--resume`) into the compiled `model`."""
        if self.initial_epoch:
            with self.scope():  # Restoring may build optimizer variables: they belong to the strategy.
                restored = self._backup.restore(model)
            assert restored == self.initial_epoch, (restored, self.initial_epoch)

    def check_classifier(self, splits, image_shape):
        """Before `open`: `--quality-every` with a `--classifier` that cannot score these images, or
        on unlabelled data without one, is an input error (nothing written yet)."""
        if not getattr(self.config, "quality_every", 0):
            return
        if self.config.classifier:
            load_classifier(self.config.classifier, image_shape)
        elif heldout_images_and_labels(splits)[1] is None:
            raise ValueError(
                "--quality-every scores samples with a classifier of the data's domain, but this data has no "
                "labels to check the shipped classifiers or to train one: pass --classifier DIR "
                f"(a train-classifier folder). Received: {show_flag('quality_every', self.config.quality_every)}"
            )

    def quality(self, splits, real_images, classifier_config, image_shape, train):
        """The `SampleQuality` callback of `--quality-every` (None without it), writing `quality.json`.

        Its classifier comes from `evaluation.domain.choose_classifier` (trained by `train`, the
        classifier run's `train_classifier`, into `OUT/classifier` when no shipped one serves the
        data); a resumed run keeps its earlier records.
        """
        if not getattr(self.config, "quality_every", 0):
            return None
        choice, _ = choose_classifier(self.config.classifier, splits, self.out, classifier_config, image_shape, train=train)
        self.classifier_choice = choice
        print(f"Sample quality: {choice.summary()}")
        path = self.path("quality.json")
        records = quality_records_before(path, self.initial_epoch)
        return SampleQuality(
            choice.load(image_shape),
            real_images,
            every=self.config.quality_every,
            seed=self.config.seed,
            path=path,
            records=records,
            info={"classifier": choice.describe()},
            # The reconstructions' accuracy only where the classifier's classes are the data's.
            labels=heldout_images_and_labels(splits)[1] if choice.heldout_accuracy is not None else None,
        )

    def latent_diagnostics(self, images):
        """The `LatentDiagnostics` callback of `--latent-images` (None when 0), writing `latent.json`.

        It measures the first `--latent-images` of `images` (all, when there are fewer) as one
        batch; a resumed run keeps its earlier records.
        """
        count = getattr(self.config, "latent_images", 0)
        if not count:
            return None
        path = self.path("latent.json")
        return LatentDiagnostics(
            images[:count],
            seed=self.config.seed,
            path=path,
            records=quality_records_before(path, self.initial_epoch),
            logdir=self.logdir,
        )

    # --- Training ------------------------------------------------------------------------------

    def fit(self, model, splits, *, validation=True, callbacks=(), grid=True, grid_images=None, quality=None, latent=None):
        """`model.fit` on `splits` with the run's callbacks, from the checkpointed epoch on.

        Args:
            model: the compiled (and restored) Keras model.
            splits: the `DatasetSplits`; training reads `splits.train_from(initial_epoch)`.
            validation: bool, validate on `splits.validation` every epoch. Defaults to True.
            callbacks: the model's own callbacks (a `DivergenceGuard`, ...), run after the
                metric-adding ones and before the writers.
            grid: bool, write sample grids (`SampleGrid`) every `config.grid_every` epochs (none
                when that is 0). Defaults to True.
            grid_images: array or None, inputs to show beside their reconstructions.
            quality: a `SampleQuality` (from `quality`) or None.
            latent: a `LatentDiagnostics` (from `latent_diagnostics`) or None.

        Returns:
            The `History`.
        """
        interactive = sys.stdout.isatty()
        verbose = self.verbose if self.verbose is not None else ("auto" if interactive else 0)
        every = getattr(self.config, "grid_every", 1)
        grid = grid and every > 0
        budget = getattr(self.config, "max_minutes", None)
        callback_list = [
            ElapsedTime(getattr(self, "_start_seconds", 0.0)),
            *([TimeBudget(budget, quality)] if budget else []),
            *([quality] if quality is not None else []),
            *([latent] if latent is not None else []),
            keras.callbacks.TerminateOnNaN(),
            *callbacks,
            HistoryCSV(self.path("history.csv"), append=self.initial_epoch > 0),
            *([SampleGrid(self.out, images=grid_images, every=every, seed=self.config.seed, logdir=self.logdir)] if grid else []),
            keras.callbacks.TensorBoard(self.logdir),
            *([EpochLog()] if verbose == 0 and self.verbose is None else []),
            self._backup,  # Last: an epoch counts as done once all of the above are on disk.
        ]
        return model.fit(
            splits.train_from(self.initial_epoch),
            validation_data=splits.validation if validation else None,
            epochs=self.config.epochs,
            initial_epoch=self.initial_epoch,
            callbacks=callback_list,
            shuffle=False,  # The data shuffles itself, by epoch.
            verbose=verbose,
        )

    # --- After training ------------------------------------------------------------------------

    def finish(self, model, history, export=None, guard=None, plot_title=None):
        """Checks the run ended finite, saves the model atomically, exports it, plots the history.

        Args:
            model: the trained model.
            history: what `fit` returned.
            export: `(model, path) -> None` writing a SavedModel, or None.
            guard: a `DivergenceGuard` whose stop counts as divergence, or None.
            plot_title: str or None; with a title, `history.png` is drawn.

        Returns:
            `(final_metrics, model_path, saved_model_path)`.

        Raises:
            FloatingPointError: training diverged; nothing is saved and the checkpoint keeps the
                last good epoch.
        """
        final = {name: float(values[-1]) for name, values in history.history.items()}
        reason = getattr(guard, "stopped_reason", None)
        if reason or not all(math.isfinite(value) for value in final.values()) or not final:
            reason = reason or f"a metric became NaN or inf: {final}"
            raise FloatingPointError(
                f"Training diverged ({reason}); the model was not saved. The last good epoch is in "
                f"{self.path('checkpoint')}; resume from it with other settings (e.g. a lower learning rate)."
            )
        # The final model is for loading and serving; checkpoint/ keeps the optimizer state for --resume.
        model_path = self.path(self.model_file)
        with atomic_path(model_path) as tmp:
            inference_copy(model).save(tmp)
        saved_model = None
        if export is not None:
            saved_model = self.path("saved_model")
            export(model, saved_model)
        if plot_title:
            plot_history(self.path("history.csv"), self.path("history.png"), title=plot_title)
        return final, model_path, saved_model

    def result(self, final, model_path, saved_model, quality=None, latent=None):
        """The `RunResult` of this run, from what `finish` returned and the `quality` and `latent` callbacks."""
        return RunResult(
            out=self.out,
            model=model_path,
            saved_model=saved_model,
            final_metrics=final,
            quality=quality.records if quality is not None else [],
            classifier=self.classifier_choice.describe() if self.classifier_choice else None,
            latent=latent.records if latent is not None else [],
        )


# ----------------------------------------------------------------------------------------------
# The folder


def is_run_folder(path):
    """True when `path` holds a kerasgen run (a `config.json`, a checkpoint or a model)."""
    return os.path.isdir(path) and any(
        os.path.exists(os.path.join(path, name)) for name in (CONFIG_FILE, "checkpoint", "summary.json")
    )


def check_folder(out, resume, overwrite):
    """Refuses an output folder that cannot take this run, before anything is loaded or written.

    Raises:
        ValueError: `out` holds an earlier run and neither `--resume` nor `--overwrite` was given,
            both were given, or `--overwrite` would delete a folder that is not a kerasgen run.
        OSError: `out` is a file, or a file stands where a parent folder should.
    """
    if resume and overwrite:
        raise ValueError("--resume continues the run in OUT and --overwrite deletes it: give one. Received: both")
    if os.path.exists(out) and not os.path.isdir(out):
        raise NotADirectoryError(errno.ENOTDIR, "--out is a file, not a folder", out)
    if not os.path.isdir(out) or not os.listdir(out):
        return
    if overwrite and not is_run_folder(out):
        raise ValueError(
            f"--overwrite deletes a kerasgen run folder, but {out} holds other files (no {CONFIG_FILE}); "
            f"choose another --out. Received: --out {out} --overwrite"
        )
    if not (resume or overwrite):
        raise ValueError(
            f"{out} already holds a run. Pass --resume to continue it, --overwrite to delete it first, "
            f"or choose another --out. Received: --out {out}"
        )


def prepare_folder(out, overwrite, *more):
    """Deletes `out` first with `--overwrite` (after `check_folder` allowed it), then proves it and
    the folders `more` writable."""
    if overwrite and os.path.exists(out):
        shutil.rmtree(out)
    for folder in (out, *more):
        check_writable(folder)


def check_writable(out):
    """Creates `out` and proves a file can be written in it (a clear OSError if not)."""
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryFile(dir=out):
        pass


def check_same_run(saved, requested, may_change, out):
    """Refuses a `--resume` whose model or data flags differ from the checkpoint's `config.json`.

    Raises:
        ValueError: naming every differing flag as the command line spells it.
    """
    differences = [
        f"{show_flag(name, saved[name])} (was) vs {show_flag(name, requested[name])}"
        for name in sorted(requested)
        if name not in may_change and name != "environment" and name in saved and _plain(saved[name]) != _plain(requested[name])
    ]
    if differences:
        raise ValueError(
            f"--resume continues the run in {out} with its own settings, but these differ: "
            f"{'; '.join(differences)}. Drop them, or start a new run (another --out, or --overwrite)."
        )


def environment(strategy=None):
    """What a seeded run's bits depend on besides its flags (recorded, never compared on resume).

    On this machine a run reproduces bit for bit at the same versions and thread count; the
    convolutions split their sums by the intra-op thread count, and oneDNN changes them too.
    Under a strategy, the replicas' sums are added in another order (equal to ~1e-7, not bitwise).
    """
    import tensorflow as tf

    return {
        "devices": [device.name for device in tf.config.list_logical_devices() if device.device_type != "CPU"]
        or ["CPU"],
        "replicas": strategy.num_replicas_in_sync if strategy is not None else 1,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or "default",
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
    }


@contextlib.contextmanager
def precision(mixed_precision="none"):
    """Keras's global dtype policy for the models built inside: `mixed_float16`, `mixed_bfloat16`
    or unchanged (`"none"`); the previous policy comes back on exit."""
    previous = keras.config.dtype_policy()
    if validate.one_of("mixed_precision", mixed_precision, MIXED_PRECISIONS) != "none":
        keras.config.set_dtype_policy(f"mixed_{mixed_precision}")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def use_xla(jit_compile="auto"):
    """`--jit-compile` as `compile` takes it: on, off, or auto = on with a GPU, off on CPUs (where
    `benchmarks/throughput.py` measured it 1.07-1.34x faster for the GAN and neutral for the VAE at
    its default batch, but a seeded run's bits and the shipped models depend on it staying off)."""
    if validate.one_of("jit_compile", jit_compile, JIT_COMPILES) == "auto":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    return jit_compile == "on"


def _plain(value):
    """JSON's view of a value: tuples and lists compare equal."""
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def quality_records_before(path, initial_epoch):
    """A resumed run's earlier `SampleQuality` (or `LatentDiagnostics`) records from `path`, up to the checkpointed epoch.

    Measurements taken after the checkpoint (the epochs a crash lost) are dropped; a fresh run
    (`initial_epoch` 0) or a missing file gives none.
    """
    if not initial_epoch or not os.path.isfile(path):
        return []
    return [record for record in read_json(path)["records"] if record["epoch"] <= initial_epoch]


def truncate_history(path, epochs_done):
    """Keeps the header and the rows of the first `epochs_done` epochs of a history CSV."""
    if not os.path.isfile(path):
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0], *(row for row in rows[1:] if row and int(row[0]) < epochs_done)]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(kept)
