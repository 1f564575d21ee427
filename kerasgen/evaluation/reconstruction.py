"""Encoder models judged by their codes: are reconstructions faithful, and does q(z) match p(z)?

Written against the interface every kerasgen encoder model shares (`kerasgen.VAE`, and the
VAE-GAN and adversarial autoencoder beside it), so any object that has it can be evaluated:

- `model.reconstruct(x)`: the mean images decoded at the posterior mean, `[B, H, W, C]`;
- `model.posterior_distribution(x)`: q(z|x), a `tfd.Distribution` with batch shape `[B]` and
  event shape `[D]` whose `sample(seed=...)` works (a deterministic encoder's is
  `tfd.Independent(tfd.Deterministic(loc), 1)`);
- `model.prior()`: p(z), a `tfd.Distribution` with event shape `[D]` (N(0, I), a Gaussian mixture).

Unlike the likelihood numbers of `evaluation.likelihood`, these mean something for every such
model, whether or not it defines log p(x):

- `reconstruction_quality`: what a domain classifier (see `evaluation.sample_quality`) makes of
  reconstructions of held-out images: its accuracy on them beside its accuracy on the originals,
  the Fréchet distance between the features of the two sets, and the pixel mean squared error.
- `aggregated_posterior_mmd`: the unbiased MMD² between codes of held-out images, draws from the
  aggregated posterior q(z) = E_x q(z|x), and as many draws from p(z), with the inverse
  multiquadratic kernel of the Wasserstein autoencoder (Tolstikhin et al., 2018). About 0, of
  either sign, when q(z) matches p(z), that is when images decoded from prior draws look like
  reconstructions; an AAE trains to make q(z) match, a VAE only through its per-image KL.

Example:

    images, labels = heldout_images_and_labels(load_dataset("mnist-5k", binarize="none"))
    reconstruction_quality(vae, images, labels, load_classifier(None, (28, 28, 1)))["accuracy"]
    aggregated_posterior_mmd(vae, images, seed=0)["mmd"]
"""

import numpy as np
from keras import ops

from kerasgen import validate
from kerasgen.evaluation.instruments import base_seed, fold_in
from kerasgen.evaluation.sample_quality import compute_features, compute_logits, frechet_distance

# Random streams of their own, after the three of `evaluation.likelihood`, so these draws do not
# move when the likelihood code changes and vice versa.
_POSTERIOR_STREAM, _PRIOR_STREAM = 3, 4

KERNELS = ("imq",)

# C / (2 D) for the inverse multiquadratic kernel: WAE's scales around its base 2 D (see `imq_kernel_scales`).
IMQ_SCALE_FACTORS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def reconstruct_images(model, images, batch_size=256):
    """`model.reconstruct` of every image, a batch at a time, as a float32 numpy array.

    Args:
        model: anything with `reconstruct(x)` giving images of the input's shape (a `VAE`).
        images: array-like `[N, H, W, C]`, N >= 1.
        batch_size: int >= 1, images per call. Defaults to 256.

    Returns:
        A float32 numpy array `[N, H, W, C]`.

    Raises:
        ValueError: the model cannot reconstruct, the images are not a non-empty `[N, H, W, C]`
            array, or the reconstructions have another shape.
    """
    _check_model(model, ("reconstruct",), "reconstruct_images")
    images = _check_images(images, "reconstruct_images", minimum=1)
    validate.positive_int("batch_size", batch_size)
    reconstructions = np.concatenate(
        [
            ops.convert_to_numpy(model.reconstruct(images[start : start + batch_size])).astype(np.float32)
            for start in range(0, len(images), batch_size)
        ]
    )
    if reconstructions.shape != images.shape:
        raise ValueError(
            f"{type(model).__name__}.reconstruct must give images of its input's shape. Received: "
            f"reconstructions of shape {reconstructions.shape} for images of shape {images.shape}"
        )
    return reconstructions


def reconstruction_quality(model, images, labels, classifier, batch_size=256):
    """How faithful reconstructions of held-out images are, seen by a domain classifier and per pixel.

    An encoder that keeps what the classifier needs gives an `accuracy` close to
    `heldout_accuracy` (the classifier's accuracy on the originals, its ceiling here) and a small
    `frechet_distance`; a model that reconstructs a blurred "average digit" loses both, whatever
    its samples look like. The numbers are comparable only between runs that use the same
    classifier and held-out images.

    Args:
        model: anything with `reconstruct(x)` (a `VAE`; see the module docstring).
        images: array-like `[N, H, W, C]` in [0, 1], N >= 2: the grey held-out images.
        labels: int array `[N]` of their classes, or None when the data has no labels (then both
            accuracies are None).
        classifier: a `Classifier`, or any object with `features(x)` → `[B, F]` and
            `__call__(x, training=False)` → logits `[B, num_classes]`.
        batch_size: int >= 1, images per forward pass. Defaults to 256.

    Returns:
        dict with
        - `accuracy`: float, the classifier's accuracy on the reconstructions (None without labels);
        - `heldout_accuracy`: float, its accuracy on the originals (None without labels);
        - `frechet_distance`: float, between the classifier features of the reconstructions and
          of the originals (`sample_quality.frechet_distance`);
        - `mean_squared_error`: float, the mean over images and pixels of (reconstruction − image)²;
        - `num_images`: int, N.

    Raises:
        ValueError: the model cannot reconstruct, or the images or labels are malformed.
    """
    _check_model(model, ("reconstruct",), "reconstruction_quality")
    images = _check_images(images, "reconstruction_quality", minimum=2)
    labels = _check_labels(labels, len(images))
    reconstructions = reconstruct_images(model, images, batch_size)
    accuracy = heldout_accuracy = None
    if labels is not None:
        accuracy = _accuracy(compute_logits(classifier, reconstructions, batch_size), labels)
        heldout_accuracy = _accuracy(compute_logits(classifier, images, batch_size), labels)
    distance = frechet_distance(
        compute_features(classifier, reconstructions, batch_size), compute_features(classifier, images, batch_size)
    )
    error = np.mean(np.square(reconstructions.astype(np.float64) - images.astype(np.float64)))
    return {
        "accuracy": accuracy,
        "heldout_accuracy": heldout_accuracy,
        "frechet_distance": distance,
        "mean_squared_error": float(error),
        "num_images": len(images),
    }


def aggregated_posterior_mmd(model, images, seed=0, batch_size=256, kernel="imq", repeats=10):
    """The unbiased MMD² between the aggregated posterior q(z) = E_x q(z|x) and the prior p(z).

    One code z_n ~ q(z|x_n) is drawn per image (`posterior_distribution(x).sample(seed=...)`,
    batch `i` of repeat `r` with a stateless seed derived from `(seed, r, i)`; the encoder's own
    code for a deterministic encoder) and as many draws y_n from `prior()` (a seed derived from
    `(seed, r)`); `unbiased_mmd_squared` (inverse multiquadratic kernel, see `imq_kernel_scales`)
    compares them. With a few hundred images one such estimate is noisy (measured on mnist-5k's
    500 held-out digits: 0.011 to 0.017 for one VAE between seeds), so `repeats` independent
    draws are averaged: each estimate is unbiased, so is their mean, and its standard error is
    reported beside it. The same arguments give the same number; another `batch_size` gives
    other draws.

    Args:
        model: anything with `posterior_distribution(x)` and `prior()` (see the module docstring).
        images: array-like `[N, H, W, C]`, N >= 2, the held-out images, as the encoder saw
            images in training.
        seed: int, seeds the posterior and the prior draws. Defaults to 0.
        batch_size: int >= 1, images encoded at once. Defaults to 256.
        kernel: str, `"imq"`, the only kernel. Defaults to `"imq"`.
        repeats: int >= 1, independent draws of both sets whose estimates are averaged.
            Defaults to 10.

    Returns:
        dict with `mmd` (float, the mean of the unbiased MMD² estimates: about 0, of either sign,
        when q(z) matches p(z)), `mmd_standard_error` (float, their standard deviation / √repeats;
        0 for one repeat), `repeats`, `num_codes` (int, N), `kernel` (`"imq"`) and `kernel_scales`
        (the C values).

    Raises:
        ValueError: the model has no encoder (a GAN), an argument is invalid, or the posterior and
            prior draws are not `[N, D]` of one D.
    """
    _check_model(model, ("posterior_distribution", "prior"), "aggregated_posterior_mmd")
    validate.one_of("kernel", kernel, KERNELS)
    images = _check_images(images, "aggregated_posterior_mmd", minimum=2)
    validate.positive_int("batch_size", batch_size)
    validate.positive_int("repeats", repeats)
    posterior_seed, prior_seed = base_seed(seed, _POSTERIOR_STREAM), base_seed(seed, _PRIOR_STREAM)
    # Each batch's q(z|x) once; every repeat samples it again.
    posteriors = [model.posterior_distribution(images[start : start + batch_size]) for start in range(0, len(images), batch_size)]
    estimates = []
    for repeat in range(int(repeats)):
        repeat_seed = fold_in(posterior_seed, repeat)
        codes = np.concatenate(
            [ops.convert_to_numpy(q.sample(seed=fold_in(repeat_seed, index))) for index, q in enumerate(posteriors)]
        )
        prior_codes = ops.convert_to_numpy(model.prior().sample(len(images), seed=fold_in(prior_seed, repeat)))
        if codes.ndim != 2 or codes.shape != prior_codes.shape:
            raise ValueError(
                f"q(z|x) and p(z) must give codes [N, D] of one D: batch shape [B] and event shape [D]. "
                f"Received: posterior codes of shape {codes.shape} and prior draws of shape {prior_codes.shape}"
            )
        estimates.append(unbiased_mmd_squared(codes, prior_codes, kernel))
    return {
        "mmd": float(np.mean(estimates)),
        "mmd_standard_error": float(np.std(estimates, ddof=1) / np.sqrt(len(estimates))) if len(estimates) > 1 else 0.0,
        "repeats": int(repeats),
        "num_codes": len(images),
        "kernel": kernel,
        "kernel_scales": imq_kernel_scales(codes.shape[1]).tolist(),
    }


def imq_kernel_scales(latent_dim):
    """The scales C of the inverse multiquadratic kernel for `latent_dim`-dimensional codes.

    k(a, b) = Σ_C C / (C + ‖a − b‖²) over C ∈ {0.1, 0.2, 0.5, 1, 2, 5, 10} · 2D, as in the
    Wasserstein autoencoder (Tolstikhin et al., 2018, and their code): 2D is E‖a − b‖² for two
    independent N(0, I_D) draws, the prior's typical squared distance, and the sum over scales
    keeps the kernel sensitive both to small and to large differences. The IMQ's heavy tails
    keep gradients (and differences) alive for far-apart codes, where a Gaussian kernel vanishes.
    The scales are tied to a unit-variance prior; for a Gaussian-mixture prior they stay as they
    are, so numbers remain comparable across priors of one D.

    Args:
        latent_dim: int >= 1, D.

    Returns:
        A float64 array of the 7 values of C.
    """
    validate.positive_int("latent_dim", latent_dim)
    return 2.0 * latent_dim * np.asarray(IMQ_SCALE_FACTORS, np.float64)


def unbiased_mmd_squared(codes_a, codes_b, kernel="imq", chunk_size=512):
    """The unbiased estimate of MMD²(P, Q) from samples a ~ P and b ~ Q (a U-statistic).

        MMD² ≈ Σ_{i≠j} k(a_i, a_j) / (n(n−1)) + Σ_{i≠j} k(b_i, b_j) / (m(m−1)) − 2 Σ_{i,j} k(a_i, b_j) / (nm)

    with the inverse multiquadratic kernel of `imq_kernel_scales(D)`. Leaving the diagonal terms
    k(x, x) out of the within-sample sums makes the estimate unbiased: its mean is 0 for two
    samples of one distribution, so single estimates can be negative. Computed in float64, a
    block of `chunk_size` rows at a time, so memory grows as `chunk_size · max(n, m)`, not as n²
    (5000 codes need a few tens of MB).

    Args:
        codes_a: array `[n, D]`, n >= 2.
        codes_b: array `[m, D]`, m >= 2.
        kernel: str, `"imq"`. Defaults to `"imq"`.
        chunk_size: int >= 1, rows per block. Defaults to 512.

    Returns:
        A float.
    """
    validate.one_of("kernel", kernel, KERNELS)
    a, b = _check_codes(codes_a, "codes_a"), _check_codes(codes_b, "codes_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"The two sets of codes must have one dimension D. Received: codes_a.shape={a.shape}, codes_b.shape={b.shape}"
        )
    validate.positive_int("chunk_size", chunk_size)
    scales = imq_kernel_scales(a.shape[1])
    n, m = len(a), len(b)
    within_a = _kernel_sum(a, a, scales, chunk_size, exclude_diagonal=True)
    within_b = _kernel_sum(b, b, scales, chunk_size, exclude_diagonal=True)
    between = _kernel_sum(a, b, scales, chunk_size, exclude_diagonal=False)
    return float(within_a / (n * (n - 1)) + within_b / (m * (m - 1)) - 2.0 * between / (n * m))


def _kernel_sum(a, b, scales, chunk_size, exclude_diagonal):
    """Σ_ij k(a_i, b_j), block by block of rows of `a`; without the i = j terms when asked (a is b)."""
    squared_b = np.sum(b * b, axis=1)
    total = 0.0
    for start in range(0, len(a), chunk_size):
        rows = a[start : start + chunk_size]
        distances = np.sum(rows * rows, axis=1)[:, None] + squared_b[None, :] - 2.0 * (rows @ b.T)
        # Round-off can make a squared distance slightly negative; its true value is >= 0.
        np.maximum(distances, 0.0, out=distances)
        kernel = np.zeros_like(distances)
        term = np.empty_like(distances)
        for scale in scales:
            np.add(distances, scale, out=term)
            np.divide(scale, term, out=term)
            kernel += term
        if exclude_diagonal:
            # Set to 0 exactly, rather than subtracting the 7 the kernel gives at distance 0, so
            # round-off in the distances of i = j pairs cannot leak in.
            index = np.arange(len(rows))
            kernel[index, start + index] = 0.0
        total += kernel.sum()
    return total


def _accuracy(logits, labels):
    return float(np.mean(np.argmax(logits, axis=1) == labels))


# ----------------------------------------------------------------------------
# Checks


def _check_model(model, methods, caller):
    missing = [name for name in methods if not callable(getattr(model, name, None))]
    if not missing:
        return
    name = type(model).__name__
    if "posterior_distribution" in missing or ("reconstruct" in missing and not hasattr(model, "encode")):
        raise ValueError(
            f"{caller} needs a model with an encoder ({', '.join(methods)}), but {name} has no encoder "
            f"(it is a GAN or another generator-only model). Received: a {name} without {', '.join(missing)}"
        )
    raise ValueError(f"{caller} needs a model with {', '.join(methods)}. Received: a {name} without {', '.join(missing)}")


def _check_images(images, caller, minimum):
    images = ops.convert_to_numpy(images) if hasattr(images, "numpy") else np.asarray(images)
    if images.dtype.kind not in "biuf":
        raise ValueError(f"{caller} needs numeric images. Received: images.dtype={images.dtype}")
    if images.ndim != 4:
        raise ValueError(f"{caller} needs images of shape (N, height, width, channels). Received: images.shape={images.shape}")
    if len(images) < minimum:
        raise ValueError(
            f"{caller} needs at least {minimum} image{'s' if minimum > 1 else ''}. "
            f"Received: {len(images)} images, images.shape={images.shape}"
        )
    return images.astype(np.float32)


def _check_labels(labels, num_images):
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.shape != (num_images,) or labels.dtype.kind not in "iu":
        raise ValueError(
            f"labels must be None or ints [N], one per image ({num_images} images). "
            f"Received: labels.shape={labels.shape}, labels.dtype={labels.dtype}"
        )
    if (labels < 0).any():
        raise ValueError(
            f"labels must be class numbers >= 0 (unlabelled images carry -1: pass labels=None). "
            f"Received: {np.count_nonzero(labels < 0)} negative labels"
        )
    return labels


def _check_codes(codes, name):
    codes = np.asarray(ops.convert_to_numpy(codes) if hasattr(codes, "numpy") else codes)
    if codes.dtype.kind not in "biuf" or codes.ndim != 2 or len(codes) < 2 or codes.shape[1] < 1:
        raise ValueError(
            f"{name} must be a numeric array [num_codes, D] with at least 2 codes. "
            f"Received: {name}.shape={codes.shape}, {name}.dtype={codes.dtype}"
        )
    codes = codes.astype(np.float64)
    if not np.isfinite(codes).all():
        raise ValueError(f"{name} contains {np.count_nonzero(~np.isfinite(codes))} NaN or infinite values.")
    return codes
