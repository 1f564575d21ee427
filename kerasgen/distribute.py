"""tf.distribute for kerasgen: strategies by name, per-replica randomness, global-batch means, the chief.

Keras runs `train_step` once per replica on that replica's share of the global batch, then sums
the gradients. What a hand-written step must then get right, and this module does once:

- **Randomness.** A `keras.random.SeedGenerator` keeps its state in a mirrored variable, so every
  replica gets the same seed. `global_batch_rows` gives each replica its own rows of one draw made
  for the whole global batch (N replicas draw exactly what one device draws for the same batch);
  `ReplicaSeedGenerator` folds the replica id into the seed, for Keras layers that draw their own.
- **Losses.** Each replica's loss is its share of the global batch's mean, Σ_replica w·ℓ / Σ_global w
  (`replica_share`), so the summed gradient is the gradient of the global mean, ragged last batch
  and empty shards included. (`tf.nn.compute_average_loss` divides by the local batch size times
  the number of replicas, which is wrong for a ragged batch.)
- **Decisions.** A value every replica must agree on (the VAE-GAN's equilibrium rule) is a mean
  over the global batch (`global_mean`), and an optimizer update taken conditionally runs its
  condition in the cross-replica context (`apply_if`): a `tf.cond` around an update fails there.
- **Writes.** Only the chief writes a run's files (`is_chief`); the other workers of a
  multi-worker job write into temporary folders, as tf.distribute expects (`worker_folder`).

Two Keras 3 bugs under a strategy are worked around here for kerasgen's models
(`FirstReplicaBuild`, `step_logs`); see their docstrings.
"""

import atexit
import functools
import json
import os
import shutil
import tempfile

import keras
import tensorflow as tf

from kerasgen import validate
from kerasgen.options import STRATEGIES


def get_strategy(name="default"):
    """The `tf.distribute.Strategy` a `--strategy` flag names.

    Args:
        name: `"default"` (one device, no strategy), `"mirrored"` (`MirroredStrategy` over every
            local GPU, else every logical CPU device: one, unless the process configured more) or
            `"multi-worker"` (`MultiWorkerMirroredStrategy`; each worker's `TF_CONFIG` names the
            cluster and its own task).

    Raises:
        ValueError: an unknown name, or `"multi-worker"` without a usable `TF_CONFIG`.
    """
    if validate.one_of("strategy", name, STRATEGIES) == "default":
        return tf.distribute.get_strategy()
    return _create_strategy(name)


@functools.cache
def _create_strategy(name):
    # One per process: a multi-worker strategy must exist before TensorFlow runs any op, and
    # every run of a pipeline uses the same one.
    return _STRATEGIES[name]()


def _mirrored():
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([device.name for device in devices])


def _multi_worker():
    check_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()


# The strategies that `_create_strategy` makes, one per name of `options.STRATEGIES` but "default".
_STRATEGIES = {"mirrored": _mirrored, "multi-worker": _multi_worker}


def check_tf_config(environ=os.environ):
    """Refuses a multi-worker launch whose `TF_CONFIG` cannot say which worker this is.

    Raises:
        ValueError: naming what is missing or malformed, with what was received.
    """
    text = environ.get("TF_CONFIG")
    example = (
        '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
    )
    if not text:
        raise ValueError(
            "--strategy multi-worker needs TF_CONFIG in each worker's environment, e.g. "
            f"TF_CONFIG='{example}' (index 0 on the chief, 1 on the next worker...). Received: no TF_CONFIG"
        )
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"TF_CONFIG must be JSON with cluster.worker (a list of host:port) and task.type/index, e.g. "
            f"{example}. Received: TF_CONFIG={text!r} ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(workers, list) or not workers or task.get("type") not in ("worker", "chief"):
        raise ValueError(
            f"TF_CONFIG's cluster.worker must be a non-empty list and task.type 'worker' or 'chief'. Received: TF_CONFIG={text!r}"
        )
    if task["type"] == "worker" and not 0 <= index < len(workers):
        raise ValueError(
            f"TF_CONFIG's task.index must name one of the {len(workers)} workers. Received: task.index={index}"
        )


def is_chief(strategy):
    """True on the worker that writes the run's files: always, except on the non-chief workers of
    a multi-worker job (the chief is task `chief`, or worker 0 when the cluster has none)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type in (None, "chief"):
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


_WORKER_FOLDERS = []


def worker_folder(out, resume=False):
    """Where a non-chief worker writes what the chief writes to `out`: a temporary folder, removed
    when the process ends. On `--resume` it starts as a copy of `out` (the chief's checkpoint, on a
    file system every worker reads), so every worker resumes from the same epoch.

    A folder already inside a worker folder (a pipeline's stage) is returned as it is.
    """
    out = os.path.abspath(out)
    if any(os.path.commonpath([out, root]) == root for root in _WORKER_FOLDERS):
        return out
    root = tempfile.mkdtemp(prefix="kerasgen-worker-")
    _WORKER_FOLDERS.append(root)
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    folder = os.path.join(root, os.path.basename(out) or "run")
    if resume and os.path.isdir(out):
        shutil.copytree(out, folder)
    return folder


# --- Inside a train_step ----------------------------------------------------------------------


def _replica_context():
    """The replica context when more than one replica trains in sync, else None."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def batch_position(batch_size):
    """This replica's first row in the global batch, and the global batch size.

    Replicas hold consecutive parts of the global batch in replica order (replica 0 first), of
    possibly different sizes (a ragged last batch may leave a replica none).

    Args:
        batch_size: int scalar tensor, this replica's number of examples.

    Returns:
        `(offset, global_batch_size)`, int32 scalar tensors; `(0, batch_size)` on one replica.
    """
    batch_size = tf.cast(batch_size, tf.int32)
    context = _replica_context()
    if context is None:
        return tf.constant(0, tf.int32), batch_size
    sizes = context.all_gather(tf.reshape(batch_size, (1,)), axis=0)
    replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
    before = tf.range(tf.shape(sizes)[0]) < replica
    return tf.reduce_sum(tf.where(before, sizes, 0)), tf.reduce_sum(sizes)


def global_batch_rows(draw, batch_size, axis=0):
    """This replica's rows of one random draw made for the whole global batch.

    `draw(n)` must draw for `n` examples from a seed that every replica shares (the next seed of
    a `SeedGenerator`, whose state is mirrored); each replica keeps the rows of its own examples.
    So no two replicas share noise, and N replicas together draw exactly what one device draws
    for the same global batch: a run's trajectory does not depend on the number of devices.

    Args:
        draw: callable from the global batch size (an int32 scalar tensor) to a tensor whose
            `axis` runs over the examples.
        batch_size: int scalar tensor, this replica's number of examples.
        axis: int, the examples' axis of `draw`'s result. Defaults to 0.

    Returns:
        The `batch_size` rows of this replica's examples, along `axis`.
    """
    offset, global_batch_size = batch_position(batch_size)
    noise = draw(global_batch_size)
    if _replica_context() is None:
        return noise
    rows = offset + tf.range(tf.cast(batch_size, tf.int32))
    return tf.gather(noise, rows, axis=axis)


def next_seed(seed_generator):
    """A `SeedGenerator`'s next seed as TensorFlow's stateless ops take it (int32), as `keras.random` casts it."""
    return tf.cast(tf.math.floormod(seed_generator.next(), tf.int32.max - 1), tf.int32)


def stateless_seed(seed):
    """`seed` as the int32 pair that stateless sampling takes, as `keras.random` derives it.

    An int gives `[seed, 0]` (modulo 2³¹ − 2, as Keras casts it), a `SeedGenerator` its next
    seed, and None a seed drawn from `keras.random`'s global stream, which
    `keras.utils.set_random_seed` makes reproducible.
    """
    if isinstance(seed, keras.random.SeedGenerator):
        return next_seed(seed)
    if seed is None:
        return keras.random.randint((2,), 0, tf.int32.max - 1, dtype="int32")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(
            f"seed must be an int, a keras.random.SeedGenerator or None. Received: seed={seed!r}"
        )
    return tf.constant([seed % (tf.int32.max - 1), 0], tf.int32)


def replica_share(weight):
    """This replica's share of the global batch: its examples' total weight over all replicas' total.

    Multiply a replica's weighted-mean loss by it and the gradients Keras sums across replicas are
    those of the global batch's weighted mean; exactly 1 on one replica (0 for an empty batch).

    Args:
        weight: float scalar tensor, this replica's total example weight (its batch size when
            unweighted).
    """
    context = _replica_context()
    if context is None:
        return tf.math.divide_no_nan(weight, weight)
    return tf.math.divide_no_nan(weight, context.all_reduce(tf.distribute.ReduceOp.SUM, weight))


def global_mean(local_mean, share):
    """The global batch's mean of a value whose mean over this replica's examples is `local_mean`.

    Args:
        local_mean: float scalar tensor.
        share: this replica's `replica_share` of the global batch.

    Returns:
        The same scalar on every replica; `local_mean` itself on one replica.
    """
    context = _replica_context()
    if context is None:
        return local_mean
    return context.all_reduce(tf.distribute.ReduceOp.SUM, local_mean * share)


def apply_if(gate, optimizer, gradients, variables):
    """`optimizer.apply(gradients, variables)` only where the bool scalar tensor `gate` is true.

    Under a strategy an optimizer's update holds a `merge_call`, which cannot run inside a
    `tf.cond` in a replica context: the condition is then taken in the cross-replica context, on
    the first replica's `gate` (the caller makes it the same on every replica), and each replica
    applies its own gradients, as Keras's `LossScaleOptimizer` skips a step.
    """

    def apply(gradients, variables):
        optimizer.apply(gradients, variables)
        return tf.constant(True)

    if not tf.distribute.has_strategy() or tf.__internal__.distribute.strategy_supports_no_merge_call():
        tf.cond(gate, lambda: apply(gradients, variables), lambda: tf.constant(False))
        return

    def cross_replica(strategy, gate, gradients, variables):
        def run():
            strategy.extended.call_for_each_replica(apply, args=(gradients, variables))
            return tf.constant(True)

        tf.cond(strategy.experimental_local_results(gate)[0], run, lambda: tf.constant(False))

    tf.distribute.get_replica_context().merge_call(cross_replica, args=(gate, gradients, variables))


def step_logs(logs):
    """A step's logs as Keras 3 can average them over the replicas of any strategy.

    Under `MultiWorkerMirroredStrategy` Keras averages each value along axis 0, which fails for
    the scalars every step returns ("Invalid reduction dimension 0", keras-team/keras#20585):
    there each value becomes a 1-element vector, which averages to the same scalar.
    """
    if not isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        return logs
    return {name: tf.reshape(value, (1,)) for name, value in logs.items()}


@keras.saving.register_keras_serializable(package="kerasgen")
class ReplicaSeedGenerator(keras.random.SeedGenerator):
    """A `SeedGenerator` whose seeds differ across replicas: the replica id is folded into each.

    For Keras layers that draw with their own generator (`Dropout`, `RandomTranslation`): with
    one replica its seeds are the plain generator's, so single-device runs are unchanged.
    """

    def next(self, ordered=True):
        seed = super().next(ordered=ordered)
        context = _replica_context()
        if context is None:
            return seed
        replica = tf.cast(context.replica_id_in_sync_group, seed.dtype)
        return tf.random.experimental.stateless_fold_in(seed, replica)


def use_replica_seeds(layer):
    """Gives `layer`'s own `SeedGenerator`s the replica id (see `ReplicaSeedGenerator`), in place.

    Returns:
        `layer`.
    """
    # Keras locks a built layer's state; it unlocks it the same way to untrack a variable.
    tracker = layer._tracker
    was_locked = tracker.locked
    tracker.unlock()
    try:
        for name, value in list(vars(layer).items()):
            if type(value) is keras.random.SeedGenerator:
                replacement = ReplicaSeedGenerator(value._initial_seed)
                replacement.state.assign(value.state)
                tracker.untrack(value)
                setattr(layer, name, replacement)
    finally:
        if was_locked:
            tracker.lock()
    return layer


class FirstReplicaBuild:
    """A `keras.Model` mixin that lets `fit` and `evaluate` start under any strategy, on the data's first batch.

    Before the first step, Keras 3 builds a distributed model from a batch it reads off the
    epoch iterator and averages over the replicas (`strategy.reduce("MEAN", batch)`). That read
    starts a pass over the dataset which training then throws away, so a kerasgen training set
    (whose passes are numbered epochs, `data.pipeline`) would train its first epoch on the second
    epoch's order and noise, and a strategy run would not follow the one-device run. The average
    also fails under `MultiWorkerMirroredStrategy` ("Attempt to convert a value (PerReplica...)",
    keras-team/keras#20585, tensorflow/tensorflow#72388) and whenever the replicas' shares differ
    in size. Only the batch's shapes and dtypes matter for the build, so this builds from the
    dataset's element spec and reads nothing (from the first replica's share of a batch only when
    the spec does not know its ranks, as from a Python generator).
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None or iterator is None:
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        strategy = self.distribute_strategy
        data_batch = _symbolic_batch(iterator.data_adapter.get_tf_dataset().element_spec)
        if data_batch is None:
            for _, _, batches in iterator:
                data_batch = next(batches)
                break

            def first_replica(value):
                if isinstance(value, tf.distribute.DistributedValues):
                    return strategy.experimental_local_results(value)[0]
                return value

            data_batch = tf.nest.map_structure(first_replica, data_batch)
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)


def _symbolic_batch(element_spec):
    """`keras.KerasTensor`s of a dataset's `element_spec`, or None if a spec is not a tensor's of known rank."""
    specs = tf.nest.flatten(element_spec)
    if not all(isinstance(spec, tf.TensorSpec) and spec.shape.rank is not None for spec in specs):
        return None
    return tf.nest.map_structure(lambda spec: keras.KerasTensor(tuple(spec.shape), spec.dtype.name), element_spec)
