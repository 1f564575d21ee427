import os

import numpy as np
import pytest
import tensorflow as tf

from kerasgen import VAE, plots
from kerasgen.images import image_grid, save_png
from kerasgen.latent import interpolate, project_2d


def test_linear_interpolation_hits_both_ends_evenly():
    path = interpolate([0.0, 0.0], [2.0, 4.0], 5)
    np.testing.assert_allclose(path, [[0, 0], [0.5, 1], [1, 2], [1.5, 3], [2, 4]])


def test_spherical_interpolation_keeps_the_norm_between_equal_norm_codes():
    start, end = np.array([3.0, 0.0, 0.0]), np.array([0.0, 3.0, 0.0])
    path = interpolate(start, end, 7, method="spherical")
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 3.0, rtol=1e-6)
    np.testing.assert_allclose(path[[0, -1]], [start, end], atol=1e-6)
    # The straight line shrinks toward the origin in between.
    assert np.linalg.norm(interpolate(start, end, 7)[3]) < 2.2


def test_project_2d_keeps_2d_codes_and_finds_the_main_axes():
    codes = np.random.default_rng(0).normal(size=(100, 2))
    np.testing.assert_allclose(project_2d(codes)[0], codes, rtol=1e-6)
    wide = np.zeros((200, 5))
    wide[:, 3] = np.random.default_rng(1).normal(scale=10.0, size=200)
    wide[:, 1] = np.random.default_rng(2).normal(scale=1.0, size=200)
    points, explained = project_2d(wide)
    assert explained == pytest.approx(1.0)
    assert abs(np.corrcoef(points[:, 0], wide[:, 3])[0, 1]) > 0.999


@pytest.mark.parametrize("call, match", [
    (lambda: interpolate([0.0], [1.0], 1), "Received: steps=1"),
    (lambda: interpolate([0.0], [1.0], 3, "cubic"), "Received: method='cubic'"),
    (lambda: project_2d(np.zeros((4, 1))), r"Received: shape=\(4, 1\)"),
])
def test_bad_arguments_name_what_was_received(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _png_shape(path):
    return tuple(tf.io.decode_png(tf.io.read_file(str(path))).shape)


def test_latent_plots_write_pngs(tmp_path, binary_images):
    vae = VAE(image_shape=(16, 16, 1), latent_dim=2, num_filters=(8, 16), hidden_dim=32, seed=0)
    labels = np.arange(len(binary_images)) % 3
    plots.plot_latent_manifold(vae, tmp_path / "manifold.png", grid_size=5)
    plots.plot_latent_scatter(vae, binary_images, labels, tmp_path / "scatter.png")
    plots.plot_interpolations(vae, binary_images[:4].reshape(2, 2, 16, 16, 1), tmp_path / "interpolations.png", steps=4)
    for name in ("manifold.png", "scatter.png", "interpolations.png"):
        height, width, _ = _png_shape(tmp_path / name)
        assert height > 300 and width > 300
    wide = VAE(image_shape=(16, 16, 1), latent_dim=3, num_filters=(8, 16), hidden_dim=32)
    with pytest.raises(ValueError, match="Received: latent_dim=3"):
        plots.plot_latent_manifold(wide, tmp_path / "no.png")


def test_training_progress_shows_first_trained_middle_and_last_grid(tmp_path):
    samples = tmp_path / "samples"
    for epoch in (0, 5, 10, 15, 20):
        save_png(samples / f"epoch_{epoch:03d}.png", image_grid(np.full((4, 8, 8, 1), epoch / 20, np.float32)))
    plots.plot_training_progress(str(samples), tmp_path / "progress.png")
    assert _png_shape(tmp_path / "progress.png")[1] > 3 * 300
    with pytest.raises(FileNotFoundError, match="No sample grids"):
        plots.plot_training_progress(str(tmp_path / "empty"), tmp_path / "none.png")
    assert not os.path.exists(tmp_path / "none.png")


def test_read_history_turns_missing_epochs_into_nan(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,fd,g_loss\n0,12.5,0.7\n1,NA,0.6\n")
    history = plots.read_history(str(path))
    assert history["fd"][0] == 12.5 and np.isnan(history["fd"][1]) and history["g_loss"] == [0.7, 0.6]


def test_quality_curves_and_sample_grids_write_pngs(tmp_path):
    records = [{"epoch": e, "seconds": 10.0 * e, "fd": 100.0 / (e + 1), "kid": 50.0 / (e + 1)} for e in (0, 3, 6)]
    runs = {"from the VAE decoder": (records, 120.0), "from scratch": (records, 0.0)}
    plots.plot_quality_curves(runs, str(tmp_path / "fd.png"))
    plots.plot_quality_curves(runs, str(tmp_path / "kid.png"), metric="kid", pretraining={"VAE decoder": records})
    with pytest.raises(ValueError, match="Received: metric='is'"):
        plots.plot_quality_curves(runs, str(tmp_path / "x.png"), metric="is")
    images = np.random.default_rng(0).uniform(size=(16, 8, 8, 1)).astype(np.float32)
    plots.plot_sample_grids({"a": images, "b": 1.0 - images}, str(tmp_path / "grids.png"))
    for name in ("fd.png", "kid.png", "grids.png"):
        image = tf.io.decode_png(tf.io.read_file(str(tmp_path / name))).numpy()
        assert image.shape[0] > 100 and image.std() > 0, name
    assert not (tmp_path / "x.png").exists()


def test_same_latents_needs_one_latent_size(tmp_path):
    class Decoder:
        def __init__(self, latent_dim):
            self.latent_dim = latent_dim

        def decode(self, z):
            return np.zeros((len(z), 8, 8, 1), np.float32) + z[:, :1, None, None]

    plots.plot_same_latents({"a": Decoder(2), "b": Decoder(2)}, str(tmp_path / "same.png"), num_samples=4)
    assert (tmp_path / "same.png").exists()
    with pytest.raises(ValueError, match=r"latent sizes \[2, 3\]"):
        plots.plot_same_latents({"a": Decoder(2), "b": Decoder(3)}, str(tmp_path / "other.png"))
    assert not (tmp_path / "other.png").exists()
