"""Convolutional networks that return tensors: the encoder's posterior parameters, the decoder's pixel parameters.

Three families, chosen by `architecture`, each with one level per entry of `num_filters` (one
halving of the resolution in the encoder and discriminator, one doubling in the decoder):

- `"conv"`: the original networks for 28x28 digits (two convolutions per level, the decoder's
  upsampling by stride-2 transposed convolution). Unchanged, so saved models load.
- `"resnet"`: pre-activation residual blocks, `num_blocks` per level, each two 3x3 convolutions
  with a skip (a 1x1 convolution on the skip when the channels change). The encoder and the
  discriminator downsample by 2x2 average pooling; the decoder upsamples by nearest neighbour
  followed by a 3x3 convolution, which has none of the checkerboard pattern a stride-2
  transposed convolution leaves on colour images.
- `"dcgan"`: Radford et al. (2016): one stride-2 4x4 convolution per level down, one stride-2
  4x4 transposed convolution per level up, the decoder normalized after each.

Normalization. Nothing here uses batch statistics: the discriminator's R1 penalty needs each
image's own gradient ∇_x D(x), and the encoder's q(z|x) must depend on x alone, so both have
none (the discriminator may be spectrally normalized instead: that is a property of its
weights, not of the batch). The resnet and dcgan decoders use group normalization (32 groups,
or fewer when the channels are not a multiple of 32): per image, so p(x|z) depends on z alone,
training and inference compute the same function (a batch-normalized decoder's ELBO would
change between `fit` and `evaluate`), and the whole state is weights, so a decoder turned GAN
generator keeps working and its exponential moving average covers everything. The resnet
encoder uses group normalization as well, which is also per image.

The latent layout. With `latent_layout="vector"` z is a vector that dense layers connect to the
coarsest feature map. With `"map"` the same z (still a flat vector of `latent_dim` numbers, so
the prior, the KL, the GAN's generator and every tool on z are unchanged) is read as a map of
`latent_dim / (h * w)` channels at the coarsest resolution h x w (4x4 for the 32x32 preset): the
encoder's posterior parameters come from a 3x3 convolution at that resolution, the decoder starts
with a 3x3 convolution on it. Each latent channel then describes one region of the image, which
lets a VAE carry far more information about an image (its likelihood improves) at the price of
prior samples that look less like images.
"""

import math

import keras
from keras import layers

from kerasgen import validate
from kerasgen.layers import AveragePooling2D, Conv2D, Conv2DTranspose, Dropout, UpSampling2D, leaky_relu
from kerasgen.options import ARCHITECTURES, LATENT_LAYOUTS

# Group normalization's groups: at most this many, fewer when the channels are not a multiple.
MAX_GROUPS = 32


def check_image_shape(image_shape, num_levels):
    """Validates `image_shape` for a network that halves the resolution `num_levels` times.

    Returns:
        The shape as a tuple of three ints.
    """
    shape = tuple(image_shape) if isinstance(image_shape, (tuple, list)) else None
    if shape is None or len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(
            "image_shape must be three positive ints (height, width, channels). "
            f"Received: image_shape={image_shape!r}"
        )
    factor = 2**num_levels
    if shape[0] % factor or shape[1] % factor:
        raise ValueError(
            f"image height and width must be divisible by {factor} for {num_levels} downsampling "
            f"levels (len(num_filters)). Received: image_shape={shape}"
        )
    return shape


# Per resolution (the longer side, at most): the network of a VAE that fits that image size,
# and its latent. 28: the digits' original networks, whose shipped models were trained so.
# 32 and 64: z is an 8x8x16 map (1024 numbers). On CIFAR-10 it beat the 128-vector of a network
# down to 4x4 (validation -ELBO 12,820 vs 13,012 nats after 2 epochs, reconstructions classified
# right 31% after 2 epochs vs 23% after 10 of the vector) at 0.65x the step time, and an 8x8x32 map
# (13,920 vs 13,470 after one epoch). 128: not yet measured; a 4x4 vector as at first.
PRESETS = {
    28: {
        "architecture": "conv", "num_filters": (32, 64), "num_blocks": 1, "hidden_dim": 256, "latent_dim": 16,
        "latent_layout": "vector",
    },
    32: {
        "architecture": "resnet", "num_filters": (32, 64), "num_blocks": 1, "hidden_dim": 512, "latent_dim": 1024,
        "latent_layout": "map",
    },
    64: {
        "architecture": "resnet", "num_filters": (32, 64, 128), "num_blocks": 1, "hidden_dim": 512, "latent_dim": 1024,
        "latent_layout": "map",
    },
    128: {
        "architecture": "resnet", "num_filters": (16, 32, 64, 128, 256), "num_blocks": 1, "hidden_dim": 512,
        "latent_dim": 256, "latent_layout": "vector",
    },
}


def network_preset(image_shape):
    """The VAE network and latent suggested for images of `image_shape`.

    Images up to 28x28 get the digits' `"conv"` networks (today's defaults, 2 levels). Up to
    32x32 and up to 64x64 (the longer side): a residual network down to 8x8 (2 and 3 levels)
    and z as an 8x8x16 map there; up to 128x128, a residual network down to 4x4 (5 levels) and
    a 256-vector. The 32x32 preset's VAE step on a batch of 128 32x32x3 images took 0.56 s on
    2 CPU cores (0.59-0.69 s in a CIFAR-10 run, about 4 minutes per epoch); `num_blocks=2`
    deepens it at about twice the cost.

    Args:
        image_shape: tuple `(height, width, channels)`, height and width at most 128 and
            divisible by `2 ** len(num_filters)` of the chosen preset.

    Returns:
        A dict with `architecture`, `num_filters`, `num_blocks`, `hidden_dim`, `latent_dim` and
        `latent_layout`, the keyword arguments of `VAE` (and `AAE`) that set the networks.
    """
    shape = check_image_shape(image_shape, 0)
    side = max(shape[:2])
    sizes = [size for size in sorted(PRESETS) if side <= size]
    if not sizes:
        raise ValueError(
            f"network_preset has presets for images up to {max(PRESETS)}x{max(PRESETS)}. Received: image_shape={shape}"
        )
    preset = dict(PRESETS[sizes[0]])
    check_image_shape(shape, len(preset["num_filters"]))
    return preset


def check_architecture(architecture, num_blocks):
    """Validates the network family and its residual blocks per level."""
    validate.one_of("architecture", architecture, ARCHITECTURES)
    validate.positive_int("num_blocks", num_blocks)


def check_latent_layout(latent_layout):
    validate.one_of("latent_layout", latent_layout, LATENT_LAYOUTS)


def _check_filters(num_filters):
    validate.positive_ints("num_filters", num_filters)


def build_encoder(
    image_shape, num_filters, hidden_dim, output_size, activation="swish", name="encoder", architecture="conv", num_blocks=1,
    latent_layout="vector", parameter_parts=2,
):
    """Downsampling from an image to a flat vector of `output_size` posterior parameters.

    Each entry of `num_filters` is one level that halves the resolution. `"conv"`: a stride-2
    convolution, then a stride-1 convolution at the new resolution. `"resnet"`: average pooling,
    then `num_blocks` residual blocks (after a 3x3 stem convolution at full resolution).
    `"dcgan"`: one stride-2 4x4 convolution. Then a dense layer of `hidden_dim` units and the
    parameters. No batch statistics: q(z|x) depends on x alone (module docstring).

    Args:
        image_shape: tuple `(height, width, channels)`.
        num_filters: sequence of positive ints, filters per level.
        hidden_dim: int, width of the dense layer before the parameters.
        output_size: int, the number of posterior parameters.
        activation: str or callable. Defaults to `"swish"`.
        name: str. Defaults to `"encoder"`.
        architecture: `"conv"`, `"resnet"` or `"dcgan"`. Defaults to `"conv"`.
        num_blocks: int >= 1, residual blocks per level; only `"resnet"` reads it. Defaults to 1.
        latent_layout: `"vector"` (dense layers) or `"map"`: `output_size` is then
            `parameter_parts` maps at the coarsest resolution, flattened and concatenated, and
            `hidden_dim` is not used. Defaults to `"vector"`.
        parameter_parts: with `"map"`: 2 for `[loc, raw_scale]` of a diagonal Gaussian, 1 for a
            deterministic code. Defaults to 2.

    Returns:
        A functional `keras.Model` from `[B, H, W, C]` images to `[B, output_size]`.
    """
    check_architecture(architecture, num_blocks)
    check_latent_layout(latent_layout)
    inputs = keras.Input(shape=image_shape, name="images")
    x = inputs
    if architecture == "conv":
        for filters in num_filters:
            x = Conv2D(filters, 4, strides=2, padding="same", activation=activation)(x)
            x = Conv2D(filters, 3, padding="same", activation=activation)(x)
    elif architecture == "dcgan":
        for filters in num_filters:
            x = Conv2D(filters, 4, strides=2, padding="same", activation=activation)(x)
    else:
        x = _residual_downsampling(x, num_filters, num_blocks, activation, normalize=True, spectral_norm=False)
        x = _normalization(x, "final_norm")
        x = layers.Activation(activation, name="final_activation")(x)
    if latent_layout == "map":
        # [loc, raw_scale] as the posterior reads them (or a deterministic code, `loc` alone):
        # each part is one map, flattened.
        if parameter_parts not in (1, 2) or output_size % parameter_parts:
            raise ValueError(
                f"A latent map's encoder emits 1 or 2 maps of equal size. Received: output_size={output_size}, "
                f"parameter_parts={parameter_parts!r}"
            )
        channels = map_channels(output_size // parameter_parts, image_shape, len(num_filters))
        parts = [
            layers.Flatten(name=f"posterior_{part}_flat")(Conv2D(channels, 3, padding="same", name=f"posterior_{part}")(x))
            for part in ("loc", "scale")[:parameter_parts]
        ]
        if parameter_parts == 1:
            outputs = layers.Identity(name="posterior_parameters")(parts[0])
        else:
            outputs = layers.Concatenate(name="posterior_parameters")(parts)
        return keras.Model(inputs, outputs, name=name)
    x = layers.Flatten()(x)
    x = layers.Dense(hidden_dim, activation=activation)(x)
    outputs = layers.Dense(output_size, name="posterior_parameters")(x)
    return keras.Model(inputs, outputs, name=name)


def map_channels(latent_dim, image_shape, num_levels):
    """The channels of z read as a map at the coarsest resolution (`latent_layout="map"`).

    Raises:
        ValueError: `latent_dim` is not a multiple of that resolution's positions.
    """
    positions = (image_shape[0] // 2**num_levels) * (image_shape[1] // 2**num_levels)
    if latent_dim % positions:
        raise ValueError(
            f"A latent map at the coarsest resolution, {image_shape[0] // 2**num_levels}x{image_shape[1] // 2**num_levels} "
            f"for {image_shape[0]}x{image_shape[1]} images and {num_levels} levels, has {positions} positions, so "
            f"latent_dim must be a multiple of {positions}. Received: latent_dim={latent_dim}"
        )
    return latent_dim // positions


def build_decoder(
    latent_dim,
    image_shape,
    num_filters,
    hidden_dim,
    head=None,
    activation="swish",
    name="decoder",
    architecture="conv",
    num_blocks=1,
    latent_layout="vector",
):
    """Upsampling from z to one parameter per pixel and channel (plus `head`'s).

    Mirrors `build_encoder`: dense layers to the coarsest feature map (`num_filters[-1]`
    channels), then per level, from the last entry of `num_filters` to the first, one doubling of
    the resolution. `"conv"`: a stride-1 convolution and a stride-2 transposed convolution.
    `"resnet"`: `num_blocks` residual blocks, then nearest-neighbour upsampling and a 3x3
    convolution to the next level's filters. `"dcgan"`: a stride-2 4x4 transposed convolution.
    The last layer, `pixel_parameters`, is a 3x3 convolution to `image_shape[-1]` channels,
    which `head` (the likelihood's, e.g. a learned pixel scale) may extend.

    Args:
        latent_dim: int, the size of z.
        image_shape: tuple `(height, width, channels)`; `channels` is the number of output
            parameters per pixel before `head`.
        num_filters: sequence of positive ints, filters per level (listed from fine to coarse,
            as the encoder's).
        hidden_dim: int, width of the dense layer after z.
        head: a Keras layer applied to the parameters, or None. Defaults to None.
        activation: str or callable. Defaults to `"swish"`.
        name: str. Defaults to `"decoder"`.
        architecture: `"conv"`, `"resnet"` or `"dcgan"`. Defaults to `"conv"`.
        num_blocks: int >= 1, residual blocks per level; only `"resnet"` reads it. Defaults to 1.
        latent_layout: `"vector"` (dense layers from z) or `"map"` (z reshaped to a map at the
            coarsest resolution and a 3x3 convolution; `hidden_dim` is not used). Defaults to `"vector"`.

    Returns:
        A functional `keras.Model` from `[B, latent_dim]` to `[B, H, W, channels]` (or `head`'s output).
    """
    check_architecture(architecture, num_blocks)
    check_latent_layout(latent_layout)
    height, width, channels = image_shape
    factor = 2 ** len(num_filters)
    inputs = keras.Input(shape=(latent_dim,), name="z")
    if latent_layout == "map":
        z_channels = map_channels(latent_dim, image_shape, len(num_filters))
        x = layers.Reshape((height // factor, width // factor, z_channels), name="z_map")(inputs)
        x = Conv2D(num_filters[-1], 3, padding="same", activation=activation, name="z_map_conv")(x)
    else:
        x = layers.Dense(hidden_dim, activation=activation)(inputs)
        x = layers.Dense((height // factor) * (width // factor) * num_filters[-1], activation=activation)(x)
        x = layers.Reshape((height // factor, width // factor, num_filters[-1]))(x)
    if architecture == "conv":
        for filters in reversed(num_filters):
            x = Conv2D(filters, 3, padding="same", activation=activation)(x)
            x = Conv2DTranspose(filters, 4, strides=2, padding="same", activation=activation)(x)
    elif architecture == "dcgan":
        for level in reversed(range(len(num_filters))):
            x = Conv2DTranspose(num_filters[level], 4, strides=2, padding="same", name=f"level{level}_upsample")(x)
            x = _normalization(x, f"level{level}_norm")
            x = layers.Activation(activation, name=f"level{level}_activation")(x)
    else:
        for level in reversed(range(len(num_filters))):
            for block in range(num_blocks):
                x = _residual_block(
                    x, num_filters[level], activation, f"level{level}_block{block}", normalize=True, spectral_norm=False
                )
            x = UpSampling2D(2, interpolation="nearest", name=f"level{level}_upsample")(x)
            x = Conv2D(num_filters[max(level - 1, 0)], 3, padding="same", name=f"level{level}_upsample_conv")(x)
        x = _normalization(x, "final_norm")
        x = layers.Activation(activation, name="final_activation")(x)
    x = Conv2D(channels, 3, padding="same", name="pixel_parameters")(x)
    if head is not None:
        x = head(x)
    return keras.Model(inputs, x, name=name)


def build_discriminator(
    image_shape,
    num_filters=(64, 128),
    activation=leaky_relu,
    dropout=0.0,
    name="discriminator",
    architecture="conv",
    num_blocks=1,
    spectral_norm=False,
):
    """Downsampling from an image to one real-vs-generated logit.

    `"conv"` and `"dcgan"`: each entry of `num_filters` is a stride-2 4x4 convolution ("same"
    padding, so any height and width work: 28 → 14 → 7). `"resnet"`: a 3x3 stem convolution,
    then per entry average pooling and `num_blocks` residual blocks, then a 3x3 convolution
    whose features (the last convolution's, as the VAE-GAN reads them) go to the logit. There is
    no batch normalization: the R1 penalty needs each image's own gradient ∇_x D(x), and a batch
    statistic would mix images.

    Args:
        image_shape: tuple `(height, width, channels)`.
        num_filters: sequence of positive ints, filters per level. Defaults to `(64, 128)`.
        activation: str or callable. Defaults to `kerasgen.layers.leaky_relu` (slope 0.2, as Keras's
            `"leaky_relu"`, written so that TensorFlow's CPU graph optimizer does not fail on it).
        dropout: float in [0, 1), dropout before the logit (`kerasgen.layers.Dropout`: under a strategy each
            replica draws its own mask). Defaults to 0: the R1 penalty regularizes D,
            and without dropout the warm-started GAN improved faster on mnist-5k (FD 97 vs 109 after 12 epochs).
        name: str. Defaults to `"discriminator"`.
        architecture: `"conv"`, `"resnet"` or `"dcgan"` (the same network as `"conv"`: strided
            convolutions are the DCGAN discriminator, without its batch normalization). Defaults to `"conv"`.
        num_blocks: int >= 1, residual blocks per level; only `"resnet"` reads it. Defaults to 1.
        spectral_norm: bool, wraps every convolution and the logit's dense layer in
            `keras.layers.SpectralNormalization` (Miyato et al. 2018): in training each call
            divides the kernel by its largest singular value, estimated by one power iteration
            per call, so each layer is about 1-Lipschitz. Defaults to False.

    Returns:
        A functional `keras.Model` from `[B, H, W, C]` images to `[B, 1]` logits.
    """
    image_shape = check_image_shape(image_shape, 0)
    _check_filters(num_filters)
    check_architecture(architecture, num_blocks)
    validate.number("dropout", dropout, at_least=0, below=1)
    validate.boolean("spectral_norm", spectral_norm)
    inputs = keras.Input(shape=image_shape, name="images")
    x = inputs
    if architecture == "resnet":
        x = _residual_downsampling(x, num_filters, num_blocks, activation, normalize=False, spectral_norm=spectral_norm)
        x = layers.Activation(activation, name="features_activation")(x)
        x = _convolution(num_filters[-1], 3, spectral_norm, name="features")(x)
        x = layers.Activation(activation, name="final_activation")(x)
    else:
        for filters in num_filters:
            x = _convolution(filters, 4, spectral_norm, strides=2, activation=activation)(x)
    x = layers.Flatten()(x)
    if dropout:
        # Each replica of a distributed run draws its own mask.
        x = Dropout(dropout)(x)
    if spectral_norm:
        outputs = layers.SpectralNormalization(layers.Dense(1), name="logits")(x)
    else:
        outputs = layers.Dense(1, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def _convolution(filters, kernel_size, spectral_norm, name=None, **kwargs):
    """A "same"-padded `Conv2D`, spectrally normalized on request (the wrapper then carries `name`)."""
    if not spectral_norm:
        return Conv2D(filters, kernel_size, padding="same", name=name, **kwargs)
    return layers.SpectralNormalization(Conv2D(filters, kernel_size, padding="same", **kwargs), name=name)


def _normalization(x, name):
    """Group normalization: statistics of each image's own channel groups, never of the batch."""
    channels = x.shape[-1]
    return layers.GroupNormalization(math.gcd(channels, MAX_GROUPS), name=name)(x)


def _residual_block(x, filters, activation, name, normalize, spectral_norm):
    """Pre-activation residual block: [norm] → act → 3x3 conv → [norm] → act → 3x3 conv, plus the skip.

    The skip is the input itself, or a 1x1 convolution of it when the channels change.
    """
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = _convolution(filters, 1, spectral_norm, name=f"{name}_skip")(x)
    h = x
    for index in (1, 2):
        if normalize:
            h = _normalization(h, f"{name}_norm{index}")
        h = layers.Activation(activation, name=f"{name}_activation{index}")(h)
        h = _convolution(filters, 3, spectral_norm, name=f"{name}_conv{index}")(h)
    return layers.Add(name=f"{name}_add")([shortcut, h])


def _residual_downsampling(x, num_filters, num_blocks, activation, normalize, spectral_norm):
    """A 3x3 stem convolution at full resolution, then per level average pooling and residual blocks."""
    x = _convolution(num_filters[0], 3, spectral_norm, name="stem")(x)
    for level, filters in enumerate(num_filters):
        x = AveragePooling2D(2, name=f"level{level}_downsample")(x)
        for block in range(num_blocks):
            x = _residual_block(x, filters, activation, f"level{level}_block{block}", normalize, spectral_norm)
    return x


def build_latent_discriminator(latent_dim, units=(512, 512), activation=leaky_relu, name="latent_discriminator"):
    """An MLP from a latent code to one logit: is z a draw of the prior or a code of the encoder?

    The adversarial autoencoder's discriminator (Makhzani et al. 2015, who use two hidden layers
    of 1000 units on MNIST). Like `build_discriminator` it has no batch normalization, so each
    code's logit depends on that code alone.

    Args:
        latent_dim: int, the size of z.
        units: sequence of positive ints, the hidden layers' widths. Defaults to `(512, 512)`.
        activation: str or callable. Defaults to `kerasgen.layers.leaky_relu` (slope 0.2, as Keras's
            `"leaky_relu"`, written so that TensorFlow's CPU graph optimizer does not fail on it).
        name: str. Defaults to `"latent_discriminator"`.

    Returns:
        A functional `keras.Model` from `[B, latent_dim]` codes to `[B, 1]` logits.
    """
    validate.positive_int("latent_dim", latent_dim)
    validate.positive_ints("units", units)
    inputs = keras.Input(shape=(latent_dim,), name="z")
    x = inputs
    for width in units:
        x = layers.Dense(width, activation=activation)(x)
    outputs = layers.Dense(1, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
