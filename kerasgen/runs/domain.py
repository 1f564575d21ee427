"""Which classifier scores a dataset's samples: the shipped digit one only where evidence says so.

Fréchet distance, KID, the classifier score and the class shares mean something only on the
features of a classifier of the data's own domain. The shipped classifier was trained on MNIST
digits; scored with it, samples of another 28x28 dataset get confident but meaningless classes.
So a run asks `choose_classifier`:

1. `--classifier DIR` given: that one (its accuracy on the data's labelled held-out images is
   measured and reported when the label sets agree);
2. else the data has labels: the shipped classifier when it gets at least `MIN_ACCURACY` of the
   held-out images right, otherwise a classifier trained on the data (the `train-classifier`
   defaults, the run's own split) into `OUT/classifier/`, reused when it is already there;
3. else (no labels): none — sample metrics need `--classifier`, and the reason says so.
"""

import dataclasses
import os

import keras
import numpy as np

from kerasgen.artifacts import read_json
from kerasgen.evaluation.sample_quality import SHIPPED_CLASSIFIER, load_classifier

# The shipped classifier serves a dataset when it classifies this share of its held-out images.
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
    """

    path: str
    origin: str
    heldout_accuracy: float | None
    heldout_size: int
    reason: str

    def load(self, image_shape):
        return load_classifier(self.path, image_shape)

    def describe(self):
        """A JSON-ready record for reports and `summary.json`."""
        return dataclasses.asdict(self)

    def summary(self):
        """One line: which classifier and how well it knows this data."""
        accuracy = "" if self.heldout_accuracy is None else f", {100 * self.heldout_accuracy:.1f}% held-out accuracy"
        return f"{self.origin} classifier {self.path}{accuracy}: {self.reason}"


def choose_classifier(requested, splits, out, train_config=None, image_shape=None):
    """The classifier to score samples of `splits`' data with (see the module docstring).

    Args:
        requested: str or None, the `--classifier` flag.
        splits: the run's `DatasetSplits` (its held-out images and labels are the evidence).
        out: str, the run folder; a classifier trained here goes to `out/classifier`.
        train_config: a `TrainClassifierConfig` for the data (dataset, split, seed), used when one
            must be trained; None: never train (the choice is then None with its reason printed).
        image_shape: the images the classifier must take. Defaults to `splits.image_shape`.

    Returns:
        `(ClassifierChoice or None, reason)`; None when no classifier of this domain is available.

    Raises:
        FileNotFoundError, ValueError: the requested classifier is missing, unreadable, or takes
            images of another shape.
    """
    image_shape = tuple(image_shape or splits.image_shape)
    images, labels = heldout_images_and_labels(splits)
    labelled = labels is not None
    if requested:
        classifier = load_classifier(requested, image_shape)
        accuracy = _accuracy_if_comparable(classifier, images, labels, splits.num_classes)
        choice = ClassifierChoice(requested, "given", accuracy, len(images), "given by --classifier")
        return choice, choice.reason

    trained = os.path.join(out, "classifier")
    if os.path.isfile(os.path.join(trained, "classifier.keras")):
        return _trained_choice(trained, "trained for this data earlier in this run"), "reused"
    if not labelled:
        return None, (
            "the data has no labels, so no classifier of its domain can be checked or trained; "
            "sample metrics (Fréchet distance, KID, class shares) need --classifier DIR"
        )

    shipped_reason = "it takes images of another shape"
    try:
        shipped = load_classifier(SHIPPED_CLASSIFIER, image_shape)
    except ValueError:
        shipped = None
    if shipped is not None:
        accuracy = _accuracy_if_comparable(shipped, images, labels, splits.num_classes)
        if accuracy is not None and accuracy >= MIN_ACCURACY:
            reason = f"it classifies {100 * accuracy:.1f}% of this data's held-out images right (>= {100 * MIN_ACCURACY:.0f}%)"
            return ClassifierChoice(SHIPPED_CLASSIFIER, "shipped", accuracy, len(images), reason), reason
        shipped_reason = (
            f"it has {shipped.num_classes} classes and the data {splits.num_classes}"
            if accuracy is None
            else f"it classifies only {100 * accuracy:.1f}% of this data's held-out images right"
        )
    if train_config is None:
        return None, f"the shipped digit classifier does not serve this data ({shipped_reason}); pass --classifier DIR"

    # Imported here: the classifier run imports this module.
    from kerasgen.runs.classifier import train_classifier

    print(f"The shipped digit classifier does not serve this data ({shipped_reason}): training one into {trained} ...")
    # A training killed earlier in this run continues from its checkpoint.
    train_classifier(dataclasses.replace(train_config, out=trained, resume=os.path.isdir(trained), overwrite=False))
    return _trained_choice(trained, f"the shipped digit classifier does not serve this data ({shipped_reason})"), "trained"


def _trained_choice(folder, reason):
    metadata = read_json(os.path.join(folder, "metadata.json"))
    return ClassifierChoice(folder, "trained", metadata["heldout_accuracy"], metadata["heldout_size"], reason)


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
