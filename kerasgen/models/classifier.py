"""A small domain classifier convnet: logits for accuracy, penultimate features for FD and KID."""

import keras
import tensorflow as tf
from keras import layers, ops

from kerasgen import distribute, validate
from kerasgen.layers import Conv2D, MaxPooling2D


@keras.saving.register_keras_serializable(package="kerasgen")
class Classifier(distribute.FirstReplicaBuild, keras.Model):
    """Convolutional image classifier whose penultimate layer is the embedding for sample quality.

    `call(x)` returns class logits; `features(x)` returns the `feature_dim`-wide activations of the
    dense layer before the output layer (after its ReLU, before dropout): the space in which
    `kerasgen.evaluation.sample_quality` measures Fréchet distance and KID, as Inception's pool
    features are for natural images. Train it with the standard `compile` and `fit`.

    Each level is `convs_per_level` 3x3 ReLU convolutions (each followed by batch normalization
    before its ReLU when `batch_norm`) and a 2x2 max pooling ("same" padding, so any height and
    width work). During training, inputs are mirrored left-right at random when `flip` (natural
    images; not digits) and shifted by up to `translation` of their size
    (`keras.layers.RandomTranslation`, zero fill); at inference they are left alone, and batch
    normalization uses its moving statistics, so the features of an image do not depend on the
    other images of its batch.

    Images of another height or width (same channels) are resized to `image_shape` first
    (bilinear, antialiased when shrinking) by `call` and `features`, so a classifier trained on
    32x32 CIFAR-10 also scores 64x64 samples of it; the numbers are then those of the resized
    images.

    Args:
        image_shape: tuple `(height, width, channels)`, images in [0, 1]. Defaults to `(28, 28, 1)`.
        num_classes: int >= 2, number of classes. Defaults to 10.
        num_filters: sequence of positive ints, filters per level. Defaults to `(32, 64)`.
        feature_dim: int, width of the penultimate (feature) layer. Defaults to 128.
        dropout: float in [0, 1), dropout rate between the features and the logits. Defaults to 0.3.
        translation: float in [0, 1), the largest random shift as a fraction of height and width
            during training; 0 disables it. Defaults to 0.1.
        flip: bool, mirror training images left-right at random. Defaults to False.
        batch_norm: bool, batch normalization after each convolution (before its ReLU).
            Defaults to False.
        convs_per_level: int >= 1, 3x3 convolutions per level. Defaults to 2.
        seed: int or None, seeds the augmentation and dropout. Defaults to None.

    Example:

        classifier = Classifier(image_shape=(28, 28, 1), num_classes=10)
        classifier.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        classifier.fit(splits.train, validation_data=splits.validation, epochs=10)
        features = classifier.features(images)  # [B, feature_dim]
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_classes=10,
        num_filters=(32, 64),
        feature_dim=128,
        dropout=0.3,
        translation=0.1,
        flip=False,
        batch_norm=False,
        convs_per_level=2,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        shape = tuple(image_shape) if isinstance(image_shape, (tuple, list)) else None
        if shape is None or len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
            raise ValueError(
                f"image_shape must be three positive ints (height, width, channels). Received: image_shape={image_shape!r}"
            )
        validate.integer("num_classes", num_classes, minimum=2)
        validate.positive_ints("num_filters", num_filters)
        validate.positive_int("feature_dim", feature_dim)
        validate.number("dropout", dropout, at_least=0, below=1)
        validate.number("translation", translation, at_least=0, below=1)
        validate.boolean("flip", flip)
        validate.boolean("batch_norm", batch_norm)
        validate.positive_int("convs_per_level", convs_per_level)
        self.image_shape = shape
        self.num_classes = num_classes
        self.num_filters = tuple(num_filters)
        self.feature_dim = feature_dim
        self.dropout = float(dropout)
        self.translation = float(translation)
        self.flip = flip
        self.batch_norm = batch_norm
        self.convs_per_level = convs_per_level
        self.seed = seed

        self.augmentation = (
            layers.RandomTranslation(translation, translation, fill_mode="constant", seed=seed, name="translation")
            if translation > 0
            else None
        )
        # Its own stream, as the dropout's below.
        self.flip_layer = (
            layers.RandomFlip("horizontal", seed=None if seed is None else seed + 2, name="flip") if flip else None
        )
        self.embedding = _build_embedding(
            self.image_shape, self.num_filters, feature_dim, batch_norm=batch_norm, convs_per_level=convs_per_level
        )
        # Its own stream: the same seed would otherwise drive the shifts and the dropout masks alike.
        self.dropout_layer = layers.Dropout(dropout, seed=None if seed is None else seed + 1, name="dropout")
        # Each replica of a distributed run draws its own shifts and dropout masks.
        for layer in (self.flip_layer, self.augmentation, self.dropout_layer):
            if layer is not None:
                distribute.use_replica_seeds(layer)
        # Logits in float32 under a mixed-precision policy: the softmax and the loss stay exact.
        self.head = layers.Dense(num_classes, name="logits", dtype=_output_dtype())
        self.head.build((None, feature_dim))
        # Every weight exists now, so a fresh copy takes `set_weights` and a reload needs no build call.
        self.built = True

    def features(self, x):
        """The penultimate-layer features `[B, feature_dim]` of images `[B, H, W, C]` in [0, 1] (inference mode)."""
        return self.embedding(self._to_input_size(x), training=False)

    def call(self, x, training=False):
        x = self._to_input_size(x)
        if training and self.flip_layer is not None:
            x = self.flip_layer(x, training=True)
        if training and self.augmentation is not None:
            x = self.augmentation(x, training=True)
        features = self.embedding(x, training=training)
        return self.head(self.dropout_layer(features, training=training))

    def _to_input_size(self, x):
        """`x` resized to `image_shape`'s height and width where they differ (antialiased)."""
        height, width, channels = self.image_shape
        if len(x.shape) != 4 or x.shape[-1] != channels:
            raise ValueError(
                f"The classifier takes images [B, H, W, {channels}]. Received: images of shape {tuple(x.shape)}"
            )
        if tuple(x.shape[1:3]) == (height, width):
            return x
        return ops.image.resize(x, (height, width), interpolation="bilinear", antialias=True)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        batch_size = ops.shape(x)[0]
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            logits = self(x, training=True)
            # Keras's loss is this replica's mean over its images divided by the number of
            # replicas, which overweights a short (ragged) shard; its exact share of the global
            # batch's mean is the mean times this replica's fraction of the global batch.
            loss = self.compute_loss(x, y, logits, sample_weight, training=True) * replicas
            share = distribute.replica_share(ops.cast(batch_size, "float32"))
            scaled_loss = self.optimizer.scale_loss(loss * share)
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        # Keras's own loss tracker, weighted by images as Keras weights it.
        self._loss_tracker.update_state(loss, sample_weight=batch_size)
        return distribute.step_logs(self.compute_metrics(x, y, logits, sample_weight))

    def test_step(self, data):
        return distribute.step_logs(super().test_step(data))

    def get_config(self):
        return {
            **super().get_config(),
            "image_shape": self.image_shape,
            "num_classes": self.num_classes,
            "num_filters": self.num_filters,
            "feature_dim": self.feature_dim,
            "dropout": self.dropout,
            "translation": self.translation,
            "flip": self.flip,
            "batch_norm": self.batch_norm,
            "convs_per_level": self.convs_per_level,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["image_shape"] = tuple(config["image_shape"])
        config["num_filters"] = tuple(config["num_filters"])
        return cls(**config)


def _build_embedding(image_shape, num_filters, feature_dim, batch_norm=False, convs_per_level=2, name="embedding"):
    """Images to penultimate features: per level 3x3 convolutions and a 2x2 max pooling, then a dense layer."""
    inputs = keras.Input(shape=image_shape, name="images")
    x = inputs
    for filters in num_filters:
        for _ in range(convs_per_level):
            if batch_norm:
                # The normalization's shift replaces the convolution's bias.
                x = Conv2D(filters, 3, padding="same", use_bias=False)(x)
                x = layers.Activation("relu")(layers.BatchNormalization()(x))
            else:
                x = Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = MaxPooling2D(2, padding="same")(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(feature_dim, activation="relu", name="features")(x)
    return keras.Model(inputs, outputs, name=name)


def _output_dtype():
    """float32 under a mixed-precision policy (whose outputs would be half precision), else the policy."""
    policy = keras.config.dtype_policy()
    return "float32" if policy.compute_dtype != policy.variable_dtype else policy.name
