"""Training the domain classifier that sample-quality metrics embed images with: what
`kerasgen train-classifier` does, as a function."""

import dataclasses
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

import kerasgen
from kerasgen.artifacts import atomic_path, inference_copy, write_json
from kerasgen.callbacks import ElapsedTime
from kerasgen.config import TrainClassifierConfig
from kerasgen.data import load_dataset
from kerasgen.models import Classifier
from kerasgen.training import LR_SCHEDULES, _learning_rate


@dataclasses.dataclass(frozen=True)
class ClassifierArtifacts:
    """Where a train-classifier run put its outputs, and what it measured."""

    model: str
    metadata: str
    heldout_split: str
    heldout_accuracy: float
    training_seconds: float


def train_classifier(config=TrainClassifierConfig()):
    """Trains a `Classifier` as `config` says and writes it with its held-out accuracy.

    Output folder layout (`config.out`), each file written atomically:

    - `classifier.keras`: an uncompiled copy of the trained model (config and weights, no
      optimizer state); `keras.saving.load_model` reloads it.
    - `metadata.json`: the held-out accuracy of that file (the test split when the source has a
      labelled one, else the validation split), the dataset and split sizes, the seed, the config,
      the per-epoch history, the training seconds and the command that reproduces the run.

    Returns:
        `ClassifierArtifacts`.

    Raises:
        ValueError: the dataset or its validation split has no class labels (or only one class), or an
            option is invalid.
    """
    if config.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}. Received: lr_schedule={config.lr_schedule!r}")
    if not isinstance(config.epochs, int) or config.epochs < 1:
        raise ValueError(f"epochs must be a positive int. Received: epochs={config.epochs!r}")
    splits = load_dataset(
        config.dataset,
        batch_size=config.batch_size,
        validation_size=config.validation_size,
        binarize="none",
        image_size=config.image_size,
        seed=config.seed,
        data_dir=config.data_dir,
    )
    if splits.num_classes is None:
        raise ValueError(
            "train-classifier needs class labels, but this dataset has none (an .npz needs 'y_train', an "
            f"image folder one subfolder per class). Received: dataset={config.dataset!r}"
        )
    if splits.num_classes < 2:
        raise ValueError(
            f"train-classifier needs at least two classes. Received: dataset={config.dataset!r} "
            f"with num_classes={splits.num_classes}"
        )

    if not _has_labels(splits.validation):
        raise ValueError(
            "train-classifier measures accuracy on the validation split, but the source's own validation "
            f"images have no labels (give y_valid with x_valid). Received: dataset={config.dataset!r}"
        )

    keras.utils.set_random_seed(config.seed)
    classifier = Classifier(
        image_shape=splits.image_shape,
        num_classes=splits.num_classes,
        num_filters=config.num_filters,
        feature_dim=config.feature_dim,
        dropout=config.dropout,
        translation=config.translation,
        seed=config.seed,
    )
    steps_per_epoch = math.ceil(splits.num_train / config.batch_size)
    classifier.compile(
        optimizer=keras.optimizers.Adam(_learning_rate(config, steps_per_epoch)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    history = classifier.fit(
        splits.train,
        validation_data=splits.validation,
        epochs=config.epochs,
        callbacks=[ElapsedTime(), keras.callbacks.TerminateOnNaN()],
        shuffle=False,  # tf.data already reshuffles every epoch.
    )
    training_seconds = time.perf_counter() - start
    history = {name: [float(v) for v in values] for name, values in history.history.items()}
    if len(history["loss"]) < config.epochs or not all(math.isfinite(v) for v in history["loss"]):
        raise FloatingPointError(
            "Training diverged (the loss became NaN or inf); nothing was written. Try a lower "
            f"--learning-rate. Received: loss per epoch {history['loss']}"
        )

    # The shipped file holds weights and config only: the optimizer's moments would double its size.
    shipped = inference_copy(classifier)

    model_path = os.path.join(config.out, "classifier.keras")
    metadata_path = os.path.join(config.out, "metadata.json")
    with atomic_path(model_path) as tmp:
        shipped.save(tmp)
        # Measure the file that ships, as it reloads.
        reloaded = keras.saving.load_model(tmp)
        validation_correct, validation_total = count_correct(reloaded, splits.validation)
        test_correct = test_total = None
        if splits.test is not None and _has_labels(splits.test):
            test_correct, test_total = count_correct(reloaded, splits.test)
    if test_total is not None:
        heldout_split, heldout_correct, heldout_total = "test", test_correct, test_total
    else:
        heldout_split, heldout_correct, heldout_total = "validation", validation_correct, validation_total

    metadata = {
        "produced_by": (
            "kerasgen.classification.train_classifier (kerasgen train-classifier): a Classifier trained "
            "with compile(Adam, SparseCategoricalCrossentropy(from_logits=True), metrics=['accuracy']) and "
            "fit; classifier.keras is an uncompiled copy (Classifier.from_config + set_weights) holding "
            "config and weights only, no optimizer state. The accuracies below were measured on that "
            "file after reloading it."
        ),
        "command": command_line(config),
        "dataset": config.dataset,
        "image_shape": list(splits.image_shape),
        "num_classes": splits.num_classes,
        "num_train": splits.num_train,
        "num_validation": splits.num_validation,
        "num_test": splits.num_test,
        "seed": config.seed,
        "heldout_split": heldout_split,
        "heldout_accuracy": heldout_correct / heldout_total,
        "heldout_correct": heldout_correct,
        "heldout_size": heldout_total,
        "validation_accuracy": validation_correct / validation_total,
        "test_accuracy": None if test_total is None else test_correct / test_total,
        "training_seconds": round(training_seconds, 1),
        "num_parameters": shipped.count_params(),
        "history": {name: [round(v, 6) for v in values] for name, values in history.items()},
        "config": config.to_dict(),
        "versions": {"kerasgen": kerasgen.__version__, "keras": keras.__version__, "tensorflow": tf.__version__},
    }
    write_json(metadata_path, metadata)
    return ClassifierArtifacts(
        model=model_path,
        metadata=metadata_path,
        heldout_split=heldout_split,
        heldout_accuracy=metadata["heldout_accuracy"],
        training_seconds=training_seconds,
    )


def count_correct(classifier, dataset):
    """`(correct, total)`: how many of the `(images, labels)` batches' images `classifier` gets right."""
    correct = total = 0
    for images, labels in dataset:
        predictions = np.argmax(keras.ops.convert_to_numpy(classifier(images, training=False)), axis=-1)
        correct += int(np.sum(predictions == labels.numpy()))
        total += int(labels.shape[0])
    return correct, total


def command_line(config):
    """The `kerasgen train-classifier` command that reproduces `config`, every flag spelled out."""
    parts = ["kerasgen", "train-classifier"]
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if value is None or value is False:
            continue
        parts.append("--" + field.name.replace("_", "-"))
        if isinstance(value, tuple):
            parts.extend(str(v) for v in value)
        elif value is not True:
            parts.append(str(value))
    return " ".join(parts)


def _has_labels(dataset):
    return all(bool(np.all(labels.numpy() >= 0)) for _, labels in dataset)
