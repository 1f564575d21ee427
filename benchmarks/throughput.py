"""Train-step throughput: kerasgen's TFP VAE against a plain Keras VAE with the same layers.

The plain VAE hand-writes its ELBO (binary cross-entropy from logits plus the analytic Gaussian
KL, no TFP); everything else — encoder, decoder, batch, optimizer, `fit` loop — is the same. Both
run in this process, in alternating rounds, and the median images/s of each is printed.

    python benchmarks/throughput.py [--batch-size 128] [--rounds 5] [--steps 40]
"""

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from kerasgen import VAE  # noqa: E402
from kerasgen.data import load_dataset  # noqa: E402
from kerasgen.networks import build_decoder, build_encoder  # noqa: E402


class PlainVAE(keras.Model):
    """The textbook Keras VAE: same networks, ELBO written out by hand."""

    def __init__(self, latent_dim, image_shape, num_filters, hidden_dim):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = build_encoder(image_shape, num_filters, hidden_dim, 2 * latent_dim)
        self.decoder = build_decoder(latent_dim, image_shape, num_filters, hidden_dim)
        self.seed_generator = keras.random.SeedGenerator(0)
        self.trackers = [keras.metrics.Mean(name=n) for n in ("loss", "elbo", "reconstruction", "kl")]

    @property
    def metrics(self):
        return self.trackers

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            loc, raw_scale = ops.split(self.encoder(x, training=True), 2, axis=-1)
            scale = ops.softplus(raw_scale) + 1e-5
            z = loc + scale * keras.random.normal(ops.shape(loc), seed=self.seed_generator)
            logits = self.decoder(z, training=True)
            reconstruction = ops.mean(
                ops.sum(ops.binary_crossentropy(x, logits, from_logits=True), axis=(1, 2, 3))
            )
            kl = ops.mean(ops.sum(0.5 * (ops.square(loc) + ops.square(scale) - 1.0) - ops.log(scale), axis=-1))
            loss = reconstruction + kl
        self.optimizer.apply(tape.gradient(loss, self.trainable_variables), self.trainable_variables)
        for tracker, value in zip(self.trackers, (loss, -loss, reconstruction, kl)):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.metrics}


def images_per_second(model, dataset, steps, batch_size):
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()

    splits = load_dataset("mnist-5k", batch_size=args.batch_size, binarize="dynamic")
    dataset = splits.train.repeat()
    settings = dict(latent_dim=16, image_shape=splits.image_shape, num_filters=(32, 64), hidden_dim=256)
    models = {"kerasgen VAE (TFP)": VAE(**settings, seed=0), "plain Keras VAE": PlainVAE(**settings)}
    for model in models.values():
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        images_per_second(model, dataset, 10, args.batch_size)  # trace and warm up

    rates = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            rates[name].append(images_per_second(model, dataset, args.steps, args.batch_size))

    print(f"batch {args.batch_size}, {args.rounds} rounds of {args.steps} steps, {os.cpu_count()} CPU cores, "
          f"devices: {[d.device_type for d in tf.config.list_physical_devices()]}")
    medians = {name: float(np.median(values)) for name, values in rates.items()}
    for name, values in rates.items():
        print(f"{name:22s} {medians[name]:8.0f} images/s  (rounds: {', '.join(f'{v:.0f}' for v in values)})")
    ratio = medians["kerasgen VAE (TFP)"] / medians["plain Keras VAE"]
    print(f"kerasgen / plain: {ratio:.3f}x  (target >= 0.95x)")


if __name__ == "__main__":
    main()
