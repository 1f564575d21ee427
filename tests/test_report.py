import json
import os
import shutil
import types

import numpy as np
import pytest

from kerasgen.cli import main
from kerasgen.evaluation.sample_quality import SHIPPED_CLASSIFIER
from kerasgen.models import GAN

# Grey noise is 8-bit data (train-vae would choose the logistic mixture); these runs test the Bernoulli path.
TINY = ["--likelihood", "bernoulli", "--num-filters", "8", "16", "--hidden-dim", "32", "--latent-dim", "2", "--batch-size", "16"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A one-epoch VAE on 64 labelled 28x28 digit-like images, trained by the CLI."""
    folder = tmp_path_factory.mktemp("report")
    rng = np.random.default_rng(0)
    x = (rng.uniform(size=(64, 28, 28)) ** 3 * 255).astype(np.uint8)
    np.savez(folder / "digits.npz", x_train=x, y_train=np.arange(64) % 10)
    run = folder / "run"
    args = ["train-vae", "--dataset", str(folder / "digits.npz"), "--validation-size", "16", "--epochs", "1"]
    assert main([*args, "--out", str(run), *TINY]) == 0
    return folder, run


@pytest.mark.slow
def test_evaluate_writes_metrics_with_settings_and_plots(trained_run, capsys):
    folder, run = trained_run
    report = folder / "evaluation"
    args = ["evaluate", "--model", str(run), "--k", "8", "--chunk-size", "3", "--num-samples", "40", "--report", str(report)]
    assert main([*args, "--classifier", SHIPPED_CLASSIFIER]) == 0
    table = capsys.readouterr().out
    assert "log p(x)" in table and "Fréchet distance" in table
    assert "reconstruction accuracy" in table and "reconstruction FD" in table and "aggregated-posterior MMD" in table

    metrics = json.loads((report / "metrics.json").read_text())
    # The held-out images are the run's own validation split, binarized as in training.
    assert metrics["dataset"]["heldout_split"] == "validation" and metrics["dataset"]["heldout_images"] == 16
    assert metrics["dataset"]["binarize"] == "dynamic" and metrics["dataset"]["validation_size"] == 16
    assert metrics["importance_weighted"]["num_samples"] == 8 and metrics["importance_weighted"]["num_images"] == 16
    # A tighter bound: the importance-weighted estimate is above the ELBO (by far more than noise here).
    assert metrics["importance_weighted"]["log_likelihood"] > metrics["elbo"]["elbo"]
    samples = metrics["samples"]
    # The given classifier, with its accuracy on these (noise) images: chance level, and the report says so.
    assert samples["classifier"]["origin"] == "given" and samples["classifier"]["heldout_accuracy"] < 0.5
    assert samples["num_generated"] == 40 and "% right on 16 held-out images" in table
    # An untrained model's samples are far from the data; two sets of real images are close.
    assert samples["frechet_distance"] > 3 * samples["frechet_distance_real_vs_real"]
    # The floor at the model's sizes: 16 held-out images against 40 of the 48 training images.
    assert samples["num_real_vs_real_reference"] == 40 and "16 held-out vs 40 training images, the model's sizes" in table
    assert sum(samples["predicted_class_fractions"]) == pytest.approx(1.0)
    # Reconstructions of the same 16 grey images, by the same classifier: its accuracy on the
    # originals is the one the classifier choice measured.
    reconstruction = metrics["reconstruction"]
    assert set(reconstruction) == {"accuracy", "heldout_accuracy", "frechet_distance", "mean_squared_error", "num_images"}
    assert reconstruction["num_images"] == 16 and 0 <= reconstruction["accuracy"] <= 1
    assert reconstruction["heldout_accuracy"] == pytest.approx(samples["classifier"]["heldout_accuracy"])
    assert reconstruction["frechet_distance"] > 0 and 0 < reconstruction["mean_squared_error"] < 1
    aggregated = metrics["aggregated_posterior"]
    assert aggregated["num_codes"] == 16 and aggregated["kernel"] == "imq" and np.isfinite(aggregated["mmd"])
    assert aggregated["kernel_scales"] == pytest.approx([0.4, 0.8, 2.0, 4.0, 8.0, 20.0, 40.0])  # latent_dim 2
    for name in ("samples.png", "training_curves.png", "training_progress.png", "latent_scatter.png",
                 "interpolations.png", "latent_manifold.png", "kl_per_dimension.png"):
        assert (report / name).stat().st_size > 1000, name


@pytest.mark.slow
def test_evaluate_gives_a_gan_no_encoder_metrics(trained_run, capsys):
    folder, run = trained_run
    # A GAN from the VAE's decoder, saved as a GAN run on the same data: no training needed.
    gan_run = folder / "gan_run"
    gan_run.mkdir()
    GAN.from_vae(str(run)).save(gan_run / "gan.keras")
    shutil.copy(run / "config.json", gan_run / "config.json")
    report = folder / "gan_evaluation"
    args = ["evaluate", "--model", str(gan_run), "--num-samples", "40", "--report", str(report)]
    assert main([*args, "--classifier", SHIPPED_CLASSIFIER]) == 0
    table = capsys.readouterr().out
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["samples"]["num_generated"] == 40 and "Fréchet distance" in table
    for key in ("elbo", "importance_weighted", "posterior", "reconstruction", "aggregated_posterior"):
        assert key not in metrics, key
    assert "reconstruction" not in table and "MMD" not in table and "log p(x)" not in table


@pytest.mark.slow
def test_evaluate_refuses_data_of_another_shape(trained_run, capsys):
    folder, run = trained_run
    np.savez(folder / "small.npz", x_train=np.zeros((32, 16, 16), np.uint8))
    assert main(["evaluate", "--model", str(run), "--dataset", str(folder / "small.npz")]) == 2
    error = capsys.readouterr().err
    assert "trained on images of shape (28, 28, 1)" in error and "small.npz" in error and "Traceback" not in error


def test_shipped_classifier_is_where_evaluate_looks():
    assert os.path.isfile(os.path.join(SHIPPED_CLASSIFIER, "classifier.keras"))


class _Autoencoder:
    """An AAE-like plain-Python model: a deterministic 2-D code, no ELBO in its history."""

    latent_dim = 2

    def encode(self, x):
        mean = np.mean(x, axis=(1, 2, 3))
        loc = np.stack([mean, 1.0 - mean], axis=1).astype(np.float32)
        return loc, np.zeros_like(loc)

    def decode(self, z):
        return np.broadcast_to(np.asarray(z)[:, :1, None, None], (len(z), 28, 28, 1)).astype(np.float32)

    def sample(self, n, seed=None):
        return self.decode(np.random.default_rng(seed).uniform(size=(n, 2)))


def test_report_plots_need_only_encode_and_decode(tmp_path):
    import tensorflow as tf

    from kerasgen.evaluation.report import _plots

    images = np.random.default_rng(0).uniform(size=(16, 28, 28, 1)).astype(np.float32)
    heldout = tf.data.Dataset.from_tensor_slices((images, np.arange(16) % 10)).batch(8)
    (tmp_path / "history.csv").write_text("epoch,d_loss,g_loss,reconstruction\n0,1.0,2.0,0.5\n")
    config, data = types.SimpleNamespace(seed=0), types.SimpleNamespace(heldout=heldout)
    written = _plots(_Autoencoder(), config, data, {}, str(tmp_path), str(tmp_path / "report"), title="AAE")
    names = sorted(os.path.basename(p) for p in written)
    # No ELBO logged: the curves it did log (reconstruction, adversarial losses), the rest from encode and decode alone.
    assert names == ["interpolations.png", "latent_manifold.png", "latent_scatter.png", "samples.png", "training_curves.png"]
    for path in written:
        if not path.endswith("samples.png"):  # flat grey squares: a small PNG
            assert os.path.getsize(path) > 1000, path


class _Features:
    """A stand-in classifier: 3 features per image (mean, spread, top-left pixel), 10 logits."""

    num_classes = 10

    def features(self, x):
        x = np.asarray(x, np.float32).reshape(len(x), -1)
        return np.stack([x.mean(axis=1), x.std(axis=1), x[:, 0]], axis=1)

    def predict(self, x, batch_size=None, verbose=0):
        return np.tile(self.features(x)[:, :1], (1, self.num_classes)) * np.arange(self.num_classes)


class _Generator:
    def sample(self, n, seed=None):
        return np.random.default_rng(seed).uniform(size=(n, 8, 8, 1)).astype(np.float32)


@pytest.mark.parametrize("num_training, expected_reference", [(64, 40), (24, 24)])
def test_real_vs_real_floor_is_measured_at_the_sizes_of_the_models_frechet_distance(num_training, expected_reference, monkeypatch):
    import tensorflow as tf

    from kerasgen.evaluation import report, sample_quality

    rng = np.random.default_rng(1)
    heldout = rng.uniform(size=(16, 8, 8, 1)).astype(np.float32)
    training = rng.uniform(size=(num_training, 8, 8, 1)).astype(np.float32) ** 2
    grey = types.SimpleNamespace(
        unbinarized_heldout=heldout,
        train=tf.data.Dataset.from_tensor_slices((training, np.zeros(num_training, np.int64))).batch(8),
    )
    calls, frechet_distance = [], sample_quality.frechet_distance

    def recorded(a, b):
        calls.append((np.asarray(a), np.asarray(b)))
        return frechet_distance(a, b)

    monkeypatch.setattr(sample_quality, "frechet_distance", recorded)
    config = types.SimpleNamespace(num_samples=40, batch_size=8, seed=0)
    choice = types.SimpleNamespace(describe=lambda: {"origin": "given"})
    classifier = _Features()
    samples = report._sample_quality(_Generator(), config, grey, choice, "", classifier)

    (real, generated), (floor_real, reference) = calls
    assert (len(real), len(generated)) == (16, 40) == (samples["num_real"], samples["num_generated"])
    # The floor: the same held-out images against as many training images as the model has
    # samples, when the training split has that many (else all of it, and the report says so).
    np.testing.assert_array_equal(floor_real, real)
    assert len(reference) == expected_reference
    assert samples["num_real_vs_real_reference"] == expected_reference
    np.testing.assert_array_equal(reference, classifier.features(training[:expected_reference]))
    setting = report._real_vs_real_setting(samples)
    assert setting.startswith(f"16 held-out vs {expected_reference} training images")
    assert ("the model's sizes" in setting) == (expected_reference == 40)
    assert ("all the training split has" in setting) == (expected_reference < 40)
