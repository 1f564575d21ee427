import csv
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasgen.callbacks import DivergenceGuard
from kerasgen.cli import main
from kerasgen.images import image_grid

# Grey noise is 8-bit data (train-vae would choose the logistic mixture); these runs test the Bernoulli path.
TINY_VAE = ["--likelihood", "bernoulli", "--num-filters", "8", "16", "--hidden-dim", "32", "--latent-dim", "2", "--batch-size", "16", "--validation-size", "16"]


def _grey_npz(path, size):
    rng = np.random.default_rng(0)
    x = (rng.uniform(size=(64, size, size)) * 255).astype(np.uint8)
    np.savez(path, x_train=x, y_train=np.arange(64) % 4)
    return str(path)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    """A one-epoch VAE on 64 grey 16x16 images, trained through the CLI: `(run folder, npz path)`."""
    folder = tmp_path_factory.mktemp("vae")
    npz = _grey_npz(folder / "tiny.npz", 16)
    run = folder / "run"
    assert main(["train-vae", "--dataset", npz, "--epochs", "1", "--grid-every", "1", "--out", str(run), *TINY_VAE]) == 0
    return run, npz


def _read_png(path):
    return tf.io.decode_png(tf.io.read_file(str(path))).numpy()


def _vae_grid(run, seed=0):
    """The grid SampleGrid draws for the VAE: its decode of the fixed z."""
    vae = keras.saving.load_model(run / "vae.keras")
    z = np.random.default_rng(seed).standard_normal((64, vae.latent_dim)).astype(np.float32)
    return image_grid(keras.ops.convert_to_numpy(vae.decode(z)))


@pytest.mark.slow
def test_train_gan_starts_from_the_decoder_writes_every_artifact_and_resumes(tmp_path, vae_run):
    run, npz = vae_run
    out = tmp_path / "gan"
    classifier = tmp_path / "classifier"
    assert main(["train-classifier", "--dataset", npz, "--validation-size", "16", "--num-filters", "4", "8",
                 "--feature-dim", "8", "--epochs", "1", "--out", str(classifier)]) == 0
    quality = ["--quality-every", "2", "--classifier", str(classifier)]
    args = ["train-gan", "--vae", str(run), "--epochs", "2", "--grid-every", "1", "--batch-size", "16", *quality, "--out", str(out)]
    assert main(args) == 0
    for name in ("gan.keras", "config.json", "history.csv", "saved_model/saved_model.pb", "checkpoint/state.json"):
        assert (out / name).exists(), name
    assert sorted(os.listdir(out / "samples")) == ["epoch_000.png", "epoch_001.png", "epoch_002.png"]
    assert not (out / "reconstructions").exists()
    assert os.listdir(out / "logs")
    # Warm start: before any GAN step the generator draws exactly the VAE's samples for the same z.
    np.testing.assert_array_equal(_read_png(out / "samples" / "epoch_000.png"), _vae_grid(run))
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"] == npz and config["init"] == "decoder" and config["image_shape"] == [16, 16, 1]
    gan = keras.saving.load_model(out / "gan.keras")
    assert getattr(gan, "optimizer", None) is None and gan.image_shape == (16, 16, 1)

    # --resume continues the epoch count from the checkpoint, and the quality measurements.
    assert main([*args[:3], "--epochs", "3", "--batch-size", "16", *quality, "--resume", "--out", str(out)]) == 0
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert {"d_loss", "g_loss", "r1", "d_real", "d_fake", "seconds", "fd", "kid"} <= set(rows[0])
    assert [r["fd"] != "NA" for r in rows] == [True, True, True]  # first epoch, every 2nd, the resumed first
    records = json.loads((out / "quality.json").read_text())["records"]
    assert [r["epoch"] for r in records] == [0, 1, 2, 3]
    assert [float(r["fd"]) for r in rows] == [r["fd"] for r in records[1:]]
    assert json.loads((out / "checkpoint" / "state.json").read_text())["epoch"] == 3

    # `kerasgen evaluate` on a GAN run: sample-quality metrics only.
    report = tmp_path / "gan_report"
    evaluate = ["evaluate", "--model", str(out), "--num-samples", "40", "--report", str(report)]
    assert main([*evaluate, "--classifier", str(classifier)]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert "elbo" not in metrics and metrics["dataset"]["validation_size"] == 16
    assert metrics["samples"]["classifier"]["origin"] == "given" and metrics["samples"]["frechet_distance"] > 0
    # A --classifier that is not a classifier is an error, not an empty report.
    assert main([*evaluate, "--classifier", str(run / "vae.keras")]) == 2
    assert (report / "samples.png").exists() and (report / "training_progress.png").exists()

    # `kerasgen sample` takes a GAN run folder as it takes a VAE's; --vae refuses one.
    assert main(["sample", "--model", str(out), "--n", "4", "--out", str(tmp_path / "gan_grid.png")]) == 0
    assert (tmp_path / "gan_grid.png").exists()
    assert main(["train-gan", "--vae", str(out), "--out", str(tmp_path / "again")]) == 2


@pytest.mark.slow
def test_train_gan_from_scratch_does_not_start_at_the_vae(tmp_path, vae_run):
    run, npz = vae_run
    out = tmp_path / "scratch"
    args = ["train-gan", "--vae", str(run), "--dataset", npz, "--init", "scratch", "--epochs", "1", "--batch-size", "16"]
    assert main([*args, "--out", str(out)]) == 0
    assert (out / "saved_model" / "saved_model.pb").exists()
    assert not np.array_equal(_read_png(out / "samples" / "epoch_000.png"), _vae_grid(run))


@pytest.mark.slow
def test_a_dataset_of_another_shape_is_one_clear_line(tmp_path, capsys, vae_run):
    run, _ = vae_run
    other = _grey_npz(tmp_path / "small.npz", 8)
    assert main(["train-gan", "--vae", str(run), "--dataset", other, "--out", str(tmp_path / "gan")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert "(16, 16, 1)" in error and "(8, 8, 1)" in error and other in error
    assert not (tmp_path / "gan").exists()


@pytest.mark.slow
def test_quality_every_with_a_classifier_of_other_channels_is_one_clear_line(tmp_path, capsys, vae_run):
    # Another height and width is resized to the classifier's input; another channel count cannot be.
    run, _ = vae_run
    out = tmp_path / "gan"
    from kerasgen.evaluation.sample_quality import SHIPPED_CIFAR10_CLASSIFIER

    args = ["train-gan", "--vae", str(run), "--quality-every", "1", "--classifier", SHIPPED_CIFAR10_CLASSIFIER, "--out", str(out)]
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "(32, 32, 3)" in error and "(16, 16, 1)" in error
    assert not out.exists()  # checked before anything is written


def test_a_missing_vae_is_one_clear_line(tmp_path, capsys):
    assert main(["train-gan", "--vae", str(tmp_path / "nothing"), "--out", str(tmp_path / "gan")]) == 2
    assert "Received: --vae" in capsys.readouterr().err


class _Model:
    stop_training = False


def _guard(**kwargs):
    guard = DivergenceGuard(**kwargs)
    guard.set_model(_Model())
    guard.on_train_begin()
    return guard


LOST = {"d_loss": 0.01, "g_loss": 7.0, "d_real": 0.99, "d_fake": 0.001}
HEALTHY = {"d_loss": 1.2, "g_loss": 0.9, "d_real": 0.6, "d_fake": 0.4}


def test_divergence_guard_stops_after_exactly_patience_lost_epochs(capsys):
    guard = _guard(patience=3)
    for epoch in range(2):
        guard.on_epoch_end(epoch, dict(LOST))
        assert not guard.model.stop_training and guard.stopped_reason is None
    guard.on_epoch_end(2, dict(LOST))
    assert guard.model.stop_training
    assert "discriminator has won for 3 epochs" in guard.stopped_reason
    assert guard.stopped_reason in capsys.readouterr().out


def test_divergence_guard_resets_on_a_good_epoch():
    guard = _guard(patience=2)
    for epoch, logs in enumerate([LOST, HEALTHY, LOST, {**LOST, "g_loss": 1.0}, LOST]):
        guard.on_epoch_end(epoch, dict(logs))
    # A low d_fake with a moderate g_loss is not a lost epoch either.
    assert not guard.model.stop_training and guard.stopped_reason is None and guard.lost_epochs == 1
    guard.on_epoch_end(5, dict(LOST))
    assert guard.model.stop_training


def test_divergence_guard_stops_at_once_on_nan():
    guard = _guard(patience=5)
    guard.on_epoch_end(0, {**HEALTHY, "g_loss": float("nan")})
    assert guard.model.stop_training and "g_loss" in guard.stopped_reason and "NaN" in guard.stopped_reason
    with pytest.raises(ValueError, match="patience=0"):
        DivergenceGuard(patience=0)


def test_flags_parse_into_the_gan_config():
    from kerasgen.cli import build_parser
    from kerasgen.config import TrainGANConfig, from_arguments

    parser = build_parser()
    config = from_arguments(
        TrainGANConfig,
        parser.parse_args(["train-gan", "--vae", "runs/vae", "--init", "scratch", "--d-learning-rate", "1e-4",
                           "--r1-weight", "0", "--d-steps", "2", "--ema-decay", "0", "--resume"]),
    )
    assert config.vae == "runs/vae" and config.init == "scratch" and config.d_learning_rate == 1e-4
    assert config.r1_weight == 0.0 and config.d_steps == 2 and config.ema_decay == 0.0 and config.resume
    defaults = from_arguments(TrainGANConfig, parser.parse_args(["train-gan", "--vae", "v"]))
    assert defaults == TrainGANConfig(vae="v")
    assert defaults.dataset is None and defaults.epochs == 30 and defaults.batch_size == 64 and defaults.beta_1 == 0.5
    with pytest.raises(SystemExit):
        parser.parse_args(["train-gan"])  # --vae is required


@pytest.mark.slow
def test_a_diverged_run_exports_nothing(tmp_path, capsys, monkeypatch, vae_run):
    import functools

    from kerasgen.runs import gan as gan_run

    # Thresholds every epoch crosses: the guard sees D winning at once.
    monkeypatch.setattr(
        gan_run, "DivergenceGuard", functools.partial(DivergenceGuard, patience=1, d_fake_floor=2.0, g_loss_ceiling=-1.0)
    )
    run, _ = vae_run
    out = tmp_path / "gan"
    assert main(["train-gan", "--vae", str(run), "--epochs", "3", "--batch-size", "16", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "diverged" in error and "discriminator has won" in error and "not saved" in error
    assert not (out / "gan.keras").exists() and not (out / "saved_model").exists()
    assert json.loads((out / "checkpoint" / "state.json").read_text())["epoch"] == 1
