"""Held-out evaluation of latent-variable models: the ELBO, importance-weighted log p(x), posterior health.

Everything here is written against a small interface, so any model that has it can be evaluated
(`kerasgen.VAE` does; the tests use a linear-Gaussian model whose log p(x) is known exactly):

- `model.posterior_distribution(x)`: q(z|x), a `tfd.Distribution` with batch shape `[B]` and
  event shape `[D]`;
- `model.likelihood_distribution(z)`: p(x|z) over whole images for a `[B, D]` batch of latents,
  so `log_prob(x)` is `[B]`;
- `model.prior()`: p(z), event shape `[D]`;
- `model.latent_dim`: `D`.

Datasets are `tf.data` pipelines (or any iterable) of `(images, labels)` batches, such as the
splits of `kerasgen.data.load_dataset`; labels are ignored. All numbers are nats per image.

Every function is seeded with stateless TFP sampling: the same call on the same model and data
gives the same number.
"""

import math
import sys

import keras
import numpy as np
import tensorflow as tf

from kerasgen import validate
from kerasgen.evaluation.instruments import (
    ACTIVE_UNIT_THRESHOLD,
    IMPORTANCE_STREAM,
    LatentInstruments,
    base_seed,
    fold_in,
)
from kerasgen.losses import log_importance_weights


def elbo(model, dataset, seed=0):
    """The evidence lower bound, averaged over every image of a dataset.

    ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z)), estimated per image with one
    reparameterized sample of z (and the analytic KL where TFP has it), by the same
    `kerasgen.losses.negative_elbo` that training uses, through `instruments.LatentInstruments`
    (the `LatentDiagnostics` callback's numbers during training).

    Args:
        model: a model with `posterior_distribution`, `likelihood_distribution`, `prior` and
            `latent_dim` (see the module docstring), e.g. a `kerasgen.VAE`.
        dataset: `tf.data.Dataset` (or iterable) of `(images, labels)` batches.
        seed: int, seeds the samples of z. Defaults to 0.

    Returns:
        dict with `elbo`, `reconstruction` (-E_q[log p(x|z)]) and `kl`, floats in nats per image
        averaged over all images, and `num_images`.

    Raises:
        ValueError: `seed` is not an int, or the dataset yields no images.

    Example:

        splits = load_dataset("mnist-5k", binarize="static")
        elbo(vae, splits.validation)["elbo"]
    """
    # The ELBO split of `instruments`, which the training-time `LatentDiagnostics` shares.
    return LatentInstruments(model, posterior=False, seed=seed)(dataset)


def importance_weighted_log_likelihood(model, dataset, num_samples=500, chunk_size=100, seed=0, progress=True):
    """log p(x) estimated by importance sampling with q(z|x) as the proposal (Burda et al., 2016).

    For each image,

        log p̂(x) = logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K,  z_k ~ q(z|x),

    with K = `num_samples`. Its expectation is the K-sample IWAE bound: at K=1 it is the ELBO, it
    never decreases with K, and it tends to log p(x) as K grows. It is a stochastic lower bound,
    so report it with its K (Burda et al. use K=5000 on MNIST).

    Memory does not grow with K or with the dataset: images are taken a batch at a time and their
    K samples `chunk_size` at a time, decoded as one `[chunk_size * B, D]` batch by a single
    compiled graph, and the chunks are combined with a running logsumexp. Sample k of the i-th
    batch is drawn with its own seed, derived from (`seed`, i, k), so `chunk_size` changes the
    memory and the speed but not the samples: the answer is the same up to float rounding.
    The encoder runs once per chunk, a cost of 1 / `chunk_size` of the decoding.

    Args:
        model: a model with `posterior_distribution`, `likelihood_distribution`, `prior` and
            `latent_dim` (see the module docstring), e.g. a `kerasgen.VAE`.
        dataset: `tf.data.Dataset` (or iterable) of `(images, labels)` batches. The samples of an
            image depend on its batch and position in it, so keep the batching fixed to compare
            models on the same draws.
        num_samples: int >= 1, K, importance samples per image. Defaults to 500.
        chunk_size: int >= 1, samples decoded at once per image; memory grows with
            `chunk_size * batch size`. Values above `num_samples` act as `num_samples`.
            Defaults to 100.
        seed: int, seeds the samples. Defaults to 0.
        progress: bool, show a `keras.utils.Progbar` over images with the running mean.
            Defaults to True.

    Returns:
        dict with
        - `log_likelihood`: float, the mean of log p̂(x) over images, in nats;
        - `standard_error`: float, the standard error of that mean over images (the spread of
          log p̂(x) across images divided by sqrt(N), Monte Carlo noise included); NaN for a
          single image;
        - `num_images`: int, N;
        - `num_samples`: int, K;
        - `per_image_log_likelihood`: float64 numpy array `[N]`, log p̂(x) of every image in
          dataset order.

    Raises:
        ValueError: `num_samples` or `chunk_size` is not a positive int, `seed` is not an int, or
            the dataset yields no images.

    Example:

        result = importance_weighted_log_likelihood(vae, splits.test, num_samples=5000)
        print(f"log p(x) >= {result['log_likelihood']:.2f} ± {result['standard_error']:.2f} nats")
    """
    validate.positive_int("num_samples", num_samples)
    validate.positive_int("chunk_size", chunk_size)
    seed_pair = base_seed(seed, IMPORTANCE_STREAM)
    _check_not_empty(dataset)
    chunk_size = min(chunk_size, num_samples)

    def chunk_step(x, batch_seed, start, size, running):
        """Folds samples `start .. start + size - 1` of every image into the running logsumexp."""
        posterior = model.posterior_distribution(x)
        # One seed per sample index, not per chunk, so the draws do not depend on chunk_size.
        z = tf.map_fn(
            lambda k: posterior.sample(seed=fold_in(batch_seed, k)),
            tf.range(start, start + size),
            fn_output_signature=posterior.dtype,
        )  # [size, B, D]
        log_weights, _ = log_importance_weights(x, z, posterior, model.prior(), model.likelihood_distribution)
        chunk = tf.reduce_logsumexp(log_weights, axis=0)
        # logsumexp of the two partial sums; a running value of -inf (the start) drops out.
        return tf.reduce_logsumexp(tf.stack([running, chunk]), axis=0)

    step = None
    # Keras's bar rewrites its line with control codes: only for a terminal.
    progbar = None
    if progress and sys.stdout.isatty():
        progbar = keras.utils.Progbar(None, unit_name="image", stateful_metrics=["log_likelihood"])
    per_image = []
    num_images = 0
    total = 0.0
    for index, x in enumerate(_images(dataset)):
        if step is None:
            step = _compile(
                chunk_step,
                x,
                tf.TensorSpec([2], tf.int32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([None], tf.float32),
            )
        batch_size = int(tf.shape(x)[0])
        if batch_size == 0:
            continue
        batch_seed = fold_in(seed_pair, index)
        running = tf.fill([batch_size], -np.inf)
        for start in range(0, num_samples, chunk_size):
            size = min(chunk_size, num_samples - start)
            running = step(x, batch_seed, tf.constant(start), tf.constant(size), running)
        per_image.append(running.numpy().astype(np.float64) - math.log(num_samples))
        num_images += batch_size
        total += per_image[-1].sum()
        if progbar is not None:
            progbar.update(num_images, values=[("log_likelihood", total / num_images)])
    _check_num_images(num_images)
    per_image = np.concatenate(per_image)
    if progbar is not None:
        progbar.update(num_images, values=[("log_likelihood", per_image.mean())], finalize=True)
    standard_error = per_image.std(ddof=1) / math.sqrt(num_images) if num_images > 1 else math.nan
    return {
        "log_likelihood": float(per_image.mean()),
        "standard_error": float(standard_error),
        "num_images": num_images,
        "num_samples": num_samples,
        "per_image_log_likelihood": per_image,
    }


def posterior_diagnostics(model, dataset, num_mi_samples=10, active_unit_threshold=ACTIVE_UNIT_THRESHOLD, seed=0):
    """How much the posterior q(z|x) uses each latent dimension, and how much it says about x.

    The posterior half of `instruments.LatentInstruments`, the implementation that the
    `LatentDiagnostics` callback also measures with during training (see `evaluation.instruments`
    for the estimators):

    - KL per dimension: the mean over images of KL(q(z_i|x) || p(z_i)) between the marginals of
      dimension i, analytic for Gaussians from `.mean()` and `.stddev()` of q and p, so it works
      for diagonal and full-covariance posteriors. For a diagonal q and p the dimensions sum to
      the full KL; with correlations the full KL is larger. Left out (None) for a pair without
      Gaussian marginals (a mixture prior), with the reason.
    - Active units (Burda et al., 2016): dimension i is active when Cov_x(E_q(z|x)[z_i]), the
      variance over the dataset of the posterior mean, exceeds `active_unit_threshold`. An
      inactive dimension's posterior mean ignores x (posterior collapse).
    - Mutual information I(x; z) under the encoder's joint q(x, z) = p_data(x) q(z|x), the
      estimate of Hoffman & Johnson (2016) and He et al. (2019),
      I = E_x E_q(z|x)[log q(z|x)] - E_x E_q(z|x)[log q(z)], with the aggregate posterior
      q(z) ≈ (1/N) Σ_n q(z|x_n) over a batch of N images: at most log N (reported as
      `mutual_information_bound`: a large I needs large batches to be seen), exactly 0 for a
      q(z|x) that ignores x, and approaching I from below as N grows. Memory per batch grows as
      N² · D.

    Args:
        model: a model with `posterior_distribution` and `prior` (see the module docstring).
        dataset: `tf.data.Dataset` (or iterable) of `(images, labels)` batches, or an array
            `[N, H, W, C]` (one batch); the batch size is the N of the mutual-information estimate.
        num_mi_samples: int >= 1, draws of z per image for the mutual information. Defaults to 10.
        active_unit_threshold: float >= 0, the variance above which a dimension is active.
            Defaults to 0.01 (Burda et al., 2016).
        seed: int, seeds the draws. Defaults to 0.

    Returns:
        dict with
        - `kl_per_dimension`: list of D floats, nats; or None, with `kl_per_dimension_skipped`
          saying why;
        - `active_units`: int, how many dimensions are active;
        - `active_unit_variances`: list of D floats, Cov_x(E_q[z_i]) (the population variance over
          images);
        - `active_unit_threshold`: float, the threshold used;
        - `mutual_information`: float, nats, averaged over images;
        - `mutual_information_bound`: float, log N averaged over images the same way, the most
          the estimate can be;
        - `num_images`: int.

    Raises:
        ValueError: an argument is invalid or the dataset yields no images.
    """
    instruments = LatentInstruments(
        model, elbo=False, num_mi_samples=num_mi_samples, active_unit_threshold=active_unit_threshold, seed=seed
    )
    return instruments(dataset)


def _images(dataset):
    """The float32 images of each `(images, labels)` batch (a bare images batch works too)."""
    for batch in dataset:
        x, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
        yield tf.cast(x, tf.float32)


def _compile(function, x, *specs):
    """`function` as one graph for any batch size, so a smaller last batch does not retrace it."""
    image_spec = tf.TensorSpec([None, *x.shape[1:]], tf.float32)
    return tf.function(function, input_signature=[image_spec, *specs])


def _check_not_empty(dataset):
    # Fails early when tf.data knows the size; unknown sizes are caught after the loop.
    if isinstance(dataset, tf.data.Dataset) and int(dataset.cardinality()) == 0:
        raise ValueError("dataset must yield at least one image. Received: an empty dataset (0 batches).")


def _check_num_images(num_images):
    if num_images == 0:
        raise ValueError("dataset must yield at least one image. Received: a dataset with 0 images.")
