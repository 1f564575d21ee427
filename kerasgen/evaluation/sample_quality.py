"""Sample quality in a domain classifier's feature space: Fréchet distance, KID and classifier score.

FID, KID and the Inception Score embed images with an ImageNet Inception network, which says
little about 28x28 digits; like TF-GAN's MNIST score, kerasgen embeds them with a small classifier
trained on the domain (`kerasgen.models.Classifier`, e.g. the digit one shipped in the package at
`SHIPPED_CLASSIFIER` or the CIFAR-10 one at `SHIPPED_CIFAR10_CLASSIFIER`) and reports the same
statistics there. The numbers are comparable only
between runs that use the same classifier.

- `frechet_distance(a, b)`: ‖μa − μb‖² + Tr(Σa + Σb − 2(ΣaΣb)^½) between Gaussians fitted to two
  feature sets (Heusel et al., 2017), in float64.
- `kernel_inception_distance(a, b)`: the unbiased MMD² with the cubic polynomial kernel
  k(x, y) = (xᵀy / d + 1)³, averaged over random subsets (Bińkowski et al., 2018).
- `classifier_score(logits)`: exp(E_x KL(p(y|x) ‖ p(y))), the "Inception Score" with the domain
  classifier: between 1 (every image gets the same prediction) and the number of classes
  (confident predictions spread evenly over the classes).
- `KID`: a `keras.metrics.Metric` that accumulates generated images' features inside `fit` or
  `evaluate` (graph or XLA) and gives the same number as `kernel_inception_distance`.

Example:

    classifier = load_classifier(None, (28, 28, 1))  # the shipped one
    real = compute_features(classifier, load_dataset("mnist-5k").validation)
    fake = compute_features(classifier, vae.sample(1000, seed=0))
    frechet_distance(real, fake), kernel_inception_distance(real, fake)
"""

import importlib.resources
import os

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from kerasgen import validate

# ----------------------------------------------------------------------------
# Features and logits


# The classifiers that ship inside the package (package data, so any install has it): each folder
# holds `classifier.keras` and the `metadata.json` that says how it was trained, how accurate it is
# and (`serves`) its domain's name and the held-out accuracy on a dataset at which it scores that data.
# For mnist-5k and any 28x28 digit data:
SHIPPED_CLASSIFIER = os.fspath(importlib.resources.files("kerasgen") / "assets" / "classifier-mnist-5k")
# For CIFAR-10 (32x32 colour; larger images of it are resized to 32x32):
SHIPPED_CIFAR10_CLASSIFIER = os.fspath(importlib.resources.files("kerasgen") / "assets" / "classifier-cifar10")
SHIPPED_CLASSIFIERS = (SHIPPED_CLASSIFIER, SHIPPED_CIFAR10_CLASSIFIER)


def load_classifier(path, image_shape):
    """The domain classifier at `path` (a folder or `.keras` file; None: the shipped digit one) for `image_shape` images.

    Images whose height or width differ from the classifier's input are resized to it when it
    scores them (`Classifier` resizes them, antialiased), so only the channel counts must agree.

    Raises:
        FileNotFoundError: no classifier there.
        ValueError: the file is corrupt, holds another kind of model, or takes images of another
            channel count.
    """
    from kerasgen.artifacts import load_run
    from kerasgen.models import Classifier

    path = path or SHIPPED_CLASSIFIER
    if not os.path.exists(path):
        raise FileNotFoundError(f"No classifier found (a train-classifier output folder or .keras file). Received: --classifier {path}")
    classifier, _, _ = load_run(path, filenames=("classifier.keras", "vae.keras", "gan.keras"), flag="--classifier")
    if not isinstance(classifier, Classifier):
        raise ValueError(
            f"--classifier needs a kerasgen Classifier (a train-classifier output), but {path} holds a "
            f"{type(classifier).__name__}. Received: --classifier {path}"
        )
    if len(image_shape) != 3 or classifier.image_shape[-1] != image_shape[-1]:
        raise ValueError(
            f"The classifier at {path} takes images of shape {tuple(classifier.image_shape)} ({classifier.image_shape[-1]} "
            f"channels; another height and width would be resized), but the model makes {tuple(image_shape)}. "
            f"Received: --classifier {path}"
        )
    return classifier


def compute_features(classifier, images, batch_size=256):
    """The classifier's features of every image, as a float32 array `[N, D]`.

    Args:
        classifier: a `Classifier` (its `features` method is used) or any callable mapping a batch
            of images to `[B, D]` features.
        images: array-like `[N, H, W, C]` in [0, 1], or a `tf.data.Dataset` of image batches or of
            `(images, labels)` batches (e.g. `load_dataset(...).validation`).
        batch_size: int, images per forward pass for arrays. Defaults to 256.

    Returns:
        A float32 numpy array `[N, D]`.
    """
    extract = classifier.features if hasattr(classifier, "features") else classifier
    return _apply_in_batches(extract, images, batch_size, "compute_features")


def sample_images(model, num_samples, batch_size=250, seed=0):
    """`num_samples` images from `model.sample`, drawn in batches, as a float32 array.

    Batch `i` uses seed `seed + i * batch_size`, so the same arguments give the same images.

    Args:
        model: anything with `sample(n, seed=...)` (a `VAE`, a `GAN`).
        num_samples: int >= 1.
        batch_size: int >= 1, images per call. Defaults to 250.
        seed: int. Defaults to 0.
    """
    validate.positive_int("num_samples", num_samples)
    return np.concatenate(
        [
            ops.convert_to_numpy(model.sample(min(batch_size, num_samples - i), seed=seed + i))
            for i in range(0, num_samples, batch_size)
        ]
    ).astype(np.float32)


def compute_logits(classifier, images, batch_size=256):
    """The classifier's logits `[N, num_classes]` of every image (inference mode), as float32.

    Args: as for `compute_features`.
    """
    return _apply_in_batches(lambda x: classifier(x, training=False), images, batch_size, "compute_logits")


def _apply_in_batches(function, images, batch_size, caller):
    validate.positive_int("batch_size", batch_size)
    if isinstance(images, tf.data.Dataset):
        batches = (batch[0] if isinstance(batch, (tuple, list)) else batch for batch in images)
    else:
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4:
            raise ValueError(
                f"{caller} needs images of shape (N, height, width, channels). Received: images.shape={images.shape}"
            )
        batches = (images[i : i + batch_size] for i in range(0, len(images), batch_size))
    outputs = []
    for batch in batches:
        if len(batch.shape) != 4:
            raise ValueError(
                f"{caller} needs batches of images of shape (B, height, width, channels); batch the "
                f"dataset first. Received: a batch of shape {tuple(batch.shape)}"
            )
        outputs.append(ops.convert_to_numpy(function(batch)).astype(np.float32))
    if not outputs:
        raise ValueError(f"{caller} received no images.")
    return np.concatenate(outputs)


# ----------------------------------------------------------------------------
# Fréchet distance


def frechet_distance(features_a, features_b):
    """Fréchet distance between Gaussians fitted to two feature sets (FID in a chosen feature space).

    FD = ‖μa − μb‖² + Tr(Σa) + Tr(Σb) − 2 Tr((ΣaΣb)^½), with sample means and unbiased
    covariances, in float64. Tr((ΣaΣb)^½) is the sum of the square roots of the eigenvalues of
    Σa^½ Σb Σa^½ (symmetric, with the same eigenvalues as ΣaΣb), so no general matrix square root
    is needed and singular covariances (fewer samples than dimensions) are fine.

    The estimate is biased upwards for finite samples (it is not 0 for two samples of one
    distribution); compare numbers computed from equally many samples.

    Args:
        features_a: array `[N, D]`, N >= 2.
        features_b: array `[M, D]`, M >= 2.

    Returns:
        A float >= 0.
    """
    a = _check_features(features_a, "features_a")
    b = _check_features(features_b, "features_b")
    _check_same_dim(a, b)
    return frechet_distance_from_statistics(
        a.mean(axis=0), np.atleast_2d(np.cov(a, rowvar=False)), b.mean(axis=0), np.atleast_2d(np.cov(b, rowvar=False))
    )


def frechet_distance_from_statistics(mean_a, covariance_a, mean_b, covariance_b):
    """Fréchet distance between N(mean_a, covariance_a) and N(mean_b, covariance_b); see `frechet_distance`.

    Args:
        mean_a, mean_b: arrays `[D]`.
        covariance_a, covariance_b: symmetric positive semi-definite arrays `[D, D]`.

    Returns:
        A float >= 0.
    """
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    covariance_a, covariance_b = np.asarray(covariance_a, np.float64), np.asarray(covariance_b, np.float64)
    dim = mean_a.shape[0] if mean_a.ndim == 1 else None
    for name, value, shape in (
        ("mean_a", mean_a, (dim,)),
        ("mean_b", mean_b, (dim,)),
        ("covariance_a", covariance_a, (dim, dim)),
        ("covariance_b", covariance_b, (dim, dim)),
    ):
        if dim is None or value.shape != shape:
            raise ValueError(
                "The means must be vectors [D] and the covariances matrices [D, D] of one D. Received: "
                f"mean_a.shape={mean_a.shape}, covariance_a.shape={covariance_a.shape}, "
                f"mean_b.shape={mean_b.shape}, covariance_b.shape={covariance_b.shape}"
            )
        if not np.isfinite(value).all():
            raise ValueError(f"{name} contains NaN or infinite values.")
    sqrt_a = _psd_sqrt(covariance_a)
    middle = sqrt_a @ covariance_b @ sqrt_a
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    # Round-off can make eigenvalues of a PSD matrix slightly negative; their true value is >= 0.
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    difference = mean_a - mean_b
    distance = difference @ difference + np.trace(covariance_a) + np.trace(covariance_b) - 2.0 * trace_sqrt
    return float(max(distance, 0.0))


def _psd_sqrt(matrix):
    """The symmetric square root of a symmetric PSD matrix, by eigendecomposition."""
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


# ----------------------------------------------------------------------------
# Kernel Inception Distance


def kernel_inception_distance(features_a, features_b, num_subsets=100, subset_size=1000, seed=0):
    """Kernel Inception Distance: the unbiased MMD² with a cubic polynomial kernel, over random subsets.

    For each of `num_subsets` subsets, `m = min(subset_size, N, M)` rows are drawn without
    replacement from each set and the unbiased estimate of MMD² with
    k(x, y) = (xᵀy / D + 1)³ is computed, as in Bińkowski et al. (2018), TF-GAN and the keras.io
    examples. Unlike the Fréchet distance, the estimate is unbiased: about 0 (either sign) for two
    samples of one distribution. Subsets depend only on `seed`, the subset number and the row
    number, so the `KID` metric reproduces this function exactly.

    Args:
        features_a: array `[N, D]`, N >= 2.
        features_b: array `[M, D]`, M >= 2.
        num_subsets: int >= 1. Defaults to 100.
        subset_size: int >= 2, clipped to the smaller set. Defaults to 1000.
        seed: int >= 0, chooses the subsets. Defaults to 0.

    Returns:
        `(mean, std)` over the subsets' estimates, as floats.
    """
    a = _check_features(features_a, "features_a")
    b = _check_features(features_b, "features_b")
    _check_same_dim(a, b)
    _check_kid_arguments(num_subsets, subset_size, seed)
    values = ops.convert_to_numpy(polynomial_mmd_subsets(a, b, num_subsets, subset_size, seed))
    return float(values.mean()), float(values.std())


def polynomial_mmd_subsets(features_a, features_b, num_subsets, subset_size, seed, count_a=None, count_b=None):
    """Unbiased MMD² estimates `[num_subsets]` (float64) with the kernel (xᵀy / D + 1)³; graph- and XLA-safe.

    The one definition behind `kernel_inception_distance` and `KID`. Only the first `count_a` rows
    of `features_a` and `count_b` rows of `features_b` are used (all rows when None): the `KID`
    metric passes its whole fixed-size buffer and the number of rows filled, so shapes stay static.
    Row `i` of subset `s` is picked by a hash of `(seed, set, s, i)` alone, so a set's first
    `count` rows get the same subsets whether they come alone or at the top of a larger buffer.

    Args:
        features_a: `[N, D]` tensor or array with a static N.
        features_b: `[M, D]` tensor or array with a static M.
        num_subsets: int, number of subsets.
        subset_size: int, rows per subset, clipped to the rows available.
        seed: int >= 0.
        count_a, count_b: optional int scalars (tensors allowed), the rows in use.

    Returns:
        A float64 tensor `[num_subsets]`; NaN where fewer than 2 rows are in use.
    """
    a = tf.cast(tf.convert_to_tensor(features_a), tf.float64)
    b = tf.cast(tf.convert_to_tensor(features_b), tf.float64)
    if None in (*a.shape, *b.shape) or a.shape.rank != 2 or b.shape.rank != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            "polynomial_mmd_subsets needs two [rows, D] feature sets with static shapes and one D. "
            f"Received: shapes {a.shape} and {b.shape}"
        )
    capacity_a, capacity_b, dim = a.shape[0], b.shape[0], a.shape[1]
    count_a = capacity_a if count_a is None else count_a
    count_b = capacity_b if count_b is None else count_b
    size = min(subset_size, capacity_a, capacity_b)
    used = tf.minimum(tf.cast(size, tf.int64), tf.minimum(tf.cast(count_a, tf.int64), tf.cast(count_b, tf.int64)))
    rows_a = _subset_rows(num_subsets, capacity_a, count_a, size, seed, stream=0)
    rows_b = _subset_rows(num_subsets, capacity_b, count_b, size, seed, stream=1)
    # Subsets have a static `size` rows; a mask keeps the first `used` of them.
    mask = tf.cast(tf.range(size, dtype=tf.int64) < used, tf.float64)[:, None]
    used = tf.cast(used, tf.float64)

    def masked_sum(x, y):
        """Σ_ij k(x_i, y_j) over the rows in use, and Σ_i k(x_i, y_i)."""
        base = tf.matmul(x, y, transpose_b=True) / dim + 1.0
        kernel = base * base * base  # Much faster than pow(base, 3).
        total = tf.reduce_sum(mask * tf.matmul(kernel, mask))
        return total, tf.reduce_sum(mask[:, 0] * tf.linalg.diag_part(kernel))

    def one_subset(rows):
        x, y = tf.gather(a, rows[0]), tf.gather(b, rows[1])
        within_a, diagonal_a = masked_sum(x, x)
        within_b, diagonal_b = masked_sum(y, y)
        between, _ = masked_sum(x, y)
        # Unbiased: the within-set sums leave out the diagonal k(x_i, x_i).
        within = within_a - diagonal_a + within_b - diagonal_b
        return within / (used * (used - 1.0)) - 2.0 * between / (used * used)

    return tf.map_fn(one_subset, (rows_a, rows_b), fn_output_signature=tf.float64)


def _subset_rows(num_subsets, capacity, count, size, seed, stream):
    """`[num_subsets, size]` distinct rows among the first `count` of `capacity`, by a hash of (seed, stream, subset, row)."""
    subset = tf.range(num_subsets, dtype=tf.int64)[:, None]
    row = tf.range(capacity, dtype=tf.int64)[None, :]
    key = _hash32(tf.constant(seed & _MASK32, tf.int64))
    key = _hash32(tf.bitwise.bitwise_xor(key, stream))
    key = _hash32(tf.bitwise.bitwise_xor(key, subset))
    # The hash is a bijection of 32-bit words; kept to 31 bits (to fit int32), two rows of a subset
    # rarely tie, and top_k breaks ties by row, the same way in every call.
    score = tf.bitwise.right_shift(_hash32(tf.bitwise.bitwise_xor(key, row)), 1)
    # top_k picks the largest priorities: the smallest scores among the rows in use.
    priority = tf.where(row < tf.cast(count, tf.int64), (2**31 - 1) - score, -1)
    _, rows = tf.math.top_k(tf.cast(priority, tf.int32), k=size)
    return rows


_MASK32 = 0xFFFFFFFF


def _hash32(x):
    """Chris Wellons' lowbias32 integer hash of 32-bit words held in int64, a bijection."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))
    x = _multiply_mod_2_32(x, 0x7FEB352D)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 15))
    x = _multiply_mod_2_32(x, 0x846CA68B)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def _multiply_mod_2_32(x, constant):
    """`x * constant mod 2**32` for x in [0, 2**32), split in 16-bit halves so int64 never overflows."""
    low = tf.bitwise.bitwise_and(x, 0xFFFF)
    high = tf.bitwise.right_shift(x, 16)
    high_product = tf.bitwise.left_shift(tf.bitwise.bitwise_and(high * constant, 0xFFFF), 16)
    return tf.bitwise.bitwise_and(low * constant + high_product, _MASK32)


class KID(keras.metrics.Metric):
    """Kernel Inception Distance of generated images to a fixed real set, as a Keras metric.

    Real features are computed once, at construction. `update_state(generated_images)` embeds a
    batch with the feature extractor and appends its features to a fixed-size buffer (so it runs
    in a compiled `train_step`/`test_step`, XLA included); `result()` is
    `kernel_inception_distance(real_features, generated_features, ...)`'s mean over everything
    accumulated since the last `reset_state()` (NaN before 2 images); the two give the same number
    for the same features. `result()` costs `num_subsets` sets of three `subset_size`² kernel
    matrices; for a per-step estimate during training, use smaller values.

    Args:
        feature_extractor: a `Classifier` (its `features` method is used) or any callable mapping
            images `[B, H, W, C]` to features `[B, D]`.
        real_images: array `[N, H, W, C]` or a `tf.data.Dataset` of them; give this or `real_features`.
        real_features: array `[N, D]`, precomputed features of the real images.
        max_samples: int >= 2, generated images kept; those beyond it are ignored until
            `reset_state()`. Defaults to 10000.
        num_subsets: int >= 1. Defaults to 100.
        subset_size: int >= 2, clipped to the smaller set. Defaults to 1000.
        seed: int >= 0, chooses the subsets. Defaults to 0.
        batch_size: int, images per forward pass when embedding `real_images`. Defaults to 256.
        name: str. Defaults to `"kid"`.

    Example, in a GAN's `test_step` as in the keras.io examples:

        self.kid = KID(classifier, real_images=validation_images, subset_size=500)
        ...
        def test_step(self, data):
            images = self.generator(keras.random.normal((batch_size, self.latent_dim)))
            self.kid.update_state(images)
            return {m.name: m.result() for m in self.metrics}
    """

    def __init__(
        self,
        feature_extractor,
        real_images=None,
        real_features=None,
        max_samples=10000,
        num_subsets=100,
        subset_size=1000,
        seed=0,
        batch_size=256,
        name="kid",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if (real_images is None) == (real_features is None):
            raise ValueError(
                "Give exactly one of real_images and real_features. Received: "
                f"real_images={'None' if real_images is None else 'an array'}, "
                f"real_features={'None' if real_features is None else 'an array'}"
            )
        validate.integer("max_samples", max_samples, minimum=2)
        _check_kid_arguments(num_subsets, subset_size, seed)
        self.feature_extractor = feature_extractor
        if real_features is None:
            real_features = compute_features(feature_extractor, real_images, batch_size)
        real = _check_features(real_features, "real_features")
        self.feature_dim = real.shape[1]
        self.max_samples = max_samples
        self.num_subsets = num_subsets
        self.subset_size = subset_size
        self.seed = seed
        self.real_features = tf.constant(real, tf.float64)
        # One spare row takes the writes of images beyond max_samples; result() never reads it.
        # Under a distribution strategy every replica appends the features of all replicas (see
        # update_state), so each holds the same buffer and a read takes the first replica's;
        # Keras's default, a sum over replicas, would add different images' features together.
        self.generated_features = self.add_variable(
            shape=(max_samples + 1, self.feature_dim),
            initializer="zeros",
            dtype="float32",
            aggregation="only_first_replica",
            name="generated_features",
        )
        self.count = self.add_variable(
            shape=(), initializer="zeros", dtype="int32", aggregation="only_first_replica", name="count"
        )

    def update_state(self, generated_images, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("KID does not weight samples. Received: a sample_weight")
        extract = getattr(self.feature_extractor, "features", self.feature_extractor)
        features = ops.cast(extract(generated_images), "float32")
        if len(features.shape) != 2 or features.shape[-1] not in (None, self.feature_dim):
            raise ValueError(
                f"The feature extractor must give [batch, {self.feature_dim}] features, as for the real "
                f"images. Received: features of shape {tuple(features.shape)}"
            )
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # All replicas' features in replica order, the order one device would see them in.
            features = context.all_gather(features, axis=0)
        rows = self.count + ops.arange(ops.shape(features)[0], dtype="int32")
        rows = ops.where(rows < self.max_samples, rows, self.max_samples)
        self.generated_features.assign(ops.scatter_update(self.generated_features, rows[:, None], features))
        self.count.assign(ops.minimum(self.count + ops.shape(features)[0], self.max_samples))

    def result(self):
        values = polynomial_mmd_subsets(
            self.real_features,
            self.generated_features[: self.max_samples],
            self.num_subsets,
            self.subset_size,
            self.seed,
            count_b=self.count,
        )
        return ops.cast(ops.mean(values), self.dtype)


# ----------------------------------------------------------------------------
# Classifier score and predicted classes


def classifier_score(logits, num_splits=10):
    """exp(E_x KL(p(y|x) ‖ p(y))) with a domain classifier: the Inception Score's formula.

    The images are split into `num_splits` consecutive parts; within each, p(y) is the mean of
    the predicted distributions p(y|x). It is 1 when every image gets the same prediction and
    `num_classes` when predictions are confident and spread evenly over the classes, like
    TF-GAN's MNIST score and the Inception Score (Salimans et al., 2016). It rewards confident,
    varied samples, not realistic ones: use it beside the Fréchet distance or KID.

    Args:
        logits: array `[N, num_classes]` of unnormalized log-probabilities.
        num_splits: int in 1..N. Defaults to 10.

    Returns:
        `(mean, std)` over the splits, as floats.
    """
    logits = _check_logits(logits)
    if not validate.is_int(num_splits) or not 1 <= num_splits <= len(logits):
        raise ValueError(
            f"num_splits must be an int between 1 and the number of samples ({len(logits)}). "
            f"Received: num_splits={num_splits!r}"
        )
    log_p = logits - _logsumexp(logits, axis=1)
    scores = []
    for part in np.array_split(log_p, num_splits):
        log_marginal = _logsumexp(part, axis=0) - np.log(len(part))
        p = np.exp(part)
        # p underflows to exactly 0 only where p log p -> 0 too.
        kl = np.sum(np.where(p > 0, p * (part - log_marginal), 0.0), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def class_histogram(logits, num_classes=None):
    """The fraction of samples predicted as each class (the argmax of `logits`): a mode-dropping check.

    Args:
        logits: array `[N, C]` of logits or probabilities.
        num_classes: int or None; defaults to C.

    Returns:
        A float64 array `[num_classes]` summing to 1.
    """
    logits = _check_logits(logits)
    num_classes = logits.shape[1] if num_classes is None else num_classes
    if not validate.is_int(num_classes) or num_classes < logits.shape[1]:
        raise ValueError(
            f"num_classes must be an int >= the logits' {logits.shape[1]} columns. Received: num_classes={num_classes!r}"
        )
    return np.bincount(np.argmax(logits, axis=1), minlength=num_classes) / len(logits)


# ----------------------------------------------------------------------------
# Checks


def _check_features(features, name):
    features = _as_float64(features, name)
    if features.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [num_samples, feature_dim]. Received: {name}.shape={features.shape}")
    if features.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples to estimate a distribution. Received: {name}.shape={features.shape}")
    if features.shape[1] < 1:
        raise ValueError(f"{name} has no feature columns. Received: {name}.shape={features.shape}")
    return features


def _check_same_dim(a, b):
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            "The two feature sets must have the same feature dimension (from the same classifier). "
            f"Received: features_a.shape={a.shape}, features_b.shape={b.shape}"
        )


def _check_logits(logits):
    logits = _as_float64(logits, "logits")
    if logits.ndim != 2 or logits.shape[0] < 1 or logits.shape[1] < 2:
        raise ValueError(
            f"logits must be a 2-D array [num_samples, num_classes] with at least one sample and two "
            f"classes. Received: logits.shape={logits.shape}"
        )
    return logits


def _check_kid_arguments(num_subsets, subset_size, seed):
    validate.positive_int("num_subsets", num_subsets)
    validate.integer("subset_size", subset_size, minimum=2)
    validate.integer("seed", seed, minimum=0)


def _as_float64(values, name):
    array = ops.convert_to_numpy(values) if tf.is_tensor(values) else np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric. Received: {name}.dtype={array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains {np.count_nonzero(~np.isfinite(array))} NaN or infinite values.")
    return array


def _logsumexp(x, axis):
    peak = np.max(x, axis=axis, keepdims=True)
    return peak + np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True))
