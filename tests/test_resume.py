"""A run killed at any moment and resumed ends exactly where the uninterrupted run ends."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from kerasgen.cli import main

TINY_VAE = ["--num-filters", "4", "8", "--hidden-dim", "16", "--latent-dim", "2", "--batch-size", "8",
            "--validation-size", "16", "--grid-every", "1"]


@pytest.fixture
def grey_npz(tmp_path):
    """400 grey 16x16 images with labels: 48 steps an epoch, long enough to be killed inside one."""
    rng = np.random.default_rng(0)
    x = (rng.uniform(size=(400, 16, 16)) * 255).astype(np.uint8)
    path = tmp_path / "grey.npz"
    np.savez(path, x_train=x, y_train=np.arange(400) % 4)
    return str(path)


def _kill_during_epoch(args, out, epoch, log):
    """Runs `kerasgen ARGS` in a subprocess, its output redirected to the file `log`, and SIGKILLs
    it once `epoch` epochs are checkpointed."""
    with open(log, "w") as stream:
        process = subprocess.Popen([sys.executable, "-m", "kerasgen", *args], stdout=stream, stderr=stream)
    state = os.path.join(out, "checkpoint", "state.json")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if os.path.exists(state) and json.load(open(state))["epoch"] >= epoch:
            time.sleep(0.3)  # into the next epoch
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    return json.load(open(state))["epoch"]


def _history(out):
    with open(os.path.join(out, "history.csv")) as f:
        return list(csv.DictReader(f))


def _weights(path):
    return keras.saving.load_model(path).get_weights()


@pytest.mark.slow
def test_a_vae_killed_mid_epoch_resumes_to_the_uninterrupted_result(tmp_path, grey_npz):
    args = ["train-vae", "--dataset", grey_npz, "--epochs", "4", *TINY_VAE]
    straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
    assert main([*args, "--out", straight]) == 0

    log = tmp_path / "log.txt"
    epochs_done = _kill_during_epoch([*args, "--out", killed], killed, epoch=2, log=log)
    assert 2 <= epochs_done < 4
    # Redirected to a file, the log is plain lines: one per epoch, no progress-bar control codes,
    # no TensorFlow start-up noise.
    text = log.read_text()
    assert not any(code in text for code in ("\r", "\x1b", "\x08")), repr(text[:500])
    assert [line.split()[1] for line in text.splitlines() if line.startswith("epoch ")][:2] == ["1/4", "2/4"]
    assert "absl" not in text and "cuda" not in text.lower()
    assert main([*args, "--out", killed]) == 2  # an existing run is not overwritten silently
    assert main([*args, "--out", killed, "--resume"]) == 0

    # Bit for bit: data order, binarization noise, reparameterization noise, learning rate.
    for a, b in zip(_weights(os.path.join(straight, "vae.keras")), _weights(os.path.join(killed, "vae.keras"))):
        np.testing.assert_array_equal(a, b)
    history_straight, history_killed = _history(straight), _history(killed)
    assert [row["epoch"] for row in history_killed] == ["0", "1", "2", "3"]
    for row_straight, row_killed in zip(history_straight, history_killed):
        for name in ("loss", "val_elbo", "val_kl"):
            assert row_straight[name] == row_killed[name], (name, row_straight, row_killed)
    # The clock continues; the grids of every epoch are there.
    seconds = [float(row["seconds"]) for row in history_killed]
    assert seconds == sorted(seconds)
    assert sorted(os.listdir(os.path.join(killed, "samples"))) == [f"epoch_{e:03d}.png" for e in range(5)]


@pytest.mark.slow
def test_resume_refuses_a_changed_model_or_data_flag(tmp_path, grey_npz, capsys):
    out = str(tmp_path / "run")
    args = ["train-vae", "--dataset", grey_npz, *TINY_VAE, "--out", out]
    assert main([*args, "--epochs", "1"]) == 0
    changed = [arg if arg != "2" else "4" for arg in args]  # --latent-dim 4
    assert main([*changed, "--epochs", "2", "--resume"]) == 2
    error = capsys.readouterr().err
    assert "--latent-dim 2 (was) vs --latent-dim 4" in error and error.count("\n") == 1
    assert json.load(open(os.path.join(out, "config.json")))["latent_dim"] == 2
    # Training-length flags may change.
    assert main([*args, "--epochs", "2", "--resume"]) == 0
    assert main([*args, "--epochs", "2", "--overwrite"]) == 0
    assert len(_history(out)) == 2


@pytest.mark.slow
def test_a_gan_killed_mid_epoch_resumes_to_the_uninterrupted_result(tmp_path, grey_npz):
    vae = str(tmp_path / "vae")
    assert main(["train-vae", "--dataset", grey_npz, "--epochs", "1", *TINY_VAE, "--out", vae]) == 0
    args = ["train-gan", "--vae", vae, "--epochs", "3", "--batch-size", "8", "--grid-every", "1"]
    straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
    assert main([*args, "--out", straight]) == 0
    _kill_during_epoch([*args, "--out", killed], killed, epoch=1, log=tmp_path / "log.txt")
    assert main([*args, "--out", killed, "--resume"]) == 0
    # The generator, its weight average and the discriminator all continue exactly.
    for a, b in zip(_weights(os.path.join(straight, "gan.keras")), _weights(os.path.join(killed, "gan.keras"))):
        np.testing.assert_array_equal(a, b)
