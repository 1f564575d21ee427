"""Colour images render as colour: grids, reconstructions and comparison figures keep R, G and B apart."""

import numpy as np
import tensorflow as tf

from kerasgen import plots
from kerasgen.images import image_grid, interleave, save_png

# Red, green, blue, yellow, magenta, mid grey, and out-of-range values that must clip to white and black.
COLOURS = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0.5, 0.5, 0.5], [1.3, 1.2, 1.1], [-0.2, -0.1, -0.3]],
    np.float32,
)
EXPECTED = np.array(
    [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255], [128, 128, 128], [255, 255, 255], [0, 0, 0]],
    np.uint8,
)


def _solid(colours, size=8):
    return np.broadcast_to(colours[:, None, None, :], (len(colours), size, size, 3)).copy()


def _read_png(path):
    return tf.io.decode_png(tf.io.read_file(str(path))).numpy()


def test_a_grid_png_keeps_each_images_colour_in_its_place(tmp_path):
    save_png(tmp_path / "grid.png", image_grid(_solid(COLOURS), columns=4, padding=2))
    png = _read_png(tmp_path / "grid.png")
    assert png.shape == (2 + 2 * 10, 2 + 4 * 10, 3)
    for i, expected in enumerate(EXPECTED):
        row, column = divmod(i, 4)
        cell = png[2 + 10 * row : 10 * (row + 1), 2 + 10 * column : 10 * (column + 1)]
        assert cell.shape == (8, 8, 3)
        np.testing.assert_array_equal(cell, np.broadcast_to(expected, cell.shape), err_msg=f"image {i}")
    # The padding between images is black.
    np.testing.assert_array_equal(png[:2], 0)


def test_inputs_beside_reconstructions_keep_their_colours(tmp_path):
    inputs, reconstructions = _solid(COLOURS[:3]), _solid(COLOURS[3:6])
    save_png(tmp_path / "pairs.png", image_grid(interleave(inputs, reconstructions), columns=2, padding=0))
    png = _read_png(tmp_path / "pairs.png")
    for row in range(3):
        np.testing.assert_array_equal(png[8 * row + 4, 4], EXPECTED[row])
        np.testing.assert_array_equal(png[8 * row + 4, 12], EXPECTED[3 + row])


class _SolidColours:
    """A stand-in generative model: sample i has colour i (cycling), its reconstruction of an image is its inverse colour."""

    latent_dim = 2

    def generate(self, z):
        return _solid(COLOURS[np.arange(len(z)) % 5], size=16)

    def reconstruct(self, images):
        return 1.0 - np.asarray(images)


def _colour_share(png, colour, tolerance=10):
    """The share of the figure's pixels within `tolerance` of `colour` in every channel."""
    return float(np.mean(np.all(np.abs(png[..., :3].astype(int) - colour) <= tolerance, axis=-1)))


def test_comparison_figures_show_rgb_images_in_colour_not_through_a_colormap(tmp_path):
    plots.plot_sample_grids({"a": _solid(COLOURS[:3], size=16), "b": _solid(COLOURS[3:5], size=16)}, tmp_path / "grids.png")
    plots.plot_samples_and_reconstructions({"model": _SolidColours()}, _solid(COLOURS[:2], size=16), tmp_path / "both.png", num_samples=25)
    for name in ("grids.png", "both.png"):
        png = _read_png(tmp_path / name)
        for colour in EXPECTED[:5]:
            # Each saturated colour covers a visible area (a grey colormap would give none: R = G = B).
            assert _colour_share(png, colour) > 0.002, (name, colour)
    # The reconstructions of red and green are their inverse colours, cyan and magenta.
    both = _read_png(tmp_path / "both.png")
    assert _colour_share(both, [0, 255, 255]) > 0.001 and _colour_share(both, [255, 0, 255]) > 0.001
