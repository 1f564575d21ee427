"""SavedModel export for serving: named signatures over plain tensors, no kerasgen needed to load.

`export_saved_model` takes any kerasgen `.keras` file or run folder and writes it with the exporter
its model's spec names (`kerasgen.specs`); `export_autoencoder` (VAE, VAE-GAN, AAE), `export_gan`
and `export_classifier` take the Python objects.
"""

import os

import keras
import tensorflow as tf
from keras import ops

from kerasgen import artifacts, specs
from kerasgen.artifacts import atomic_path
from kerasgen.models import AAE

# The model files a run folder may hold, in the order `export_saved_model` looks for them.
MODEL_FILES = specs.model_files(generative_only=False)


def export_saved_model(path, out):
    """Loads the kerasgen model at `path` and writes it to `out` as a SavedModel for serving.

    The endpoints follow the model's type: its spec's exporter writes them (a `VAE` gets
    `export_vae`'s, a `GAN` `export_gan`'s, a `Classifier` `export_classifier`'s), and a subclass
    of a kerasgen model is exported as that model. The write is atomic.

    Args:
        path: str, a `.keras` file or a run folder holding one of `MODEL_FILES` (the first
            found, in that order).
        out: str, the SavedModel folder to write.

    Returns:
        `(out, endpoint_names)`: the folder written and its endpoints, e.g.
        `("export/vae", ["decode", "sample", "encode", "reconstruct"])`.

    Raises:
        FileNotFoundError: no model file at `path`.
        ValueError: the model is of a type kerasgen does not export.
    """
    model, _, _ = artifacts.load_run(path, filenames=MODEL_FILES)
    spec = specs.spec_of(model)
    if spec is None:
        raise ValueError(
            f"Only a kerasgen model ({', '.join(known.class_name for known in specs.SPECS)}) can be exported. "
            f"Received: a {type(model).__module__}.{type(model).__name__} from {path!r}"
        )
    return os.fspath(out), spec.exporter()(model, out)


def export_vae(vae, path):
    """Writes a `kerasgen.VAE` as a SavedModel: `export_autoencoder`'s endpoints."""
    return export_autoencoder(vae, path)


def export_autoencoder(vae, path):
    """Writes a VAE, VAE-GAN or adversarial autoencoder as a SavedModel with the signatures `decode`, `sample`, `encode`, `reconstruct`.

    Every input and output is a float32 or int32 tensor; no distribution object crosses the
    boundary. `tf.saved_model.load(path).signatures[...]` serves it in a process that never
    imports kerasgen, and `saved_model_cli show --dir PATH --all` lists it.

    - `decode(z: [B, D])` → `images`: the mean image of p(x|z), `[B, H, W, C]`.
    - `sample(n: [], seed: [])` → `images`, `z`: `n` images from z ~ p(z), deterministic for a seed.
    - `encode(images: [B, H, W, C])` → `loc` `[B, D]` and `scale`: the posterior's standard
      deviations `[B, D]` (diagonal; zeros for a deterministic encoder) or its Cholesky factor
      `[B, D, D]` (full covariance).
    - `reconstruct(images)` → `images`: decoded at the posterior mean.

    A VAE with `decoder="pixelcnn"` has no tractable mean image: its `decode` and `reconstruct`
    return binary samples of p(x|z) drawn from the model's own sampling stream, and `sample`
    draws its pixels with a seed derived from `seed` as well, so a seed fixes its images too.

    The write is atomic: `path` is either the old export or the complete new one.

    Args:
        vae: a `kerasgen.VAE`, `VAEGAN` or `AAE`.
        path: str, the SavedModel folder.

    Returns:
        The endpoint names, `["decode", "sample", "encode", "reconstruct"]`.
    """
    image_spec = tf.TensorSpec([None, *vae.image_shape], tf.float32, name="images")
    latent_spec = tf.TensorSpec([None, vae.latent_dim], tf.float32, name="z")

    def decode(z):
        return {"images": vae.decode(z)}

    def sample(n, seed):
        if isinstance(vae, AAE):
            # The AAE's own prior (N(0, I) or a mixture), drawn as `AAE.sample(n, seed)` draws it.
            z = vae.prior().sample(n, seed=tf.stack([seed, 0]))
        else:
            z = tf.random.stateless_normal([n, vae.latent_dim], seed=tf.stack([seed, 0]))
        if getattr(vae, "pixelcnn", None) is not None:
            return {"images": vae.decode(z, seed=tf.stack([seed, 1])), "z": z}
        return {"images": vae.decode(z), "z": z}

    def encode(images):
        loc, scale = vae.encode(images)
        return {"loc": loc, "scale": scale}

    def reconstruct(images):
        return {"images": vae.reconstruct(images)}

    return _write_archive(
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

    Returns:
        The endpoint names, `["generate", "sample"]`.
    """
    generator = gan.ema_generator if gan.ema_generator is not None else gan.generator
    latent_spec = tf.TensorSpec([None, gan.latent_dim], tf.float32, name="z")

    def generate(z):
        return {"images": ops.cast(generator(z, training=False), "float32")}

    def sample(n, seed):
        z = tf.random.stateless_normal([n, gan.latent_dim], seed=tf.stack([seed, 0]))
        return {"images": ops.cast(generator(z, training=False), "float32"), "z": z}

    return _write_archive(generator, path, {"generate": (generate, [latent_spec]), "sample": (sample, _SAMPLE_SIGNATURE)})


def export_classifier(classifier, path):
    """Writes `classifier` as a SavedModel with the signatures `predict` and `features`.

    Loads without kerasgen, like `export_vae`, and the write is atomic. Both run in inference
    mode (no augmentation, no dropout).

    - `predict(images: [B, H, W, C])` → `logits` and `probabilities` (their softmax), `[B, num_classes]`.
    - `features(images)` → `features`: the penultimate-layer features `[B, feature_dim]` that
      Fréchet distance and KID are measured on, equal to `classifier.features(images)`.

    Args:
        classifier: a `kerasgen.models.Classifier`.
        path: str, the SavedModel folder.

    Returns:
        The endpoint names, `["predict", "features"]`.
    """
    image_spec = tf.TensorSpec([None, *classifier.image_shape], tf.float32, name="images")

    def predict(images):
        logits = ops.cast(classifier(images, training=False), "float32")
        return {"logits": logits, "probabilities": ops.softmax(logits, axis=-1)}

    def features(images):
        return {"features": ops.cast(classifier.features(images), "float32")}

    return _write_archive(classifier, path, {"predict": (predict, [image_spec]), "features": (features, [image_spec])})


_SAMPLE_SIGNATURE = [tf.TensorSpec([], tf.int32, name="n"), tf.TensorSpec([], tf.int32, name="seed")]


def _write_archive(model, path, endpoints):
    """Writes `model`'s variables and `endpoints` (`name → (function, input_signature)`) to `path` atomically.

    Returns the endpoint names.
    """
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (function, input_signature) in endpoints.items():
        archive.add_endpoint(name, function, input_signature=input_signature)
    with atomic_path(path) as tmp:
        archive.write_out(tmp, verbose=False)
    return list(endpoints)
