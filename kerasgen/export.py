"""SavedModel export for serving: named signatures over plain tensors, no kerasgen needed to load."""

import keras
import tensorflow as tf
from keras import ops

from kerasgen import distributions
from kerasgen.artifacts import atomic_path


def export_vae(vae, path):
    """Writes `vae` as a SavedModel with the signatures `decode`, `sample`, `encode`, `reconstruct`.

    Every input and output is a float32 or int32 tensor; no distribution object crosses the
    boundary. `tf.saved_model.load(path).signatures[...]` serves it in a process that never
    imports kerasgen, and `saved_model_cli show --dir PATH --all` lists it.

    - `decode(z: [B, D])` → `images`: the mean image of p(x|z), `[B, H, W, C]`.
    - `sample(n: [], seed: [])` → `images`, `z`: `n` images from z ~ N(0, I), deterministic for a seed.
    - `encode(images: [B, H, W, C])` → `loc` `[B, D]` and `scale`: the posterior's standard
      deviations `[B, D]` (diagonal) or its Cholesky factor `[B, D, D]` (full covariance).
    - `reconstruct(images)` → `images`: decoded at the posterior mean.

    The write is atomic: `path` is either the old export or the complete new one.

    Args:
        vae: a `kerasgen.VAE`.
        path: str, the SavedModel folder.
    """
    image_spec = tf.TensorSpec([None, *vae.image_shape], tf.float32, name="images")
    latent_spec = tf.TensorSpec([None, vae.latent_dim], tf.float32, name="z")

    def decode(z):
        return {"images": vae.decode(z)}

    def sample(n, seed):
        z = tf.random.stateless_normal([n, vae.latent_dim], seed=tf.stack([seed, 0]))
        return {"images": vae.decode(z), "z": z}

    def encode(images):
        posterior = vae.posterior_distribution(images)
        return {"loc": posterior.mean(), "scale": distributions.posterior_scale(posterior)}

    def reconstruct(images):
        return {"images": vae.reconstruct(images)}

    _write_archive(
        vae,
        path,
        {
            "decode": (decode, [latent_spec]),
            "sample": (sample, _SAMPLE_SIGNATURE),
            "encode": (encode, [image_spec]),
            "reconstruct": (reconstruct, [image_spec]),
        },
    )


def export_gan(gan, path):
    """Writes the generator of `gan` as a SavedModel with the signatures `generate` and `sample`.

    Only the generator that `gan.generate` uses (the weight average when `ema_decay` > 0) is
    saved; the discriminator is training machinery and stays out. Loads without kerasgen, like
    `export_vae`, and the write is atomic.

    - `generate(z: [B, D])` → `images`: `[B, H, W, C]`, equal to `gan.generate(z)`.
    - `sample(n: [], seed: [])` → `images`, `z`: `n` images from z ~ N(0, I), deterministic for a seed.

    Args:
        gan: a `kerasgen.GAN`.
        path: str, the SavedModel folder.
    """
    generator = gan.ema_generator if gan.ema_generator is not None else gan.generator
    latent_spec = tf.TensorSpec([None, gan.latent_dim], tf.float32, name="z")

    def generate(z):
        return {"images": ops.cast(generator(z, training=False), "float32")}

    def sample(n, seed):
        z = tf.random.stateless_normal([n, gan.latent_dim], seed=tf.stack([seed, 0]))
        return {"images": ops.cast(generator(z, training=False), "float32"), "z": z}

    _write_archive(generator, path, {"generate": (generate, [latent_spec]), "sample": (sample, _SAMPLE_SIGNATURE)})


_SAMPLE_SIGNATURE = [tf.TensorSpec([], tf.int32, name="n"), tf.TensorSpec([], tf.int32, name="seed")]


def _write_archive(model, path, endpoints):
    """Writes `model`'s variables and `endpoints` (`name → (function, input_signature)`) to `path` atomically."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (function, input_signature) in endpoints.items():
        archive.add_endpoint(name, function, input_signature=input_signature)
    with atomic_path(path) as tmp:
        archive.write_out(tmp, verbose=False)
