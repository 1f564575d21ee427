"""Image grids as PNG files (and tensors for TensorBoard)."""

import numpy as np
import tensorflow as tf

from kerasgen.artifacts import atomic_path


def image_grid(images, columns=None, padding=2):
    """Tiles `[N, H, W, C]` images in [0, 1] into one `[rows*H, columns*W, C]` uint8 image.

    Args:
        images: array-like `[N, H, W, C]` with values in [0, 1] (clipped).
        columns: int, images per row; defaults to the smallest square that fits N.
        padding: int, pixels of black between images. Defaults to 2.
    """
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    if images.ndim != 4:
        raise ValueError(f"images must have shape [N, H, W, C]. Received: shape={images.shape}")
    count, height, width, channels = images.shape
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    # Pad each image on its bottom and right, fill the last row with blanks, then tile by reshaping.
    images = np.pad(images, ((0, rows * columns - count), (0, padding), (0, padding), (0, 0)))
    cell_height, cell_width = height + padding, width + padding
    grid = images.reshape(rows, columns, cell_height, cell_width, channels)
    grid = grid.transpose(0, 2, 1, 3, 4).reshape(rows * cell_height, columns * cell_width, channels)
    grid = np.pad(grid, ((padding, 0), (padding, 0), (0, 0)))
    return np.round(grid * 255).astype(np.uint8)


def interleave(first, second):
    """`[a0, b0, a1, b1, ...]` from two equally long image batches: inputs beside reconstructions."""
    first, second = np.asarray(first), np.asarray(second)
    pairs = np.stack([first, second], axis=1)
    return pairs.reshape((-1, *first.shape[1:]))


def save_png(path, grid):
    """Writes a uint8 `[H, W, C]` image to `path` atomically."""
    with atomic_path(path) as tmp:
        tf.io.write_file(tmp, tf.io.encode_png(grid))
