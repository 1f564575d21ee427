"""From raw arrays to `tf.data` pipelines: checks, scaling, binarization, splits.

Every source goes through the same steps, once, on numpy arrays (see
`load_dataset`):

1. check the images and give them a channel axis; integer and boolean images
   stay uint8 in memory, beside a table of the float32 value of each level
   (level / 255, or 0 and 1 for binary images); float images become float32
   in [0, 1];
2. optionally resize them (resized images are float32);
3. split a seeded, class-stratified validation set off the training arrays
   (unless the source has its own validation split);
4. binarize ("static": once, stored as uint8 0/1; "dynamic": fresh draws every
   training epoch);
5. build batched, prefetched `tf.data.Dataset`s that scale uint8 batches to
   float32 in a `map`, sharded by data under a `tf.distribute` strategy.

With `stream=True` an image folder or a tfds dataset is not read into memory:
its training images are read, decoded and scaled inside the training pipeline,
one epoch at a time (see `load_dataset`).
"""

import dataclasses
import numbers
import typing

import numpy as np
import tensorflow as tf

from kerasgen import validate
from kerasgen.data.sources import ImageFiles, TFDSImages, load_arrays, open_lazily
from kerasgen.options import BINARIZATIONS
# Examples a streamed tfds training split is shuffled through, each epoch.
STREAM_SHUFFLE_BUFFER = 10_000

# Separate random streams per purpose, so that (for example) the validation
# binarization does not change when the split or the training set changes.
_SPLIT_STREAM, _TRAIN_STREAM, _VALIDATION_STREAM, _TEST_STREAM, _STREAMED_STATIC_STREAM = range(5)

# The float32 value of each level, by the division `to_unit_images` does: looked up, not
# divided again, so that the pipeline's pixels are its pixels bit for bit (see `_scale`).
_GREY_LEVELS = (np.arange(256).astype(np.float32) / 255.0).astype(np.float32)
_BINARY_LEVELS = np.arange(256).astype(np.float32)
# Images binarized at a time: bounds the float32 copy that binarization makes.
_BINARIZE_CHUNK = 4096


@dataclasses.dataclass(frozen=True)
class DatasetSplits:
    """The datasets and facts a model needs to train and evaluate.

    Each dataset yields `(images, labels)` batches: images float32
    `(batch, height, width, channels)` in [0, 1] (exactly 0 or 1 when
    binarized), labels int32 `(batch,)`, -1 when the source has no labels.
    Each is sharded by data under a `tf.distribute` strategy: replica 0 gets
    the first rows of every global batch, replica 1 the next, and so on.

    Attributes:
        train: Shuffled every epoch; with `binarize="dynamic"` freshly
            binarized every epoch. Each pass over it is the next epoch, and each
            epoch's order and noise depend only on the seed and the epoch number
            (see `train_from`). Read from the files every epoch when loaded with
            `stream=True`.
        validation: Held out from the training arrays; never shuffled, binarized
            once with a fixed seed, so every evaluation sees the same data.
        test: The source's test split (never shuffled, binarized once), or None
            when it has none (mnist-5k, an image folder without a `test/` split folder).
        image_shape: `(height, width, channels)`.
        num_classes: Number of classes, or None without labels.
        num_train: Number of training images.
        num_validation: Number of validation images.
        num_test: Number of test images; 0 when `test` is None.
        source: The source string the data was loaded from.
        binarize: One of `BINARIZATIONS`.
        unbinarized_heldout: The images of `heldout` as the source has them (grey levels, before
            any binarization), a float32 array: what a model's mean images are compared with.
        batch_size: Images per batch.
        description: One line on what was read, from where (which .npz keys, which files).
        train_from_epoch: `epoch -> tf.data.Dataset`, see `train_from`.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset | None
    image_shape: tuple[int, int, int]
    num_classes: int | None
    num_train: int
    num_validation: int
    num_test: int
    source: str
    binarize: str
    unbinarized_heldout: np.ndarray
    batch_size: int = 128
    description: str = ""
    train_from_epoch: typing.Callable[[int], tf.data.Dataset] | None = dataclasses.field(
        default=None, repr=False, compare=False
    )

    def train_from(self, epoch):
        """The training batches of a run resumed after `epoch` finished epochs: its first pass
        is epoch `epoch`, with the order and binarization noise the uninterrupted run had then."""
        return self.train_from_epoch(epoch)

    @property
    def heldout(self):
        """The test split when the source has one, else the validation split."""
        return self.test if self.test is not None else self.validation


def load_dataset(
    source="mnist-5k",
    *,
    batch_size=128,
    validation_size=500,
    binarize="none",
    image_size=None,
    seed=0,
    data_dir=None,
    stream=False,
):
    """Loads an image dataset as train/validation/test `tf.data` pipelines.

    Args:
        source: str. `"mnist-5k"` (5,000 bundled MNIST digits, offline),
            `"tfds:NAME"` (a TensorFlow Datasets image dataset), or a path to
            an `.npz` file, a folder of MNIST IDX files or a folder of PNG/JPEG
            images (with `train/`, `test/`, `val/` split folders or not). See
            `kerasgen.data.sources`. Defaults to `"mnist-5k"`.
        batch_size: int. Positive batch size of every dataset. Defaults to 128.
        validation_size: int or float. Number of training images to hold out
            for validation, or a fraction in (0, 1). The split is seeded and
            stratified by class when labels exist. Ignored when the source has
            its own validation split (an .npz with `x_valid`, a tfds dataset
            with a `validation` split, an image folder with a `val/` folder),
            which is used as it is. Defaults to 500.
        binarize: str. `"none"` keeps grey levels; `"static"` draws
            `Bernoulli(pixel)` once for every split; `"dynamic"` draws fresh
            training images every epoch and binarizes validation and test once.
            Only grayscale (1-channel) images can be binarized. Defaults to
            `"none"`.
        image_size: `(height, width)` or None. Resize every image to this size
            (bilinear, antialiased). Defaults to None (keep the size).
        seed: int. Seeds the split, shuffling and binarization. Defaults to 0.
        data_dir: str or None. TensorFlow Datasets data directory, for
            `"tfds:NAME"` sources only. Defaults to None.
        stream: bool. False reads every image into memory. True is for data
            larger than memory: the training images of an image folder or a
            `"tfds:NAME"` dataset are read from their files inside the training
            pipeline, every epoch; in memory are only the file list and labels
            and the held-out splits (validation and test, read at load;
            `unbinarized_heldout` is one of them). An image folder is split as
            with False (seeded, stratified, on the file list, unless it has its
            own validation split folder) and gives exactly
            the batches False gives (static binarization aside); a held-out
            file that cannot be decoded fails at load (ValueError), a training
            file that is not an image or has another shape fails when first
            read (`tf.errors.InvalidArgumentError` naming it). A tfds dataset
            without a validation split holds out the first `validation_size`
            examples of `train` (`"train[:N]"`: not stratified, the same for
            every seed), and shuffles the rest every epoch through a buffer of
            `STREAM_SHUFFLE_BUFFER` examples seeded by the seed and the epoch.
            Training pixels are scaled as the held-out ones are (0/1 images
            stay 0/1). `"dynamic"` noise is keyed by (epoch, step) as with
            False; `"static"` draws each training image once from
            `(seed, its index)`, not the draws False makes. Under multi-worker
            distribution every worker reads every file and keeps its rows.
            mnist-5k, an `.npz` file and an IDX folder are read into memory
            either way. Defaults to False.

    Returns:
        A `DatasetSplits`.

    Raises:
        FileNotFoundError: a path source does not exist.
        ValueError: an argument is invalid, or the data is unreadable, empty,
            mis-shaped, non-numeric, non-finite or out of range.

    Example:

    >>> data = load_dataset("mnist-5k", batch_size=64, binarize="dynamic")
    >>> data.num_train, data.num_validation, data.image_shape
    (4500, 500, (28, 28, 1))
    """
    validate.positive_int("batch_size", batch_size)
    validate.one_of("binarize", binarize, BINARIZATIONS)
    image_size = _check_image_size(image_size)
    validate.integer("seed", seed, minimum=0)
    _check_validation_size_type(validation_size)
    validate.boolean("stream", stream)
    request = _Request(str(source), batch_size, validation_size, binarize, image_size, seed)

    if stream:
        opened = open_lazily(source, data_dir, image_size=image_size)
        if isinstance(opened, ImageFiles):
            return _streamed_folder(opened, request)
        if isinstance(opened, TFDSImages):
            return _streamed_tfds(opened, request)
        raw = opened  # Read into memory anyway.
    else:
        raw = load_arrays(source, data_dir, image_size=image_size)
    return _in_memory(raw, request)


@dataclasses.dataclass(frozen=True)
class _Request:
    """The checked arguments of `load_dataset` that shape the splits."""

    source: str
    batch_size: int
    validation_size: numbers.Real
    binarize: str
    image_size: tuple[int, int] | None
    seed: int


def _in_memory(raw, request):
    x_train, y_train, x_validation, y_validation, x_test, y_test = _stored_arrays(raw, request.image_size)
    image_shape = x_train.image_shape
    _check_binarizable(request.binarize, image_shape)
    labelled = raw.y_train is not None
    num_classes = raw.num_classes if labelled else None
    if labelled and num_classes is None:
        num_classes = int(max(y.max() for y in (y_train, y_validation, y_test) if y is not None)) + 1

    if x_validation is None:
        train_index, validation_index = split_indices(
            len(x_train), request.validation_size, y_train if labelled else None, request.seed
        )
        x_validation, y_validation = x_train.take(validation_index), y_train[validation_index]
        x_train, y_train = x_train.take(train_index), y_train[train_index]
    if request.binarize == "static":
        x_train = x_train.binarized(request.seed, _TRAIN_STREAM)

    def train_from_epoch(epoch):
        return _train_dataset(
            x_train, y_train, request.batch_size, request.seed, request.binarize == "dynamic", first_epoch=epoch
        )

    return _splits(
        request, train_from_epoch, len(x_train), (x_validation, y_validation),
        None if x_test is None else (x_test, y_test), image_shape, num_classes, raw.describe(),
    )


def _splits(request, train_from_epoch, num_train, validation, test, image_shape, num_classes, description):
    """The `DatasetSplits` around a training pipeline and the (unbinarized) held-out `_Pixels`."""
    x_validation, y_validation = validation
    x_test, y_test = test if test is not None else (None, None)
    unbinarized_heldout = (x_test if x_test is not None else x_validation).unit()
    if request.binarize != "none":
        x_validation = x_validation.binarized(request.seed, _VALIDATION_STREAM)
        x_test = None if x_test is None else x_test.binarized(request.seed, _TEST_STREAM)
    return DatasetSplits(
        train=train_from_epoch(0),
        validation=_eval_dataset(x_validation, y_validation, request.batch_size),
        test=None if x_test is None else _eval_dataset(x_test, y_test, request.batch_size),
        image_shape=image_shape,
        num_classes=num_classes,
        num_train=num_train,
        num_validation=len(x_validation),
        num_test=0 if x_test is None else len(x_test),
        source=request.source,
        binarize=request.binarize,
        unbinarized_heldout=unbinarized_heldout,
        batch_size=request.batch_size,
        description=description,
        train_from_epoch=train_from_epoch,
    )


# ----------------------------------------------------------------------------
# Streaming


def _streamed_folder(files, request):
    """An image folder whose training images are read from their files, every epoch.

    The split, the order of every epoch and the dynamic binarization noise are those of the
    in-memory path, so the two give the same batches; only the held-out images are read now:
    the validation images (held out of the training files, or the folder's own validation
    split folder) and the test split folder's images.
    """
    labels = _to_labels(files.labels, len(files.names), "y_train")
    if files.validation is None:
        train_index, validation_index = split_indices(
            len(files.names), request.validation_size, files.labels, request.seed
        )
        x_validation = _to_pixels(files.read(validation_index), "x_validation")
        y_validation = labels[validation_index]
    else:
        train_index = np.arange(len(files.names))
        x_validation = _to_pixels(files.validation.read(), "x_validation")
        y_validation = _to_labels(files.validation.labels, len(x_validation), "y_validation")
    test = None
    if files.test is not None:
        x_test = _to_pixels(files.test.read(), "x_test")
        test = (x_test, _to_labels(files.test.labels, len(x_test), "y_test"))
    image_shape = x_validation.image_shape
    _check_binarizable(request.binarize, image_shape)

    paths = tf.constant(files.paths(train_index))
    train_labels = tf.constant(labels[train_index])
    read = files.reader()

    def epoch_images(key):
        order = tf.data.Dataset.from_tensor_slices(_epoch_order(key, len(train_index)))
        return order.map(
            lambda index: (index, read(tf.gather(paths, index)), tf.gather(train_labels, index)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    def train_from_epoch(epoch):
        return _streamed_train(epoch_images, len(train_index), x_validation.levels, request, None, epoch)

    classes = "unlabelled" if files.labels is None else f"labels from {files.num_classes} class subfolders"
    if files.split is None:
        split_note = f"{len(x_validation)} validation images read; no test split"
    else:
        split_note = f"{len(x_validation)} validation images read from " + (
            "the training files" if files.validation is None else repr(files.validation.split)
        )
        split_note += "; no test split" if test is None else f"; {len(test[0])} test images read from {files.test.split!r}"
    where = "" if files.split is None else f" in {files.split!r}"
    description = (
        f"{request.source}: {len(files.names)} image files{where}, {classes}; {len(train_index)} train "
        f"images streamed from their files, {split_note} ({'x'.join(map(str, image_shape))} uint8"
        f"{'' if files.num_classes is None else f', {files.num_classes} classes'})"
    )
    return _splits(
        request, train_from_epoch, len(train_index), (x_validation, y_validation),
        test, image_shape, files.num_classes, description,
    )


def _streamed_tfds(images, request):
    """A tfds dataset whose training split is read from its prepared files, every epoch.

    The held-out splits are read now. Each epoch shuffles the training examples, in the
    files' fixed order, through a buffer seeded by `(seed, epoch)`, so `train_from` is exact.
    """
    known = images.split_names
    if "validation" in known:
        validation_split, train_split = "validation", "train"
    else:
        num_validation = _validation_count(images.count("train"), request.validation_size)
        validation_split, train_split = f"train[:{num_validation}]", f"train[{num_validation}:]"
    # Without metadata (tfds.testing.mock_data) any split is served, as in the in-memory path.
    test_split = "test" if "test" in known or not known else None

    channels = images.image_shape[-1]
    image_shape = (*request.image_size, channels) if request.image_size else tuple(images.image_shape)
    # Fixed-size images resized after scaling, as the in-memory path resizes them.
    resize_to = request.image_size if request.image_size and not images.variable_shape else None

    def heldout(split, name):
        x, y = images.read(split)
        pixels = _to_pixels(x, f"x_{name}")
        return pixels, _to_labels(y, len(pixels), f"y_{name}")

    validation = heldout(validation_split, "validation")
    test = None if test_split is None else heldout(test_split, "test")
    # The training split is scaled as the held-out images are: binary 0/1 or grey levels.
    levels = (test if test is not None else validation)[0].levels
    validation, test = (
        None if pair is None else (_resized(pair[0], request.image_size), pair[1]) for pair in (validation, test)
    )
    for name, pair in (("validation", validation), ("test", test)):
        if pair is not None and pair[0].image_shape != image_shape:
            raise ValueError(
                f"{name.capitalize()} images must have the shape of the training images. "
                f"Received: training image shape {image_shape}, x_{name} image shape "
                f"{pair[0].image_shape}, source={request.source!r}"
            )
    _check_binarizable(request.binarize, image_shape)
    num_train = images.count(train_split)
    if num_train == 0:
        raise ValueError(
            f"Empty dataset: the training split {train_split!r} holds no images. "
            f"Received: source={request.source!r}, validation_size={request.validation_size!r}"
        )
    num_classes = images.num_classes
    if images.labelled and num_classes is None:
        num_classes = int(max(pair[1].max() for pair in (validation, test) if pair is not None)) + 1
    examples = images.stream(train_split).enumerate()

    def epoch_images(key):
        # This function's own graph-level seed (any but 0): else `shuffle` would mix in whatever
        # global seed `tf.random.set_seed` had set when the dataset was built.
        tf.random.set_seed(1)
        shuffle_seed = tf.random.stateless_uniform(
            [], seed=tf.random.experimental.stateless_fold_in(key, 2), minval=None, maxval=None, dtype=tf.int64
        )
        shuffled = examples.shuffle(STREAM_SHUFFLE_BUFFER, seed=shuffle_seed, reshuffle_each_iteration=False)
        return shuffled.map(
            lambda index, example: (index, images.decode(example[0]), tf.cast(example[1], tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    def train_from_epoch(epoch):
        return _streamed_train(epoch_images, num_train, levels, request, resize_to, epoch)

    splits = f"{validation_split!r} ({len(validation[0])} validation images)"
    if test is not None:
        splits += f" and {test_split!r} ({len(test[0])} test images)"
    description = (
        f"{request.source}: {train_split!r} streamed from its files ({num_train} train images); "
        f"{splits} read ({'x'.join(map(str, image_shape))}"
        f"{'' if num_classes is None else f', {num_classes} classes'})"
    )
    return _splits(request, train_from_epoch, num_train, validation, test, image_shape, num_classes, description)


def _streamed_train(epoch_images, num_images, levels, request, resize_to, first_epoch):
    """Training batches from `epoch_images(key)`: `(index, uint8 image, int32 label)` in an epoch's order.

    As `_train_dataset`, pass k is epoch `first_epoch + k`, and dynamic binarization noise is
    keyed by `(epoch, step)`. Static binarization is keyed by `(seed, index)`: the index of the
    image in the training split, the same every epoch.
    """
    static_key = tf.constant([request.seed, _STREAMED_STATIC_STREAM], tf.int64)
    static = request.binarize == "static"
    binary = levels is _BINARY_LEVELS

    def prepare(index, image, label):
        if binary:
            # The held-out images were all 0/1, so levels are not divided by 255: grey ones here
            # would turn into pixels above 1.
            check = tf.debugging.Assert(
                tf.reduce_max(image) <= 1,
                [
                    "A training image holds grey levels, but the held-out images are binary (0/1) "
                    f"and set the scale. Received: source={request.source!r}, training image index",
                    index,
                ],
            )
            with tf.control_dependencies([check]):
                image = tf.identity(image)
        if resize_to is None and not static:
            return image, label
        unit = _scale(image, levels)
        if resize_to is not None:
            unit = tf.clip_by_value(
                tf.image.resize(unit, resize_to, method="bilinear", antialias=True), 0.0, 1.0
            )
        if static:
            noise = tf.random.stateless_uniform(
                tf.shape(unit), seed=tf.random.experimental.stateless_fold_in(static_key, index)
            )
            return tf.cast(noise < unit, tf.uint8), label
        return unit, label

    if static:
        batch_levels = _BINARY_LEVELS
    else:
        batch_levels = None if resize_to is not None else levels

    def epoch_batches(epoch):
        key = _epoch_key(request.seed, epoch)

        def finish(step, batch):
            images, labels = batch
            images = _scale(images, batch_levels)
            if request.binarize == "dynamic":
                images = _binarized_batch(images, key, step)
            return images, labels

        return (
            epoch_images(key)
            .map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(request.batch_size)
            .enumerate()
            .map(finish)
        )

    return _epochs(epoch_batches, -(-num_images // request.batch_size), first_epoch)


# ----------------------------------------------------------------------------
# Images and labels


@dataclasses.dataclass(frozen=True)
class _Pixels:
    """Images as kept in memory, `(N, H, W, C)`.

    Attributes:
        values: uint8 levels, or float32 pixels in [0, 1].
        levels: float32 `(256,)`, the pixel value of each uint8 level (`_GREY_LEVELS`:
            level / 255, `_BINARY_LEVELS`: 0 and 1 kept); None for float32 `values`.
    """

    values: np.ndarray
    levels: np.ndarray | None = None

    def __len__(self):
        return len(self.values)

    @property
    def image_shape(self):
        return tuple(int(d) for d in self.values.shape[1:])

    def take(self, indices):
        return _Pixels(self.values[indices], self.levels)

    def unit(self):
        """The images as float32 in [0, 1]: what `to_unit_images` gives for the source's array."""
        return self.values if self.levels is None else self.levels[self.values]

    def binarized(self, seed, stream):
        """`binarize_once(self.unit(), seed, stream)`, the same draws, stored as uint8 0/1."""
        rng = np.random.default_rng([seed, stream])
        binary = np.empty(self.values.shape, np.uint8)
        # One float32 chunk at a time: the generator gives the same numbers in chunks as at once.
        for start in range(0, len(binary), _BINARIZE_CHUNK):
            chunk = self.take(slice(start, start + _BINARIZE_CHUNK)).unit()
            binary[start : start + len(chunk)] = rng.random(chunk.shape, dtype=np.float32) < chunk
        return _Pixels(binary, _BINARY_LEVELS)


def _stored_arrays(raw, image_size):
    """Checks a `RawData` and returns `_Pixels` and int32 labels.

    Returns:
        `(x_train, y_train, x_validation, y_validation, x_test, y_test)`; the
        validation and test pairs are None when the source has no such split.
    """
    x_train = _to_pixels(raw.x_train, "x_train")
    y_train = _to_labels(raw.y_train, len(x_train), "y_train")
    x_train = _resized(x_train, image_size)
    x_validation, y_validation = _stored_split(raw.x_validation, raw.y_validation, "validation", x_train, image_size)
    x_test, y_test = _stored_split(raw.x_test, raw.y_test, "test", x_train, image_size)
    return x_train, y_train, x_validation, y_validation, x_test, y_test


def _stored_split(x, y, split, x_train, image_size):
    """Checks and stores a held-out split like the training images; `(None, None)` if absent."""
    if x is None:
        if y is not None:
            raise ValueError(
                f"Labels y_{split} were given without images x_{split}. "
                f"Received: y_{split}.shape={np.shape(y)}, x_{split}=None"
            )
        return None, None
    x = _to_pixels(x, f"x_{split}")
    y = _to_labels(y, len(x), f"y_{split}")
    x = _resized(x, image_size)
    if x.image_shape != x_train.image_shape:
        raise ValueError(
            f"{split.capitalize()} images must have the shape of the training images. "
            f"Received: x_train image shape {x_train.image_shape}, "
            f"x_{split} image shape {x.image_shape}"
        )
    return x, y


def to_unit_images(x, name="images"):
    """Checks images and scales them to float32 `(N, H, W, C)` in [0, 1].

    Integers must lie in 0..255 and are divided by 255, except integer arrays
    holding only 0 and 1, which are binary images and stay 0/1. Floats with a
    maximum of at most 1 are kept; floats up to 255 are divided by 255.
    Booleans become 0/1.

    Args:
        x: array-like `(N, H, W)` or `(N, H, W, C)` with C in {1, 3}.
        name: str. Name used in error messages. Defaults to `"images"`.

    Returns:
        A float32 numpy array `(N, H, W, C)` with values in [0, 1].

    Raises:
        ValueError: the images are non-numeric, empty, mis-shaped, non-finite,
            negative or above 255.
    """
    return _scaled(*_checked_images(x, name))


def _to_pixels(x, name):
    """Checks images as `to_unit_images` does; 8-bit ones stay uint8, with the levels it would give."""
    x, high = _checked_images(x, name)
    if x.dtype.kind == "f":
        return _Pixels(_scaled(x, high))
    # Integers in 0..255 and booleans: uint8 is exact.
    return _Pixels(x.astype(np.uint8), _BINARY_LEVELS if x.dtype.kind == "b" or high <= 1 else _GREY_LEVELS)


def _checked_images(x, name):
    """`(x, max)`: numeric `(N, H, W, C)` images, checked; max is None for booleans."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must hold numeric pixels (integers, floats or booleans). "
            f"Received: {name}.dtype={x.dtype}"
        )
    received_shape = x.shape
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        hint = ""
        if x.ndim == 2:
            hint = " Flat vectors must be reshaped first, e.g. to (N, 28, 28)."
        raise ValueError(
            f"{name} must have shape (N, height, width) or (N, height, width, "
            f"channels) with 1 or 3 channels.{hint} Received: {name}.shape={received_shape}"
        )
    if x.shape[0] == 0 or x.size == 0:
        raise ValueError(
            f"Empty dataset: {name} holds no pixels. Received: {name}.shape={received_shape}"
        )
    if x.dtype.kind == "b":
        return x, None
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError(
            f"{name} contains {np.count_nonzero(~np.isfinite(x))} NaN or infinite "
            f"pixel values. Received: {name}.dtype={x.dtype} with NaN/inf"
        )
    low, high = x.min(), x.max()
    if low < 0 or high > 255:
        raise ValueError(
            f"{name} pixels must lie in [0, 1] or 0..255. "
            f"Received: {name} with min={low}, max={high}"
        )
    return x, high


def _scaled(x, high):
    # Floats in [0, 1] are already scaled; integers that are all 0 or 1 are binary
    # images (as the fixed binarization of MNIST ships), not nearly black 8-bit ones.
    if high is None or high <= 1:
        return x.astype(np.float32)
    return (x.astype(np.float32) / 255.0).astype(np.float32)


def resize_images(x, image_size):
    """Resizes `(N, H, W, C)` images to `image_size`, antialiased; a no-op if equal."""
    if tuple(x.shape[1:3]) == tuple(image_size):
        return x
    resized = tf.image.resize(x, image_size, method="bilinear", antialias=True)
    return np.clip(resized.numpy(), 0.0, 1.0)


def _resized(pixels, image_size):
    """`_Pixels` resized to `image_size` (float32 then), or as they are."""
    if image_size is None or pixels.image_shape[:2] == tuple(image_size):
        return pixels
    return _Pixels(resize_images(pixels.unit(), image_size))


def _to_labels(y, num_images, name):
    """Checks labels and returns int32 `(num_images,)`, all -1 when `y` is None."""
    if y is None:
        return np.full((num_images,), -1, np.int32)
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must hold integer class labels. Received: {name}.dtype={y.dtype}"
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of class indices (not one-hot). "
            f"Received: {name}.shape={y.shape}"
        )
    if len(y) != num_images:
        raise ValueError(
            f"{name} must have one label per image: {num_images} images but "
            f"{len(y)} labels. Received: {name}.shape={y.shape}"
        )
    if not np.isfinite(y).all() or (y != np.round(y)).any() or (y < 0).any():
        raise ValueError(
            f"{name} must hold non-negative integer class indices. "
            f"Received: {name} with values {np.unique(y)[:10]}"
        )
    return y.astype(np.int32)


# ----------------------------------------------------------------------------
# Split and binarization


def split_indices(num_examples, validation_size, labels=None, seed=0):
    """Splits `range(num_examples)` into seeded training and validation indices.

    With labels the split is stratified: each class gives the same fraction of
    its examples to validation (rounded by largest remainder, ties broken at
    random), e.g. exactly 50 per class for 500 out of 10 x 500.

    Args:
        num_examples: int. Number of examples to split.
        validation_size: int (a count in 1..num_examples-1) or float (a
            fraction in (0, 1)).
        labels: int array `(num_examples,)` or None. Class labels to stratify by.
        seed: int. Seeds the split. Defaults to 0.

    Returns:
        `(train_indices, validation_indices)`: disjoint int arrays covering
        `range(num_examples)`, each in a seeded random order.

    Raises:
        ValueError: `validation_size` leaves no validation or no training data.
    """
    num_validation = _validation_count(num_examples, validation_size)
    rng = np.random.default_rng([seed, _SPLIT_STREAM])
    if labels is None:
        order = rng.permutation(num_examples)
        return order[num_validation:], order[:num_validation]

    classes, class_of = np.unique(labels, return_inverse=True)
    counts = np.bincount(class_of, minlength=len(classes))
    quotas = num_validation * counts / num_examples
    taken = np.floor(quotas).astype(int)
    # Largest remainder: the classes with the biggest fractional parts take the
    # leftover places; random tie-breaking keeps tiny classes from always losing.
    leftover = num_validation - taken.sum()
    by_remainder = np.lexsort((rng.random(len(classes)), -(quotas - taken)))
    taken[by_remainder[:leftover]] += 1

    train, validation = [], []
    for c, k in enumerate(taken):
        members = rng.permutation(np.flatnonzero(class_of == c))
        validation.append(members[:k])
        train.append(members[k:])
    return (
        rng.permutation(np.concatenate(train)),
        rng.permutation(np.concatenate(validation)),
    )


def _validation_count(num_examples, validation_size):
    """The number of validation examples `validation_size` asks for out of `num_examples`, checked."""
    _check_validation_size_type(validation_size)
    if isinstance(validation_size, numbers.Integral):
        num_validation = int(validation_size)
    else:
        if not 0.0 < validation_size < 1.0:
            raise ValueError(
                "A fractional validation_size must lie strictly between 0 and 1. "
                f"Received: validation_size={validation_size}"
            )
        num_validation = int(round(validation_size * num_examples))
    if not 0 < num_validation < num_examples:
        raise ValueError(
            f"validation_size must leave at least one validation and one training "
            f"image out of the {num_examples} available. "
            f"Received: validation_size={validation_size} "
            f"({num_validation} validation images)"
        )
    return num_validation


def binarize_once(x, seed, stream=0):
    """Draws `Bernoulli(x)` pixels once with a seeded numpy generator.

    Args:
        x: float array with values in [0, 1].
        seed: int. Seed.
        stream: int. Separates independent draws made with the same seed.
            Defaults to 0.

    Returns:
        A float32 array of the shape of `x` holding 0.0 and 1.0.
    """
    rng = np.random.default_rng([seed, stream])
    return (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)


# ----------------------------------------------------------------------------
# tf.data


def _train_dataset(pixels, labels, batch_size, seed, dynamic_binarization, first_epoch=0):
    """The training batches: pass k over the dataset is epoch `first_epoch + k`.

    Each epoch's order and binarization noise are stateless functions of `(seed, epoch)`: a
    seeded `shuffle` or a `tf.random.Generator` would restart from their first epoch when a run
    resumes from a checkpoint, replaying epoch 1's order and noise. Keyed by the epoch, a run
    resumed at epoch k (`first_epoch=k`) sees exactly the batches the uninterrupted run saw.
    """
    images, labels = tf.constant(pixels.values), tf.constant(labels)
    num_images = len(pixels)

    def epoch_batches(epoch):
        key = _epoch_key(seed, epoch)

        def gather(step, index):
            batch = _scale(tf.gather(images, index), pixels.levels)
            if dynamic_binarization:
                batch = _binarized_batch(batch, key, step)
            return batch, tf.gather(labels, index)

        return tf.data.Dataset.from_tensor_slices(_epoch_order(key, num_images)).batch(batch_size).enumerate().map(gather)

    return _epochs(epoch_batches, -(-num_images // batch_size), first_epoch)


def _epochs(epoch_batches, num_steps, first_epoch):
    """A dataset whose pass k is `epoch_batches(first_epoch + k)`, of `num_steps` batches."""
    # Counts the passes (one per epoch in `fit`); read when a pass starts, so every new
    # iterator is the next epoch. It stays right under MirroredStrategy (tests/test_streaming.py)
    # and a two-worker MultiWorkerMirroredStrategy, created inside their scope or not.
    passes = tf.Variable(first_epoch, dtype=tf.int64, trainable=False)

    def next_epoch(_):
        return passes.assign_add(1) - 1

    dataset = tf.data.Dataset.range(1).map(next_epoch).flat_map(epoch_batches)
    # Known length, so Keras's progress bar shows its total.
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_steps))
    return _shard_by_data(dataset.prefetch(tf.data.AUTOTUNE))


def _epoch_key(seed, epoch):
    return tf.random.experimental.stateless_fold_in(tf.constant([seed, _TRAIN_STREAM], tf.int64), epoch)


def _epoch_order(key, num_images):
    """The epoch's permutation of `range(num_images)`."""
    noise = tf.random.stateless_uniform([num_images], seed=tf.random.experimental.stateless_fold_in(key, 0))
    return tf.argsort(noise)


def _binarized_batch(batch, key, step):
    """Fresh Bernoulli draws every epoch, keyed by (epoch, step)."""
    noise_key = tf.random.experimental.stateless_fold_in(key, 1)
    noise = tf.random.stateless_uniform(
        tf.shape(batch), seed=tf.random.experimental.stateless_fold_in(noise_key, step)
    )
    return tf.cast(noise < batch, tf.float32)


def _scale(images, levels):
    """uint8 `images` as float32 pixels, `levels[images]`; float32 ones (levels None) as they are."""
    if levels is None:
        return images
    # A lookup of the numpy-computed levels, not `images / 255`: inside a tf.function, Grappler
    # turns division by a constant into multiplication by its reciprocal, which rounds 126 of the
    # 256 levels differently from numpy's (and TensorFlow's eager) division.
    return tf.gather(tf.constant(levels), tf.cast(images, tf.int32))


def _eval_dataset(pixels, labels, batch_size):
    dataset = tf.data.Dataset.from_tensor_slices((pixels.values, labels)).batch(batch_size)
    dataset = dataset.map(lambda images, labels: (_scale(images, pixels.levels), labels))
    return _shard_by_data(dataset.prefetch(tf.data.AUTOTUNE))


def _shard_by_data(dataset):
    """`dataset` with the auto-shard policy a `tf.distribute` strategy needs for it."""
    options = tf.data.Options()
    # DATA: tensors in memory (and a streamed epoch's one order) have no files to shard by.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


# ----------------------------------------------------------------------------
# Argument checks


def _check_image_size(image_size):
    if image_size is None:
        return None
    try:
        height, width = image_size
    except (TypeError, ValueError):
        height = width = None
    if not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0
        for d in (height, width)
    ):
        raise ValueError(
            "image_size must be None or a pair of positive integers (height, width). "
            f"Received: image_size={image_size!r}"
        )
    return int(height), int(width)


def _check_validation_size_type(validation_size):
    if isinstance(validation_size, bool) or not isinstance(
        validation_size, (numbers.Integral, numbers.Real)
    ):
        raise ValueError(
            "validation_size must be an int (a count) or a float in (0, 1) "
            f"(a fraction). Received: validation_size={validation_size!r}"
        )


def _check_binarizable(binarize, image_shape):
    if binarize != "none" and image_shape[-1] != 1:
        raise ValueError(
            f"Binarization draws one Bernoulli value per grey level, so it needs "
            f"grayscale images with 1 channel. Use binarize='none' for colour "
            f"images. Received: binarize={binarize!r}, image_shape={image_shape}"
        )
