import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasgen import VAE, specs
from kerasgen.evaluation.sample_quality import SHIPPED_CLASSIFIER, load_classifier
from kerasgen.export import export_saved_model, export_vae

# Runs in a fresh interpreter that never imports kerasgen (nor TFP): only TensorFlow.
_LOADER = r"""
import json, sys
import numpy as np
import tensorflow as tf
folder = sys.argv[1]
model = tf.saved_model.load(folder + "/saved_model")
z = np.load(folder + "/z.npy")
images = np.load(folder + "/images.npy")
out = {
    "signatures": sorted(model.signatures),
    "decode": model.signatures["decode"](z=tf.constant(z))["images"].numpy().tolist(),
    "reconstruct": model.signatures["reconstruct"](images=tf.constant(images))["images"].numpy().tolist(),
    "loc": model.signatures["encode"](images=tf.constant(images))["loc"].numpy().tolist(),
    "sample_a": model.signatures["sample"](n=tf.constant(3), seed=tf.constant(5))["images"].numpy().tolist(),
    "sample_b": model.signatures["sample"](n=tf.constant(3), seed=tf.constant(5))["images"].numpy().tolist(),
    "modules": sorted(m for m in ("kerasgen", "tensorflow_probability") if m in sys.modules),
}
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.parametrize("posterior", ["diagonal", "full"])
def test_saved_model_serves_the_same_images_without_kerasgen(tmp_path, binary_images, posterior):
    vae = VAE(image_shape=(16, 16, 1), latent_dim=3, num_filters=(8, 16), hidden_dim=32, posterior=posterior, seed=0)
    vae.compile(optimizer="adam")
    vae.fit(binary_images, epochs=1, batch_size=8, verbose=0)
    export_vae(vae, str(tmp_path / "saved_model"))
    z = np.random.default_rng(0).standard_normal((5, 3)).astype("float32")
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "images.npy", binary_images[:4])

    result = subprocess.run([sys.executable, "-c", _LOADER, str(tmp_path)], capture_output=True, text=True, check=True)
    served = json.loads(result.stdout.strip().splitlines()[-1])

    assert served["modules"] == []
    assert served["signatures"] == ["decode", "encode", "reconstruct", "sample", "serving_default"]
    assert np.abs(np.array(served["decode"]) - np.asarray(vae.decode(z))).max() <= 1e-5
    assert np.abs(np.array(served["reconstruct"]) - np.asarray(vae.reconstruct(binary_images[:4]))).max() <= 1e-5
    assert np.abs(np.array(served["loc"]) - np.asarray(vae.encode(binary_images[:4])[0])).max() <= 1e-5
    assert served["sample_a"] == served["sample_b"]
    assert np.array(served["sample_a"]).shape == (3, 16, 16, 1)


@pytest.mark.slow
def test_saved_model_cli_lists_the_signatures(tmp_path):
    vae = VAE(image_shape=(16, 16, 1), latent_dim=2, num_filters=(8, 16), hidden_dim=32)
    export_vae(vae, str(tmp_path / "saved_model"))
    cli = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    shown = subprocess.run([*cli, "show", "--dir", str(tmp_path / "saved_model"), "--all"], capture_output=True, text=True, check=True).stdout
    for name in ("decode", "encode", "reconstruct", "sample"):
        assert f"signature_def['{name}']" in shown


_GAN_LOADER = r"""
import json, sys
import numpy as np
import tensorflow as tf
folder = sys.argv[1]
model = tf.saved_model.load(folder + "/saved_model")
z = np.load(folder + "/z.npy")
sample = lambda seed: model.signatures["sample"](n=tf.constant(3), seed=tf.constant(seed))
out = {
    "signatures": sorted(model.signatures),
    "generate": model.signatures["generate"](z=tf.constant(z))["images"].numpy().tolist(),
    "sample_a": sample(5)["images"].numpy().tolist(),
    "sample_b": sample(5)["images"].numpy().tolist(),
    "sample_c": sample(6)["images"].numpy().tolist(),
    "sample_z": sample(5)["z"].numpy().tolist(),
    "modules": sorted(m for m in ("kerasgen", "tensorflow_probability") if m in sys.modules),
}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_gan_saved_model_serves_the_ema_generator_without_kerasgen(tmp_path, binary_images):
    from kerasgen import GAN
    from kerasgen.export import export_gan

    vae = VAE(image_shape=(16, 16, 1), latent_dim=2, num_filters=(8, 16), hidden_dim=32, seed=0)
    gan = GAN.from_vae(vae, ema_decay=0.5, seed=0)
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-2), g_optimizer=keras.optimizers.Adam(1e-2))
    gan.fit(binary_images, epochs=1, batch_size=8, verbose=0)
    z = np.random.default_rng(0).standard_normal((5, 2)).astype("float32")
    # The average lags the generator after a step, so matching generate(z) means the EMA weights were exported.
    assert np.abs(np.asarray(gan.generate(z)) - np.asarray(gan.generator(z))).max() > 1e-4
    export_gan(gan, str(tmp_path / "saved_model"))
    np.save(tmp_path / "z.npy", z)

    result = subprocess.run([sys.executable, "-c", _GAN_LOADER, str(tmp_path)], capture_output=True, text=True, check=True)
    served = json.loads(result.stdout.strip().splitlines()[-1])

    assert served["modules"] == []
    assert served["signatures"] == ["generate", "sample", "serving_default"]
    assert np.abs(np.array(served["generate"]) - np.asarray(gan.generate(z))).max() <= 1e-5
    assert served["sample_a"] == served["sample_b"] and served["sample_a"] != served["sample_c"]
    assert np.array(served["sample_a"]).shape == (3, 16, 16, 1)
    sample_z = np.array(served["sample_z"], dtype="float32")
    assert np.abs(np.array(served["sample_a"]) - np.asarray(gan.generate(sample_z))).max() <= 1e-5


# `export_saved_model` on the shipped artifacts: one endpoint each, served in this process.

SAVED_MODELS = os.path.join(os.path.dirname(__file__), "..", "saved_models")


def _max_difference(a, b):
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


@pytest.mark.slow
def test_export_saved_model_serves_the_shipped_vae(tmp_path):
    path, endpoints = export_saved_model(os.path.join(SAVED_MODELS, "vae-mnist-5k", "vae.keras"), str(tmp_path / "vae"))
    vae = keras.saving.load_model(os.path.join(SAVED_MODELS, "vae-mnist-5k", "vae.keras"))
    z = np.random.default_rng(0).standard_normal((4, vae.latent_dim)).astype("float32")

    served = tf.saved_model.load(path).signatures["decode"](z=tf.constant(z))["images"]

    assert endpoints == ["decode", "sample", "encode", "reconstruct"] == list(specs.named("VAE").endpoints)
    assert _max_difference(served, vae.decode(z)) < 1e-5


@pytest.mark.slow
def test_export_saved_model_serves_the_shipped_gan_from_its_run_folder(tmp_path):
    run = os.path.join(SAVED_MODELS, "gan-mnist-5k")
    path, endpoints = export_saved_model(run, str(tmp_path / "gan"))
    gan = keras.saving.load_model(os.path.join(run, "gan.keras"))
    z = np.random.default_rng(0).standard_normal((4, gan.latent_dim)).astype("float32")

    served = tf.saved_model.load(path).signatures["generate"](z=tf.constant(z))["images"]

    assert endpoints == ["generate", "sample"] == list(specs.named("GAN").endpoints)
    assert _max_difference(served, gan.generate(z)) < 1e-5


@pytest.mark.slow
def test_export_saved_model_serves_the_shipped_classifier(tmp_path):
    path, endpoints = export_saved_model(SHIPPED_CLASSIFIER, str(tmp_path / "classifier"))
    classifier = load_classifier(None, (28, 28, 1))
    images = np.random.default_rng(0).uniform(size=(4, 28, 28, 1)).astype("float32")

    loaded = tf.saved_model.load(path)
    predicted = loaded.signatures["predict"](images=tf.constant(images))
    features = loaded.signatures["features"](images=tf.constant(images))["features"]

    assert endpoints == ["predict", "features"] == list(specs.named("Classifier").endpoints)
    assert _max_difference(predicted["logits"], classifier(images, training=False)) < 1e-5
    assert _max_difference(predicted["probabilities"], keras.ops.softmax(classifier(images, training=False))) < 1e-5
    assert _max_difference(features, classifier.features(images)) < 1e-5
    assert features.shape == (4, classifier.feature_dim)


def test_export_saved_model_names_a_type_it_cannot_export(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.save(tmp_path / "dense.keras")

    with pytest.raises(ValueError, match="Sequential"):
        export_saved_model(str(tmp_path / "dense.keras"), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_export_saved_model_says_a_missing_model_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model found"):
        export_saved_model(str(tmp_path), str(tmp_path / "out"))


def test_export_saved_model_says_a_corrupt_file_is_corrupt(tmp_path):
    (tmp_path / "x.keras").write_bytes(np.random.default_rng(0).bytes(4096))

    with pytest.raises(ValueError, match="corrupt") as error:
        export_saved_model(str(tmp_path / "x.keras"), str(tmp_path / "out"))
    assert "not found" not in str(error.value).lower()
