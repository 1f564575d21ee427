"""What every model with several optimizers shares: warm starts from a VAE, one optimizer per part, Keras arguments refused.

`GAN`, `VAEGAN` and `AAE` each train several networks, each with its own optimizer, inside one
`train_step`. Written once here: loading the VAE they start from, copying its networks into the
active dtype policy, taking their optimizers by name in `compile`, and refusing the Keras
arguments that have no meaning for them (one `loss`, `metrics`, `sample_weight`, callbacks that
set `model.optimizer.learning_rate`).
"""

import os

import keras
import tensorflow as tf
from keras import ops

from kerasgen import distribute
from kerasgen.artifacts import load_run
from kerasgen.losses import r1_penalty
from kerasgen.models.vae import VAE
from kerasgen.networks import build_discriminator

REFUSED_COMPILE_ARGUMENTS = ("loss", "loss_weights", "metrics", "weighted_metrics")


def load_vae(vae_or_path):
    """A `kerasgen.VAE` from itself, a train-vae output folder or a `.keras` file.

    Raises:
        ValueError: the object or the file is not a kerasgen VAE, or its decoder is a PixelCNN.
        FileNotFoundError: no model at the path.
    """
    vae = vae_or_path
    if isinstance(vae_or_path, (str, os.PathLike)):
        vae, _, _ = load_run(os.fspath(vae_or_path), filenames=("vae.keras",))
        if not isinstance(vae, VAE):
            raise ValueError(
                f"from_vae needs a kerasgen VAE, but the file holds a {type(vae).__name__}. "
                f"Received: vae_or_path={os.fspath(vae_or_path)!r}"
            )
    elif not isinstance(vae, VAE):
        raise ValueError(f"vae_or_path must be a kerasgen VAE or a path to one. Received: {type(vae_or_path).__name__}")
    if vae.decoder_type != "conv":
        # A PixelCNN VAE's decoder maps z to the PixelCNN's conditioning map, not to images.
        raise ValueError(
            "from_vae needs a VAE whose decoder maps z to images, decoder='conv'. "
            f"Received: a VAE with decoder={vae.decoder_type!r}"
        )
    return vae


def default_discriminator(vae, discriminator=None, spectral_norm=False):
    """The discriminator of a model warm-started from `vae`: `discriminator`, or one built for it.

    A `"conv"` VAE gets `build_discriminator`'s default (the digits' strided convolutions); a
    `"resnet"` or `"dcgan"` VAE a discriminator of its family, with its encoder's `num_filters`
    and `num_blocks`, and more levels (doubling the filters) where the encoder stops above 4x4
    (`discriminator_filters`). `spectral_norm` is `build_discriminator`'s; it cannot apply to a
    given discriminator, so asking for both is refused.
    """
    if discriminator is not None:
        if spectral_norm:
            raise ValueError(
                "spectral_norm builds the discriminator; a given discriminator is used as it is. "
                "Received: a discriminator and spectral_norm=True"
            )
        return discriminator
    if vae.architecture == "conv":
        return build_discriminator(vae.image_shape, spectral_norm=spectral_norm)
    return build_discriminator(
        vae.image_shape, discriminator_filters(vae.image_shape, vae.num_filters), architecture=vae.architecture,
        num_blocks=vae.num_blocks, spectral_norm=spectral_norm,
    )


def discriminator_filters(image_shape, num_filters):
    """An encoder's `num_filters`, extended by levels of twice the filters down to 4x4.

    A VAE whose z is an 8x8 map has an encoder that stops at 8x8; a discriminator judges the
    whole image, so it goes on to 4x4 (an odd side stops the halving early).
    """
    filters, side = list(num_filters), min(image_shape[:2]) // 2 ** len(num_filters)
    while side > 4 and side % 2 == 0:
        filters.append(2 * filters[-1])
        side //= 2
    return tuple(filters)


def clone_in_policy(model):
    """A copy of `model`'s architecture (fresh weights) computing in the active dtype policy.

    Every layer takes the active policy, whatever the model was built or saved in: a VAE trained
    under `mixed_float16` gives float32 layers in a float32 scope (where nothing would scale the
    losses of its float16 ones), and a float32 VAE gives float16 layers under `mixed_float16`,
    whose models' `compile` then scales each optimizer's loss.
    """
    policy = keras.config.dtype_policy()
    return keras.models.clone_model(model, clone_function=lambda layer: in_policy(layer, policy))


def in_policy(layer, policy):
    """A fresh copy of `layer` computing in `policy`."""
    config = layer.get_config()
    config["dtype"] = policy.name
    return layer.__class__.from_config(config)


def compile_optimizers(model, optimizers, auto_scale_loss, kwargs, metric_names):
    """Checks `compile`'s arguments of a model with one optimizer per part; returns the optimizers.

    Args:
        model: the model being compiled (its name and dtype policy are read).
        optimizers: dict `name → optimizer or identifier`, in the model's order.
        auto_scale_loss: bool; under `"mixed_float16"` each optimizer gets its own
            `LossScaleOptimizer`, so each part scales its loss separately.
        kwargs: the other `compile` keywords; the refused ones are checked and removed in place.
        metric_names: str, the model's fixed metrics, for the error message.

    Returns:
        The optimizer objects, in the order of `optimizers`.

    Raises:
        ValueError: `optimizer=` or a refused argument was given, or an object came twice.
    """
    name = type(model).__name__
    if "optimizer" in kwargs:
        raise ValueError(
            f"{name}.compile takes {', '.join(optimizers)}, not optimizer. Received: optimizer={kwargs['optimizer']!r}"
        )
    for key in REFUSED_COMPILE_ARGUMENTS:
        if kwargs.get(key) is not None:
            raise ValueError(
                f"{name}.compile does not take {key}: each part minimizes the model's own loss and it reports "
                f"fixed metrics ({metric_names}); measure sample quality with a callback. Received: {key}={kwargs[key]!r}"
            )
        kwargs.pop(key, None)
    objects = [keras.optimizers.get(optimizer) for optimizer in optimizers.values()]
    if len({id(optimizer) for optimizer in objects}) < len(objects):
        raise ValueError(
            f"{' and '.join(optimizers)} must be {len(objects)} different optimizer objects. "
            "Received: the same object more than once"
        )
    if auto_scale_loss and model.dtype_policy.name == "mixed_float16":
        scaler = keras.optimizers.LossScaleOptimizer
        objects = [
            optimizer if isinstance(optimizer, scaler) else scaler(optimizer, name=key.replace("optimizer", "loss_scale_optimizer"))
            for key, optimizer in zip(optimizers, objects)
        ]
    return objects


def compile_config_with_optimizers(model, compile_config):
    """Keras's compile config with every optimizer of `model.optimizer_names` in place of the one `optimizer`."""
    config = {k: v for k, v in compile_config.items() if k != "optimizer"}
    return {**config, **{name: keras.saving.serialize_keras_object(getattr(model, name)) for name in model.optimizer_names}}


class SeveralOptimizers:
    """A `keras.Model` mixin for models with one optimizer per part, saved and reloaded by name.

    Subclasses set `optimizer_names` (the attributes `compile` fills, in its order) and `what`
    (the model as a sentence names it, `"a GAN"`); `fit` and `evaluate` then refuse what such a
    model cannot honour (`check_fit_arguments`), and a `.keras` file restores every optimizer.
    """

    optimizer_names = ()
    what = "this model"

    def get_compile_config(self):
        if not self.compiled:
            return {}
        return compile_config_with_optimizers(self, super().get_compile_config())

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        # Keras's compile arguments that such a model does not take (no single loss, no metrics).
        for key in REFUSED_COMPILE_ARGUMENTS:
            if config.get(key) is None:
                config.pop(key, None)
        self.compile(**config)

    def fit(self, x=None, y=None, *args, **kwargs):
        check_fit_arguments(self.what, kwargs)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        check_fit_arguments(self.what, kwargs)
        return super().evaluate(x, y, *args, **kwargs)


def check_fit_arguments(what, kwargs):
    """Refuses `fit`/`evaluate` arguments a model with several optimizers and unweighted losses cannot honour.

    Args:
        what: str, the model as a sentence names it (`"a GAN"`).
        kwargs: the call's keyword arguments.
    """
    for key in ("sample_weight", "class_weight"):
        if kwargs.get(key) is not None:
            raise ValueError(no_weights_message(what, key))
    callbacks = kwargs.get("callbacks")
    listed = callbacks.callbacks if isinstance(callbacks, keras.callbacks.CallbackList) else callbacks or []
    refused = [
        type(c).__name__
        for c in listed
        if isinstance(c, (keras.callbacks.LearningRateScheduler, keras.callbacks.ReduceLROnPlateau))
    ]
    if refused:
        raise ValueError(
            f"{refused[0]} sets model.optimizer.learning_rate, but {what} has no single optimizer: each part "
            "trains with its own. Give each its own schedule in compile, e.g. "
            "d_optimizer=keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(2e-4, 1000, 0.5)), "
            "or assign each optimizer's learning_rate in a callback of your own. "
            f"Received: callbacks including {', '.join(refused)}"
        )


def no_weights_message(what, key):
    return (
        f"{what[0].upper()}{what[1:]} does not weight images: its adversarial losses compare a batch of real "
        f"images with a batch of generated ones, which have no weights. Resample the data instead. Received: a {key}"
    )


def real_images(data, what):
    """The images of a batch `(x, y)` or `x`, as float32; a `sample_weight` in it is refused."""
    real, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if sample_weight is not None:
        raise ValueError(no_weights_message(what, "sample_weight"))
    return keras.ops.cast(real, "float32")


def apply_gradients(optimizer, gradients, variables, gate=None):
    """`optimizer.apply` on the variables that got a gradient; with `gate`, only where it is true.

    Weights that do not change a loss get None (a Gaussian decoder's pixel scale does not move
    its mean image); they are left out. `gate`, a bool scalar tensor, goes through
    `distribute.apply_if`, so a skipped update works under any strategy.
    """
    pairs = [(g, v) for g, v in zip(gradients, variables) if g is not None]
    if not pairs:
        return
    gradients, variables = [g for g, _ in pairs], [v for _, v in pairs]
    if gate is None:
        optimizer.apply(gradients, variables)
    else:
        distribute.apply_if(gate, optimizer, gradients, variables)


def outputs_and_r1(forward, real, model):
    """`forward(real)`'s outputs on real images, and the R1 penalty of their logits (0 when `model.r1_weight` is 0).

    Args:
        forward: callable from images to a tuple whose last element is D's logits `[B]`.
        real: float32 images `[B, H, W, C]`.
        model: the model, with `discriminator`, `r1_weight` and (once compiled) `d_optimizer`.

    Returns:
        `(*outputs, r1)`.
    """
    if not model.r1_weight:
        return (*forward(real), ops.zeros(()))
    # Under float16, ∇_x D runs back through half-precision layers, where small gradients
    # flush to zero: it is scaled like a loss, by D's loss scale, and unscaled in float32.
    half = model.discriminator.compute_dtype == "float16" and getattr(model, "d_optimizer", None) is not None
    scale = model.d_optimizer.scale_loss(ops.ones(())) if half else None
    with tf.GradientTape() as r1_tape:
        r1_tape.watch(real)
        outputs = forward(real)
        # No layer of D mixes images, so the sum's gradient holds each image's own ∇_x D(x).
        logit_sum = ops.sum(outputs[-1])
        if half:
            logit_sum = logit_sum * scale
    gradients = r1_tape.gradient(logit_sum, real)
    if half:
        # An overflow gives an infinite penalty: the loss-scale optimizer then skips the step
        # and lowers the scale, as it does for any overflowing gradient.
        gradients = ops.cast(gradients, "float32") / scale
    return (*outputs, r1_penalty(gradients))


def r1_metric(r1, weight, discriminator):
    """The R1 penalty and its weight in the `r1` metric.

    Under float16 a step whose scaled ∇_x D overflowed gives an infinite penalty and is skipped
    by D's loss-scale optimizer: not an R1 to report, so it gets weight 0.
    """
    if discriminator.compute_dtype != "float16":
        return r1, weight
    finite = ops.isfinite(r1)
    return ops.where(finite, r1, 0.0), weight * ops.cast(finite, "float32")


def weight_average(network):
    """A frozen copy of `network` (same architecture, same weights) to hold its moving average."""
    average = keras.models.clone_model(network)
    average.set_weights(network.get_weights())
    average.trainable = False
    return average


def update_weight_average(average, network, decay):
    """v_avg ← decay · v_avg + (1 − decay) · v for `network`'s trainable weights; others are copied."""
    pairs = [(a.value, v.value, v.trainable) for a, v in zip(average.weights, network.weights)]

    def update(strategy, pairs):
        # Every replica holds the same weights after the synchronized apply, so the update runs
        # once per variable through the strategy, as Keras's own optimizer EMA does.
        for target, variable, trainable in pairs:
            if trainable:
                strategy.extended.update(target, lambda a, v: a.assign(decay * a + (1.0 - decay) * v), args=(variable,))
            else:
                strategy.extended.update(target, lambda a, v: a.assign(v), args=(variable,))

    tf.__internal__.distribute.interim.maybe_merge_call(update, tf.distribute.get_strategy(), pairs)
