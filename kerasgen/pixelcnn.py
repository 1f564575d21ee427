"""A Gated PixelCNN decoder (van den Oord et al. 2016) and the autoregressive p(x|z) it defines.

`build_pixelcnn` returns a network from `(images, conditioning)` to one Bernoulli logit per
pixel and channel, where the logit at pixel (i, j) depends only on the pixels before (i, j) in
raster order (row by row, left to right) and on the conditioning map. `AutoregressiveBernoulli`
turns that network and a conditioning map into a `tfd.Distribution` over whole images:
`log_prob(x)` is one parallel pass (teacher forcing), `sample()` generates pixel by pixel in one
compiled `tf.while_loop`.

The channels of a colour pixel are ordered, R then G then B, as in van den Oord et al. (2016):
the logit of channel c at (i, j) also sees the channels before c of pixel (i, j), so
p(x_ij | x_<ij) = p(R | ·) p(G | R, ·) p(B | R, G, ·). The horizontal stack's feature maps are
split into one group per channel (feature k belongs to channel k mod C); at the pixel itself a
group sees only the image channels before its own (mask 'A', a 1×1 `MaskedConv2D` on the image
in the first layer) and the groups up to its own (mask 'B', every later tap at the pixel itself).
The rows above and the pixels to the left are seen whole. Sampling then draws a pixel's channels
one after the other. With one channel (binarized MNIST) the masks are empty or full, and the
network is the plain gated PixelCNN.
"""

import weakref

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import layers, ops

from kerasgen import validate
from kerasgen.layers import Conv2D
from kerasgen.options import PIXELCNN_CONDITIONINGS

tfd = tfp.distributions


@keras.saving.register_keras_serializable(package="kerasgen")
class MaskedConv2D(Conv2D):
    """A `Conv2D` whose tap at the pixel itself (the kernel's last row and column) is masked
    across the channels of a colour pixel.

    Input and output channel k belong to colour channel `k % channels`. At that tap, output group
    g sees input groups before g (`mask="A"`: the image's channels before its own) or up to g
    (`mask="B"`: features that have seen only those); the other taps are whole. Give the layer
    padding that puts the pixel itself at the kernel's last row and column (`"valid"` on an input
    padded above and to the left, or a 1×1 kernel).

    Args:
        filters, kernel_size, **kwargs: as for `keras.layers.Conv2D`.
        channels: int >= 1, the colour channels C of the image.
        mask: `"A"` or `"B"`.
    """

    def __init__(self, filters, kernel_size, channels, mask, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        validate.positive_int("channels", channels)
        validate.one_of("mask", mask, ("A", "B"))
        self.channels = channels
        self.mask = mask

    def build(self, input_shape):
        super().build(input_shape)
        height, width, inputs, outputs = self.kernel.shape
        groups_in = np.arange(inputs)[:, None] % self.channels
        groups_out = np.arange(outputs)[None, :] % self.channels
        allowed = groups_in < groups_out if self.mask == "A" else groups_in <= groups_out
        kernel_mask = np.ones((height, width, inputs, outputs), "float32")
        kernel_mask[-1, -1] = allowed
        self._kernel_mask = kernel_mask

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, kernel * ops.cast(self._kernel_mask, kernel.dtype))

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "mask": self.mask}


@keras.saving.register_keras_serializable(package="kerasgen")
class GatedActivation(keras.layers.Layer):
    """The gated unit tanh(a) ⊙ σ(b), with `[a, b]` the two halves of the last axis."""

    def call(self, inputs):
        a, b = ops.split(inputs, 2, axis=-1)
        return ops.tanh(a) * ops.sigmoid(b)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // 2)


def build_pixelcnn(
    image_shape, conditioning_channels, num_layers=4, num_filters=32, kernel_size=3, conditioning="spatial", name="pixelcnn"
):
    """A conditional Gated PixelCNN with vertical and horizontal stacks (no blind spot).

    The vertical stack sees the rows above a pixel (a `(kernel_size // 2 + 1) × kernel_size`
    convolution over the current and earlier rows of the stack below), the horizontal stack the
    pixels to its left in the same row (a `1 × (kernel_size // 2 + 1)` convolution) plus the
    vertical stack through a 1×1 convolution. In the first layer the 'A' mask is a one-pixel shift
    of the image (down for the vertical stack, right for the horizontal), so a pixel never sees
    itself; later layers are 'B': they see their own position in the stack below, which already
    excludes the pixel. Each layer's pre-activations get the conditioning map through 1×1
    convolutions (or, with `conditioning="global"`, a vector through a linear map, the same bias at
    every pixel: the conditional PixelCNN of van den Oord et al. 2016), go through the gate
    tanh(a) ⊙ σ(b), and the horizontal stack has a residual connection from the second layer on
    (in the first it would carry the pixel itself).

    Each layer widens the receptive field by `kernel_size // 2` pixels left, right and up, so
    `num_layers` is the knob between a decoder that relies on z and one that can model the image
    alone.

    With C > 1 channels the logit of channel c at (i, j) also sees channels 0..c-1 of (i, j)
    itself (the module docstring): the first layer adds a mask-'A' 1×1 convolution of the image
    to the horizontal stack, and every later tap at the pixel itself is masked 'B'
    (`MaskedConv2D`). `num_filters` must then be a multiple of C.

    Args:
        image_shape: tuple `(height, width, channels)`.
        conditioning_channels: int, the channels of the conditioning map `[B, H, W, C_h]`, or the
            size of the conditioning vector `[B, C_h]` with `conditioning="global"`.
        num_layers: int >= 1, gated layers. Defaults to 4.
        num_filters: int >= 1, feature maps per stack; a multiple of the channels. Defaults to 32.
        kernel_size: odd int >= 3. Defaults to 3.
        conditioning: `"spatial"` (a map, 1×1 convolutions into each gate) or `"global"` (a
            vector, a linear map into each gate, broadcast over the pixels). Defaults to
            `"spatial"`.
        name: str. Defaults to `"pixelcnn"`.

    Returns:
        A functional `keras.Model` from `[images, conditioning]` to logits `[B, H, W, channels]`.
    """
    validate.positive_int("conditioning_channels", conditioning_channels)
    validate.positive_int("num_layers", num_layers)
    validate.positive_int("num_filters", num_filters)
    validate.integer("kernel_size", kernel_size, minimum=3)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd. Received: kernel_size={kernel_size!r}")
    validate.one_of("conditioning", conditioning, PIXELCNN_CONDITIONINGS)
    height, width, channels = image_shape
    half = kernel_size // 2
    images = keras.Input(shape=image_shape, name="images")
    if conditioning == "spatial":
        condition_input = keras.Input(shape=(height, width, conditioning_channels), name="conditioning")

        def condition(name):
            return Conv2D(2 * num_filters, 1, use_bias=False, name=name)(condition_input)

    else:
        condition_input = keras.Input(shape=(conditioning_channels,), name="conditioning")

        def condition(name):
            bias = layers.Dense(2 * num_filters, use_bias=False, name=name)(condition_input)
            return layers.Reshape((1, 1, 2 * num_filters))(bias)  # broadcast over the pixels by the Add
    if channels > 1 and num_filters % channels:
        raise ValueError(
            f"num_filters must be a multiple of the image's {channels} channels: each colour channel "
            f"gets an equal group of feature maps. Received: num_filters={num_filters}"
        )

    def at_the_pixel(filters, kernel, mask="B", **kwargs):
        """A convolution whose tap at the pixel itself keeps the channel order (plain with 1 channel)."""
        if channels == 1:
            return Conv2D(filters, kernel, **kwargs)
        return MaskedConv2D(filters, kernel, channels, mask, **kwargs)

    # Mask 'A': shifted by one pixel, neither stack's first layer sees the pixel it predicts; with
    # colour, the channels before a group's own reach it through a masked 1x1 convolution.
    vertical = layers.Cropping2D(((0, 1), (0, 0)))(layers.ZeroPadding2D(((1, 0), (0, 0)))(images))
    horizontal = layers.Cropping2D(((0, 0), (0, 1)))(layers.ZeroPadding2D(((0, 0), (1, 0)))(images))
    for index in range(num_layers):
        prefix = f"layer_{index}_"
        padded = layers.ZeroPadding2D(((half, 0), (half, half)))(vertical)
        vertical_pre = layers.Add()(
            [
                Conv2D(2 * num_filters, (half + 1, kernel_size), name=prefix + "vertical")(padded),
                condition(prefix + "vertical_condition"),
            ]
        )
        padded = layers.ZeroPadding2D(((0, 0), (half, 0)))(horizontal)
        # The first layer's input is the shifted image: no tap of it is the pixel itself.
        convolve = Conv2D if index == 0 else at_the_pixel
        horizontal_terms = [
            convolve(2 * num_filters, (1, half + 1), name=prefix + "horizontal")(padded),
            # The vertical stack at (i, j) has seen only rows above i, so it may feed (i, j).
            Conv2D(2 * num_filters, 1, use_bias=False, name=prefix + "link")(vertical_pre),
            condition(prefix + "horizontal_condition"),
        ]
        if index == 0 and channels > 1:
            horizontal_terms.append(at_the_pixel(2 * num_filters, 1, "A", use_bias=False, name="channel_order")(images))
        horizontal_pre = layers.Add()(horizontal_terms)
        vertical = GatedActivation()(vertical_pre)
        output = at_the_pixel(num_filters, 1, name=prefix + "horizontal_output")(GatedActivation()(horizontal_pre))
        horizontal = output if index == 0 else layers.Add()([horizontal, output])
    x = at_the_pixel(num_filters, 1, activation="relu")(layers.Activation("relu")(horizontal))
    logits = at_the_pixel(channels, 1, name="logits")(x)
    return keras.Model([images, condition_input], logits, name=name)


class AutoregressiveBernoulli(tfd.Distribution):
    """p(x|h) = Π_(i,j) Bernoulli(x_ij | logits(x_<ij, h)_ij) over whole binary images.

    The distribution of a `build_pixelcnn` network with its conditioning map `h` `[B, H, W, C_h]`
    (the VAE's decoder output for z): batch shape `[B]`, event shape `[H, W, C]`, so `log_prob`
    gives one number per image, as the other kerasgen likelihoods do.

    - `log_prob(x)`: one network pass on x (teacher forcing), the sum over pixels and channels
      of the Bernoulli log-probabilities; x may carry sample dimensions in front of `[B]`.
    - `sample(n, seed=...)`: pixel by pixel in raster order, and within a pixel channel by
      channel (R, G, B), inside one compiled `tf.while_loop`: one network pass per pixel and
      channel, H·W·C passes in all. Pixel (i, j, c) of the images is 1 when
      u < σ(logit), with u `tf.random.stateless_uniform([n * B, H, W, C], seed)` and `seed` the
      stateless pair of `tfp.random.sanitize_seed`, so a seed fixes the sample.
    - `experimental_sample_and_log_prob`: the sample and its log-probability accumulated during
      generation (no extra pass).
    - `mean()` is not tractable for an autoregressive model and raises `NotImplementedError`.

    Args:
        network: a `build_pixelcnn` model.
        conditioning: float tensor `[B, H, W, C_h]`, or `[B, C_h]` for a network with `conditioning="global"`.
        validate_args: bool. Defaults to False.
        allow_nan_stats: bool. Defaults to True.
        name: str. Defaults to `"AutoregressiveBernoulli"`.
    """

    def __init__(self, network, conditioning, validate_args=False, allow_nan_stats=True, name="AutoregressiveBernoulli"):
        parameters = dict(locals())
        with tf.name_scope(name):
            self._network = network
            self._conditioning = tf.convert_to_tensor(conditioning, tf.float32)
            self._image_shape = tuple(network.output.shape[1:])
        super().__init__(
            dtype=tf.float32,
            reparameterization_type=tfd.NOT_REPARAMETERIZED,
            validate_args=validate_args,
            allow_nan_stats=allow_nan_stats,
            parameters=parameters,
            name=name,
        )

    @property
    def network(self):
        return self._network

    @property
    def conditioning(self):
        return self._conditioning

    def logits(self, x):
        """The logits `[..., B, H, W, C]` of every pixel given the pixels of `x` before it: one pass."""
        x = tf.convert_to_tensor(x, tf.float32)
        sample_shape = tf.shape(x)[:-4]
        flat = tf.reshape(x, [-1, *self._image_shape])
        num_samples = tf.shape(flat)[0] // tf.shape(self._conditioning)[0]
        conditioning = _tile_samples(self._conditioning, num_samples)
        logits = ops.cast(self._network([flat, conditioning]), "float32")
        return tf.reshape(logits, tf.concat([sample_shape, tf.shape(x)[-4:]], 0))

    def _pixels(self, logits):
        return tfd.Independent(tfd.Bernoulli(logits=logits, dtype=tf.float32), 3)

    def _log_prob(self, x):
        return self._pixels(self.logits(x)).log_prob(x)

    def _sample_n(self, n, seed=None):
        return self._generate(n, seed)[0]

    def _sample_and_log_prob(self, sample_shape, seed):
        images, log_prob = self._generate(tf.reduce_prod(sample_shape), seed)
        return (
            tf.reshape(images, tf.concat([sample_shape, tf.shape(images)[1:]], 0)),
            tf.reshape(log_prob, tf.concat([sample_shape, tf.shape(log_prob)[1:]], 0)),
        )

    def _generate(self, n, seed):
        """`n` samples `[n, B, H, W, C]` and their log-probabilities `[n, B]`."""
        seed = tfp.random.sanitize_seed(seed)
        batch_size = tf.shape(self._conditioning)[0]
        conditioning = _tile_samples(self._conditioning, n)  # sample-major: [n * B, ...]
        noise = tf.random.stateless_uniform([n * batch_size, *self._image_shape], seed=seed)
        images, log_prob = _sampling_loop(self._network)(conditioning, noise)
        return (
            tf.reshape(images, [n, batch_size, *self._image_shape]),
            tf.reshape(log_prob, [n, batch_size]),
        )

    def _mean(self):
        raise NotImplementedError(
            "The mean of an autoregressive Bernoulli is not tractable: every pixel's probability "
            "depends on the pixels drawn before it. Use sample() instead."
        )

    def _batch_shape(self):
        return self._conditioning.shape[:1]

    def _batch_shape_tensor(self):
        return tf.shape(self._conditioning)[:1]

    def _event_shape(self):
        return tf.TensorShape(self._image_shape)

    def _event_shape_tensor(self):
        return tf.constant(self._image_shape, tf.int32)


def _tile_samples(conditioning, n):
    """`conditioning` (a map `[B, H, W, C]` or a vector `[B, C]`) repeated `n` times, sample-major."""
    return tf.tile(conditioning, [n] + [1] * (conditioning.shape.rank - 1))


# One compiled loop per network, traced once per input shape; keyed weakly so it dies with it.
_SAMPLING_LOOPS = weakref.WeakKeyDictionary()


def _sampling_loop(network):
    """The compiled pixel-by-pixel sampler of `network`: `(conditioning, noise) -> (images, log_prob)`."""
    if network not in _SAMPLING_LOOPS:
        # A weak reference, so the loop (the dictionary's value) does not keep its key alive.
        reference = weakref.ref(network)
        height, width, channels = network.output.shape[1:]

        @tf.function(reduce_retracing=True)
        def loop(conditioning, noise):
            network = reference()
            # Position k of the raster order over pixels and, within a pixel, channels.
            steps = tf.reshape(tf.eye(height * width * channels), [height * width * channels, height, width, channels])

            def body(k, images, log_prob):
                i, j, c = k // (width * channels), k // channels % width, k % channels
                logits = ops.cast(network([images, conditioning], training=False), "float32")[:, i, j, c]
                pixel = tf.cast(noise[:, i, j, c] < tf.sigmoid(logits), tf.float32)
                # log Bernoulli(pixel | logits), as tfd.Bernoulli computes it in `log_prob`.
                log_prob -= tf.nn.sigmoid_cross_entropy_with_logits(labels=pixel, logits=logits)
                images += steps[k] * pixel[:, None, None, None]
                return k + 1, images, log_prob

            _, images, log_prob = tf.while_loop(
                lambda k, *_: k < height * width * channels,
                body,
                (tf.constant(0), tf.zeros_like(noise), tf.zeros(tf.shape(noise)[:1])),
            )
            return images, log_prob

        _SAMPLING_LOOPS[network] = loop
    return _SAMPLING_LOOPS[network]
