"""CIFAR-10 side by side at equal wall-clock: the VAE, the GAN warm-started from its decoder, the same
GAN from scratch, keras.io's DCGAN ported to 32x32 and the VAE-GAN.

The data is `../shared/data/cifar10`, a JPEG-compressed copy of CIFAR-10 as an image folder (50,000
`train/` and 10,000 `test/` images; not byte-identical to the binary release, so its numbers are
close to, not equal to, those of the original). Everything trains on the full training split less
the VAE run's 500 validation images and is scored on the 10,000 test images, by the shipped
CIFAR-10 classifier's features (`kerasgen/assets/classifier-cifar10`, 75.6% on these test images).

The budget (defaults): `--total-minutes` 90 for VAE + GAN. The VAE trains `--vae-epochs` 12 epochs
(train-vae's choice for the data: the discretized logistic mixture and the 32x32 residual preset,
z an 8x8x16 map), then the warm GAN trains for what is left of the 90 minutes. The scratch GAN and the DCGAN get the
whole 90, so that every curve ends at the same wall-clock; the VAE-GAN starts from the VAE and
gets the GAN's minutes. Sample
quality (FD, KID, class shares of 5,000 samples) is measured every few epochs on each run's own
clock, measuring left out (`--max-minutes` and `--quality-every` of the runs).

Stages, in this order, each resumable (a killed stage continues from its last finished epoch when
the script is run again; a finished one is skipped):

    vae         train-vae into WORK/vae
    likelihood  the VAE on --test-images test images drawn at random (seed 0): ELBO and the importance-weighted bound
                with --k samples, in nats and bits per dimension; its samples' FD, KID and class
                shares; its reconstructions' FD and classifier accuracy
    warm        train-gan --init decoder into WORK/gan_warm
    scratch     train-gan --init scratch into WORK/gan_scratch
    dcgan       benchmarks/dcgan_keras_io.py's port into WORK/dcgan
    vaegan      train-vaegan from the VAE into WORK/vaegan
    report      RESULTS/cifar10.json, fd_vs_wall_clock.png, samples.png and the table
    ship        saved_models/vae-cifar10 and gan-cifar10 (the VAE and the warm GAN): model, config,
                history, quality records, final grids and report/ (this benchmark's numbers)

    python benchmarks/cifar10.py                                  # everything, about 5 hours on 2 CPU cores
    python benchmarks/cifar10.py --stages vae likelihood warm     # a piece; run again for the rest
    python benchmarks/cifar10.py --stages report                  # the table from what has finished

WORK (default runs/cifar10) holds the runs and stays out of git; RESULTS (default
benchmarks/results/cifar10) holds the JSON, the plots and each run's quality records.
"""

import argparse
import dataclasses
import os
import shutil
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import kerasgen  # noqa: E402

kerasgen.quiet_tensorflow_startup()  # this script owns its terminal: TensorFlow's start-up lines are filtered

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # dcgan_keras_io, beside this file

import dcgan_keras_io  # noqa: E402
import keras  # noqa: E402

from kerasgen import distributions  # noqa: E402
from kerasgen.artifacts import atomic_path, load_run, read_json, write_json  # noqa: E402
from kerasgen.callbacks import SampleGrid, SampleQuality  # noqa: E402
from kerasgen.config import TrainGANConfig, TrainVAEConfig, TrainVAEGANConfig  # noqa: E402
from kerasgen.data import load_dataset  # noqa: E402
from kerasgen.evaluation import elbo, importance_weighted_log_likelihood  # noqa: E402
from kerasgen.evaluation.sample_quality import SHIPPED_CIFAR10_CLASSIFIER, load_classifier, sample_images  # noqa: E402
from kerasgen.plots import plot_quality_curves, plot_sample_grids, read_history  # noqa: E402
from kerasgen.runs.gan import train_gan  # noqa: E402
from kerasgen.runs.harness import is_run_folder, quality_records_before, truncate_history  # noqa: E402
from kerasgen.runs.plumbing import Backup, ElapsedTime, EpochLog, HistoryCSV, TimeBudget  # noqa: E402
from kerasgen.runs.vae import train_vae  # noqa: E402
from kerasgen.runs.vae_gan import train_vaegan  # noqa: E402

DEFAULT_DATA = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data", "cifar10"))
STAGES = ("vae", "likelihood", "warm", "scratch", "dcgan", "vaegan", "report", "ship")
SHIPPED = os.path.normpath(os.path.join(HERE, "..", "saved_models"))
SEED = 0
# The contenders: (label, run folder under WORK, model file, starts after the VAE).
CONTENDERS = (
    ("GAN from the VAE decoder", "gan_warm", "gan.keras", True),
    ("GAN from scratch", "gan_scratch", "gan.keras", False),
    ("keras.io DCGAN (32x32 port)", "dcgan", None, False),
    ("VAE-GAN from the VAE", "vaegan", "vaegan.keras", True),
)
MANY_EPOCHS = 10_000  # the time budget ends the runs, not --epochs
# train-gan's 10 suits digits; on CIFAR-10 it held D at chance (d_loss 1.38 = 2 ln 2) and the warm
# GAN's FD after one epoch was 414, against 387 with 0.1 and 400 with none (the 128-vector VAE).
# StyleGAN2-ADA uses 0.01 on CIFAR-10 for pixels in [-1, 1], 0.0025 for kerasgen's [0, 1].
R1_WEIGHT = 0.1


@dataclasses.dataclass
class Bench:
    data: str
    work: str
    results: str
    vae_epochs: int
    total_minutes: float
    gan_every: int
    dcgan_every: int
    k: int
    test_images: int
    num_samples: int
    validation_size: int
    r1_weight: float
    beta: float = 1.0
    saved_models: str = SHIPPED

    def path(self, *names):
        return os.path.join(self.work, *names)

    @property
    def vae_dir(self):
        return self.path("vae")

    def vae_seconds(self):
        """The VAE's training wall-clock (history.csv's `seconds`)."""
        history = self.path("vae", "history.csv")
        if not os.path.isfile(os.path.join(self.vae_dir, "vae.keras")):
            sys.exit(f"The VAE has not finished training in {self.vae_dir}: run the 'vae' stage first.")
        return float(read_history(history)["seconds"][-1])

    @property
    def gan_minutes(self):
        """The GAN's share of the budget: what the VAE left of `total_minutes`."""
        minutes = self.total_minutes - self.vae_seconds() / 60
        if minutes <= 0:
            sys.exit(f"The VAE took {self.vae_seconds() / 60:.1f} minutes, the whole budget of {self.total_minutes:g}.")
        return minutes


def resume_flags(folder, model_file):
    """`(done, resume)`: a finished run is skipped, a started one resumed, else a fresh run."""
    if os.path.isfile(os.path.join(folder, model_file)):
        return True, False
    return False, is_run_folder(folder)


def stage_vae(bench):
    done, resume = resume_flags(bench.vae_dir, "vae.keras")
    if done:
        print(f"vae: finished in {bench.vae_dir}")
        return
    config = TrainVAEConfig(
        dataset=bench.data, validation_size=bench.validation_size, epochs=bench.vae_epochs, beta=bench.beta, grid_every=2,
        seed=SEED, out=bench.vae_dir, resume=resume,
    )
    train_vae(config, verbose=2)


def _classifier(image_shape):
    return load_classifier(SHIPPED_CIFAR10_CLASSIFIER, image_shape)


def _test_split(bench, batch_size=100):
    return load_dataset(bench.data, batch_size=batch_size, validation_size=bench.validation_size, seed=SEED)


def stage_likelihood(bench):
    out = os.path.join(bench.results, "vae.json")
    model_file = os.path.join(bench.vae_dir, "vae.keras")
    if os.path.isfile(out) and os.path.getmtime(out) > os.path.getmtime(model_file):
        print(f"likelihood: done, {out}")
        return
    vae = load_run(bench.vae_dir, filenames=("vae.keras",))[0]
    splits = _test_split(bench)
    x, y = (np.concatenate(part) for part in zip(*splits.test.as_numpy_iterator()))
    # A seeded random subset: an image folder's test split comes in class order, so its first
    # 1,000 images are all airplanes (the 4.584 bits/dim first reported here were airplanes only).
    chosen = np.sort(np.random.default_rng(SEED).permutation(len(x))[: bench.test_images])
    subset = tf.data.Dataset.from_tensor_slices((x[chosen], y[chosen])).batch(100)
    likelihood = distributions.get_likelihood(
        vae.likelihood, getattr(vae, "likelihood_scale", "pixel"),
        getattr(vae, "likelihood_components", distributions.DEFAULT_MIXTURE_COMPONENTS),
    )
    dimensions = int(np.prod(vae.image_shape))
    began = time.perf_counter()
    bound = elbo(vae, subset, seed=SEED)
    iwae = importance_weighted_log_likelihood(vae, subset, num_samples=bench.k, seed=SEED)
    iw_seconds = time.perf_counter() - began
    bits = lambda nats: distributions.bits_per_dimension(nats, dimensions, likelihood.discrete)  # noqa: E731
    quality = SampleQuality(_classifier(vae.image_shape), x, num_samples=bench.num_samples, seed=SEED, labels=y)
    quality.set_model(vae)
    record = quality.measure(bench.vae_epochs)
    record["seconds"] = bench.vae_seconds()
    result = {
        "data": bench.data,
        "test_images": int(len(chosen)),
        "test_subset": f"np.random.default_rng({SEED}).permutation({len(x)})[:{bench.test_images}], sorted",
        "test_subset_class_counts": np.bincount(y[chosen]).tolist(),
        "k": bench.k,
        "likelihood": vae.likelihood,
        "bits_per_dimension_of": "the probability of the 8-bit values" if likelihood.discrete else "a density",
        "elbo_nats": float(bound["elbo"]),
        "elbo_bits_per_dimension": bits(-float(bound["elbo"])),
        "importance_weighted_nats": float(iwae["log_likelihood"]),
        "importance_weighted_standard_error_nats": float(iwae["standard_error"]),
        "importance_weighted_bits_per_dimension": bits(-float(iwae["log_likelihood"])),
        "likelihood_seconds": iw_seconds,
        "training_seconds": bench.vae_seconds(),
        "epochs": bench.vae_epochs,
        "beta": float(getattr(vae, "beta", 1.0)),
        "samples_and_reconstructions": record,
    }
    write_json(out, result)
    print(
        f"VAE on {result['test_images']} test images: ELBO {result['elbo_bits_per_dimension']:.3f} bits/dim, "
        f"importance-weighted (K={bench.k}) {result['importance_weighted_bits_per_dimension']:.3f} bits/dim "
        f"({-result['importance_weighted_nats']:.1f} ± {result['importance_weighted_standard_error_nats']:.1f} nats); "
        f"samples FD {record['fd']:.1f}; reconstructions FD {record['reconstruction_fd']:.1f}, "
        f"accuracy {100 * record['reconstruction_accuracy']:.1f}%"
    )


def stage_gan(bench, init):
    folder = bench.path(f"gan_{'warm' if init == 'decoder' else 'scratch'}")
    done, resume = resume_flags(folder, "gan.keras")
    if done:
        print(f"gan ({init}): finished in {folder}")
        return
    minutes = bench.gan_minutes if init == "decoder" else bench.total_minutes
    config = TrainGANConfig(
        vae=bench.vae_dir, dataset=bench.data, init=init, epochs=MANY_EPOCHS, max_minutes=minutes, r1_weight=bench.r1_weight,
        quality_every=bench.gan_every, classifier=SHIPPED_CIFAR10_CLASSIFIER, grid_every=1, seed=SEED, out=folder,
        resume=resume,
    )
    train_gan(config, verbose=2)


def stage_vaegan(bench):
    folder = bench.path("vaegan")
    done, resume = resume_flags(folder, "vaegan.keras")
    if done:
        print(f"vaegan: finished in {folder}")
        return
    config = TrainVAEGANConfig(
        vae=bench.vae_dir, dataset=bench.data, epochs=MANY_EPOCHS, max_minutes=bench.gan_minutes, r1_weight=bench.r1_weight,
        quality_every=bench.gan_every, classifier=SHIPPED_CIFAR10_CLASSIFIER, grid_every=1, seed=SEED, out=folder,
        resume=resume,
    )
    train_vaegan(config, verbose=2)


# keras.io's DCGAN takes 1.37 s a step of 32 images here (its generator's last layer makes 512
# channels at 32x32), so one epoch of 1,547 steps is 35 minutes: too coarse for a 90-minute budget
# that is checked, and measured, at the end of each epoch. Its epochs are cut into rounds of at
# most this many steps (221 for CIFAR-10: 5 minutes), which Keras then counts as its epochs.
DCGAN_ROUND_STEPS = 250


def dcgan_rounds(steps_per_epoch, max_steps=DCGAN_ROUND_STEPS):
    """The fewest rounds that cut an epoch into equal parts of at most `max_steps` steps."""
    return next(d for d in range(1, steps_per_epoch + 1) if steps_per_epoch % d == 0 and steps_per_epoch // d <= max_steps)


def stage_dcgan(bench):
    """The keras.io example's training, as it is, with kerasgen's clock, quality records and checkpoint.

    Keras's epochs here are rounds (`dcgan_rounds`): the budget is checked and sample quality
    measured every `--dcgan-every` rounds, and a killed run resumes after its last round, on the
    same batches as the uninterrupted run.
    """
    folder = bench.path("dcgan")
    if os.path.isfile(os.path.join(folder, "generator.keras")):
        print(f"dcgan: finished in {folder}")
        return
    os.makedirs(folder, exist_ok=True)
    splits = load_dataset(bench.data, batch_size=dcgan_keras_io.BATCH_SIZE, validation_size=bench.validation_size, seed=SEED)
    steps = -(-splits.num_train // dcgan_keras_io.BATCH_SIZE)
    rounds = dcgan_rounds(steps)
    write_json(os.path.join(folder, "rounds.json"), {"rounds_per_epoch": rounds, "steps_per_round": steps // rounds})
    keras.utils.set_random_seed(SEED)
    gan = dcgan_keras_io.build(splits.image_shape)
    gan.optimizer_names = ("d_optimizer", "g_optimizer")  # what the checkpoint saves and restores
    gan.built = True  # its two networks are built; the checkpoint saves the whole model's weights
    gan.d_optimizer.build(gan.discriminator.trainable_variables)  # as the first step would
    gan.g_optimizer.build(gan.generator.trainable_variables)
    backup = Backup(os.path.join(folder, "checkpoint"))
    initial_round = backup.restore(gan)
    state = Backup.read_state(os.path.join(folder, "checkpoint"))
    if initial_round:
        truncate_history(os.path.join(folder, "history.csv"), initial_round)
        print(f"dcgan: resuming after round {initial_round} ({rounds} rounds of {steps // rounds} steps an epoch)")
    quality_path = os.path.join(folder, "quality.json")
    quality = SampleQuality(
        _classifier(splits.image_shape), splits.unbinarized_heldout, every=bench.dcgan_every,
        num_samples=bench.num_samples, seed=SEED, path=quality_path,
        records=quality_records_before(quality_path, initial_round),
    )
    # Each repetition is the next epoch's pass (`train_from`); the skip finds a resumed round's place in it.
    batches = splits.train_from(initial_round // rounds).repeat().skip((initial_round % rounds) * (steps // rounds))
    gan.fit(
        batches,
        epochs=MANY_EPOCHS,
        steps_per_epoch=steps // rounds,
        initial_epoch=initial_round,
        shuffle=False,
        verbose=0,
        callbacks=[
            ElapsedTime(state["logs"].get("seconds", 0.0) if state else 0.0),
            TimeBudget(bench.total_minutes, quality),
            quality,
            HistoryCSV(os.path.join(folder, "history.csv"), append=initial_round > 0),
            SampleGrid(folder, every=1, seed=SEED),
            EpochLog(),
            backup,
        ],
    )
    tmp = os.path.join(folder, "generator.tmp.keras")
    gan.generator.save(tmp)
    os.replace(tmp, os.path.join(folder, "generator.keras"))


def _records(folder):
    """The run's quality records; the DCGAN's rounds are turned back into (fractional) epochs."""
    path = os.path.join(folder, "quality.json")
    if not os.path.isfile(path):
        return None
    records = read_json(path)["records"]
    rounds = os.path.join(folder, "rounds.json")
    if os.path.isfile(rounds):
        per_epoch = read_json(rounds)["rounds_per_epoch"]
        records = [{**r, "round": r["epoch"], "epoch": r["epoch"] / per_epoch} for r in records]
    return records


def _at(records, start_seconds, seconds):
    """The last record measured by `seconds` of wall-clock (the run's start included), or None."""
    before = [r for r in records if start_seconds + r["seconds"] <= seconds + 1e-6]
    return before[-1] if before else None


def _summary(record, start_seconds):
    fractions = record["class_fractions"]
    return {
        "epoch": record["epoch"],
        "wall_clock_minutes": (start_seconds + record["seconds"]) / 60,
        "fd": record["fd"],
        "kid": record["kid"],
        "min_class_share": min(fractions),
        "max_class_share": max(fractions),
        "classes_within_3_to_25_percent": all(0.03 <= f <= 0.25 for f in fractions),
    }


def stage_report(bench):
    vae_json = os.path.join(bench.results, "vae.json")
    vae = read_json(vae_json) if os.path.isfile(vae_json) else None
    vae_seconds = bench.vae_seconds()
    total = 60 * bench.total_minutes
    curves, rows, samples = {}, {}, {}
    if vae is not None:
        rows["VAE (prior samples)"] = {"end": _summary(vae["samples_and_reconstructions"], 0.0), "at_budget": None}
        samples["VAE"] = load_run(bench.vae_dir, filenames=("vae.keras",))[0]
    for label, name, model_file, after_vae in CONTENDERS:
        records = _records(bench.path(name))
        if not records:
            continue
        start = vae_seconds if after_vae else 0.0
        curves[label] = (records, start)
        write_json(os.path.join(bench.results, f"{name}_quality.json"), {"start_seconds": start, "records": records})
        at_budget = _at(records, start, total)
        rows[label] = {
            "end": _summary(records[-1], start),
            "at_budget": _summary(at_budget, start) if at_budget else None,
            "best": _summary(min(records, key=lambda r: r["fd"]), start),
            "finished": os.path.isfile(bench.path(name, model_file or "generator.keras")),
        }
        if model_file and os.path.isfile(bench.path(name, model_file)):
            samples[label] = load_run(bench.path(name), filenames=(model_file,))[0]
        elif os.path.isfile(bench.path(name, "generator.keras")):
            generator = keras.saving.load_model(bench.path(name, "generator.keras"))
            samples[label] = dcgan_keras_io.KerasIODCGAN(dcgan_keras_io.build_discriminator(), generator)
    checks = {}
    warm = rows.get("GAN from the VAE decoder", {}).get("at_budget")
    if warm is not None:
        if vae is not None:
            checks["warm_fd_below_vae_by"] = 1 - warm["fd"] / vae["samples_and_reconstructions"]["fd"]
        for label, key in (("keras.io DCGAN (32x32 port)", "dcgan_fd_over_warm"), ("GAN from scratch", "scratch_fd_over_warm")):
            other = rows.get(label, {}).get("at_budget")
            if other is not None:
                checks[key] = other["fd"] / warm["fd"]
        checks["warm_classes_within_3_to_25_percent"] = warm["classes_within_3_to_25_percent"]
    summary = {
        "data": bench.data,
        "machine": os.uname().nodename + f", {os.cpu_count()} CPU cores, no GPU",
        "budget": {
            "vae_epochs": bench.vae_epochs, "vae_minutes": vae_seconds / 60, "gan_minutes": bench.gan_minutes,
            "total_minutes": total / 60,
        },
        "vae": vae,
        "runs": rows,
        "checks": checks,
    }
    write_json(os.path.join(bench.results, "cifar10.json"), summary)
    if curves:
        title = f"CIFAR-10 (JPEG copy): FD of {bench.num_samples:,} samples vs the test images; VAE {vae_seconds / 60:.0f} min"
        plot_quality_curves(curves, os.path.join(bench.results, "fd_vs_wall_clock.png"), title=title, metric="fd")
    if samples:
        grids = {label: sample_images(model, 64, seed=SEED) for label, model in samples.items()}
        plot_sample_grids(grids, os.path.join(bench.results, "samples.png"), title="CIFAR-10: 64 samples of each model")

    print(f"\nBudget: VAE {bench.vae_epochs} epoch{'' if bench.vae_epochs == 1 else 's'}, {vae_seconds / 60:.1f} min; GAN {bench.gan_minutes:.1f} min; "
          f"total {total / 60:.1f} min (measuring excluded)")
    if vae is not None:
        print(f"VAE: {vae['importance_weighted_bits_per_dimension']:.3f} bits/dim (importance-weighted, K={vae['k']}, "
              f"{vae['test_images']} test images); ELBO {vae['elbo_bits_per_dimension']:.3f}; reconstructions "
              f"{100 * vae['samples_and_reconstructions']['reconstruction_accuracy']:.1f}% classified right")
    print(f"{'model':<30} {'FD at budget':>12} {'FD at end':>10} {'min':>8} {'KID':>7} {'class % min/max':>16}")
    for label, row in rows.items():
        at = row["at_budget"]
        end = row["end"]
        at_fd = f"{at['fd']:.1f}" if at else "-"
        shares = f"{100 * end['min_class_share']:.1f}/{100 * end['max_class_share']:.1f}"
        print(f"{label:<30} {at_fd:>12} {end['fd']:>10.1f} {end['wall_clock_minutes']:>8.1f} {end['kid']:>7.2f} {shares:>16}")
    for name, value in checks.items():
        print(f"  {name}: {value:.3f}" if isinstance(value, float) else f"  {name}: {value}")
    print(f"Wrote {os.path.join(bench.results, 'cifar10.json')}")


def _last_grid(folder):
    grids = sorted(name for name in os.listdir(folder) if name.endswith(".png")) if os.path.isdir(folder) else []
    return os.path.join(folder, grids[-1]) if grids else None


def _ship(folder, name, files, report):
    """FOLDER/NAME from `{target: source}` files and `{file: json}` report, written whole or not at all."""
    target = os.path.join(folder, name)
    with atomic_path(target) as staging:
        os.makedirs(os.path.join(staging, "report"))
        for relative, source in files.items():
            shutil.copyfile(source, os.path.join(staging, relative))
        for relative, content in report.items():
            write_json(os.path.join(staging, "report", relative), content)
    print(f"ship: wrote {target} ({', '.join(sorted(files))}, report/)")


def stage_ship(bench):
    """The VAE and the GAN warm-started from it, as the README shows them."""
    vae_json, summary_json = os.path.join(bench.results, "vae.json"), os.path.join(bench.results, "cifar10.json")
    warm = bench.path("gan_warm")
    needed = [os.path.join(bench.vae_dir, "vae.keras"), vae_json, os.path.join(warm, "gan.keras"), summary_json]
    missing = [path for path in needed if not os.path.isfile(path)]
    if missing:
        sys.exit(f"ship needs the vae, likelihood, warm and report stages first. Missing: {', '.join(missing)}")
    summary = read_json(summary_json)
    vae_files = {name: os.path.join(bench.vae_dir, name) for name in ("vae.keras", "config.json", "history.csv")}
    vae_files["samples.png"] = _last_grid(os.path.join(bench.vae_dir, "samples"))
    vae_files["reconstructions.png"] = _last_grid(os.path.join(bench.vae_dir, "reconstructions"))
    if os.path.isfile(os.path.join(bench.vae_dir, "history.png")):
        vae_files["history.png"] = os.path.join(bench.vae_dir, "history.png")
    _ship(bench.saved_models, "vae-cifar10", {k: v for k, v in vae_files.items() if v}, {
        "metrics.json": {**read_json(vae_json), "budget": summary["budget"], "machine": summary["machine"]},
    })
    gan_files = {name: os.path.join(warm, name) for name in ("gan.keras", "config.json", "history.csv", "quality.json")}
    gan_files["samples.png"] = _last_grid(os.path.join(warm, "samples"))
    for name in ("fd_vs_wall_clock.png", "samples.png"):
        if os.path.isfile(os.path.join(bench.results, name)):
            gan_files["comparison.png" if name == "samples.png" else name] = os.path.join(bench.results, name)
    _ship(bench.saved_models, "gan-cifar10", {k: v for k, v in gan_files.items() if v}, {
        "metrics.json": {
            "run": summary["runs"].get("GAN from the VAE decoder"), "checks": summary["checks"],
            "budget": summary["budget"], "machine": summary["machine"], "data": summary["data"],
            "others": {label: row for label, row in summary["runs"].items() if label != "GAN from the VAE decoder"},
        },
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="the CIFAR-10 image folder (default: ../shared/data/cifar10)")
    parser.add_argument("--work", default="runs/cifar10", help="the runs' folders (not for git)")
    parser.add_argument("--results", default=os.path.join(HERE, "results", "cifar10"))
    parser.add_argument("--stages", nargs="+", default=STAGES, choices=STAGES)
    parser.add_argument("--vae-epochs", type=int, default=12)
    parser.add_argument(
        "--total-minutes", type=float, default=90.0,
        help="the budget of VAE + GAN: the warm GAN and the VAE-GAN get what the VAE leaves; the scratch GAN and the DCGAN all of it",
    )
    parser.add_argument("--gan-every", type=int, default=1, help="kerasgen GANs and the VAE-GAN: measure every N epochs")
    parser.add_argument("--dcgan-every", type=int, default=1, help="the DCGAN: measure every N rounds (see dcgan_rounds)")
    parser.add_argument("--k", type=int, default=100, help="importance samples per test image")
    parser.add_argument("--test-images", type=int, default=1000, help="test images for the likelihood")
    parser.add_argument("--num-samples", type=int, default=5000, help="samples per quality measurement")
    parser.add_argument("--validation-size", type=int, default=500, help="training images the VAE holds out")
    parser.add_argument("--saved-models", default=SHIPPED, help="where the ship stage writes (default: saved_models/)")
    parser.add_argument("--beta", type=float, default=1.0, help="the VAE's KL weight in training (its bounds are always the β = 1 ELBO)")
    parser.add_argument("--r1-weight", type=float, default=R1_WEIGHT, help="the R1 penalty of the kerasgen GANs and the VAE-GAN")
    args = parser.parse_args()
    if not os.path.isdir(args.data):
        sys.exit(f"No CIFAR-10 image folder at {args.data}: pass --data (a folder with train/ and test/).")
    bench = Bench(
        data=os.path.abspath(args.data), work=args.work, results=args.results, vae_epochs=args.vae_epochs,
        total_minutes=args.total_minutes, gan_every=args.gan_every, dcgan_every=args.dcgan_every, k=args.k,
        test_images=args.test_images, num_samples=args.num_samples,
        validation_size=args.validation_size, r1_weight=args.r1_weight, beta=args.beta, saved_models=args.saved_models,
    )
    os.makedirs(bench.results, exist_ok=True)
    stages = {
        "vae": stage_vae, "likelihood": stage_likelihood, "warm": lambda b: stage_gan(b, "decoder"),
        "scratch": lambda b: stage_gan(b, "scratch"), "dcgan": stage_dcgan, "vaegan": stage_vaegan, "report": stage_report,
        "ship": stage_ship,
    }
    for name in STAGES:
        if name in args.stages:
            print(f"\n=== {name} ===", flush=True)
            stages[name](bench)


if __name__ == "__main__":
    main()
