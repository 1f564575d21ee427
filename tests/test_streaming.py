"""Tests for uint8 pipelines and distribution-ready datasets.

The uint8 pipeline must give the float32 batches the float pipeline gave, bit for bit
(resumed runs and shipped models depend on it). Everything is tiny and written into
`tmp_path`.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from kerasgen.data import load_arrays, load_dataset
from kerasgen.data import pipeline
from kerasgen.data.pipeline import binarize_once, split_indices, to_unit_images

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
fold_in = tf.random.experimental.stateless_fold_in


def batches(dataset):
    """The `(images, labels)` numpy batches of one pass over `dataset`."""
    return list(dataset.as_numpy_iterator())


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


def test_every_dataset_shards_by_data(tmp_path):
    np.savez(tmp_path / "data.npz", x_train=np.zeros((8, 4, 4), np.uint8), x_test=np.zeros((3, 4, 4), np.uint8))
    in_memory = load_dataset(str(tmp_path / "data.npz"), validation_size=2)
    for dataset in (in_memory.train, in_memory.train_from(2), in_memory.validation, in_memory.test):
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

    npz = sys.argv[1]
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
def test_mirrored_strategy_splits_each_global_batch_and_counts_epochs(tmp_path):
    """Two passes over a distributed training set are epochs 0 and 1; replica 0 gets each batch's first rows."""
    ids = np.repeat(np.arange(24, dtype=np.uint8), 4).reshape(24, 2, 2)
    np.savez(tmp_path / "ids.npz", x_train=ids)  # 21 training images: batches of 5, 5, 5, 5, 1
    (tmp_path / "distributed.py").write_text(DISTRIBUTED)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, str(tmp_path / "distributed.py"), str(tmp_path / "ids.npz")],
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
