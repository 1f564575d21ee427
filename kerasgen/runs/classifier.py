"""`kerasgen train-classifier`: the domain classifier whose features measure sample quality."""

import csv
import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

import kerasgen
from kerasgen import specs
from kerasgen.artifacts import atomic_path, inference_copy, write_json
from kerasgen.config import TrainClassifierConfig, show_flag
from kerasgen.data import load_dataset
from kerasgen.evaluation.domain import count_correct
from kerasgen.models import Classifier
from kerasgen.runs.harness import Run, RunResult
from kerasgen.runs.schedules import learning_rate


@dataclasses.dataclass(frozen=True)
class ClassifierResult(RunResult):
    """A classifier run's outputs, with the held-out accuracy of the file that ships."""

    metadata: str = ""
    heldout_split: str = ""
    heldout_accuracy: float = 0.0
    training_seconds: float = 0.0


def train_classifier(config=TrainClassifierConfig(), verbose=None):
    """Trains a `Classifier` as `config` says and writes it with its held-out accuracy.

    Output folder (`config.out`): `classifier.keras` (an uncompiled copy: config and weights),
    `metadata.json` (the held-out accuracy of that file as it reloads — the test split when the
    source has a labelled one, else the validation split — with the dataset, split sizes, seed,
    config, history, training seconds and the reproducing command), and the run harness's
    `config.json`, `history.csv`, `checkpoint/` and TensorBoard logs.

    Raises:
        ValueError: the dataset or its validation split has no class labels (or one class).
    """
    run = Run(config, specs.named("Classifier").file, verbose)
    splits = load_dataset(
        config.dataset,
        batch_size=config.batch_size,
        validation_size=config.validation_size,
        binarize="none",
        image_size=config.image_size,
        seed=config.seed,
        data_dir=config.data_dir,
        stream=config.stream,
    )
    if splits.num_classes is None or splits.num_classes < 2:
        raise ValueError(
            "train-classifier needs class labels of at least two classes (an .npz needs labels beside its "
            "images, an image folder one subfolder per class). "
            f"Received: {show_flag('dataset', config.dataset)} with num_classes={splits.num_classes}"
        )
    if not _has_labels(splits.validation):
        raise ValueError(
            "train-classifier measures accuracy on the validation split, but the source's own validation "
            f"images have no labels (give y_valid with x_valid). Received: {show_flag('dataset', config.dataset)}"
        )
    run.describe_data(splits)
    keras.utils.set_random_seed(config.seed)
    steps_per_epoch = math.ceil(splits.num_train / config.batch_size)
    with run.scope():
        classifier = Classifier(
            image_shape=splits.image_shape,
            num_classes=splits.num_classes,
            num_filters=config.num_filters,
            feature_dim=config.feature_dim,
            dropout=config.dropout,
            translation=config.translation,
            flip=config.flip,
            batch_norm=config.batch_norm,
            convs_per_level=config.convs_per_level,
            seed=config.seed,
        )
        classifier.compile(
            optimizer=keras.optimizers.Adam(learning_rate(config, steps_per_epoch)),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            **run.compile_options(),
        )
    run.open({"image_shape": splits.image_shape, "num_classes": splits.num_classes})
    run.restore(classifier)
    history = run.fit(classifier, splits, grid=False)
    final, model_path, _ = run.finish(classifier, history)

    # Measure the file that ships, as it reloads.
    reloaded = keras.saving.load_model(model_path)
    heldout_split = "test" if splits.test is not None and _has_labels(splits.test) else "validation"
    correct, total = _count(reloaded, splits.test if heldout_split == "test" else splits.validation)
    validation_correct, validation_total = _count(reloaded, splits.validation)
    seconds = final.get("seconds", 0.0)
    metadata = {
        "produced_by": (
            "kerasgen.runs.classifier.train_classifier (kerasgen train-classifier): a Classifier trained "
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
        "heldout_accuracy": correct / total,
        "heldout_correct": correct,
        "heldout_size": total,
        "validation_accuracy": validation_correct / validation_total,
        "test_accuracy": correct / total if heldout_split == "test" else None,
        "training_seconds": round(seconds, 1),
        "num_parameters": reloaded.count_params(),
        "history": _read_history(run.path("history.csv")),
        "config": config.to_dict(),
        "versions": {"kerasgen": kerasgen.__version__, "keras": keras.__version__, "tensorflow": tf.__version__},
    }
    metadata_path = run.path("metadata.json")
    write_json(metadata_path, metadata)
    return ClassifierResult(
        out=run.out,
        model=model_path,
        saved_model=None,
        final_metrics=final,
        metadata=metadata_path,
        heldout_split=heldout_split,
        heldout_accuracy=metadata["heldout_accuracy"],
        training_seconds=seconds,
    )


def _read_history(path):
    """`{metric: [value per epoch]}` from the run's history CSV (every epoch, across resumes)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {name: [round(float(row[name]), 6) for row in rows] for name in rows[0] if name != "epoch"}


def _count(classifier, dataset):
    images, labels = (np.concatenate(parts) for parts in zip(*dataset.as_numpy_iterator()))
    return count_correct(classifier, images, labels)


def command_line(config):
    """The `kerasgen train-classifier` command that reproduces `config`, every flag spelled out."""
    parts = ["kerasgen", "train-classifier"]
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if value is None or value is False or field.name in ("resume", "overwrite"):
            continue
        parts.append(show_flag(field.name, value))
    return " ".join(parts)


def _has_labels(dataset):
    return all(bool(np.all(labels >= 0)) for _, labels in dataset.as_numpy_iterator())
