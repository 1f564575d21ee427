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

from kerasgen.losses import log_importance_weights, negative_elbo

# Separate random streams per purpose, so that (for example) the ELBO's samples do not change
# when the importance-sampling code draws more or fewer samples.
_ELBO_STREAM, _IMPORTANCE_STREAM, _MUTUAL_INFORMATION_STREAM = range(3)


def elbo(model, dataset, seed=0):
    """The evidence lower bound, averaged over every image of a dataset.

    ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z)), estimated per image with one
    reparameterized sample of z (and the analytic KL where TFP has it), by the same
    `kerasgen.losses.negative_elbo` that training uses.

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
    base_seed = _base_seed(seed, _ELBO_STREAM)
    _check_not_empty(dataset)

    def batch_terms(x, batch_seed):
        posterior = model.posterior_distribution(x)
        z = posterior.sample(seed=batch_seed)
        likelihood = model.likelihood_distribution(z)
        _, terms = negative_elbo(x, likelihood, posterior, model.prior(), z=z)
        return terms["reconstruction"], terms["kl"]

    step = None
    totals = np.zeros(2)
    num_images = 0
    for index, x in enumerate(_images(dataset)):
        if step is None:
            step = _compile(batch_terms, x, tf.TensorSpec([2], tf.int32))
        batch_size = int(tf.shape(x)[0])
        if batch_size == 0:
            continue
        reconstruction, kl = step(x, _fold_in(base_seed, index))
        # negative_elbo averages over its batch; weighting by batch size averages over images.
        totals += batch_size * np.array([float(reconstruction), float(kl)])
        num_images += batch_size
    _check_num_images(num_images)
    reconstruction, kl = (float(total) for total in totals / num_images)
    return {"elbo": -(reconstruction + kl), "reconstruction": reconstruction, "kl": kl, "num_images": num_images}


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
    _check_positive_int("num_samples", num_samples)
    _check_positive_int("chunk_size", chunk_size)
    base_seed = _base_seed(seed, _IMPORTANCE_STREAM)
    _check_not_empty(dataset)
    chunk_size = min(chunk_size, num_samples)

    def chunk_step(x, batch_seed, start, size, running):
        """Folds samples `start .. start + size - 1` of every image into the running logsumexp."""
        posterior = model.posterior_distribution(x)
        # One seed per sample index, not per chunk, so the draws do not depend on chunk_size.
        z = tf.map_fn(
            lambda k: posterior.sample(seed=_fold_in(batch_seed, k)),
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
        batch_seed = _fold_in(base_seed, index)
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


def posterior_diagnostics(model, dataset, num_mi_samples=10, active_unit_threshold=0.01, seed=0):
    """How much the posterior q(z|x) uses each latent dimension, and how much it says about x.

    - KL per dimension: the mean over images of KL(q(z_i|x) || p(z_i)) between the marginals of
      dimension i, analytic for Gaussians from `.mean()` and `.stddev()` of q and p, so it works
      for diagonal and full-covariance posteriors. For a diagonal q and p the dimensions sum to
      the full KL; with correlations the full KL is larger.
    - Active units (Burda et al., 2016): dimension i is active when Cov_x(E_q(z|x)[z_i]), the
      variance over the dataset of the posterior mean, exceeds `active_unit_threshold`. An
      inactive dimension's posterior mean ignores x (posterior collapse).
    - Mutual information I(x; z) under the encoder's joint q(x, z) = p_data(x) q(z|x), the
      estimate of Hoffman & Johnson (2016) and He et al. (2019):

          I = E_x E_q(z|x)[log q(z|x)] - E_x E_q(z|x)[log q(z)],

      with the aggregate posterior q(z) ≈ (1/N) Σ_n q(z|x_n) over a batch of N images. For each
      image x_m of a batch and `num_mi_samples` draws z ~ q(z|x_m) the term is
      log q(z|x_m) - log[(1/N) Σ_n q(z|x_n)]; these are averaged over draws and images. The
      first term uses the same draws rather than the analytic entropy He et al. use (equal in
      expectation), so that every term is at most log N exactly, x_m being one of the N images
      (reported as `mutual_information_bound`: a large I needs large batches to be seen), and a
      q(z|x) that ignores x gives exactly 0. In expectation it is the InfoNCE lower bound on I
      (Poole et al., 2019): it approaches I from below as N grows. Memory per batch grows as
      N² · D.

    Args:
        model: a model with `posterior_distribution`, `prior` and `latent_dim` (see the module
            docstring); the prior and the posterior's marginals are taken as Gaussian.
        dataset: `tf.data.Dataset` (or iterable) of `(images, labels)` batches; the batch size is
            the N of the mutual-information estimate.
        num_mi_samples: int >= 1, draws of z per image for the mutual information. Defaults to 10.
        active_unit_threshold: float >= 0, the variance above which a dimension is active.
            Defaults to 0.01 (Burda et al., 2016).
        seed: int, seeds the draws. Defaults to 0.

    Returns:
        dict with
        - `kl_per_dimension`: list of D floats, nats;
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
    _check_positive_int("num_mi_samples", num_mi_samples)
    if isinstance(active_unit_threshold, bool) or not (
        isinstance(active_unit_threshold, (int, float)) and active_unit_threshold >= 0
    ):
        raise ValueError(
            f"active_unit_threshold must be a number >= 0. Received: active_unit_threshold={active_unit_threshold!r}"
        )
    base_seed = _base_seed(seed, _MUTUAL_INFORMATION_STREAM)
    _check_not_empty(dataset)

    def batch_statistics(x, batch_seed):
        posterior = model.posterior_distribution(x)
        prior = model.prior()
        mean, stddev = posterior.mean(), posterior.stddev()  # [N, D]: the marginals of q
        prior_mean, prior_stddev = prior.mean(), prior.stddev()
        kl = (
            tf.math.log(prior_stddev / stddev)
            + (tf.square(stddev) + tf.square(mean - prior_mean)) / (2.0 * tf.square(prior_stddev))
            - 0.5
        )
        log_n = tf.math.log(tf.cast(tf.shape(x)[0], posterior.dtype))

        def mutual_information_terms(sample_index):
            z = posterior.sample(seed=_fold_in(batch_seed, sample_index))  # [N, D], z_m ~ q(z|x_m)
            # [m, n] = log q(z_m | x_n): the [N, 1, D] latents broadcast against the batch [N].
            log_q = posterior.log_prob(z[:, None, :])
            # The own density is read from the same matrix, so a posterior that ignores x gives
            # exactly log q - (log q + log N) + log N = 0.
            return tf.linalg.diag_part(log_q) - (tf.reduce_logsumexp(log_q, axis=1) - log_n)

        terms = tf.map_fn(mutual_information_terms, tf.range(num_mi_samples), fn_output_signature=posterior.dtype)
        return mean, tf.reduce_sum(kl, axis=0), tf.reduce_mean(terms)

    step = None
    num_images = 0
    kl_total = 0.0
    mutual_information_total = 0.0
    bound_total = 0.0
    # Streaming mean and sum of squared deviations of the posterior means (Chan et al.), in float64.
    mean_of_means, squared_deviations = 0.0, 0.0
    for index, x in enumerate(_images(dataset)):
        if step is None:
            step = _compile(batch_statistics, x, tf.TensorSpec([2], tf.int32))
        batch_size = int(tf.shape(x)[0])
        if batch_size == 0:
            continue
        means, kl_sum, mutual_information = step(x, _fold_in(base_seed, index))
        means = means.numpy().astype(np.float64)
        batch_mean = means.mean(axis=0)
        delta = batch_mean - mean_of_means
        total = num_images + batch_size
        squared_deviations = (
            squared_deviations
            + ((means - batch_mean) ** 2).sum(axis=0)
            + delta**2 * num_images * batch_size / total
        )
        mean_of_means = mean_of_means + delta * batch_size / total
        kl_total = kl_total + kl_sum.numpy().astype(np.float64)
        mutual_information_total += batch_size * float(mutual_information)
        bound_total += batch_size * math.log(batch_size)
        num_images = total
    _check_num_images(num_images)
    variances = squared_deviations / num_images
    return {
        "kl_per_dimension": [float(v) for v in kl_total / num_images],
        "active_units": int(np.sum(variances > active_unit_threshold)),
        "active_unit_variances": [float(v) for v in variances],
        "active_unit_threshold": float(active_unit_threshold),
        "mutual_information": mutual_information_total / num_images,
        "mutual_information_bound": bound_total / num_images,
        "num_images": num_images,
    }


def _images(dataset):
    """The float32 images of each `(images, labels)` batch (a bare images batch works too)."""
    for batch in dataset:
        x, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
        yield tf.cast(x, tf.float32)


def _compile(function, x, *specs):
    """`function` as one graph for any batch size, so a smaller last batch does not retrace it."""
    image_spec = tf.TensorSpec([None, *x.shape[1:]], tf.float32)
    return tf.function(function, input_signature=[image_spec, *specs])


def _base_seed(seed, stream):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int. Received: seed={seed!r}")
    # TFP's stateless samplers take an int32 pair; the stream keeps the purposes independent.
    return tf.constant([int(seed) % 2**31, stream], tf.int32)


def _fold_in(seed, data):
    """A new stateless seed pair from `seed` and an integer, the same in and out of graphs."""
    return tf.cast(tf.random.experimental.stateless_fold_in(seed, data), tf.int32)


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int. Received: {name}={value!r}")


def _check_not_empty(dataset):
    # Fails early when tf.data knows the size; unknown sizes are caught after the loop.
    if isinstance(dataset, tf.data.Dataset) and int(dataset.cardinality()) == 0:
        raise ValueError("dataset must yield at least one image. Received: an empty dataset (0 batches).")


def _check_num_images(num_images):
    if num_images == 0:
        raise ValueError("dataset must yield at least one image. Received: a dataset with 0 images.")
