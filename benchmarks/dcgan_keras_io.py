"""keras.io's DCGAN, ported to 32x32 colour images: the baseline of `benchmarks/cifar10.py`.

The source is the keras.io example "DCGAN to generate face images"
(`examples/generative/dcgan_overriding_train_step.py`, fchollet, last modified 2023/12/21),
which trains on 64x64 CelebA. Kept as it is there:

- the discriminator: three 4x4 stride-2 convolutions (64, 128, 128 filters) with LeakyReLU(0.2),
  flatten, dropout 0.2, a sigmoid unit;
- the generator: z of size 128, a dense layer to a 128-channel map, three 4x4 stride-2 transposed
  convolutions (128, 256, 512 filters) with LeakyReLU(0.2), a 5x5 sigmoid convolution to RGB;
- the loss: binary cross-entropy on probabilities, fakes labelled 1 and real images 0, with
  uniform label noise of 0.05 on the discriminator's labels; the generator trains on "misleading"
  labels 0 (the non-saturating form);
- Adam with learning rate 1e-4 for both networks, Keras's other defaults; batches of 32 images in
  [0, 1].

The one change is the size: 32x32 images instead of 64x64, so the generator's dense layer makes a
4x4 map where the example makes an 8x8 one (three doublings reach 32). The discriminator needs no
change. `sample(n, seed)` and `generate(z)` are added so that kerasgen's sample-quality and
sample-grid callbacks can score and draw it.
"""

import keras
import tensorflow as tf
from keras import layers, ops

LATENT_DIM = 128
BATCH_SIZE = 32
LEARNING_RATE = 1e-4


def build_discriminator(image_shape=(32, 32, 3)):
    return keras.Sequential(
        [
            keras.Input(shape=image_shape),
            layers.Conv2D(64, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(128, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(128, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Flatten(),
            layers.Dropout(0.2),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="discriminator",
    )


def build_generator(image_shape=(32, 32, 3), latent_dim=LATENT_DIM):
    start = image_shape[0] // 8  # 4 for 32x32; the example's 8 for 64x64.
    return keras.Sequential(
        [
            keras.Input(shape=(latent_dim,)),
            layers.Dense(start * start * 128),
            layers.Reshape((start, start, 128)),
            layers.Conv2DTranspose(128, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2DTranspose(256, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2DTranspose(512, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(image_shape[-1], kernel_size=5, padding="same", activation="sigmoid"),
        ],
        name="generator",
    )


class KerasIODCGAN(keras.Model):
    """The example's `GAN` class, with `sample` for scoring."""

    def __init__(self, discriminator, generator, latent_dim=LATENT_DIM, seed=1337):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(seed)

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def train_step(self, real_images):
        if isinstance(real_images, tuple):  # kerasgen's datasets carry labels; the example's do not.
            real_images = real_images[0]
        batch_size = ops.shape(real_images)[0]
        random_latent_vectors = keras.random.normal(shape=(batch_size, self.latent_dim), seed=self.seed_generator)
        generated_images = self.generator(random_latent_vectors)
        combined_images = ops.concatenate([generated_images, real_images], axis=0)
        labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
        labels += 0.05 * tf.random.uniform(tf.shape(labels))

        with tf.GradientTape() as tape:
            predictions = self.discriminator(combined_images)
            d_loss = self.loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))

        random_latent_vectors = keras.random.normal(shape=(batch_size, self.latent_dim), seed=self.seed_generator)
        misleading_labels = ops.zeros((batch_size, 1))
        with tf.GradientTape() as tape:
            predictions = self.discriminator(self.generator(random_latent_vectors))
            g_loss = self.loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))

        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}

    def generate(self, z):
        """The generator's images in [0, 1] for latent vectors `z` `[N, latent_dim]`."""
        return self.generator(z, training=False)

    def sample(self, n, seed=0):
        """`n` generated images in [0, 1]; the same `seed` gives the same images."""
        z = keras.random.normal((n, self.latent_dim), seed=seed)
        return self.generator(z, training=False)


def build(image_shape=(32, 32, 3)):
    """The port, compiled as the example compiles it."""
    gan = KerasIODCGAN(build_discriminator(image_shape), build_generator(image_shape))
    gan.compile(
        d_optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
        g_optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
        loss_fn=keras.losses.BinaryCrossentropy(),
    )
    return gan
