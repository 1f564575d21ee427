"""Colour classifiers: flip and batch normalization for natural images, other image sizes resized, the shipped CIFAR-10 one chosen for CIFAR-10 data."""

import json
import os

import keras
import numpy as np
import pytest
from keras import ops

from kerasgen.data import load_dataset
from kerasgen.evaluation.sample_quality import SHIPPED_CIFAR10_CLASSIFIER, SHIPPED_CLASSIFIER, load_classifier
from kerasgen.models import Classifier
from kerasgen.evaluation.domain import choose_classifier, shipped_serving


def _colour_images(count=8, size=16, seed=0):
    """Smooth colour images (a bright blob on a coloured background) in [0, 1], left-right asymmetric."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    images = np.empty((count, size, size, 3), np.float32)
    for i in range(count):
        cy, cx = rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.4)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.02)[..., None]
        images[i] = np.clip(rng.uniform(0, 0.6, 3) * (1 - blob) + rng.uniform(0.4, 1, 3) * blob, 0, 1)
    return images


def _mirror(images):
    return np.ascontiguousarray(images[:, :, ::-1])


def _classifier(**kwargs):
    defaults = dict(image_shape=(16, 16, 3), num_classes=3, num_filters=(4, 8), feature_dim=6, seed=0)
    return Classifier(**{**defaults, **kwargs})


def test_flip_mirrors_only_in_training_and_batch_norm_keeps_features_per_image():
    images = _colour_images()
    classifier = _classifier(flip=True, batch_norm=True, convs_per_level=3, translation=0.0, dropout=0.0)
    mirrored = classifier(_mirror(images))
    plain = classifier(images)
    assert not np.allclose(plain, mirrored, atol=1e-4)  # the images are asymmetric: flipping shows
    # Inference: no flip, and an image's features do not depend on the rest of its batch.
    np.testing.assert_allclose(classifier(images), plain, atol=1e-6)
    np.testing.assert_allclose(classifier.features(images[:1]), classifier.features(images)[:1], atol=1e-5)
    # Training: each image is either left alone or mirrored, and over a few draws both happen.
    reference = _classifier(translation=0.0, dropout=0.0)
    flipping = _classifier(flip=True, translation=0.0, dropout=0.0)
    flipping.set_weights(reference.get_weights())
    plain, mirrored = np.asarray(reference(images)), np.asarray(reference(_mirror(images)))
    left_alone = were_mirrored = 0
    for _ in range(4):
        logits = np.asarray(flipping(images, training=True))
        as_is = np.all(np.isclose(logits, plain, atol=1e-5), axis=-1)
        flipped = np.all(np.isclose(logits, mirrored, atol=1e-5), axis=-1)
        assert np.all(as_is | flipped)
        left_alone, were_mirrored = left_alone + as_is.sum(), were_mirrored + flipped.sum()
    assert left_alone > 0 and were_mirrored > 0


def test_new_arguments_round_trip_and_default_to_the_digit_architecture(tmp_path):
    classifier = _classifier(flip=True, batch_norm=True, convs_per_level=1)
    classifier.save(tmp_path / "c.keras")
    restored = keras.saving.load_model(tmp_path / "c.keras")
    assert restored.get_config() == classifier.get_config()
    images = _colour_images()
    np.testing.assert_array_equal(restored.features(images), classifier.features(images))
    default = Classifier()
    assert (default.flip, default.batch_norm, default.convs_per_level) == (False, False, 2)
    # Two convolutions per level and no normalization, as the shipped digit classifier was built.
    layer_kinds = [type(layer).__name__ for layer in default.embedding.layers]
    assert layer_kinds.count("Conv2D") == 4 and "BatchNormalization" not in layer_kinds


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(flip="yes"), "Received: flip='yes'"), (dict(batch_norm=1), "Received: batch_norm=1"), (dict(convs_per_level=0), "Received: convs_per_level=0")],
)
def test_bad_new_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Classifier(**kwargs)


def test_images_of_another_size_are_resized_to_the_input_and_channels_must_match():
    classifier = _classifier()
    large = _colour_images(size=32)
    resized = ops.image.resize(large, (16, 16), interpolation="bilinear", antialias=True)
    np.testing.assert_allclose(classifier.features(large), classifier.features(resized), atol=1e-6)
    np.testing.assert_allclose(classifier(large), classifier(resized), atol=1e-6)
    with pytest.raises(ValueError, match=r"takes images \[B, H, W, 3\]"):
        classifier.features(np.zeros((2, 16, 16, 1), np.float32))


def test_the_shipped_cifar10_classifier_is_small_accurate_and_scores_32_and_64_pixel_colour_images():
    with open(os.path.join(SHIPPED_CIFAR10_CLASSIFIER, "metadata.json")) as f:
        metadata = json.load(f)
    assert metadata["heldout_split"] == "test" and metadata["heldout_size"] == 10_000
    assert metadata["test_accuracy"] >= 0.75 and metadata["image_shape"] == [32, 32, 3]
    assert "--dataset ../shared/data/cifar10" in metadata["command"] and "JPEG" in metadata["data"]
    assert shipped_serving(SHIPPED_CIFAR10_CLASSIFIER)[0] == "CIFAR-10"
    assert os.path.getsize(os.path.join(SHIPPED_CIFAR10_CLASSIFIER, "classifier.keras")) < 5_000_000

    classifier = load_classifier(SHIPPED_CIFAR10_CLASSIFIER, (64, 64, 3))
    assert classifier.num_classes == 10 and not classifier.compiled
    small = _colour_images(size=32)
    logits = np.asarray(classifier(small))
    assert logits.shape == (8, 10) and np.all(np.isfinite(logits))
    # A 64x64 copy (each pixel doubled) is scored as its antialiased 32x32 resize: nearly the same image.
    large = small.repeat(2, axis=1).repeat(2, axis=2)
    assert classifier.features(large).shape == (8, classifier.feature_dim)
    np.testing.assert_allclose(classifier(large), classifier(ops.image.resize(large, (32, 32), antialias=True)), atol=1e-5)
    with pytest.raises(ValueError, match="3 channels"):
        load_classifier(SHIPPED_CIFAR10_CLASSIFIER, (32, 32, 1))


def _npz_labelled_by(path, classifier, shape, count=24):
    """An .npz of `count` train and `count` test images of `shape`, labelled with `classifier`'s own predictions."""
    rng = np.random.default_rng(0)
    x = (_colour_images(2 * count, size=shape[0]) * 255).round().astype(np.uint8)
    if shape[-1] == 1:
        x = (rng.uniform(size=(2 * count, *shape)) ** 3 * 255).astype(np.uint8)
    labels = np.argmax(np.asarray(classifier(x.astype(np.float32) / 255.0)), axis=-1)
    np.savez(path, x_train=x[:count], y_train=labels[:count], x_test=x[count:], y_test=labels[count:])
    return str(path)


@pytest.mark.parametrize(
    "shape, shipped", [((28, 28, 1), SHIPPED_CLASSIFIER), ((32, 32, 3), SHIPPED_CIFAR10_CLASSIFIER), ((64, 64, 3), SHIPPED_CIFAR10_CLASSIFIER)]
)
def test_each_shape_of_data_gets_the_shipped_classifier_of_its_domain(tmp_path, shape, shipped):
    # Labelled by the right classifier's own predictions, the data is "its domain": 100% held-out accuracy.
    source = _npz_labelled_by(tmp_path / "data.npz", load_classifier(shipped, shape), shape)
    splits = load_dataset(source, validation_size=8, seed=0)
    choice, reason = choose_classifier(None, splits, str(tmp_path / "run"))
    assert choice.origin == "shipped" and choice.path == shipped, reason
    assert choice.heldout_accuracy >= 0.95 and choice.heldout_size == 24
    if shape == (64, 64, 3):
        assert choice.resized == "64x64 images are resized to its 32x32 input (antialiased)" and "resized" in choice.summary()
    else:
        assert choice.resized is None


def test_colour_data_the_cifar10_classifier_does_not_know_gets_none_without_training(tmp_path):
    classifier = load_classifier(SHIPPED_CIFAR10_CLASSIFIER, (32, 32, 3))
    source = _npz_labelled_by(tmp_path / "data.npz", classifier, (32, 32, 3))
    data = dict(np.load(source))
    data["y_test"] = (data["y_test"] + 1) % 10  # every held-out label wrong
    np.savez(tmp_path / "wrong.npz", **data)
    splits = load_dataset(str(tmp_path / "wrong.npz"), validation_size=8, seed=0)
    choice, reason = choose_classifier(None, splits, str(tmp_path / "run"))
    assert choice is None
    assert "the shipped CIFAR-10 classifier does not serve this data (it classifies only 0.0%" in reason
    assert "the shipped digit classifier does not serve this data (it takes 1-channel images and the data has 3)" in reason
