"""The latent instruments: the ELBO split, KL per dimension, active units and I(x; z), in-graph.

One implementation serves `kerasgen evaluate` (`likelihood.elbo`, `likelihood.posterior_diagnostics`)
and training (`kerasgen.callbacks.LatentDiagnostics`, every epoch): the per-batch statistics are
the pure functions below, composed by `batch_statistics` into one compiled graph, and
`LatentInstruments` combines batches into per-image numbers. A model needs
`posterior_distribution(x)` (q(z|x), batch shape `[B]`, event shape `[D]`) and `prior()` (p(z));
the ELBO also needs `likelihood_distribution(z)` (p(x|z) over whole images). All numbers are
nats per image.

- The ELBO split: reconstruction −E_q(z|x)[log p(x|z)] with one reparameterized sample of z, and
  KL(q(z|x) ‖ p(z)) (analytic where TFP has it), by the same `kerasgen.losses.negative_elbo` that
  training uses.
- KL per dimension: KL(q(z_i|x) ‖ p(z_i)) between the 1-D marginals, in closed form for Gaussian
  marginals (`kl_per_dimension`, defined in `kerasgen.distributions`, where the free-bits
  objective uses it too). For a diagonal q and p the dimensions sum to the full KL; with
  a full-covariance q they sum to less (the correlations' KL is in no single dimension). Other
  families (a point-mass posterior, a mixture prior) have no closed form: the function refuses
  them and `LatentInstruments` leaves the entry out, saying why, rather than report a moment-matched
  stand-in.
- Active units (Burda et al., 2016): dimension i is active when Var_x(E_q(z|x)[z_i]), the variance
  over images of the posterior mean (population variance), exceeds a threshold (0.01).
- Mutual information I(x; z) under q(x, z) = p_data(x) q(z|x), the estimator of Hoffman & Johnson
  (2016) and He et al. (2019): I = E_x E_q(z|x)[log q(z|x)] − E_x E_q(z|x)[log q(z)], with the
  aggregated posterior q(z) = (1/N) Σ_n q(z|x_n) over the N images of a batch, by a logsumexp
  (`mutual_information`).

Every draw is stateless-seeded: the same call on the same model and images gives the same number.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from kerasgen import validate
from kerasgen.distributions import kl_per_dimension, kl_per_dimension_refusal
from kerasgen.losses import negative_elbo

# Separate random streams per purpose, so that (for example) the ELBO's samples do not change
# when the importance-sampling code draws more or fewer samples.
ELBO_STREAM, IMPORTANCE_STREAM, MUTUAL_INFORMATION_STREAM = range(3)

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. (2016)


# --- The per-batch statistics, pure functions of tensors and distributions --------------------


def elbo_terms(model, x, seed):
    """The ELBO split of a batch: `(reconstruction, kl)`, scalar means over its images.

    Args:
        model: with `posterior_distribution`, `likelihood_distribution` and `prior`.
        x: float32 tensor `[B, H, W, C]`.
        seed: int32 tensor `[2]`, the stateless seed of the one sample of z per image.

    Returns:
        `(reconstruction, kl)`: −E_q[log p(x|z)] and KL(q(z|x) ‖ p(z)), nats per image.
    """
    posterior = model.posterior_distribution(x)
    z = posterior.sample(seed=seed)
    _, terms = negative_elbo(x, model.likelihood_distribution(z), posterior, model.prior(), z=z)
    return terms["reconstruction"], terms["kl"]


def mutual_information(posterior, seed, num_samples=10):
    """I(x; z) of a batch under q(x, z) = p_data(x) q(z|x), a scalar in nats.

    For each image x_m of the N in the batch and `num_samples` draws z ~ q(z|x_m) the term is
    log q(z|x_m) − log[(1/N) Σ_n q(z|x_n)], a logsumexp over the batch; the terms are averaged
    over draws and images. He et al. (2019) take the first term analytically (−H(q(z|x_m)));
    here it uses the same draws as the second (equal in expectation), so every term is at most
    log N exactly, x_m being one of the N, and a q(z|x) that ignores x gives exactly 0. In
    expectation this is the InfoNCE lower bound on I (Poole et al., 2019): it approaches I from
    below as N grows, and a large I needs a large N to be seen. Memory grows as N² · D.

    Args:
        posterior: q(z|x), batch shape `[N]`, event shape `[D]`.
        seed: int32 tensor `[2]`; draw k uses `fold_in(seed, k)`.
        num_samples: int >= 1, draws of z per image. Defaults to 10.

    Returns:
        A scalar tensor.
    """
    log_n = tf.math.log(tf.cast(tf.shape(posterior.mean())[0], posterior.dtype))

    def terms(sample_index):
        z = posterior.sample(seed=fold_in(seed, sample_index))  # [N, D], z_m ~ q(z|x_m)
        # [m, n] = log q(z_m | x_n): the [N, 1, D] latents broadcast against the batch [N].
        log_q = posterior.log_prob(z[:, None, :])
        # The own density is read from the same matrix, so a posterior that ignores x gives
        # exactly log q - (log q + log N) + log N = 0.
        return tf.linalg.diag_part(log_q) - (tf.reduce_logsumexp(log_q, axis=1) - log_n)

    return tf.reduce_mean(tf.map_fn(terms, tf.range(num_samples), fn_output_signature=posterior.dtype))


def active_unit_variances(posterior_means):
    """Var_x(E_q(z|x)[z_i]) per dimension: the population variance over images of `[N, D]` means, `[D]`."""
    return tf.math.reduce_variance(posterior_means, axis=0)


def batch_statistics(model, x, elbo_seed, posterior_seed, num_mi_samples=10, elbo=True, posterior=True):
    """Everything the instruments measure on one batch, as one graph's worth of tensors.

    Args:
        model: see the module docstring.
        x: float32 tensor `[N, H, W, C]`.
        elbo_seed: int32 tensor `[2]`, seeds the ELBO's sample of z.
        posterior_seed: int32 tensor `[2]`, seeds the mutual information's draws.
        num_mi_samples: int >= 1, draws of z per image for I(x; z). Defaults to 10.
        elbo: bool, measure the ELBO split (needs a decoder pass). Defaults to True.
        posterior: bool, measure the posterior statistics. Defaults to True.

    Returns:
        `(statistics, refusal)`: `statistics` a dict of tensors: with `elbo`, `reconstruction` and
        `kl` (batch means); with `posterior`, `posterior_mean` `[N, D]`, `mutual_information`
        (batch mean) and, where the marginals are Gaussian, `kl_per_dimension` `[D]` (the sum
        over the batch, for combining batches). `refusal`: None, or a str saying why the KL per
        dimension is left out (see `kl_per_dimension`).
    """
    statistics, refusal = {}, None
    if elbo:
        statistics["reconstruction"], statistics["kl"] = elbo_terms(model, x, elbo_seed)
    if posterior:
        q, prior = model.posterior_distribution(x), model.prior()
        statistics["posterior_mean"] = q.mean()
        statistics["mutual_information"] = mutual_information(q, posterior_seed, num_mi_samples)
        refusal = kl_per_dimension_refusal(q, prior)
        if refusal is None:
            statistics["kl_per_dimension"] = tf.reduce_sum(kl_per_dimension(q, prior), axis=0)
    return statistics, refusal


# --- Over a dataset ------------------------------------------------------------------------


class LatentInstruments:
    """The ELBO split and the posterior statistics of a model on held-out images, by one compiled graph.

    The graph (`batch_statistics`) is traced once, for any batch size, and reused by every call,
    so a callback can measure the same images after every epoch at the cost of one forward pass
    (plus a decoder pass for the ELBO). The images of batch i draw with seeds derived from
    (`seed`, the purpose, i): the same model and batches give the same numbers. The mutual
    information's aggregated posterior is over each batch, so measure a held-out set as one batch
    (an array with `batch_size` None) to aggregate over all of it.

    Args:
        model: see the module docstring, e.g. a `kerasgen.VAE`.
        elbo: bool, measure `elbo`, `reconstruction` and `kl`. Defaults to True.
        posterior: bool, measure the KL per dimension, the active units and I(x; z). Defaults to True.
        num_mi_samples: int >= 1, draws of z per image for I(x; z). Defaults to 10.
        active_unit_threshold: float >= 0, the variance above which a dimension is active.
            Defaults to 0.01 (Burda et al., 2016).
        seed: int, seeds every draw. Defaults to 0.

    Example:

        instruments = LatentInstruments(vae)
        instruments(validation_images)["active_units"]
    """

    def __init__(
        self, model, elbo=True, posterior=True, num_mi_samples=10, active_unit_threshold=ACTIVE_UNIT_THRESHOLD, seed=0
    ):
        validate.positive_int("num_mi_samples", num_mi_samples)
        validate.number("active_unit_threshold", active_unit_threshold, at_least=0)
        if not (elbo or posterior):
            raise ValueError("LatentInstruments must measure something. Received: elbo=False, posterior=False")
        self.model = model
        self.elbo = elbo
        self.posterior = posterior
        self.num_mi_samples = num_mi_samples
        self.active_unit_threshold = float(active_unit_threshold)
        self._elbo_seed = base_seed(seed, ELBO_STREAM)
        self._posterior_seed = base_seed(seed, MUTUAL_INFORMATION_STREAM)
        self._step = None
        self._image_shape = None
        self._refusal = None

    def __call__(self, data, batch_size=None):
        """Measures `data` now.

        Args:
            data: an array or tensor `[N, H, W, C]`, or a `tf.data.Dataset` (or iterable) of
                `(images, labels)` batches (labels ignored).
            batch_size: int or None, splits an array into batches; None: one batch. Defaults to None.

        Returns:
            dict with `num_images` and, as measured,
            - `elbo`, `reconstruction`, `kl`: floats, means over images;
            - `kl_per_dimension`: list of D floats (mean over images), or None with the reason in
              `kl_per_dimension_skipped`;
            - `active_units`: int; `active_unit_variances`: list of D floats;
              `active_unit_threshold`: float;
            - `mutual_information`: float; `mutual_information_bound`: float, log N averaged over
              images as the estimate is, the most it can be.

        Raises:
            ValueError: `data` holds no images.
        """
        if isinstance(data, tf.data.Dataset) and int(data.cardinality()) == 0:
            raise ValueError("dataset must yield at least one image. Received: an empty dataset (0 batches).")
        totals = {}
        num_images = 0
        bound_total = 0.0
        # Streaming mean and sum of squared deviations of the posterior means (Chan et al.), in
        # float64, so a held-out set of any size costs one batch of memory.
        mean_of_means, squared_deviations = 0.0, 0.0
        for index, x in enumerate(_batches(data, batch_size)):
            size = int(tf.shape(x)[0])
            if size == 0:
                continue
            statistics = self._compiled(x)(x, fold_in(self._elbo_seed, index), fold_in(self._posterior_seed, index))
            for name in ("reconstruction", "kl", "mutual_information"):
                if name in statistics:
                    # Batch means; weighting by batch size averages over images.
                    totals[name] = totals.get(name, 0.0) + size * float(statistics[name])
            if "kl_per_dimension" in statistics:
                kl = statistics["kl_per_dimension"].numpy().astype(np.float64)
                totals["kl_per_dimension"] = totals.get("kl_per_dimension", 0.0) + kl
            if "posterior_mean" in statistics:
                means = statistics["posterior_mean"].numpy().astype(np.float64)
                batch_mean = means.mean(axis=0)
                delta = batch_mean - mean_of_means
                total = num_images + size
                squared_deviations = (
                    squared_deviations + ((means - batch_mean) ** 2).sum(axis=0) + delta**2 * num_images * size / total
                )
                mean_of_means = mean_of_means + delta * size / total
                bound_total += size * math.log(size)
            num_images += size
        if num_images == 0:
            raise ValueError("dataset must yield at least one image. Received: a dataset with 0 images.")
        result = {"num_images": num_images}
        if self.elbo:
            reconstruction, kl = totals["reconstruction"] / num_images, totals["kl"] / num_images
            result.update(elbo=-(reconstruction + kl), reconstruction=reconstruction, kl=kl)
        if self.posterior:
            variances = squared_deviations / num_images
            if "kl_per_dimension" in totals:
                result["kl_per_dimension"] = [float(v) for v in totals["kl_per_dimension"] / num_images]
            else:
                result["kl_per_dimension"] = None
                result["kl_per_dimension_skipped"] = self._refusal
            result.update(
                active_units=int(np.sum(variances > self.active_unit_threshold)),
                active_unit_variances=[float(v) for v in variances],
                active_unit_threshold=self.active_unit_threshold,
                mutual_information=totals["mutual_information"] / num_images,
                mutual_information_bound=bound_total / num_images,
            )
        return result

    def _compiled(self, x):
        """The graph for images shaped like `x`, traced once for any batch size."""
        image_shape = tuple(x.shape[1:])
        if self._step is None or image_shape != self._image_shape:

            def statistics(x, elbo_seed, posterior_seed):
                tensors, self._refusal = batch_statistics(
                    self.model, x, elbo_seed, posterior_seed, self.num_mi_samples, elbo=self.elbo, posterior=self.posterior
                )
                # The refusal is Python, known at trace time: the distributions' types do not change.
                return tensors

            seed_spec = tf.TensorSpec([2], tf.int32)
            self._step = tf.function(
                statistics, input_signature=[tf.TensorSpec([None, *image_shape], tf.float32), seed_spec, seed_spec]
            )
            self._image_shape = image_shape
        return self._step


def _batches(data, batch_size):
    """float32 image batches from an array or tensor, or from a dataset of `(images, labels)` batches."""
    if isinstance(data, (np.ndarray, tf.Tensor)) or keras.ops.is_tensor(data):
        images = tf.convert_to_tensor(data, tf.float32)
        size = int(images.shape[0])
        step = batch_size or max(size, 1)
        for start in range(0, size, step):
            yield images[start : start + step]
        return
    for batch in data:
        x, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
        yield tf.cast(x, tf.float32)


# --- Seeds and arguments, shared with `evaluation.likelihood` ----------------------------------


def base_seed(seed, stream):
    """The stateless seed pair `[seed, stream]` of one purpose (`ELBO_STREAM`, ...)."""
    validate.integer("seed", seed)
    # TFP's stateless samplers take an int32 pair; the stream keeps the purposes independent.
    return tf.constant([int(seed) % 2**31, stream], tf.int32)


def fold_in(seed, data):
    """A new stateless seed pair from `seed` and an integer, the same in and out of graphs."""
    return tf.cast(tf.random.experimental.stateless_fold_in(seed, data), tf.int32)
