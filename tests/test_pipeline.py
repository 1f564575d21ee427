import json

import numpy as np
import pytest

from kerasgen.cli import main


def _digits_npz(path, count=640):
    """28x28 grey images of bars at ten positions, labelled by position: structure a VAE can learn."""
    rng = np.random.default_rng(0)
    labels = np.arange(count) % 10
    x = np.zeros((count, 28, 28), np.uint8)
    for i, label in enumerate(labels):
        column = 3 + 2 * label + rng.integers(0, 2)
        x[i, 4:24, column : column + 3] = 255
    np.savez(path, x_train=x, y_train=labels)
    return str(path)


@pytest.mark.slow
def test_pipeline_trains_both_evaluates_both_and_compares(tmp_path, capsys):
    npz = _digits_npz(tmp_path / "bars.npz")
    out = tmp_path / "pipeline"
    # Bars are not digits: the pipeline needs a classifier of their own (test_domain.py shows it
    # trains one when none is given; a small one is given here, to keep the test short).
    classifier = tmp_path / "classifier"
    assert main(["train-classifier", "--dataset", npz, "--epochs", "3", "--num-filters", "4", "8", "--feature-dim", "16",
                 "--out", str(classifier)]) == 0
    # Under MirroredStrategy over the 2 logical CPU devices of conftest.py.
    # Small networks: what is tested is the pipeline's plumbing, not what the digit networks learn.
    # 96 held-out images: validation, the importance-weighted bound and the Fréchet distances all use them.
    args = ["pipeline", "--dataset", npz, "--vae-epochs", "1", "--gan-epochs", "1", "--k", "4", "--num-samples", "500",
            "--num-filters", "8", "16", "--hidden-dim", "32", "--validation-size", "96", "--classifier", str(classifier),
            "--strategy", "mirrored", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    for stage in ("[1/5] Training the VAE", "[2/5] Training the GAN", "[3/5] Choosing the classifier",
                  "[4/5] Evaluating the VAE", "[5/5] Evaluating the GAN"):
        assert stage in printed
    for name in ("vae/vae.keras", "gan/gan.keras", "gan/saved_model/saved_model.pb", "vae/report/metrics.json",
                 "gan/report/metrics.json", "comparison.png", "summary.json"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    # The given classifier scored the samples, and the summary says how well it knows the data.
    chosen = summary["classifier"]
    assert chosen["origin"] == "given" and chosen["path"] == str(classifier) and chosen["heldout_accuracy"] is not None
    assert "given classifier" in printed
    assert json.loads((out / "gan" / "report" / "metrics.json").read_text())["samples"]["num_generated"] == 500
    gan_report = json.loads((out / "gan" / "report" / "metrics.json").read_text())
    assert summary["gan"]["frechet_distance"] == gan_report["samples"]["frechet_distance"]
    assert summary["gan_fd_reduction"] == pytest.approx(
        1 - summary["gan"]["frechet_distance"] / summary["vae"]["frechet_distance"]
    )
    assert summary["vae"]["importance_samples"] == 4 and summary["vae"]["log_likelihood"] < 0
    assert json.loads((out / "gan" / "config.json").read_text())["vae"] == str(out / "vae")
    vae_run = json.loads((out / "vae" / "config.json").read_text())
    # Bars are near-binary grey: the digits' choice, with the pipeline's 8-d latent.
    assert (vae_run["latent_dim"], vae_run["likelihood"], vae_run["binarize"], vae_run["architecture"]) == (
        8, "bernoulli", "dynamic", "conv"
    )
    assert "Chosen for near-binary grey images" in printed
    assert vae_run["strategy"] == "mirrored" and vae_run["environment"]["replicas"] == 2
    assert vae_run["validation_size"] == 96 and "Training on 544 images, validating on 96" in printed
    assert str(out / "comparison.png") in printed and "lower)" in printed

    # --resume after everything finished: both trainings are skipped, the evaluation runs again.
    modified = (out / "vae" / "vae.keras").stat().st_mtime_ns, (out / "gan" / "gan.keras").stat().st_mtime_ns
    assert main([*args, "--resume"]) == 0
    assert capsys.readouterr().out.count("exists: skipped.") == 2
    assert modified == ((out / "vae" / "vae.keras").stat().st_mtime_ns, (out / "gan" / "gan.keras").stat().st_mtime_ns)
    assert json.loads((out / "summary.json").read_text())["gan"] == summary["gan"]
    # Without --resume or --overwrite an existing pipeline folder is refused.
    assert main(args) == 2


def test_pipeline_flags_parse_into_its_config():
    from kerasgen.cli import build_parser
    from kerasgen.config import PipelineConfig, from_arguments

    args = ["pipeline", "--gan-epochs", "7", "--latent-dim", "4", "--validation-size", "0.2", "--out", "x"]
    config = from_arguments(PipelineConfig, build_parser().parse_args(args))
    assert config == PipelineConfig(gan_epochs=7, latent_dim=4, validation_size=0.2, out="x")


def _colour_npz(path, count=640):
    """32x32 colour images, two classes of smooth coloured gradients with noise: 8-bit photographs in miniature."""
    rng = np.random.default_rng(1)
    labels = np.arange(count) % 2
    ramp = np.linspace(0, 1, 32)
    x = np.empty((count, 32, 32, 3), np.float64)
    for i, label in enumerate(labels):
        colour = np.array([0.9, 0.3, 0.1]) if label else np.array([0.1, 0.4, 0.9])
        x[i] = ramp[:, None, None] * colour + 0.1 * rng.random((32, 32, 3))
    np.savez(path, x_train=np.clip(255 * x, 0, 255).astype(np.uint8), y_train=labels)
    return str(path)


@pytest.mark.slow
def test_a_colour_pipeline_chooses_the_8_bit_likelihood_and_runs_end_to_end(tmp_path, capsys):
    npz = _colour_npz(tmp_path / "colour.npz")
    out = tmp_path / "pipeline"
    classifier = tmp_path / "classifier"
    assert main(["train-classifier", "--dataset", npz, "--epochs", "2", "--num-filters", "4", "8", "--feature-dim", "16",
                 "--out", str(classifier)]) == 0
    # No likelihood, binarization or architecture flag: the pipeline chooses them for colour.
    args = ["pipeline", "--dataset", npz, "--vae-epochs", "1", "--gan-epochs", "1", "--k", "4", "--num-samples", "64",
            "--num-filters", "8", "16", "--hidden-dim", "32", "--latent-dim", "4", "--validation-size", "64",
            "--classifier", str(classifier), "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "Chosen for 8-bit colour images" in printed and "likelihood logistic_mixture" in printed
    assert "kept as given: --num-filters, --hidden-dim, --latent-dim" in printed
    vae_run = json.loads((out / "vae" / "config.json").read_text())
    assert (vae_run["likelihood"], vae_run["binarize"], vae_run["architecture"]) == ("logistic_mixture", "none", "resnet")
    assert json.loads((out / "config.json").read_text())["vae"]["likelihood"] == "logistic_mixture"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data_choice"]["kind"] == "8-bit colour"
    numbers = [summary["vae"]["elbo"], summary["vae"]["log_likelihood"], summary["vae"]["frechet_distance"],
               summary["gan"]["frechet_distance"]]
    assert np.isfinite(numbers).all(), numbers
    metrics = json.loads((out / "vae" / "report" / "metrics.json").read_text())
    assert np.isfinite(metrics["importance_weighted"]["bits_per_dimension"])
