"""SavedModel export for serving: named signatures over plain tensors, no kerasgen needed to load."""

import keras
import tensorflow as tf

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

    archive = keras.export.ExportArchive()
    archive.track(vae)
    archive.add_endpoint("decode", decode, input_signature=[latent_spec])
    archive.add_endpoint(
        "sample",
        sample,
        input_signature=[tf.TensorSpec([], tf.int32, name="n"), tf.TensorSpec([], tf.int32, name="seed")],
    )
    archive.add_endpoint("encode", encode, input_signature=[image_spec])
    archive.add_endpoint("reconstruct", reconstruct, input_signature=[image_spec])
    with atomic_path(path) as tmp:
        archive.write_out(tmp, verbose=False)
