"""The apps run as a user runs them, with fewer epochs (each reads its epoch counts from the environment)."""

import os
import subprocess
import sys

import pytest

APPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "apps")


def _run(app, tmp_path, **epochs):
    env = {**os.environ, **{k: str(v) for k, v in epochs.items()}, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, os.path.join(APPS, app)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_train_gan_app_trains_saves_and_exports(tmp_path):
    out = _run("train_gan.py", tmp_path, EPOCHS=1, STEPS_PER_EPOCH=5)
    run = tmp_path / "runs" / "app_gan"
    for name in ("gan.keras", "saved_model/saved_model.pb", "samples.png", "history.csv", "samples/epoch_000.png"):
        assert (run / name).exists(), name
    header, row = (run / "history.csv").read_text().splitlines()[:2]
    assert "fd" in header.split(",") and "kid" in header.split(",")  # SampleQuality measured the last epoch
    assert "Wrote runs/app_gan/gan.keras" in out


@pytest.mark.slow
def test_vae_to_gan_app_reports_what_the_gan_changed(tmp_path):
    out = _run("vae_to_gan.py", tmp_path, VAE_EPOCHS=1, GAN_EPOCHS=1, STEPS_PER_EPOCH=5)
    assert "GAN epoch   0: Fréchet distance" in out and "% lower" in out
    assert (tmp_path / "runs" / "app_vae_to_gan" / "comparison.png").exists()


@pytest.mark.slow
def test_train_vaegan_and_aae_apps_train_save_and_export(tmp_path):
    out = _run("train_vaegan.py", tmp_path, EPOCHS=1, STEPS_PER_EPOCH=5)
    run = tmp_path / "runs" / "app_vaegan"
    for name in ("vaegan.keras", "saved_model/saved_model.pb", "samples.png", "reconstructions/epoch_001.png"):
        assert (run / name).exists(), name
    assert "fd" in (run / "history.csv").read_text().splitlines()[0].split(",")
    out = _run("train_aae.py", tmp_path, EPOCHS=1, STEPS_PER_EPOCH=5)
    assert "Aggregated posterior vs prior, MMD²:" in out
    assert (tmp_path / "runs" / "app_aae" / "aae.keras").exists()
