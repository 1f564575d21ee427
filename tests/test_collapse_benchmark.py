"""benchmarks/collapse.py end to end on tiny data: two variants, one epoch, every number finite."""

import importlib.util
import json
import math
import os

import numpy as np
import pytest


HERE = os.path.dirname(os.path.abspath(__file__))


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("collapse_benchmark", os.path.join(HERE, "..", "benchmarks", "collapse.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bars(count, seed):
    """Seeded 16x16 binary images of vertical bars, as uint8 0/255."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 16, 16), dtype=np.uint8)
    for i in range(count):
        start = rng.integers(0, 12)
        images[i, :, start : start + 4] = 255
    return images


@pytest.mark.slow
def test_collapse_benchmark_end_to_end(tmp_path):
    collapse = _load_benchmark()
    source = tmp_path / "bars.npz"
    np.savez(source, x_train=_bars(48, 0), x_test=_bars(16, 1))
    out = tmp_path / "out"
    variants = ["vae", "autoencoder"]
    argv = [
        "--dataset", str(source), "--validation-size", "16", "--epochs", "1", "--batch-size", "16",
        "--latent-dim", "2", "--pixelcnn-layers", "1", "--pixelcnn-filters", "8", "--k", "4",
        "--eval-images", "8", "--num-samples", "0", "--out", str(out), "--variants", *variants,
    ]
    # Two variants at once, each in its own process; the parent writes the summary.
    collapse.main([*argv, "--jobs", "2"])
    for key in variants:
        assert "Data: " in (out / f"{key}.log").read_text()

    summary = json.loads((out / "collapse.json").read_text())
    rows = summary["variants"]
    for key in ("vae", "autoencoder"):
        row = rows[key]
        assert row["outcome"] == "trained"
        for name in ("active_units", "kl", "mutual_information", "elbo", "reconstruction", "log_likelihood",
                     "aggregated_posterior_mmd", "aggregated_posterior_kl", "training_seconds"):
            assert math.isfinite(row[name]), (key, name, row[name])
        assert 0 <= row["active_units"] <= row["latent_dim"] == 2
        assert row["k"] == 4 and row["eval_images"] == 8 and row["epochs"] == 1
        assert row["samples"] == {"skipped": "--num-samples 0"}
        # The IWAE estimate with K >= 1 is no lower than the one-sample ELBO on average (a few nats of noise allowed).
        assert row["log_likelihood"] > row["elbo"] - 5.0

    # The same budget: the two runs' configs differ only in beta and their folder.
    configs = {key: json.loads((out / key / "config.json").read_text()) for key in ("vae", "autoencoder")}
    differing = {name for name in configs["vae"] if name != "environment" and configs["vae"][name] != configs["autoencoder"].get(name)}
    assert differing == {"beta", "out"}
    assert configs["vae"]["decoder"] == "pixelcnn" and configs["autoencoder"]["beta"] == 0.0
    assert configs["vae"]["pixelcnn_conditioning"] == "global"

    table = (out / "collapse.md").read_text()
    for label in ("plain VAE", "β = 0 autoencoder"):
        assert sum(line.startswith(f"| {label} |") for line in table.splitlines()) == 1
    assert "He et al. (2019)" in table
    assert (out / "collapse.png").stat().st_size > 0

    # Resumable: a second call (in one process) trains nothing and reuses the measurements.
    model_time = os.path.getmtime(out / "vae" / "vae.keras")
    again = collapse.main(argv)
    assert os.path.getmtime(out / "vae" / "vae.keras") == model_time
    assert again["variants"]["vae"]["log_likelihood"] == rows["vae"]["log_likelihood"]
    # A kept run of another budget is refused, not mixed into the table.
    with pytest.raises(ValueError, match="--latent-dim 2 \\(was\\) vs --latent-dim 3"):
        collapse.main([*argv, "--latent-dim", "3"])


def test_the_table_states_each_aggressive_variants_phase_and_its_cost_against_the_plain_vae(tmp_path):
    collapse = _load_benchmark()
    folder = tmp_path / "aggressive"
    folder.mkdir()
    # Three epochs, the first two in the aggressive phase (as the run's history.csv records it).
    (folder / "history.csv").write_text("epoch,aggressive,seconds\n0,1.0,100\n1,1.0,200\n2,0.0,240\n")
    results = {
        "vae": {"label": "plain VAE", "settings": {}, "folder": str(tmp_path / "vae"), "outcome": "trained",
                "training_seconds": 60.0, "epochs": 3},
        "aggressive": {"label": "aggressive", "settings": {"aggressive": True, "aggressive_max_steps": 20},
                       "folder": str(folder), "outcome": "trained", "training_seconds": 240.0, "epochs": 3},
    }
    assert collapse.aggressive_cost(results) == [
        "", "- aggressive: 2 of 3 epochs in the aggressive phase (at most 20 encoder steps per batch), "
        "4.0× the plain VAE's training time."
    ]
    del results["vae"]  # without the plain VAE there is no ratio to state
    assert collapse.aggressive_cost(results)[1].endswith("(at most 20 encoder steps per batch).")
