"""Which classifier scores a dataset: the shipped digit one only where its accuracy says it serves."""

import json

import numpy as np
import pytest

from kerasgen.config import TrainClassifierConfig
from kerasgen.data import load_dataset
from kerasgen.evaluation.sample_quality import SHIPPED_CLASSIFIER
from kerasgen.evaluation.domain import MIN_ACCURACY, choose_classifier
from kerasgen.runs.classifier import train_classifier


def test_the_shipped_classifier_serves_digits_by_its_measured_accuracy(tmp_path):
    splits = load_dataset("mnist-5k", validation_size=500, seed=0)
    choice, _ = choose_classifier(None, splits, str(tmp_path))
    assert choice.origin == "shipped" and choice.path == SHIPPED_CLASSIFIER
    assert choice.heldout_accuracy >= 0.95 and choice.heldout_size == 500
    assert not (tmp_path / "classifier").exists()


def _shapes_npz(path, count=400):
    """28x28 grey images of four shapes (not digits), labelled by shape, at random places."""
    rng = np.random.default_rng(0)
    labels = np.arange(count) % 4
    x = np.zeros((count, 28, 28), np.uint8)
    yy, xx = np.mgrid[:28, :28]
    for i, label in enumerate(labels):
        cy, cx, r = rng.integers(9, 19), rng.integers(9, 19), rng.integers(5, 8)
        if label == 0:  # disc
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        elif label == 1:  # square outline
            mask = (np.maximum(abs(yy - cy), abs(xx - cx)) <= r) & (np.maximum(abs(yy - cy), abs(xx - cx)) >= r - 1)
        elif label == 2:  # horizontal bar
            mask = (abs(yy - cy) <= 1) & (abs(xx - cx) <= r)
        else:  # ring
            d = (yy - cy) ** 2 + (xx - cx) ** 2
            mask = (d <= r * r) & (d >= (r - 2) ** 2)
        x[i][mask] = 255
    np.savez(path, images=x, labels=labels)
    return str(path)


@pytest.mark.slow
def test_another_domain_gets_a_classifier_trained_on_its_labels(tmp_path):
    source = _shapes_npz(tmp_path / "shapes.npz")
    splits = load_dataset(source, validation_size=80, seed=0)
    config = TrainClassifierConfig(dataset=source, validation_size=80, num_filters=(8, 16), epochs=4, batch_size=32)
    choice, _ = choose_classifier(None, splits, str(tmp_path / "run"), config, train=train_classifier)
    assert choice.origin == "trained" and choice.path == str(tmp_path / "run" / "classifier")
    assert "the shipped digit classifier does not serve this data" in choice.reason
    assert choice.heldout_accuracy >= MIN_ACCURACY and choice.heldout_size == 80
    metadata = json.loads((tmp_path / "run" / "classifier" / "metadata.json").read_text())
    assert metadata["heldout_accuracy"] == choice.heldout_accuracy
    # Asked again (a resumed run), the trained one is reused, not retrained.
    again, how = choose_classifier(None, splits, str(tmp_path / "run"), config, train=train_classifier)
    assert how == "reused" and again.heldout_accuracy == choice.heldout_accuracy


def test_unlabelled_data_gets_no_classifier_and_a_reason(tmp_path):
    np.savez(tmp_path / "x.npz", x=np.zeros((40, 28, 28), np.uint8))
    splits = load_dataset(str(tmp_path / "x.npz"), validation_size=8)
    choice, reason = choose_classifier(None, splits, str(tmp_path), TrainClassifierConfig(), train=train_classifier)
    assert choice is None and "--classifier" in reason and "no labels" in reason


def test_a_requested_classifier_must_be_one(tmp_path):
    splits = load_dataset("mnist-5k", validation_size=100, seed=0)
    (tmp_path / "x.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="corrupt"):
        choose_classifier(str(tmp_path / "x.keras"), splits, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="--classifier"):
        choose_classifier(str(tmp_path / "missing"), splits, str(tmp_path))
    with pytest.raises(ValueError, match="holds a VAE"):
        choose_classifier("saved_models/vae-mnist-5k", splits, str(tmp_path))
