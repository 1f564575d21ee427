"""Runs small trainings on one device and under `MirroredStrategy` over 2 logical CPUs; prints JSON.

Logical devices must be configured before TensorFlow starts, so `tests/test_distribute.py` runs
this file in a subprocess: `python tests/distributed_cases.py`.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasgen import distribute  # noqa: E402
from kerasgen.evaluation.sample_quality import KID  # noqa: E402
from kerasgen.models import AAE, GAN, VAE, VAEGAN, Classifier  # noqa: E402
from kerasgen.networks import build_discriminator  # noqa: E402

# 65 images in batches of 16: the last global batch holds 1 image, so one replica gets none.
NUM_IMAGES, BATCH_SIZE, EPOCHS = 65, 16, 2
IMAGE_SHAPE = (8, 8, 1)


def strategies():
    return {"one_device": tf.distribute.get_strategy(), "two_replicas": tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])}


def images(binary):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(NUM_IMAGES, *IMAGE_SHAPE)).astype("float32")
    return (x > 0.5).astype("float32") if binary else x


def dataset(x):
    labels = np.arange(len(x)) % 3
    return tf.data.Dataset.from_tensor_slices((x, labels)).batch(BATCH_SIZE)


def build(kind):
    if kind == "vae":
        model = VAE(image_shape=IMAGE_SHAPE, latent_dim=2, num_filters=(4,), hidden_dim=8, seed=1)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        return model
    if kind == "iwae":
        model = VAE(image_shape=IMAGE_SHAPE, latent_dim=2, num_filters=(4,), hidden_dim=8, num_importance_samples=3, seed=1)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        return model
    if kind == "gan":
        generator = keras.Sequential(
            [keras.Input((2,)), keras.layers.Dense(64, activation="sigmoid"), keras.layers.Reshape(IMAGE_SHAPE)]
        )
        model = GAN(generator, build_discriminator(IMAGE_SHAPE), latent_dim=2, seed=1)
        model.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
        return model
    if kind == "vaegan":
        # The equilibrium rule puts each update in a tf.cond: taken on every replica alike.
        vae = VAE(image_shape=IMAGE_SHAPE, latent_dim=2, num_filters=(4,), hidden_dim=8, seed=1)
        model = VAEGAN.from_vae(vae, discriminator=build_discriminator(IMAGE_SHAPE, num_filters=(4, 8)),
                                equilibrium_margin=0.05, seed=1)
        model.compile(*(keras.optimizers.Adam(1e-3) for _ in range(3)))
        return model
    if kind == "aae":
        model = AAE(image_shape=IMAGE_SHAPE, latent_dim=2, num_filters=(4,), hidden_dim=8, encoder="gaussian",
                    prior="mixture", prior_components=3, discriminator_units=(8,), seed=1)
        model.compile(*(keras.optimizers.Adam(1e-3) for _ in range(3)))
        return model
    model = Classifier(image_shape=IMAGE_SHAPE, num_classes=3, num_filters=(4,), feature_dim=8, dropout=0.0, translation=0.0, seed=1)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def trajectory(kind, strategy):
    """Per-epoch metrics and final weights of a seeded training under `strategy`."""
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build(kind)
    history = model.fit(dataset(images(kind in ("vae", "iwae", "aae"))), epochs=EPOCHS, verbose=0, shuffle=False)
    return history.history, [np.asarray(w).tolist() for w in model.get_weights()]


def replica_draws(strategy):
    """What each replica draws in one step: the GAN's z, the VAE's z and a classifier dropout seed."""
    keras.utils.set_random_seed(0)
    with strategy.scope():
        gan, vae = build("gan"), build("vae")
        classifier = Classifier(image_shape=IMAGE_SHAPE, num_classes=3, num_filters=(4,), feature_dim=8, seed=1)
    x = images(True)[:BATCH_SIZE]

    def step(batch):
        size = tf.shape(batch)[0]
        return {
            "gan_z": gan._latents(size, gan.seed_generator),
            "vae_z": vae._sample_latents(vae.posterior_distribution(batch), size, training=True),
            "dropout_seed": classifier.dropout_layer.seed_generator.next(),
        }

    distributed = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(x).batch(BATCH_SIZE))
    outputs = strategy.run(tf.function(step), args=(next(iter(distributed)),))
    return {
        name: [np.asarray(v).tolist() for v in strategy.experimental_local_results(value)]
        for name, value in outputs.items()
    }


class KIDProbe(keras.Model):
    """Feeds evaluation batches to a KID metric, as a GAN's test_step would feed generated images."""

    def __init__(self, kid):
        super().__init__()
        self.kid = kid

    def call(self, x):
        return x

    def test_step(self, data):
        x, _ = data
        self.kid.update_state(x)
        return {"kid": self.kid.result()}

    @property
    def metrics(self):
        return [self.kid]


def kid_value(strategy):
    rng = np.random.default_rng(1)
    real = rng.normal(size=(40, 4)).astype("float32")
    generated = (rng.normal(size=(NUM_IMAGES, 8, 8, 1)) + 0.5).astype("float32")
    projection = tf.constant((rng.normal(size=(64, 4)) / 8).astype("float32"))

    def features(images):
        return tf.reshape(images, (-1, 64)) @ projection

    with strategy.scope():
        probe = KIDProbe(KID(features, real_features=real, num_subsets=10, subset_size=20, max_samples=100))
        probe.compile()
    return float(probe.evaluate(dataset(generated), verbose=0, return_dict=True)["kid"])


def main():
    cases = sys.argv[1:] or ["trajectories", "draws", "kid"]
    results = {}
    for name, strategy in strategies().items():
        if "trajectories" in cases:
            for kind in ("vae", "iwae", "gan", "vaegan", "aae", "classifier"):
                results.setdefault(kind, {})[name] = trajectory(kind, strategy)
        if "draws" in cases:
            results.setdefault("draws", {})[name] = replica_draws(strategy)
        if "kid" in cases:
            results.setdefault("kid", {})[name] = kid_value(strategy)
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
