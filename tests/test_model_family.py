"""`train-vaegan` and `train-aae` as a user runs them: another shape, no labels, colour; every artifact, resume, serving, evaluate."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasgen.cli import main
from kerasgen.images import image_grid
from kerasgen.latent import fixed_latents

# A tiny from-scratch architecture; the discriminator is train-vaegan's own.
TINY = ["--latent-dim", "2", "--num-filters", "4", "--hidden-dim", "8", "--validation-size", "16"]


@pytest.fixture(scope="module")
def colour_npz(tmp_path_factory):
    """48 unlabelled 8x12 RGB images: not digits, not square, not grey, no labels."""
    rng = np.random.default_rng(0)
    x = (rng.uniform(size=(48, 8, 12, 3)) * 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("data") / "colour.npz"
    np.savez(path, images=x)
    return str(path)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory, colour_npz):
    """A one-epoch Gaussian VAE on the colour images, through the CLI."""
    out = tmp_path_factory.mktemp("runs") / "vae"
    assert main(["train-vae", "--dataset", colour_npz, *TINY, "--likelihood", "gaussian", "--epochs", "1",
                 "--batch-size", "16", "--out", str(out)]) == 0
    return out


def _epoch_zero_is_the_vae(out, vae):
    """Epoch 0's sample grid is the VAE's own decode of the same fixed latents."""
    trained_vae = keras.saving.load_model(vae / "vae.keras")
    expected = image_grid(keras.ops.convert_to_numpy(trained_vae.decode(fixed_latents(64, 2, seed=0))))
    grid = tf.io.decode_png(tf.io.read_file(str(out / "samples" / "epoch_000.png"))).numpy()
    np.testing.assert_array_equal(grid, expected)
    return trained_vae


def _weights(path):
    return keras.saving.load_model(path).get_weights()


@pytest.mark.slow
def test_train_vaegan_from_scratch_on_unlabelled_colour_images(tmp_path, colour_npz, capsys):
    out = tmp_path / "vaegan"
    args = ["train-vaegan", "--dataset", colour_npz, *TINY, "--batch-size", "16", "--grid-every", "1"]
    assert main([*args, "--epochs", "1", "--out", str(out)]) == 0
    for name in ("vaegan.keras", "config.json", "history.csv", "history.png", "checkpoint/state.json",
                 "saved_model/saved_model.pb", "samples/epoch_001.png", "reconstructions/epoch_001.png"):
        assert (out / name).exists(), name
    history = (out / "history.csv").read_text().splitlines()
    for column in ("kl", "reconstruction", "d_loss", "g_loss", "r1", "d_real", "d_fake", "d_reconstruction", "val_kl"):
        assert column in history[0].split(","), column
    assert json.loads((out / "config.json").read_text())["image_shape"] == [8, 12, 3]

    # Resumed for a second epoch, it ends where a straight two-epoch run ends: three optimizers and the noise restored.
    assert main([*args, "--epochs", "2", "--out", str(out), "--resume"]) == 0
    straight = tmp_path / "straight"
    assert main([*args, "--epochs", "2", "--out", str(straight)]) == 0
    for a, b in zip(_weights(out / "vaegan.keras"), _weights(straight / "vaegan.keras")):
        np.testing.assert_array_equal(a, b)

    # The SavedModel serves what the Python model computes.
    model = keras.saving.load_model(out / "vaegan.keras")
    served = tf.saved_model.load(str(out / "saved_model"))
    x = np.random.default_rng(1).uniform(size=(3, 8, 12, 3)).astype("float32")
    np.testing.assert_allclose(served.signatures["reconstruct"](images=x)["images"], model.reconstruct(x), atol=1e-5)
    np.testing.assert_allclose(served.signatures["encode"](images=x)["loc"], model.encode(x)[0], atol=1e-5)
    assert served.signatures["sample"](n=tf.constant(5), seed=tf.constant(0))["images"].shape == (5, 8, 12, 3)

    # `sample` draws from it; `evaluate` without labels or classifier: no sample metrics, but the latent MMD.
    assert main(["sample", "--model", str(out), "--n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert main(["evaluate", "--model", str(out), "--num-samples", "16", "--batch-size", "16"]) == 0
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert "elbo" not in metrics  # a VAE-GAN's pixel likelihood is not what it trained
    assert "skipped" in metrics["samples"] and "skipped" in metrics["reconstruction"]
    assert np.isfinite(metrics["aggregated_posterior"]["mmd"])


@pytest.mark.slow
def test_train_vaegan_from_a_vae_run_starts_at_the_vae(tmp_path, colour_npz, vae_run, capsys):
    out = tmp_path / "vaegan"
    base = ["train-vaegan", "--vae", str(vae_run), "--epochs", "1", "--batch-size", "16", "--out", str(out)]
    # With --vae the architecture and the split are the VAE's: a from-scratch flag is one clear line.
    assert main([*base, "--latent-dim", "4"]) == 2
    assert "drop --latent-dim 4" in capsys.readouterr().err and not out.exists()
    assert main(base) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["validation_size"] == 16 and config["latent_dim"] == 2 and config["dataset"] == colour_npz
    trained_vae = _epoch_zero_is_the_vae(out, vae_run)
    z = fixed_latents(8, 2, seed=1)
    assert not np.allclose(keras.saving.load_model(out / "vaegan.keras").decode(z), trained_vae.decode(z))


@pytest.mark.slow
def test_train_aae_from_scratch_with_a_mixture_prior_and_a_gaussian_encoder(tmp_path, colour_npz):
    out = tmp_path / "aae"
    args = ["train-aae", "--dataset", colour_npz, *TINY, "--likelihood", "gaussian", "--encoder", "gaussian",
            "--prior", "mixture", "--prior-components", "3", "--batch-size", "16", "--grid-every", "1"]
    # (Resuming is the harness's, shown bit for bit for the VAE-GAN above.)
    assert main([*args, "--epochs", "2", "--out", str(out)]) == 0
    for name in ("history.png", "samples/epoch_002.png", "reconstructions/epoch_002.png", "saved_model/saved_model.pb"):
        assert (out / name).exists(), name
    config = json.loads((out / "config.json").read_text())
    assert (config["binarize"], config["likelihood"], config["prior"]) == ("none", "gaussian", "mixture")

    # The SavedModel draws from the mixture prior exactly as the Python model does.
    model = keras.saving.load_model(out / "aae.keras")
    served = tf.saved_model.load(str(out / "saved_model"))
    drawn = served.signatures["sample"](n=tf.constant(6), seed=tf.constant(3))
    np.testing.assert_allclose(drawn["images"], model.sample(6, seed=3), atol=1e-5)
    np.testing.assert_allclose(drawn["z"], model.prior().sample(6, seed=tf.constant([3, 0])), atol=1e-6)

    # A Gaussian encoder defines log p(x): evaluate reports it, and the codes' distance to the prior.
    assert main(["evaluate", "--model", str(out), "--k", "4", "--num-samples", "16", "--batch-size", "16"]) == 0
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert metrics["importance_weighted"]["log_likelihood"] >= metrics["elbo"]["elbo"] - 1e-3
    assert np.isfinite(metrics["aggregated_posterior"]["mmd"])


def test_train_aae_from_scratch_takes_the_8_bit_likelihood_and_a_latent_map(tmp_path, colour_npz):
    # 8x12 images, one level: a 4x6 map, so a latent of 48 numbers is 2 channels per position.
    out = tmp_path / "aae"
    args = ["train-aae", "--dataset", colour_npz, "--latent-dim", "48", "--num-filters", "4", "--validation-size", "16",
            "--likelihood", "logistic_mixture", "--likelihood-components", "2", "--latent-layout", "map",
            "--batch-size", "16", "--epochs", "1", "--out", str(out)]
    assert main(args) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["likelihood"], config["likelihood_components"], config["latent_layout"]) == ("logistic_mixture", 2, "map")
    model = keras.saving.load_model(out / "aae.keras")
    assert (model.likelihood, model.likelihood_components, model.latent_layout) == ("logistic_mixture", 2, "map")
    assert model.decoder.get_layer("z_map").output.shape[1:] == (4, 6, 2)


@pytest.mark.slow
def test_train_aae_from_a_vae_run_starts_at_the_vae(tmp_path, vae_run):
    out = tmp_path / "aae"
    assert main(["train-aae", "--vae", str(vae_run), "--epochs", "1", "--batch-size", "16", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["likelihood"], config["binarize"], config["encoder"]) == ("gaussian", "none", "deterministic")
    _epoch_zero_is_the_vae(out, vae_run)
    # A deterministic encoder defines no likelihood: evaluate reports none.
    assert main(["evaluate", "--model", str(out), "--num-samples", "16", "--batch-size", "16"]) == 0
    assert "elbo" not in json.loads((out / "report" / "metrics.json").read_text())


def test_train_vaegan_flags_parse_into_the_config():
    from kerasgen.cli import build_parser
    from kerasgen.config import TrainVAEGANConfig, from_arguments

    arguments = build_parser().parse_args(
        ["train-vaegan", "--gamma", "0.1", "--feature-scale", "2", "--equilibrium-margin", "0.3", "--num-filters", "8", "16"]
    )
    config = from_arguments(TrainVAEGANConfig, arguments)
    assert (config.gamma, config.feature_scale, config.equilibrium_margin, config.num_filters) == (0.1, 2.0, 0.3, (8, 16))
    assert from_arguments(TrainVAEGANConfig, build_parser().parse_args(["train-vaegan"])).feature_scale == "fitted"
    with pytest.raises(ValueError, match="--feature-scale must be 'fitted' or a number > 0. Received: --feature-scale scaled"):
        TrainVAEGANConfig(feature_scale="scaled")
