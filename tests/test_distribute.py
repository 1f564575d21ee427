"""tf.distribute: 2 replicas train exactly as one device, draw their own noise, KID agrees, and
two worker processes train as one process does, with only the chief writing.

The cases run in one subprocess (`tests/distributed_cases.py`) that configures 2 logical CPU
devices before TensorFlow starts and trains each model twice, on one device and under
`MirroredStrategy`, with the same seed and global batch of 16 over 65 images (so the last global
batch has 1 image and one replica gets none).

Tolerance: the two runs draw the same noise for the same images (each replica takes its rows of
one draw for the global batch), so they differ only in float32 summation order (a batch's sum in
two halves, then all-reduced). One rounding is ~6e-8 relative; after 15 Adam steps (3 epochs)
the largest weight difference measured was 6e-7 and the largest relative metric difference 1e-7;
the test runs 10 steps (2 epochs) and allows 1e-5, more than ten times that; a wrong global mean (a ragged shard weighted as a full one, gradients
counted twice) or shared noise moves the metrics by 1e-3 or more, and an empty shard's NaN
would fail outright.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

TOLERANCE = 1e-5
CASES = os.path.join(os.path.dirname(__file__), "distributed_cases.py")
WORKER = os.path.join(os.path.dirname(__file__), "multi_worker_cases.py")


@pytest.fixture(scope="module")
def results():
    completed = subprocess.run(
        [sys.executable, CASES], capture_output=True, text=True, timeout=600, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)


@pytest.mark.parametrize("kind", ["vae", "iwae", "gan", "vaegan", "aae", "classifier"])
def test_two_replicas_follow_the_one_device_trajectory(results, kind):
    (one_history, one_weights), (two_history, two_weights) = (
        results[kind]["one_device"],
        results[kind]["two_replicas"],
    )
    assert one_history.keys() == two_history.keys()
    for name in one_history:
        one, two = np.array(one_history[name]), np.array(two_history[name])
        assert np.all(np.isfinite(two)), (name, two)
        np.testing.assert_allclose(two, one, rtol=TOLERANCE, atol=TOLERANCE, err_msg=name)
    # The training moved the weights far more than the two runs differ.
    for one, two in zip(one_weights, two_weights):
        np.testing.assert_allclose(np.array(two), np.array(one), atol=TOLERANCE)


def test_replicas_draw_their_own_noise(results):
    one, two = results["draws"]["one_device"], results["draws"]["two_replicas"]
    for name in ("gan_z", "vae_z"):
        first, second = (np.array(rows) for rows in two[name])
        assert first.shape == second.shape == (8, 2)
        assert not np.any(np.isclose(first, second)), name
        # Together the replicas draw what one device draws for the same global batch.
        np.testing.assert_allclose(np.concatenate([first, second]), np.array(one[name][0]), atol=1e-6)
    # Keras layers' own generators (dropout, augmentation) get the replica id folded in.
    first_seed, second_seed = two["dropout_seed"]
    assert first_seed != second_seed


def test_kid_metric_is_the_same_on_one_and_two_replicas(results):
    one, two = results["kid"]["one_device"], results["kid"]["two_replicas"]
    assert np.isfinite(one) and one > 0.1
    np.testing.assert_allclose(two, one, rtol=TOLERANCE)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_worker_processes_train_as_one_process_and_only_the_chief_writes(tmp_path):
    """Two `--strategy multi-worker` processes on 127.0.0.1 against one process with the same flags:
    a Gaussian and a Bernoulli VAE (2 epochs) and a GAN, through the run harness and the real data
    pipeline (epoch-keyed order and binarization noise). The workers hold the same weights, bit for
    bit, and end within float round-off (TOLERANCE, as for 2 replicas) of the one process. Before
    the workers built the model without reading a batch, they trained their first epoch on the
    data's second epoch: the Gaussian VAE's first-step loss was off by 78 nats."""
    rng = np.random.default_rng(0)
    data = tmp_path / "grey.npz"
    np.savez(data, x=(rng.uniform(size=(69, 8, 8, 1)) ** 2 * 255).astype("uint8"))  # Unlabelled, not digits.
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    processes = []
    for name, strategy, index in (("worker0", "multi-worker", 0), ("worker1", "multi-worker", 1), ("one", "default", None)):
        scratch = tmp_path / f"tmp_{name}"
        scratch.mkdir()
        env = {**os.environ, "TMPDIR": str(scratch), "CUDA_VISIBLE_DEVICES": ""}
        if index is not None:
            env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        out = tmp_path / ("out" if strategy == "multi-worker" else "one")
        command = [sys.executable, WORKER, strategy, str(data), str(out), str(tmp_path / f"{name}.npz")]
        log = open(tmp_path / f"{name}.log", "w")
        processes.append((name, subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    for name, process, log in processes:
        assert process.wait(timeout=600) == 0, (tmp_path / f"{name}.log").read_text()[-3000:]
        log.close()

    chief, other, one = (np.load(tmp_path / f"{name}.npz") for name in ("worker0", "worker1", "one"))
    values = [name for name in chief.files if not name.endswith("_out")]
    assert len([name for name in values if "_weight_" in name]) > 30
    assert {"vae_history_elbo", "bernoulli_history_elbo", "gan_history_g_loss"} <= set(values)
    for name in values:
        np.testing.assert_array_equal(chief[name], other[name], err_msg=name)
        np.testing.assert_allclose(chief[name], one[name], rtol=TOLERANCE, atol=TOLERANCE, err_msg=name)
    # The chief wrote the runs into OUT; the other worker into a temporary folder, gone at its exit.
    for stage, model_file in (("vae", "vae.keras"), ("bernoulli", "vae.keras"), ("gan", "gan.keras")):
        assert str(chief[f"{stage}_out"]) == str(tmp_path / "out" / stage)
        assert str(other[f"{stage}_out"]).startswith(str(tmp_path / "tmp_worker1"))
        for name in (model_file, "config.json", "history.csv", "checkpoint", "saved_model", "samples"):
            assert (tmp_path / "out" / stage / name).exists(), (stage, name)
    assert sorted(os.listdir(tmp_path / "out")) == ["bernoulli", "gan", "vae"]
    assert os.listdir(tmp_path / "tmp_worker1") == []


@pytest.mark.parametrize(
    "tf_config, message",
    [
        ("{not json", "TF_CONFIG must be JSON"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}', "must name one of the 1 workers"),
        ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "non-empty list"),
    ],
)
def test_a_malformed_tf_config_is_refused_with_what_was_received(tf_config, message):
    from kerasgen.distribute import check_tf_config

    with pytest.raises(ValueError, match=message) as error:
        check_tf_config({"TF_CONFIG": tf_config})
    assert "Received: " in str(error.value)


def test_a_mirrored_run_resumes_under_its_strategy_to_the_uninterrupted_result(tmp_path):
    import keras

    from kerasgen.cli import main

    grey_npz = str(tmp_path / "grey.npz")  # 12x8, unlabelled
    np.savez(grey_npz, images=(np.random.default_rng(0).uniform(size=(56, 12, 8)) * 255).astype("uint8"))
    # Two replicas (the logical CPUs of conftest.py), uneven shares (a global batch of 5).
    args = ["train-vae", "--dataset", grey_npz, "--num-filters", "4", "--hidden-dim", "8", "--latent-dim", "2",
            "--batch-size", "5", "--validation-size", "16", "--lr-schedule", "constant", "--strategy", "mirrored"]
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    assert main([*args, "--epochs", "3", "--out", straight]) == 0
    assert main([*args, "--epochs", "2", "--out", resumed]) == 0
    assert main([*args, "--epochs", "3", "--out", resumed, "--resume"]) == 0
    config = json.loads((tmp_path / "resumed" / "config.json").read_text())
    assert config["environment"]["replicas"] == 2
    weights = [keras.saving.load_model(os.path.join(run, "vae.keras")).get_weights() for run in (straight, resumed)]
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_an_empty_shard_gets_the_layers_own_shapes_and_zero_gradients():
    """A global batch of 1 image over 2 replicas: the empty replica's outputs have the network's
    shape and its gradients are zeros of the weights' shapes. With the stock layers and oneDNN on
    (x86 CPUs), `Conv2D` gave an empty batch the input's shape and `MaxPool`'s gradient aborted."""
    import keras
    import tensorflow as tf

    from kerasgen import distribute
    from kerasgen.layers import Conv2D, Conv2DTranspose, MaxPooling2D

    strategy = distribute.get_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        network = keras.Sequential([
            keras.Input((8, 8, 1)),
            Conv2D(4, 4, strides=2, padding="same", activation="swish"),
            MaxPooling2D(2, padding="same"),
            Conv2DTranspose(3, 4, strides=2, padding="same", activation="swish"),
            Conv2D(2, 3, padding="same"),
        ])

    def step(x):
        with tf.GradientTape() as tape:
            y = network(x)
            loss = tf.reduce_sum(y**2)
        return tf.shape(y), tape.gradient(loss, network.trainable_variables)

    images = tf.data.Dataset.from_tensor_slices(np.ones((1, 8, 8, 1), "float32")).batch(1)
    shapes, gradients = strategy.run(tf.function(step), args=(next(iter(strategy.experimental_distribute_dataset(images))),))
    assert [list(s) for s in strategy.experimental_local_results(shapes)] == [[1, 4, 4, 2], [0, 4, 4, 2]]
    for gradient, variable in zip(gradients, network.trainable_variables):
        full, empty = (np.asarray(g) for g in strategy.experimental_local_results(gradient))
        assert full.shape == empty.shape == tuple(variable.shape)
        assert not np.any(empty)
    assert any(np.any(np.asarray(strategy.experimental_local_results(g)[0])) for g in gradients)


def test_discriminator_dropout_draws_its_own_mask_on_each_replica():
    """Under 2 replicas (conftest's 2 logical CPUs) the discriminator's dropout drops different units
    on each; the stock Keras layer, whose seed state is mirrored, drops the same ones on both."""
    import keras
    import tensorflow as tf

    from kerasgen import distribute, layers
    from kerasgen.networks import build_discriminator

    strategy = distribute.get_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        discriminator = build_discriminator((8, 8, 1), num_filters=(4,), dropout=0.5)
        stock = keras.layers.Dropout(0.5, seed=7)
    (ours,) = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.Dropout)]
    assert isinstance(ours, layers.Dropout)

    def step():
        ones = tf.ones((4, 64))
        return ours(ones, training=True), stock(ones, training=True)

    masks = strategy.run(tf.function(step))
    (first, second), (stock_first, stock_second) = (
        [np.asarray(m) for m in strategy.experimental_local_results(mask)] for mask in masks
    )
    assert 0 < np.mean(first == 0) < 1 and 0 < np.mean(second == 0) < 1
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(stock_first, stock_second)
    # On one device it is the stock layer: the same seed drops the same units.
    ones = tf.ones((4, 64))
    np.testing.assert_array_equal(
        layers.Dropout(0.5, seed=3)(ones, training=True), keras.layers.Dropout(0.5, seed=3)(ones, training=True)
    )
    # And it survives a round trip as itself.
    restored = keras.layers.deserialize(keras.layers.serialize(layers.Dropout(0.25, seed=3)))
    assert type(restored) is layers.Dropout and restored.rate == 0.25


def test_fit_under_a_strategy_trains_its_first_epoch_on_the_datas_first_epoch(tmp_path):
    """Keras builds a distributed model from a batch it reads and throws away; kerasgen's training
    set numbers its passes as epochs, so that read made a strategy run start on epoch 1's order.
    `FirstReplicaBuild` builds from the element spec instead and reads nothing."""
    import keras
    import tensorflow as tf

    from kerasgen import distribute
    from kerasgen.data import load_dataset

    data = tmp_path / "grey.npz"
    np.savez(data, x=(np.random.default_rng(1).uniform(size=(40, 6, 5)) * 255).astype("uint8"))
    splits = load_dataset(str(data), batch_size=8, validation_size=8, seed=2)
    epochs = [[float(tf.reduce_sum(x)) for x, _ in splits.train_from(epoch)] for epoch in (0, 1)]

    class BatchSums(distribute.FirstReplicaBuild, keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(keras.ops.reshape(x, (-1, 30)))

        def train_step(self, data):
            x, _ = data
            share = distribute.replica_share(tf.cast(tf.shape(x)[0], tf.float32))
            return {"sum": distribute.global_mean(tf.reduce_sum(x) / share, share)}

    seen = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(float(logs["sum"])))
    strategy = distribute.get_strategy("mirrored")
    with strategy.scope():
        model = BatchSums()
        model.compile(optimizer="sgd")
    model.fit(splits.train, epochs=2, verbose=0, callbacks=[record])
    assert model.built
    np.testing.assert_allclose(seen, epochs[0] + epochs[1], rtol=1e-5)
    assert not np.allclose(epochs[0], epochs[1])


def test_a_spec_of_unknown_rank_builds_from_a_batch_instead():
    import tensorflow as tf

    from kerasgen.distribute import _symbolic_batch

    known = _symbolic_batch((tf.TensorSpec((None, 4, 4, 1), tf.float32), tf.TensorSpec((None,), tf.int64)))
    assert [tuple(t.shape) for t in known] == [(None, 4, 4, 1), (None,)] and known[1].dtype == "int64"
    assert _symbolic_batch(tf.TensorSpec(None, tf.float32)) is None
