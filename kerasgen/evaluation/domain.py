"""Which classifier scores a dataset's samples: a shipped one only where evidence says so.

Fréchet distance, KID, the classifier score and the class shares mean something only on the
features of a classifier of the data's own domain. The shipped classifiers were trained on MNIST
digits and on CIFAR-10; scored with the digit one, samples of another 28x28 dataset get confident
but meaningless classes. So a run asks `choose_classifier`:

1. `--classifier DIR` given: that one (its accuracy on the data's labelled held-out images is
   measured and reported when the label sets agree);
2. else the data has labels: of the shipped classifiers (`SHIPPED_CLASSIFIERS`) that take the
   data's channel count, the most accurate on the held-out images among those that get at least
   their own minimum right (`serves.min_heldout_accuracy` in their metadata: `MIN_ACCURACY` for
   digits); otherwise a classifier trained on the data (the `train-classifier` defaults, the run's
   own split) into `OUT/classifier/` by the training function the caller passes (`train`), reused
   when it is already there;
3. else (no labels): none — sample metrics need `--classifier`, and the reason says so.

A classifier whose input has another height or width than the data scores the images resized to
its input (antialiased): a 64x64 CIFAR-10 run uses the 32x32 CIFAR-10 classifier. The choice says so.
"""

import dataclasses
import os

import keras
import numpy as np

from kerasgen.artifacts import read_json
from kerasgen.evaluation.sample_quality import SHIPPED_CLASSIFIERS, load_classifier

# The shipped digit classifier serves a dataset when it classifies this share of its held-out
# images (the default for a shipped classifier whose metadata names no minimum).
MIN_ACCURACY = 0.8


@dataclasses.dataclass(frozen=True)
class ClassifierChoice:
    """The classifier a run scores samples with, and the evidence for it.

    Attributes:
        path: its folder or `.keras` file.
        origin: `"given"` (`--classifier`), `"shipped"` or `"trained"` (for this data, in this run).
        heldout_accuracy: its accuracy on the data's labelled held-out images, or None when that
            could not be measured (no labels, or other classes).
        heldout_size: how many held-out images that accuracy is over.
        reason: one sentence on why this classifier.
        resized: None, or how the images are resized to the classifier's input, e.g.
            `"64x64 images are resized to its 32x32 input (antialiased)"`.
    """

    path: str
    origin: str
    heldout_accuracy: float | None
    heldout_size: int
    reason: str
    resized: str | None = None

    def load(self, image_shape):
        return load_classifier(self.path, image_shape)

    def describe(self):
        """A JSON-ready record for reports and `summary.json`."""
        return dataclasses.asdict(self)

    def summary(self):
        """One line: which classifier and how well it knows this data."""
        accuracy = "" if self.heldout_accuracy is None else f", {100 * self.heldout_accuracy:.1f}% held-out accuracy"
        resized = "" if self.resized is None else f" ({self.resized})"
        return f"{self.origin} classifier {self.path}{accuracy}: {self.reason}{resized}"


def choose_classifier(requested, splits, out, train_config=None, image_shape=None, train=None):
    """The classifier to score samples of `splits`' data with (see the module docstring).

    Args:
        requested: str or None, the `--classifier` flag.
        splits: the run's `DatasetSplits` (its held-out images and labels are the evidence).
        out: str, the run folder; a classifier trained here goes to `out/classifier`.
        train_config: a `TrainClassifierConfig` for the data (dataset, split, seed), used when one
            must be trained; None: never train (the choice is then None with its reason printed).
        image_shape: the images the classifier must take. Defaults to `splits.image_shape`.
        train: `(TrainClassifierConfig) -> any`, what trains a classifier into the config's `out`
            (the run layer passes `kerasgen.runs.classifier.train_classifier`); given exactly
            when `train_config` is. Evaluation takes it as an argument so that it never imports
            the run layer.

    Returns:
        `(ClassifierChoice or None, reason)`; None when no classifier of this domain is available.

    Raises:
        FileNotFoundError, ValueError: the requested classifier is missing, unreadable, or takes
            images of another shape.
        ValueError: one of `train_config` and `train` without the other.
    """
    if (train_config is None) != (train is None):
        raise ValueError(
            "train_config (what to train) and train (how) go together: pass both to allow training a classifier, "
            f"or neither. Received: {'train_config without train' if train is None else 'train without train_config'}"
        )
    image_shape = tuple(image_shape or splits.image_shape)
    images, labels = heldout_images_and_labels(splits)
    labelled = labels is not None
    if requested:
        classifier = load_classifier(requested, image_shape)
        accuracy = _accuracy_if_comparable(classifier, images, labels, splits.num_classes)
        resized = _resizing(classifier.image_shape, image_shape)
        choice = ClassifierChoice(requested, "given", accuracy, len(images), "given by --classifier", resized)
        return choice, choice.reason

    trained = os.path.join(out, "classifier")
    if os.path.isfile(os.path.join(trained, "classifier.keras")):
        return _trained_choice(trained, "trained for this data earlier in this run", image_shape), "reused"
    if not labelled:
        return None, (
            "the data has no labels, so no classifier of its domain can be checked or trained; "
            "sample metrics (Fréchet distance, KID, class shares) need --classifier DIR"
        )

    serving, refusals = [], []
    for path in SHIPPED_CLASSIFIERS:
        choice = _shipped_choice(path, images, labels, splits.num_classes, image_shape)
        (serving if isinstance(choice, ClassifierChoice) else refusals).append(choice)
    if serving:
        best = max(serving, key=lambda choice: choice.heldout_accuracy)
        return best, best.reason
    shipped_reason = "; ".join(refusals)
    if train_config is None:
        return None, f"{shipped_reason}; pass --classifier DIR"

    print(f"{shipped_reason[0].upper()}{shipped_reason[1:]}: training one into {trained} ...")
    # A training killed earlier in this run continues from its checkpoint.
    train(dataclasses.replace(train_config, out=trained, resume=os.path.isdir(trained), overwrite=False))
    return _trained_choice(trained, shipped_reason, image_shape), "trained"


def shipped_serving(path):
    """`(domain name, minimum held-out accuracy to serve a dataset)` of the shipped classifier folder `path`."""
    return _serving(read_json(os.path.join(path, "metadata.json")))


def _serving(metadata):
    serves = metadata.get("serves", {})
    return serves.get("domain", "shipped"), serves.get("min_heldout_accuracy", MIN_ACCURACY)


def _shipped_choice(path, images, labels, num_classes, image_shape):
    """The `ClassifierChoice` of the shipped classifier at `path` when it serves the data, else why not."""
    metadata = read_json(os.path.join(path, "metadata.json"))
    name, minimum = _serving(metadata)
    refusal = f"the shipped {name} classifier does not serve this data"
    channels = metadata["image_shape"][-1]
    if channels != image_shape[-1]:
        return f"{refusal} (it takes {channels}-channel images and the data has {image_shape[-1]})"
    classifier = load_classifier(path, image_shape)
    accuracy = _accuracy_if_comparable(classifier, images, labels, num_classes)
    if accuracy is None:
        return f"{refusal} (it has {classifier.num_classes} classes and the data {num_classes})"
    if accuracy < minimum:
        return f"{refusal} (it classifies only {100 * accuracy:.1f}% of this data's held-out images right)"
    reason = f"it classifies {100 * accuracy:.1f}% of this data's held-out images right (>= {100 * minimum:.0f}% for the shipped {name} classifier)"
    return ClassifierChoice(path, "shipped", accuracy, len(images), reason, _resizing(metadata["image_shape"], image_shape))


def _resizing(classifier_shape, image_shape):
    """None when the classifier takes `image_shape` images as they are, else how they are resized."""
    (height, width), (image_height, image_width) = tuple(classifier_shape[:2]), tuple(image_shape[:2])
    if (height, width) == (image_height, image_width):
        return None
    return f"{image_height}x{image_width} images are resized to its {height}x{width} input (antialiased)"


def _trained_choice(folder, reason, image_shape):
    metadata = read_json(os.path.join(folder, "metadata.json"))
    resized = _resizing(metadata["image_shape"], image_shape)
    return ClassifierChoice(folder, "trained", metadata["heldout_accuracy"], metadata["heldout_size"], reason, resized)


def heldout_images_and_labels(splits):
    """The grey held-out images and their labels (None when the data has none)."""
    labels = np.concatenate([y for _, y in splits.heldout.as_numpy_iterator()])
    return splits.unbinarized_heldout, (labels if (labels >= 0).all() else None)


def _accuracy_if_comparable(classifier, images, labels, num_classes):
    if labels is None or num_classes is None or num_classes > classifier.num_classes:
        return None
    correct, total = count_correct(classifier, images, labels)
    return correct / total


def count_correct(classifier, images, labels, batch_size=256):
    """`(correct, total)`: how many of `images` the classifier puts in their `labels`' class."""
    logits = classifier.predict(images, batch_size=batch_size, verbose=0)
    predictions = np.argmax(keras.ops.convert_to_numpy(logits), axis=-1)
    return int(np.sum(predictions == np.asarray(labels))), int(len(labels))
