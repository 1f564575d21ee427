"""Callbacks a user adds to `fit` for generative training: sample grids from fixed latents, sample
quality, the latent instruments (posterior collapse as it happens), a guard that stops a diverging
GAN, and the phase switch of aggressive inference-network training.

The run harness's own plumbing (its clock, time budget, history CSV, epoch log and crash-safe
backup) lives beside it, in `kerasgen.runs.plumbing`.
"""

import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from kerasgen import validate
from kerasgen.artifacts import write_json
from kerasgen.evaluation import reconstruction, sample_quality
from kerasgen.evaluation.instruments import ACTIVE_UNIT_THRESHOLD, LatentInstruments
from kerasgen.images import image_grid, interleave, save_png
from kerasgen.latent import images_from_latents, prior_latents, reconstructions_of


class SampleGrid(keras.callbacks.Callback):
    """Saves PNG grids of samples from fixed latent vectors, and of inputs beside reconstructions.

    The latent vectors are drawn once from the model's own prior with `seed` (`prior_latents`:
    N(0, I) for a VAE or a GAN, the mixture for an AAE with one), so the grids of successive epochs
    show the same z and can be compared; a decoder that draws its images (a PixelCNN samples
    p(x|z)) gets the same pixel noise, from `seed`, in every grid too. A model with `generate` (a GAN) turns them into images
    with it, otherwise with `decode` (a VAE); so `epoch_000` of a GAN warm-started from a VAE's
    decoder is the VAE's own grid for the same `seed`. Files: `directory/samples/epoch_NNN.png` and, when
    `images` are given and the model can reconstruct, `directory/reconstructions/epoch_NNN.png`.
    `epoch_000` is written before the first step. With `logdir`, both grids also go to TensorBoard
    as images under `logdir/images`.

    Args:
        directory: str, where the grids go.
        images: optional array `[N, H, W, C]`, fixed inputs to reconstruct (e.g. 32 validation images).
        num_samples: int, images per sample grid. Defaults to 64.
        every: int, write every this many epochs (and after the last). Defaults to 1.
        seed: int, seeds the fixed latent vectors (and a PixelCNN decoder's pixel noise). Defaults to 0.
        logdir: optional str, a TensorBoard log directory.
    """

    def __init__(self, directory, images=None, num_samples=64, every=1, seed=0, logdir=None):
        super().__init__()
        validate.positive_int("every", every)
        self.directory = directory
        self.images = None if images is None else np.asarray(images, dtype=np.float32)
        self.num_samples = num_samples
        self.every = every
        self.seed = seed
        self.logdir = logdir
        self._writer = None
        self._latents = None
        self._last_written = None
        self._epochs_seen = None

    def on_train_begin(self, logs=None):
        self._latents = prior_latents(self.model, self.num_samples, self.seed)
        if self.logdir:
            self._writer = tf.summary.create_file_writer(os.path.join(self.logdir, "images"))
        if not os.path.exists(self._path("samples", 0)):
            self.write(0)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            self.write(epoch + 1)
        self._epochs_seen = epoch + 1

    def on_train_end(self, logs=None):
        if self._epochs_seen is not None and self._last_written != self._epochs_seen:
            self.write(self._epochs_seen)
        if self._writer is not None:
            self._writer.flush()

    def write(self, epoch):
        """Writes both grids for `epoch` now."""
        samples = images_from_latents(self.model, self._latents, seed=self.seed)
        grids = {"samples": image_grid(keras.ops.convert_to_numpy(samples))}
        if self.images is not None and hasattr(self.model, "reconstruct"):
            reconstructions = keras.ops.convert_to_numpy(reconstructions_of(self.model, self.images, seed=self.seed))
            # Pairs side by side: an even number of columns keeps each input next to its reconstruction.
            columns = 2 * int(np.ceil(np.sqrt(len(self.images) / 2)))
            grids["reconstructions"] = image_grid(interleave(self.images, reconstructions), columns=columns)
        for name, grid in grids.items():
            save_png(self._path(name, epoch), grid)
            if self._writer is not None:
                with self._writer.as_default():
                    tf.summary.image(name, grid[None], step=epoch)
        self._last_written = epoch

    def _path(self, name, epoch):
        return os.path.join(self.directory, name, f"epoch_{epoch:03d}.png")


class DivergenceGuard(keras.callbacks.Callback):
    """Stops GAN training when an epoch's metrics are NaN or inf, or when D has won for good.

    Keras's `TerminateOnNaN` watches only a `loss` metric, which a GAN does not log, so this reads
    every metric of each epoch's logs. "D has won" means that for `patience` consecutive epochs
    D's mean probability that generated images are real (`d_fake`) stayed below `d_fake_floor`
    while `g_loss` stayed above `g_loss_ceiling`: the generator gets almost no signal and rarely
    recovers. Stopping sets `model.stop_training`, prints why and keeps the reason in
    `stopped_reason` (None while training is healthy). The run harness's checkpoint
    (`runs.plumbing.Backup`) never saves a non-finite epoch, so the last good one survives.

    Args:
        patience: int >= 1, consecutive lost epochs before stopping. Defaults to 3.
        d_fake_floor: float, the `d_fake` below which D is winning. Defaults to 0.02.
        g_loss_ceiling: float, the `g_loss` above which D is winning; −log(0.02) ≈ 3.9, so the
            default 5.0 asks that D be confident on most generated images, not just on average.
    """

    def __init__(self, patience=3, d_fake_floor=0.02, g_loss_ceiling=5.0):
        super().__init__()
        validate.positive_int("patience", patience)
        self.patience = patience
        self.d_fake_floor = float(d_fake_floor)
        self.g_loss_ceiling = float(g_loss_ceiling)
        self.stopped_reason = None
        self.lost_epochs = 0

    def on_train_begin(self, logs=None):
        self.stopped_reason = None
        self.lost_epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = {name: float(value) for name, value in (logs or {}).items()}
        bad = sorted(name for name, value in logs.items() if not math.isfinite(value))
        if bad:
            self._stop(f"epoch {epoch + 1}: {', '.join(bad)} became NaN or inf")
            return
        if "d_fake" not in logs or "g_loss" not in logs:
            return
        if logs["d_fake"] < self.d_fake_floor and logs["g_loss"] > self.g_loss_ceiling:
            self.lost_epochs += 1
        else:
            self.lost_epochs = 0
        if self.lost_epochs >= self.patience:
            self._stop(
                f"epoch {epoch + 1}: the discriminator has won for {self.lost_epochs} epochs in a row "
                f"(d_fake {logs['d_fake']:.4f} < {self.d_fake_floor}, g_loss {logs['g_loss']:.2f} > "
                f"{self.g_loss_ceiling})"
            )

    def _stop(self, reason):
        self.stopped_reason = reason
        self.model.stop_training = True
        print(f"\nDivergenceGuard: stopping at {reason}.")


class SampleQuality(keras.callbacks.Callback):
    """Fréchet distance and KID of the model's samples every few epochs, on a classifier's features.

    For a model with an encoder (`reconstruct`) it also measures its reconstructions of the real
    images: their Fréchet distance to the originals and, with `labels`, the classifier's accuracy
    on them (`evaluation.reconstruction.reconstruction_quality`, as `kerasgen evaluate` reports).

    Before the first epoch, after the first, after every `every`-th and after the last, draws
    `num_samples` images with `model.sample` (the same seeds each time, so successive numbers
    differ only by what training changed) and adds `fd` and `kid` to that epoch's logs, where
    `CSVLogger` and `TensorBoard` record them. `CSVLogger` takes its columns from the first logs
    it sees, so the first epoch of every `fit`, a resumed one included, is measured, and the
    epochs in between read `NA`.

    Each measurement is kept in `records`: `{"epoch", "seconds", "fd", "kid", "kid_std",
    "class_fractions"}` (plus `reconstruction_fd` and `reconstruction_accuracy`, None without
    labels, for a model with an encoder), epoch 0 being the model before training; `seconds` counts from the start
    of training (plus `start_seconds`) and excludes the time spent measuring. With `path`, the
    records are rewritten there (atomically) after every measurement, so a crash keeps them.

    Args:
        classifier: a `Classifier` (or a callable to features, with `num_classes` logits via
            `classifier(x)` for the class fractions).
        real_images: array `[N, H, W, C]` in [0, 1], N >= 2: the real side of both distances.
        every: int >= 1, measure every this many epochs. Defaults to 5.
        num_samples: int >= 2, generated images per measurement. Defaults to 5000.
        seed: int, seeds the generated images and the KID subsets. Defaults to 0.
        start_seconds: float, added to `seconds` (e.g. the time spent pre-training a VAE). Defaults to 0.
        path: str or None, a JSON file for `{"every", "records"}`. Defaults to None.
        records: list or None, the measurements of the epochs before a resumed run's first; the
            clock goes on from the last one's `seconds` (the time lost to the crash is not counted).
            Defaults to None.
        info: dict or None, written into `path` beside the records (which classifier, ...).
            Defaults to None.
        labels: int array `[N]` or None, the classes of `real_images` for the reconstructions'
            accuracy. Defaults to None.
    """

    def __init__(
        self, classifier, real_images, every=5, num_samples=5000, seed=0, start_seconds=0.0, path=None, records=None, info=None,
        labels=None,
    ):
        super().__init__()
        validate.positive_int("every", every)
        validate.integer("num_samples", num_samples, minimum=2)
        self.classifier = classifier
        self.real_images = real_images
        self.labels = labels
        self.real_features = sample_quality.compute_features(classifier, real_images)
        self.every = every
        self.num_samples = num_samples
        self.seed = seed
        self.path = path
        self.records = list(records or [])
        self.info = dict(info or {})
        self.start_seconds = self.records[-1]["seconds"] if self.records else float(start_seconds)
        self._start = None
        self._measuring = 0.0
        self._first_epoch = True

    def on_train_begin(self, logs=None):
        self._start, self._measuring = time.perf_counter(), 0.0
        self._first_epoch = True

    def on_epoch_begin(self, epoch, logs=None):
        # The model before training (or, resumed without earlier records, as it was checkpointed).
        if self._first_epoch and not any(r["epoch"] == epoch for r in self.records):
            self._start = None  # so this record's seconds are start_seconds exactly
            self.measure(epoch)
            self._start, self._measuring = time.perf_counter(), 0.0

    def training_seconds(self):
        """Seconds of training so far on this callback's clock (`start_seconds` on, measuring left out)."""
        if self._start is None:
            return self.start_seconds
        return self.start_seconds + time.perf_counter() - self._start - self._measuring

    def on_epoch_end(self, epoch, logs=None):
        first, self._first_epoch = self._first_epoch, False
        # The run's last epoch: --epochs reached, or the harness's `TimeBudget` (before this callback) stopped it.
        last = epoch + 1 == self.params.get("epochs") or bool(getattr(self.model, "stop_training", False))
        if first or (epoch + 1) % self.every == 0 or last:
            record = self.measure(epoch + 1)
            if logs is not None:
                logs["fd"], logs["kid"] = record["fd"], record["kid"]

    def measure(self, epoch):
        """Measures the model now, as after `epoch` epochs; returns the record."""
        began = time.perf_counter()
        seconds = self.start_seconds + (began - self._start - self._measuring if self._start is not None else 0.0)
        images = sample_quality.sample_images(self.model, self.num_samples, seed=self.seed)
        features = sample_quality.compute_features(self.classifier, images)
        kid, kid_std = sample_quality.kernel_inception_distance(self.real_features, features, seed=self.seed)
        logits = sample_quality.compute_logits(self.classifier, images)
        record = {
            "epoch": epoch,
            "seconds": seconds,
            "fd": sample_quality.frechet_distance(self.real_features, features),
            "kid": kid,
            "kid_std": kid_std,
            "class_fractions": sample_quality.class_histogram(logits).tolist(),
        }
        if hasattr(self.model, "reconstruct"):
            quality = reconstruction.reconstruction_quality(self.model, self.real_images, self.labels, self.classifier)
            record["reconstruction_fd"] = quality["frechet_distance"]
            record["reconstruction_accuracy"] = quality["accuracy"]
        self.records.append(record)
        if self.path:
            write_json(self.path, {**self.info, "every": self.every, "records": self.records})
        self._measuring += time.perf_counter() - began
        return record


class LatentDiagnostics(keras.callbacks.Callback):
    """The latent instruments on held-out images, before training and after every epoch.

    Posterior collapse as it happens: KL per latent dimension, active units (Var_x E_q[z_i] >
    `active_unit_threshold`, Burda et al. 2016), the mutual information I(x; z) (He et al. 2019)
    and the ELBO split into reconstruction and KL, measured by `evaluation.instruments.LatentInstruments`,
    the implementation `kerasgen evaluate` reports with, compiled once and run on `images` as one
    batch: the aggregated posterior of I(x; z) is over all N images, so I(x; z) is at most log N
    (`mutual_information_bound` in the JSON). The same seeds every time, so successive numbers
    differ only by what training changed.

    Adds to each epoch's logs, where `CSVLogger` and `TensorBoard` record them (put it before
    them): `heldout_reconstruction`, `heldout_kl`, `active_units` and `mutual_information`. The D
    numbers per dimension go to the records only (as history columns they would grow with the
    latent size), and with `logdir` to TensorBoard as scalars `kl_per_dimension/NN` under
    `logdir/latent`.

    Each measurement is kept in `records`: `{"epoch", "elbo", "reconstruction", "kl",
    "kl_per_dimension", "active_units", "active_unit_variances", "mutual_information"}`, epoch 0
    being the model before training (a resumed run measures its first epoch's start only when no
    record has it). With `path`, the records are rewritten there (atomically) after every
    measurement, beside `num_images`, `num_mi_samples`, `active_unit_threshold`,
    `mutual_information_bound` and `info`.

    Args:
        images: array `[N, H, W, C]`, N >= 2, the held-out images (binarized as the likelihood
            needs them).
        num_mi_samples: int >= 1, draws of z per image for I(x; z). Defaults to 10.
        active_unit_threshold: float >= 0. Defaults to 0.01.
        seed: int, seeds the draws. Defaults to 0.
        path: str or None, a JSON file for the records. Defaults to None.
        records: list or None, the measurements of the epochs before a resumed run's first.
            Defaults to None.
        info: dict or None, written into `path` beside the records. Defaults to None.
        logdir: str or None, a TensorBoard log directory for the per-dimension KL. Defaults to None.
    """

    LOGGED = {
        "heldout_reconstruction": "reconstruction",
        "heldout_kl": "kl",
        "active_units": "active_units",
        "mutual_information": "mutual_information",
    }

    def __init__(
        self, images, num_mi_samples=10, active_unit_threshold=ACTIVE_UNIT_THRESHOLD, seed=0, path=None, records=None,
        info=None, logdir=None,
    ):
        super().__init__()
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or len(images) < 2:
            raise ValueError(
                f"images must be an array [N, height, width, channels] with N >= 2. Received: images.shape={images.shape}"
            )
        self.images = images
        self.num_mi_samples = num_mi_samples
        self.active_unit_threshold = float(active_unit_threshold)
        self.seed = seed
        self.path = path
        self.records = list(records or [])
        self.info = dict(info or {})
        self.logdir = logdir
        # Checks the arguments now; the model is bound when training begins.
        LatentInstruments(None, num_mi_samples=num_mi_samples, active_unit_threshold=active_unit_threshold, seed=seed)
        self._instruments = None
        self._writer = None
        self._first_epoch = True

    def on_train_begin(self, logs=None):
        if self._instruments is None or self._instruments.model is not self.model:
            self._instruments = LatentInstruments(
                self.model, num_mi_samples=self.num_mi_samples, active_unit_threshold=self.active_unit_threshold, seed=self.seed
            )
        if self.logdir and self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.logdir, "latent"))
        self._first_epoch = True

    def on_epoch_begin(self, epoch, logs=None):
        # The model before training (or, resumed without a record of it, as it was checkpointed).
        if self._first_epoch and not any(r["epoch"] == epoch for r in self.records):
            self.measure(epoch)
        self._first_epoch = False

    def on_epoch_end(self, epoch, logs=None):
        record = self.measure(epoch + 1)
        if logs is not None:
            logs.update({name: record[key] for name, key in self.LOGGED.items()})

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()

    def measure(self, epoch):
        """Measures the model now, as after `epoch` epochs; returns the record."""
        result = self._instruments(self.images)
        record = {"epoch": epoch, **{key: result[key] for key in (
            "elbo", "reconstruction", "kl", "kl_per_dimension", "active_units", "active_unit_variances", "mutual_information",
        )}}
        self.records.append(record)
        if self.path:
            facts = {
                "num_images": result["num_images"],
                "num_mi_samples": self.num_mi_samples,
                "active_unit_threshold": self.active_unit_threshold,
                "mutual_information_bound": result["mutual_information_bound"],
            }
            if result["kl_per_dimension"] is None:
                facts["kl_per_dimension_skipped"] = result["kl_per_dimension_skipped"]
            write_json(self.path, {**self.info, **facts, "records": self.records})
        if self._writer is not None and record["kl_per_dimension"] is not None:
            with self._writer.as_default():
                width = len(str(len(record["kl_per_dimension"]) - 1))
                for dimension, kl in enumerate(record["kl_per_dimension"]):
                    tf.summary.scalar(f"kl_per_dimension/{dimension:0{width}d}", kl, step=epoch)
        return record


class AggressivePhase(keras.callbacks.Callback):
    """Ends an `AggressiveVAE`'s aggressive phase for good once I(x; z) on held-out images stops rising.

    After `patience` epochs in a row without a new best (strictly higher) I(x; z), the model trains
    both parts jointly from then on; a new best starts the count again from 0.

    How it relates to He et al.'s (2019) code (github.com/jxhe/vae-lagging-encoder): their
    `image.py` also measures I(x; z) on held-out images after every epoch and stops at 5, but it
    counts every epoch below the best so far and never resets the count, so the phase ends at the
    fifth such epoch, consecutive or not; an epoch equal to the best counts as a new best there
    and as no gain here. Ties aside, their rule never ends the phase later than this one with
    `patience=5`, and ends it earlier when the epochs below the best are not consecutive. Other
    versions of their scripts end it otherwise: another `image.py` at the first half-epoch
    measurement lower than the previous one, a `text.py` once I(x; z) moves by less than a
    threshold (`mi_ts`) from one epoch to the next.

    It reads `mutual_information` from the epoch's logs, which `LatentDiagnostics` writes (put it
    after that callback); without one, it measures I(x; z) on `images` itself. The best value and the epochs since it are the model's weights
    (`best_mutual_information`, `epochs_without_gain`), so a resumed run counts on.

    Args:
        patience: int >= 1, epochs in a row without a new best I(x; z) before the phase ends.
            Defaults to 5 (the count He et al.'s `image.py` stops at).
        images: array `[N, H, W, C]` or None, held-out images on which to measure I(x; z) when the
            logs have no `mutual_information`. Defaults to None.
        seed: int, seeds that measurement. Defaults to 0.
    """

    def __init__(self, patience=5, images=None, seed=0):
        super().__init__()
        validate.positive_int("patience", patience)
        self.patience = patience
        self.images = None if images is None else np.asarray(images, dtype=np.float32)
        self.seed = seed
        self._instruments = None

    def on_train_begin(self, logs=None):
        if not hasattr(self.model, "aggressive_phase"):
            raise ValueError(
                "AggressivePhase ends the aggressive phase of an AggressiveVAE (train-vae --aggressive). "
                f"Received: a {type(self.model).__name__}"
            )

    def on_epoch_end(self, epoch, logs=None):
        model = self.model
        if not int(keras.ops.convert_to_numpy(model.aggressive_phase)):
            return
        information = self._mutual_information(logs or {})
        if information > float(keras.ops.convert_to_numpy(model.best_mutual_information)):
            model.best_mutual_information.assign(information)
            model.epochs_without_gain.assign(0)
            return
        model.epochs_without_gain.assign_add(1)
        if int(keras.ops.convert_to_numpy(model.epochs_without_gain)) >= self.patience:
            model.aggressive_phase.assign(0)
            print(
                f"\nAggressivePhase: I(x; z) has not risen for {self.patience} epochs; training encoder and decoder "
                f"jointly from epoch {epoch + 2} on.",
                flush=True,
            )

    def _mutual_information(self, logs):
        if "mutual_information" in logs:
            return float(logs["mutual_information"])
        if self.images is None:
            raise ValueError(
                "AggressivePhase needs I(x; z) on held-out images: put a LatentDiagnostics callback before it, "
                "or give it images. Received: no mutual_information in the logs and images=None"
            )
        if self._instruments is None or self._instruments.model is not self.model:
            self._instruments = LatentInstruments(self.model, elbo=False, seed=self.seed)
        return float(self._instruments(self.images)["mutual_information"])
