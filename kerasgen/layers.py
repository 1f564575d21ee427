"""Keras layers kerasgen's networks build from where the stock layer fails under a strategy.

`Dropout` draws its own mask on each replica (the stock layer's seed is mirrored, so every
replica drew the same one). The others handle an empty shard:

Under a `tf.distribute` strategy with N replicas, a last global batch of fewer than N images
leaves some replica an empty share, `[0, H, W, C]`. TensorFlow 2.21's oneDNN kernels (on by
default on x86 CPUs) mishandle such a batch: `Conv2D` returns it with the *input's* shape
(`[0, H, W, C]` instead of `[0, H', W', filters]`: no error, a wrong shape, and the next
convolution fails with "input depth must be evenly divisible by filter depth: 1 vs 4" at its
fused `BiasAdd`), and the gradient of `MaxPool` aborts the process ("Check failed: dtype() ==
expected_dtype" in `MklMaxPoolingGradOp`). With `TF_ENABLE_ONEDNN_OPTS=0` both are right, but
oneDNN trains the VAE and the classifier 1.8-1.9x faster on CPU (batch 128 of 28x28), and the
variable must be set before TensorFlow loads, which a library cannot promise. So these layers
sidestep the kernels instead: on a replica of a multi-replica strategy, an empty batch gets the
correctly shaped empty output without running the kernel (a `tf.cond`; the layer's gradients are
then zero, as an empty share's are). On one device, or with a batch size known to be non-zero,
they are the stock layers unchanged; weights, config and default names (`conv2d_N`) are the
stock layers' too.
"""

import keras
import tensorflow as tf

from kerasgen.distribute import use_replica_seeds


class _EmptyShardGuard:
    """Mixin for a Keras layer of one batch-first input: an empty shard skips the kernel."""

    def call(self, inputs):
        output_shape = tuple(self.compute_output_shape(inputs.shape))
        context = tf.distribute.get_replica_context()
        if (
            context is None
            or context.num_replicas_in_sync == 1
            or (inputs.shape[0] is not None and inputs.shape[0] > 0)
            or None in output_shape[1:]
        ):
            return super().call(inputs)
        compute = super().call
        return tf.cond(
            tf.shape(inputs)[0] > 0,
            lambda: compute(inputs),
            lambda: tf.zeros((0, *output_shape[1:]), dtype=self.compute_dtype),
        )


@keras.saving.register_keras_serializable(package="kerasgen")
class Conv2D(_EmptyShardGuard, keras.layers.Conv2D):
    """`keras.layers.Conv2D` that an empty shard under a strategy cannot break (module docstring).

    Same arguments as `keras.layers.Conv2D`.
    """


@keras.saving.register_keras_serializable(package="kerasgen")
class Conv2DTranspose(_EmptyShardGuard, keras.layers.Conv2DTranspose):
    """`keras.layers.Conv2DTranspose` guarded like `Conv2D`: its input's gradient is a oneDNN
    convolution, which an empty shard would give the wrong shape.

    Same arguments as `keras.layers.Conv2DTranspose`.
    """


@keras.saving.register_keras_serializable(package="kerasgen")
class MaxPooling2D(_EmptyShardGuard, keras.layers.MaxPooling2D):
    """`keras.layers.MaxPooling2D` that an empty shard under a strategy cannot break (module docstring).

    Same arguments as `keras.layers.MaxPooling2D`.
    """


@keras.saving.register_keras_serializable(package="kerasgen")
class AveragePooling2D(_EmptyShardGuard, keras.layers.AveragePooling2D):
    """`keras.layers.AveragePooling2D` guarded like `MaxPooling2D`, whose oneDNN gradient it shares.

    Same arguments as `keras.layers.AveragePooling2D`.
    """


@keras.saving.register_keras_serializable(package="kerasgen")
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout` whose masks differ across the replicas of a `tf.distribute` strategy.

    Keras's layer draws from a `SeedGenerator` whose state is one mirrored variable, so under a
    strategy every replica got the same seed and dropped the same units of its own images. This
    one folds the replica id into each seed (`distribute.ReplicaSeedGenerator`); with one replica
    its masks are the stock layer's for the same seed. Same arguments; files saved with the stock
    layer still load as the stock layer.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(rate, noise_shape=noise_shape, seed=seed, **kwargs)
        use_replica_seeds(self)


@keras.saving.register_keras_serializable(package="kerasgen")
def leaky_relu(x, negative_slope=0.2):
    """LeakyReLU as `max(x, slope·x)`: Keras's `"leaky_relu"` to the value, for discriminators.

    Why not the stock activation: on a CPU, TensorFlow's graph optimizer (grappler's remapper)
    fuses Conv2D + BiasAdd + LeakyRelu, and in a train step that differentiates D twice (the R1
    penalty's ∇_x D(x)) it then fails on the whole step — "remapper failed: INVALID_ARGUMENT:
    Mutation::Apply error: fanout '…LeakyReluGrad' exist for missing node '…BiasAdd'" on stderr —
    and leaves every other fusion of the step undone. Written as a maximum, it is not fused there;
    the GAN step on 32x32x3 images ran 1.8x faster (718 vs 1283 ms, batch 128, one thread).
    """
    return keras.ops.maximum(x, negative_slope * x)



@keras.saving.register_keras_serializable(package="kerasgen")
class UpSampling2D(keras.layers.UpSampling2D):
    """`keras.layers.UpSampling2D`; nearest-neighbour upsampling as a broadcast of static shapes.

    Why: Keras's layer resizes with `tf.image.resize`, whose output size is computed from the
    run-time shape, so a `fit` graph, whose batch size is unknown, carries int32 arithmetic, and
    on a CPU without AVX-512 TensorFlow's oneDNN pass then writes "E0000 … util.cc:131] oneDNN
    supports DT_INT32 only on platforms with AVX-512. Falling back to the default Eigen-based
    implementation" to stderr at the first step of every run with a resnet decoder. Here, with
    height, width and channels known (always, in kerasgen's networks), each pixel is repeated by
    broadcasting `[B, H, 1, W, 1, C]` against the factors and reshaping with a batch axis of -1:
    the same values, and the gradient sums each block. Other interpolations, or unknown sizes,
    are Keras's. Same arguments.
    """

    def call(self, inputs):
        if self.interpolation != "nearest" or self.data_format != "channels_last" or None in inputs.shape[1:]:
            return super().call(inputs)
        _, height, width, channels = inputs.shape
        rows, columns = self.size
        blocks = inputs[:, :, None, :, None, :] * keras.ops.ones((1, 1, rows, 1, columns, 1), dtype=inputs.dtype)
        return keras.ops.reshape(blocks, (-1, height * rows, width * columns, channels))
