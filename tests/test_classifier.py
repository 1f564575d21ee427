import json
import os

import keras
import numpy as np
import pytest

from kerasgen.evaluation.domain import count_correct
from kerasgen.cli import build_parser, main
from kerasgen.config import TrainClassifierConfig, from_arguments
from kerasgen.data import load_dataset
from kerasgen.evaluation.sample_quality import SHIPPED_CLASSIFIER
from kerasgen.models import Classifier

SHIPPED = SHIPPED_CLASSIFIER
TINY = ["--num-filters", "4", "8", "--feature-dim", "8", "--batch-size", "16", "--validation-size", "16", "--epochs", "1"]


def _small_classifier(**kwargs):
    defaults = dict(image_shape=(16, 16, 1), num_classes=2, num_filters=(4, 8), feature_dim=8, seed=0)
    return Classifier(**{**defaults, **kwargs})


def _bars(n=32):
    """Vertical bars (class 0) and horizontal bars (class 1), 16x16, at seeded positions."""
    rng = np.random.default_rng(0)
    images = np.zeros((n, 16, 16, 1), np.float32)
    labels = np.arange(n) % 2
    for i, position in enumerate(rng.integers(2, 14, size=n)):
        if labels[i]:
            images[i, position - 1 : position + 1, :, 0] = 1.0
        else:
            images[i, :, position - 1 : position + 1, 0] = 1.0
    return images, labels.astype(np.int32)


def _compile(classifier, learning_rate=1e-3):
    classifier.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def test_standard_fit_learns_to_classify():
    images, labels = _bars()
    keras.utils.set_random_seed(0)
    classifier = _small_classifier(dropout=0.0, translation=0.0)
    _compile(classifier, 1e-2)
    history = classifier.fit(images, labels, epochs=12, batch_size=8, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["accuracy"][-1] > 0.9


def test_keras_file_round_trip_gives_identical_logits_and_features(tmp_path):
    images, labels = _bars(16)
    classifier = _small_classifier()
    _compile(classifier)
    classifier.fit(images, labels, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "classifier.keras"
    classifier.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, Classifier)
    assert restored.get_config() == classifier.get_config()
    np.testing.assert_array_equal(restored(images), classifier(images))
    np.testing.assert_array_equal(restored.features(images), classifier.features(images))


def test_an_uncompiled_copy_predicts_like_the_original():
    # What train_classifier ships: from_config + set_weights, without the optimizer's state.
    images, labels = _bars(16)
    classifier = _small_classifier()
    _compile(classifier)
    classifier.fit(images, labels, epochs=1, batch_size=8, verbose=0)
    copy = Classifier.from_config(classifier.get_config())
    copy.set_weights(classifier.get_weights())
    np.testing.assert_array_equal(copy(images), classifier(images))


@pytest.mark.parametrize("image_shape, num_filters", [((28, 28, 1), (16, 32, 64)), ((32, 32, 3), (8, 16)), ((15, 9, 1), (4, 8))])
def test_any_image_shape_gives_logits_and_features(image_shape, num_filters):
    classifier = Classifier(image_shape=image_shape, num_classes=5, num_filters=num_filters, feature_dim=12)
    images = np.random.default_rng(0).uniform(size=(3, *image_shape)).astype("float32")
    assert classifier(images).shape == (3, 5)
    features = classifier.features(images)
    assert features.shape == (3, 12) and np.all(np.asarray(features) >= 0)  # after the ReLU
    # No augmentation or dropout at inference: the same images give the same outputs.
    np.testing.assert_array_equal(classifier(images), classifier(images))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_shape=(28, 28)), "Received: image_shape=(28, 28)"),
        (dict(num_classes=1), "Received: num_classes=1"),
        (dict(num_filters=()), "Received: num_filters=()"),
        (dict(feature_dim=0), "Received: feature_dim=0"),
        (dict(dropout=1.0), "Received: dropout=1.0"),
        (dict(translation=-0.1), "Received: translation=-0.1"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Classifier(**kwargs)


def test_shipped_classifier_scores_what_its_metadata_says():
    with open(os.path.join(SHIPPED, "metadata.json")) as f:
        metadata = json.load(f)
    assert metadata["dataset"] == "mnist-5k" and metadata["seed"] == 0
    assert (metadata["num_train"], metadata["num_validation"]) == (4500, 500)
    assert metadata["heldout_split"] == "validation" and metadata["heldout_accuracy"] >= 0.97
    assert os.path.getsize(os.path.join(SHIPPED, "classifier.keras")) < 1_000_000
    assert metadata["command"].startswith("kerasgen train-classifier ")

    classifier = keras.saving.load_model(os.path.join(SHIPPED, "classifier.keras"))
    assert isinstance(classifier, Classifier) and not classifier.compiled  # no optimizer state shipped
    splits = load_dataset("mnist-5k", seed=0, validation_size=500)
    images, labels = (np.concatenate(parts) for parts in zip(*splits.validation.as_numpy_iterator()))
    correct, total = count_correct(classifier, images, labels)
    assert (correct, total) == (metadata["heldout_correct"], 500)
    assert correct / total == metadata["heldout_accuracy"]


@pytest.fixture
def labelled_npz(tmp_path):
    """64 training and 24 test grey 16x16 images with 4 classes, as a Keras-style .npz."""
    rng = np.random.default_rng(0)
    path = tmp_path / "labelled.npz"
    np.savez(
        path,
        x_train=(rng.uniform(size=(64, 16, 16)) * 255).astype(np.uint8),
        y_train=np.arange(64) % 4,
        x_test=(rng.uniform(size=(24, 16, 16)) * 255).astype(np.uint8),
        y_test=np.arange(24) % 4,
    )
    return str(path)


@pytest.mark.slow
def test_train_classifier_writes_the_model_and_its_metadata(tmp_path, labelled_npz):
    out = tmp_path / "run"
    assert main(["train-classifier", "--dataset", labelled_npz, "--out", str(out), *TINY]) == 0
    # The run harness's files, and no temporaries left.
    assert sorted(os.listdir(out)) == ["checkpoint", "classifier.keras", "config.json", "history.csv", "logs", "metadata.json"]
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["heldout_split"] == "test" and metadata["heldout_size"] == 24
    assert (metadata["num_train"], metadata["num_validation"], metadata["num_test"]) == (48, 16, 24)
    assert metadata["num_classes"] == 4 and metadata["image_shape"] == [16, 16, 1]
    assert len(metadata["history"]["val_accuracy"]) == 1 and metadata["training_seconds"] > 0

    classifier = keras.saving.load_model(out / "classifier.keras")
    splits = load_dataset(labelled_npz, batch_size=16, validation_size=16, seed=0)
    images, labels = (np.concatenate(parts) for parts in zip(*splits.test.as_numpy_iterator()))
    assert count_correct(classifier, images, labels) == (metadata["heldout_correct"], 24)

    # The recorded command rebuilds the same config.
    config = from_arguments(TrainClassifierConfig, build_parser().parse_args(metadata["command"].split()[1:]))
    assert config.to_dict() == {**metadata["config"], "num_filters": (4, 8)}


@pytest.mark.parametrize(
    "arrays, message",
    [
        (dict(x_train=np.full((32, 16, 16), 9, np.uint8)), "needs class labels"),
        (
            dict(x_train=np.full((32, 16, 16), 9, np.uint8), y_train=np.arange(32) % 2, x_valid=np.full((8, 16, 16), 9, np.uint8)),
            "validation images have no labels",
        ),
    ],
)
def test_data_without_labels_is_one_clear_line(tmp_path, capsys, arrays, message):
    path = tmp_path / "unlabelled.npz"
    np.savez(path, **arrays)
    assert main(["train-classifier", "--dataset", str(path), "--out", str(tmp_path / "out"), *TINY]) == 2
    error = capsys.readouterr().err
    assert message in error and f"Received: --dataset {path}" in error and "Traceback" not in error
    assert not (tmp_path / "out").exists()


def test_flags_parse_into_the_config():
    defaults = from_arguments(TrainClassifierConfig, build_parser().parse_args(["train-classifier"]))
    assert defaults == TrainClassifierConfig()
    config = from_arguments(
        TrainClassifierConfig,
        build_parser().parse_args(["train-classifier", "--num-filters", "8", "16", "--validation-size", "0.1", "--image-size", "32", "32"]),
    )
    assert config.num_filters == (8, 16) and config.validation_size == 0.1 and config.image_size == (32, 32)
