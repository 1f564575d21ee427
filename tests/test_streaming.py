"""Tests for uint8 pipelines, distribution-ready datasets and `load_dataset(stream=True)`.

The uint8 pipeline must give the float32 batches the float pipeline gave, bit for bit
(resumed runs and shipped models depend on it); a streamed source must give the images
the in-memory path gives. Everything is tiny and written into `tmp_path`; tfds datasets
are generated locally or mocked, so nothing is downloaded.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from kerasgen.data import load_arrays, load_dataset
from kerasgen.data import pipeline
from kerasgen.data.pipeline import binarize_once, split_indices, to_unit_images
from kerasgen.data.sources import open_lazily

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
fold_in = tf.random.experimental.stateless_fold_in


def batches(dataset):
    """The `(images, labels)` numpy batches of one pass over `dataset`."""
    return list(dataset.as_numpy_iterator())


def write_png(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(str(path), tf.io.encode_png(image))


def rows(images):
    """Images as sorted byte rows: equal for two arrays holding the same images in any order."""
    return sorted(image.tobytes() for image in np.asarray(images))


# ----------------------------------------------------------------------------
# uint8 in memory, float32 batches bit-identical to the float pipeline


def reference_epoch(x, y, batch_size, seed, dynamic, epoch):
    """Epoch `epoch` as the float pipeline made it: its ops, eagerly, on float32 arrays."""
    images, labels = tf.constant(x), tf.constant(y)
    key = fold_in(tf.constant([seed, 1], tf.int64), tf.constant(epoch, tf.int64))
    order = tf.argsort(tf.random.stateless_uniform([len(x)], seed=fold_in(key, 0)))
    noise_key = fold_in(key, 1)
    result = []
    for step, start in enumerate(range(0, len(x), batch_size)):
        index = order[start : start + batch_size]
        batch = tf.gather(images, index)
        if dynamic:
            noise = tf.random.stateless_uniform(tf.shape(batch), seed=fold_in(noise_key, tf.constant(step, tf.int64)))
            batch = tf.cast(noise < batch, tf.float32)
        result.append((batch.numpy(), tf.gather(labels, index).numpy()))
    return result


def assert_same_batches(actual, expected):
    assert len(actual) == len(expected)
    for (images, labels), (expected_images, expected_labels) in zip(actual, expected):
        assert images.dtype == np.float32
        np.testing.assert_array_equal(images, expected_images, strict=True)
        np.testing.assert_array_equal(labels, expected_labels)


def test_to_unit_images_divides_as_numpy_does():
    levels = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(
        to_unit_images(levels.reshape(1, 16, 16))[0, ..., 0], (levels.astype(np.float32) / 255).reshape(16, 16), strict=True
    )


@pytest.mark.parametrize("binarize", ["none", "static", "dynamic"])
def test_mnist_batches_equal_the_float_reference_bit_for_bit(binarize):
    seed, batch_size = 3, 500
    data = load_dataset(binarize=binarize, seed=seed, batch_size=batch_size)
    raw = load_arrays("mnist-5k")
    x, y = to_unit_images(raw.x_train), raw.y_train.astype(np.int32)
    train_index, validation_index = split_indices(len(x), 500, y, seed)
    x_train, y_train = x[train_index], y[train_index]
    x_validation, y_validation = x[validation_index], y[validation_index]
    if binarize == "static":
        x_train = binarize_once(x_train, seed, 1)
    dynamic = binarize == "dynamic"

    first, second = batches(data.train), batches(data.train)
    assert_same_batches(first, reference_epoch(x_train, y_train, batch_size, seed, dynamic, 0))
    assert_same_batches(second, reference_epoch(x_train, y_train, batch_size, seed, dynamic, 1))
    assert_same_batches(batches(data.train_from(1)), reference_epoch(x_train, y_train, batch_size, seed, dynamic, 1))

    np.testing.assert_array_equal(data.unbinarized_heldout, x_validation, strict=True)
    if binarize != "none":
        x_validation = binarize_once(x_validation, seed, 2)
    validation_images, validation_labels = map(np.concatenate, zip(*batches(data.validation)))
    np.testing.assert_array_equal(validation_images, x_validation, strict=True)
    np.testing.assert_array_equal(validation_labels, y_validation)


@pytest.mark.parametrize(
    "x, stored",
    [
        (np.arange(256 * 4, dtype=np.int64).reshape(16, 8, 8) % 256, np.uint8),  # every grey level
        (np.arange(16 * 64).reshape(16, 8, 8) % 2 == 1, np.uint8),  # booleans
        ((np.arange(16 * 64).reshape(16, 8, 8) % 2).astype(np.uint8), np.uint8),  # binary uint8
        (np.arange(16 * 64, dtype=np.int16).reshape(16, 8, 8) % 256, np.uint8),
        (np.arange(16 * 64, dtype=np.float64).reshape(16, 8, 8) % 256, np.float32),  # float 0..255
        (np.linspace(0, 1, 16 * 64, dtype=np.float32).reshape(16, 8, 8), np.float32),
    ],
)
def test_every_source_dtype_gives_the_float_reference(tmp_path, x, stored):
    np.savez(tmp_path / "data.npz", x_train=x, x_test=x[:5])
    seed, batch_size = 1, 5
    raw = load_arrays(str(tmp_path / "data.npz"))
    assert pipeline._stored_arrays(raw, None)[0].values.dtype == stored  # uint8 kept uint8
    data = load_dataset(str(tmp_path / "data.npz"), validation_size=4, batch_size=batch_size, seed=seed)
    reference = to_unit_images(x)
    train_index, _ = split_indices(16, 4, None, seed)
    labels = np.full(12, -1, np.int32)
    assert_same_batches(batches(data.train), reference_epoch(reference[train_index], labels, batch_size, seed, False, 0))
    np.testing.assert_array_equal(data.unbinarized_heldout, reference[:5], strict=True)
    np.testing.assert_array_equal(np.concatenate([i for i, _ in batches(data.test)]), reference[:5], strict=True)


def test_static_binarization_is_stored_as_uint8_and_drawn_as_before():
    pixels = pipeline._Pixels(np.arange(5000 * 4, dtype=np.int64).reshape(5000, 2, 2, 1) % 256, pipeline._GREY_LEVELS)
    binary = pixels.binarized(seed=7, stream=2)  # more than one chunk of 4096 images
    assert binary.values.dtype == np.uint8
    np.testing.assert_array_equal(binary.unit(), binarize_once(pixels.unit(), 7, 2), strict=True)


# ----------------------------------------------------------------------------
# Distribution


@pytest.fixture
def id_folder(tmp_path):
    """15 RGB 12x20 PNGs in 3 class folders; image i has every pixel (i, 2i, 3i)."""
    folder = tmp_path / "images"
    for i in range(15):
        write_png(folder / f"class_{i % 3}" / f"{i:02d}.png", np.tile(np.uint8([i, 2 * i, 3 * i]), (12, 20, 1)))
    return str(folder)


def test_every_dataset_shards_by_data(tmp_path, id_folder):
    np.savez(tmp_path / "data.npz", x_train=np.zeros((8, 4, 4), np.uint8), x_test=np.zeros((3, 4, 4), np.uint8))
    in_memory = load_dataset(str(tmp_path / "data.npz"), validation_size=2)
    streamed = load_dataset(id_folder, validation_size=3, stream=True)
    for dataset in (in_memory.train, in_memory.train_from(2), in_memory.validation, in_memory.test,
                    streamed.train, streamed.train_from(2), streamed.validation):
        policy = dataset.options().experimental_distribute.auto_shard_policy
        assert policy == tf.data.experimental.AutoShardPolicy.DATA


DISTRIBUTED = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from kerasgen.data import load_dataset

    npz, folder = sys.argv[1:]
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    ids = lambda images: np.round(images[:, 0, 0, 0] * 255).astype(int).tolist()

    def passes(data):
        dataset = strategy.experimental_distribute_dataset(data.train)
        return [
            [[ids(part.numpy()) for part in strategy.experimental_local_results(images)] for images, _ in dataset]
            for _ in range(2)
        ]

    def single(dataset):
        return [ids(images) for images, _ in dataset.as_numpy_iterator()]

    result = {}
    for name, load in [
        ("outside", lambda: load_dataset(npz, validation_size=3, batch_size=5, seed=1)),
        ("folder", lambda: load_dataset(folder, validation_size=3, batch_size=5, seed=1, stream=True)),
    ]:
        data = load()
        result[name] = {"passes": passes(data), "epochs": [single(data.train_from(0)), single(data.train_from(1))]}
    with strategy.scope():  # The pass counter is then a mirrored variable.
        data = load_dataset(npz, validation_size=3, batch_size=5, seed=1)
    result["inside"] = {"passes": passes(data), "epochs": [single(data.train_from(0)), single(data.train_from(1))]}
    print(json.dumps(result))
    """
)


@pytest.mark.slow  # A subprocess: logical devices must be set before TensorFlow starts.
def test_mirrored_strategy_splits_each_global_batch_and_counts_epochs(tmp_path, id_folder):
    """Two passes over a distributed training set are epochs 0 and 1; replica 0 gets each batch's first rows."""
    ids = np.repeat(np.arange(24, dtype=np.uint8), 4).reshape(24, 2, 2)
    np.savez(tmp_path / "ids.npz", x_train=ids)  # 21 training images: batches of 5, 5, 5, 5, 1
    (tmp_path / "distributed.py").write_text(DISTRIBUTED)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, str(tmp_path / "distributed.py"), str(tmp_path / "ids.npz"), id_folder],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    for name, run in found.items():
        for distributed_pass, epoch in zip(run["passes"], run["epochs"]):
            assert [first + second for first, second in distributed_pass] == epoch, name
        assert run["epochs"][0] != run["epochs"][1], name
    # A ragged global batch is split as evenly as it can be, the larger part first: 5 -> 3 + 2,
    # 1 -> 1 + 0 (the second replica gets an empty batch).
    assert [[len(first), len(second)] for first, second in found["outside"]["passes"][0]] == [[3, 2]] * 4 + [[1, 0]]


# ----------------------------------------------------------------------------
# Streaming an image folder


def test_streamed_folder_gives_the_in_memory_batches(id_folder):
    in_memory = load_dataset(id_folder, validation_size=3, batch_size=4, seed=2)
    streamed = load_dataset(id_folder, validation_size=3, batch_size=4, seed=2, stream=True)
    for field in ("image_shape", "num_classes", "num_train", "num_validation", "num_test"):
        assert getattr(streamed, field) == getattr(in_memory, field), field
    assert streamed.image_shape == (12, 20, 3) and streamed.num_train == 12 and streamed.test is None
    assert "12 train images streamed" in streamed.description
    # The same split, the same order every epoch: the very same batches.
    assert_same_batches(batches(streamed.validation), batches(in_memory.validation))
    np.testing.assert_array_equal(streamed.unbinarized_heldout, in_memory.unbinarized_heldout, strict=True)
    first, second = batches(streamed.train), batches(streamed.train)
    assert_same_batches(first, batches(in_memory.train))
    assert_same_batches(second, batches(in_memory.train))
    assert_same_batches(batches(streamed.train_from(1)), second)
    assert not np.array_equal(first[0][0], second[0][0])


@pytest.mark.parametrize("binarize", ["dynamic", "static"])
def test_streamed_folder_binarizes_grayscale_images(tmp_path, binarize):
    # Unlabelled grey images of two sizes, resized on read.
    for i in range(10):
        write_png(tmp_path / f"{i}.png", np.full((6 + i % 2, 5, 1), 20 * i, np.uint8))
    options = dict(validation_size=2, batch_size=3, seed=4, image_size=(6, 5), binarize=binarize)
    in_memory = load_dataset(str(tmp_path), **options)
    streamed = load_dataset(str(tmp_path), stream=True, **options)
    assert streamed.num_classes is None and streamed.image_shape == (6, 5, 1)
    assert_same_batches(batches(streamed.validation), batches(in_memory.validation))
    first, second = batches(streamed.train), batches(streamed.train)
    assert set(np.unique(np.concatenate([images for images, _ in first]))) <= {0.0, 1.0}
    if binarize == "dynamic":  # The same draws as in memory, epoch after epoch.
        assert_same_batches(first, batches(in_memory.train))
        assert_same_batches(second, batches(in_memory.train))
    else:  # Drawn once per image (keyed by its index): the same images every epoch.
        assert rows(np.concatenate([i for i, _ in first])) == rows(np.concatenate([i for i, _ in second]))
    assert_same_batches(batches(streamed.train_from(1)), second)


def test_streamed_folder_reads_its_files_lazily(id_folder):
    streamed = load_dataset(id_folder, validation_size=3, batch_size=4, seed=2, stream=True)
    files = open_lazily(id_folder)
    train_index, _ = split_indices(15, 3, files.labels, 2)
    changed = files.paths(train_index[:1])[0]
    write_png(changed, np.full((12, 20, 3), 255, np.uint8))  # after load_dataset
    images = np.concatenate([images for images, _ in batches(streamed.train)])
    assert (images == 1.0).all(axis=(1, 2, 3)).sum() == 1


def test_streamed_folder_names_a_bad_file(id_folder):
    files = open_lazily(id_folder)
    train_index, validation_index = split_indices(15, 3, files.labels, 2)
    streamed = load_dataset(id_folder, validation_size=3, batch_size=4, seed=2, stream=True)
    # A training file is read on first read, not at load: the error comes then and names it.
    garbage, wrong_shape = files.paths(train_index[:2])
    with open(garbage, "wb") as f:
        f.write(b"not an image")
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"Could not decode image file.*{os.path.basename(garbage)}"):
        batches(streamed.train)
    write_png(garbage, np.zeros((12, 20, 3), np.uint8))
    write_png(wrong_shape, np.zeros((12, 21, 3), np.uint8))
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=rf"share one shape, \(12, 20, 3\).*\[12 21 3\].*image_size=\(height, width\).*{os.path.basename(wrong_shape)}",
    ):
        batches(streamed.train)
    # A held-out file is read at load: a ValueError naming it.
    held_out = files.paths(validation_index[:1])[0]
    with open(held_out, "wb") as f:
        f.write(b"not an image")
    with pytest.raises(ValueError, match=rf"Could not decode image file.*{os.path.basename(held_out)}"):
        load_dataset(id_folder, validation_size=3, seed=2, stream=True)


def test_stream_must_be_a_bool(tmp_path):
    np.savez(tmp_path / "data.npz", x_train=np.zeros((8, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"stream must be True or False\. Received: stream='yes'"):
        load_dataset(str(tmp_path / "data.npz"), stream="yes")
    # An .npz is read into memory either way.
    streamed = load_dataset(str(tmp_path / "data.npz"), validation_size=2, stream=True)
    in_memory = load_dataset(str(tmp_path / "data.npz"), validation_size=2)
    assert streamed.num_train == 6 and streamed.description == in_memory.description
    assert_same_batches(batches(streamed.train), batches(in_memory.train))


# ----------------------------------------------------------------------------
# Streaming a tfds dataset


class StreamDigits(tfds.core.GeneratorBasedBuilder):
    """4x4 grey images with every pixel 10 * index, in train (16), validation (3) and test (2) splits."""

    VERSION = tfds.core.Version("1.0.0")
    SPLITS = {"train": (0, 16), "validation": (16, 19), "test": (19, 21)}

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {"image": tfds.features.Image(shape=(4, 4, 1)), "label": tfds.features.ClassLabel(num_classes=3)}
            ),
        )

    def _split_generators(self, dl_manager):
        return {name: self._generate_examples(*bounds) for name, bounds in self.SPLITS.items()}

    def _generate_examples(self, start, stop):
        for i in range(start, stop):
            yield i, {"image": np.full((4, 4, 1), 10 * i, np.uint8), "label": i % 3}


class StreamDigitsWithoutValidation(StreamDigits):
    SPLITS = {"train": (0, 16), "test": (19, 21)}


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    """A data_dir where both datasets are prepared, once for the module."""
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    for name in ("stream_digits", "stream_digits_without_validation"):
        tfds.builder(name, data_dir=data_dir).download_and_prepare()
    return data_dir


def test_streamed_tfds_gives_the_in_memory_images(tfds_dir):
    options = dict(batch_size=5, seed=1, data_dir=tfds_dir)
    in_memory = load_dataset("tfds:stream_digits", **options)
    streamed = load_dataset("tfds:stream_digits", stream=True, **options)
    for field in ("image_shape", "num_classes", "num_train", "num_validation", "num_test"):
        assert getattr(streamed, field) == getattr(in_memory, field), field
    assert (streamed.num_train, streamed.num_validation, streamed.num_test) == (16, 3, 2)
    assert_same_batches(batches(streamed.validation), batches(in_memory.validation))
    assert_same_batches(batches(streamed.test), batches(in_memory.test))
    np.testing.assert_array_equal(streamed.unbinarized_heldout, in_memory.unbinarized_heldout, strict=True)
    expected = rows(np.concatenate([images for images, _ in batches(in_memory.train)]))
    first, second = batches(streamed.train), batches(streamed.train)
    for epoch in (first, second):
        images, labels = map(np.concatenate, zip(*epoch))
        assert rows(images) == expected
        np.testing.assert_array_equal(labels, np.round(images[:, 0, 0, 0] * 25.5).astype(int) % 3)
    assert [len(images) for images, _ in first] == [5, 5, 5, 1]
    assert not np.array_equal(np.concatenate([i for i, _ in first]), np.concatenate([i for i, _ in second]))
    assert_same_batches(batches(streamed.train_from(1)), second)


def test_streamed_tfds_resizes_as_in_memory(tfds_dir):
    options = dict(batch_size=16, seed=1, data_dir=tfds_dir, image_size=(6, 5))
    in_memory = load_dataset("tfds:stream_digits", **options)
    streamed = load_dataset("tfds:stream_digits", stream=True, **options)
    assert streamed.image_shape == (6, 5, 1)
    assert_same_batches(batches(streamed.test), batches(in_memory.test))
    (images, _), = batches(streamed.train)
    assert images.shape == (16, 6, 5, 1)
    assert rows(images) == rows(batches(in_memory.train)[0][0])


def test_streamed_tfds_order_ignores_the_global_seed(tfds_dir):
    def first_epoch():
        data = load_dataset("tfds:stream_digits", batch_size=16, data_dir=tfds_dir, stream=True)
        return batches(data.train)

    expected = first_epoch()
    tf.random.set_seed(123)
    assert_same_batches(first_epoch(), expected)


def test_streamed_tfds_without_validation_split_holds_out_its_first_examples(tfds_dir):
    streamed = load_dataset(
        "tfds:stream_digits_without_validation", validation_size=4, batch_size=16, data_dir=tfds_dir, stream=True
    )
    builder = tfds.builder("stream_digits_without_validation", data_dir=tfds_dir)
    in_file_order = np.stack([example["image"] for example in tfds.as_numpy(builder.as_dataset(split="train"))])
    validation = np.concatenate([images for images, _ in batches(streamed.validation)])
    np.testing.assert_array_equal(validation, to_unit_images(in_file_order[:4]), strict=True)
    (train, _), = batches(streamed.train)
    assert rows(train) == rows(to_unit_images(in_file_order[4:]))
    assert (streamed.num_train, streamed.num_validation, streamed.num_test) == (12, 4, 2)
    with pytest.raises(ValueError, match=r"at least one validation and one training image out of the 16"):
        load_dataset("tfds:stream_digits_without_validation", validation_size=16, data_dir=tfds_dir, stream=True)


def test_streamed_tfds_with_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=12):
        raw = load_arrays("tfds:mnist", data_dir=str(tmp_path))
        in_memory = load_dataset("tfds:mnist", validation_size=4, batch_size=5, data_dir=str(tmp_path))
        streamed = load_dataset("tfds:mnist", validation_size=4, batch_size=5, data_dir=str(tmp_path), stream=True)
        first, second = batches(streamed.train), batches(streamed.train)
        resumed = batches(streamed.train_from(1))
    assert streamed.image_shape == (28, 28, 1) and streamed.num_classes == 10
    # Mock data serves every split whole, slices too: 'train[4:]' is all 12 training images.
    assert streamed.num_train == 12 and streamed.num_test == 12
    expected = rows(to_unit_images(raw.x_train))
    for epoch in (first, second):
        assert rows(np.concatenate([images for images, _ in epoch])) == expected
    in_memory_train = rows(np.concatenate([images for images, _ in batches(in_memory.train)]))
    assert set(in_memory_train) <= set(expected)
    assert_same_batches(resumed, second)
    np.testing.assert_array_equal(streamed.unbinarized_heldout, in_memory.unbinarized_heldout, strict=True)


def test_streamed_split_folders_give_the_in_memory_batches(tmp_path):
    # Mixed modes and sizes too: RGB train images of two sizes, a grey validation image.
    for i in range(7):
        write_png(tmp_path / "train" / f"c{i % 2}" / f"{i}.png", np.full((4 + (i == 6), 6, 3), 9 * i, np.uint8))
    for split, value in (("validation", 100), ("test", 200)):
        for c in range(2):
            write_png(tmp_path / split / f"c{c}" / "x.png", np.full((4, 6, 1 if split == "validation" else 3), value + c, np.uint8))
    options = dict(batch_size=3, seed=1)
    in_memory = load_dataset(str(tmp_path), **options)
    streamed = load_dataset(str(tmp_path), stream=True, **options)
    assert streamed.image_shape == in_memory.image_shape == (4, 6, 3)
    assert (streamed.num_train, streamed.num_validation, streamed.num_test) == (7, 2, 2)
    assert_same_batches(batches(streamed.validation), batches(in_memory.validation))
    assert_same_batches(batches(streamed.test), batches(in_memory.test))
    assert_same_batches(batches(streamed.train), batches(in_memory.train))
    np.testing.assert_array_equal(batches(streamed.validation)[0][0][1], np.full((4, 6, 3), 101 / 255, np.float32))
