"""Loss math as pure functions of distributions, shared by `train_step`, evaluation and tests."""

from keras import ops

from kerasgen.distributions import diagonal_gaussian_refusal, feature_gaussian, kl_divergence, kl_per_dimension


def weighted_mean(values, sample_weight=None):
    """The mean of per-example `values` `[B]`, weighted when `sample_weight` `[B]` is given: Σ w v / Σ w.

    A weighted mean, not Keras's `sum_over_batch_size` (Σ w v / B), so the result stays in units
    per example whatever the weights' scale: weights of 2 everywhere change nothing. An empty
    batch, or one whose weights are all 0, gives 0 rather than NaN.

    Args:
        values: tensor `[B]`.
        sample_weight: optional tensor `[B]` of weights >= 0. Defaults to None (all 1).

    Returns:
        A scalar tensor.
    """
    if sample_weight is None:
        return ops.divide_no_nan(ops.sum(values), ops.cast(ops.shape(values)[0], values.dtype))
    sample_weight = ops.cast(sample_weight, values.dtype)
    return ops.divide_no_nan(ops.sum(sample_weight * values), ops.sum(sample_weight))


def negative_elbo(
    x, likelihood, posterior, prior, z=None, beta=1.0, sample_weight=None, free_bits=0.0, dimension_mean=None
):
    """The β-weighted negative ELBO, averaged over the batch, with its named terms.

    -ELBO = -E_q[log p(x|z)] + KL(q(z|x) || p(z)), estimated with the sample `z` that produced
    `likelihood`. All terms are in nats per image.

    With `free_bits` λ > 0 the loss's KL is floored per latent dimension (see `free_bits_kl`):
    loss = reconstruction + β · Σ_d max(λ, mean over the batch of KL_d). The floor changes only
    what is minimized: the returned `kl`, `reconstruction` and `elbo` are not floored.

    Args:
        x: tensor `[B, H, W, C]`, the images.
        likelihood: `tfd.Distribution`, p(x|z) for the sampled z, batch shape `[B]`.
        posterior: `tfd.Distribution`, q(z|x), batch shape `[B]`.
        prior: `tfd.Distribution`, p(z).
        z: optional tensor `[B, D]`, the sample, used when the KL has no closed form.
        beta: float or scalar tensor, the weight on the KL term in the returned loss (on the
            floored KL with `free_bits`). The reported `elbo` term always uses weight 1.
        sample_weight: optional tensor `[B]`, one weight per image; every term is then the
            weighted mean over images (see `weighted_mean`). Defaults to None.
        free_bits: float >= 0, λ, nats per latent dimension; 0 (the default) is no floor. Needs
            diagonal Gaussian q and p.
        dimension_mean: optional callable, see `free_bits_kl`. Defaults to None.

    Returns:
        `(loss, terms)` where `terms` has `reconstruction`, `kl` and `elbo`.
    """
    reconstruction = weighted_mean(-likelihood.log_prob(x), sample_weight)
    kl = weighted_mean(kl_divergence(posterior, prior, z), sample_weight)
    objective_kl = kl
    if free_bits:
        objective_kl = free_bits_kl(posterior, prior, free_bits, sample_weight, dimension_mean)
    loss = reconstruction + beta * objective_kl
    return loss, {"reconstruction": reconstruction, "kl": kl, "elbo": -(reconstruction + kl)}


def free_bits_kl(posterior, prior, free_bits, sample_weight=None, dimension_mean=None):
    """The free-bits KL of Kingma et al. (2016): Σ_d max(λ, mean over the batch of KL_d).

    The batch-averaged form of the IAF code and of He et al.'s (2019) code: each latent
    dimension's KL(q(z_d|x) ‖ p(z_d)) is averaged over the batch first, then floored at λ. A
    dimension whose average is below λ adds the constant λ, so its gradient is zero: the
    optimizer stops pushing that dimension's posterior onto the prior, which counters posterior
    collapse. (The per-example form, the mean of Σ_d max(λ, KL_d), would floor each image's KL.)

    Args:
        posterior: q(z|x), a diagonal Gaussian (`MultivariateNormalDiag` or independent normals),
            batch shape `[B]`, event shape `[D]`.
        prior: p(z), a diagonal Gaussian, event shape `[D]` (N(0, I) for the VAE).
        free_bits: float > 0, λ, in nats per dimension.
        sample_weight: optional tensor `[B]`, one weight per image: the batch averages are
            weighted means. Defaults to None.
        dimension_mean: optional callable from this batch's per-dimension averages `[D]` to the
            averages the floor is compared with: under a distribution strategy, the global
            batch's (the VAE passes one), so that every replica floors the same dimensions and
            N replicas train as one device. Defaults to None (this batch's own).

    Returns:
        A scalar tensor. On one replica it equals Σ_d max(λ, KL_d); under a strategy, the
        replicas' values weighted by their shares of the global batch sum to it.

    Raises:
        ValueError: q or p is not a diagonal Gaussian, so the per-dimension KLs do not sum to the KL.
    """
    refusal = diagonal_gaussian_refusal(posterior, prior)
    if refusal:
        raise ValueError(
            "free bits needs a diagonal Gaussian posterior and prior, whose per-dimension KLs sum to the KL; "
            f"{refusal}. Received: posterior={type(posterior).__name__}, prior={type(prior).__name__}"
        )
    local = _weighted_mean_over_batch(kl_per_dimension(posterior, prior), sample_weight)
    pooled = local if dimension_mean is None else dimension_mean(local)
    # The floor's branch is a constant, so a dimension under it gets no gradient. Comparing the
    # pooled average but keeping the local one makes the replicas' shares add up to the floored mean.
    return ops.sum(ops.where(pooled > free_bits, local, ops.cast(free_bits, local.dtype)))


def _weighted_mean_over_batch(values, sample_weight=None):
    """`weighted_mean` of `[B, D]` values along the batch, `[D]`."""
    if sample_weight is None:
        return ops.divide_no_nan(ops.sum(values, axis=0), ops.cast(ops.shape(values)[0], values.dtype))
    sample_weight = ops.cast(sample_weight, values.dtype)
    return ops.divide_no_nan(ops.sum(sample_weight[:, None] * values, axis=0), ops.sum(sample_weight))


def log_importance_weights(x, z, posterior, prior, likelihood_fn):
    """log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x) for K samples of z per image.

    Decoders take 2-D latents, so the `[K, B, D]` samples are decoded as one `[K * B, D]` batch,
    sample-major, against the images repeated in the same order.

    Args:
        x: tensor `[B, H, W, C]`, the images.
        z: tensor `[K, B, D]`, samples of q(z|x).
        posterior: `tfd.Distribution`, q(z|x), batch shape `[B]`.
        prior: `tfd.Distribution`, p(z).
        likelihood_fn: callable from latents `[N, D]` to p(x|z), a distribution over whole images.

    Returns:
        `(log_weights, log_likelihood)`, both `[K, B]`: the log importance weights and their
        log p(x|z_k) part.
    """
    num_samples, batch_size = ops.shape(z)[0], ops.shape(x)[0]
    flat_z = ops.reshape(z, (-1, ops.shape(z)[-1]))
    repeated = ops.tile(x, (num_samples,) + (1,) * (len(x.shape) - 1))
    log_likelihood = ops.reshape(likelihood_fn(flat_z).log_prob(repeated), (num_samples, batch_size))
    return log_likelihood + prior.log_prob(z) - posterior.log_prob(z), log_likelihood


def negative_iwae_bound(x, z, posterior, prior, likelihood_fn, beta=1.0, sample_weight=None):
    """The negative K-sample importance-weighted bound of Burda et al. (2016), averaged over the batch.

    −log (1/K) Σ_k p(x|z_k) [p(z_k) / q(z_k|x)]^β with z_k ~ q(z|x): at K = 1 the (β-)ELBO, tighter
    as K grows; its gradient trains the encoder and decoder as the IWAE does. `beta` scales the
    prior-to-posterior log ratio inside each weight. All terms are in nats per image.

    Args:
        x: tensor `[B, H, W, C]`.
        z: tensor `[K, B, D]`, reparameterized samples of q(z|x).
        posterior: `tfd.Distribution`, q(z|x).
        prior: `tfd.Distribution`, p(z).
        likelihood_fn: callable from latents `[N, D]` to p(x|z).
        beta: float or scalar tensor. Defaults to 1.
        sample_weight: optional tensor `[B]`, one weight per image; each term is averaged over
            the K samples, then weighted over images (see `weighted_mean`). Defaults to None.

    Returns:
        `(loss, terms)` with `reconstruction`, `kl` (a Monte Carlo estimate over the K samples)
        and `elbo` (the single-sample ELBO averaged over the K samples).
    """
    log_weights, log_likelihood = log_importance_weights(x, z, posterior, prior, likelihood_fn)
    weighted = log_likelihood + beta * (log_weights - log_likelihood)
    num_samples = ops.cast(ops.shape(z)[0], weighted.dtype)
    bound = ops.logsumexp(weighted, axis=0) - ops.log(num_samples)
    reconstruction = weighted_mean(-ops.mean(log_likelihood, axis=0), sample_weight)
    kl = weighted_mean(ops.mean(log_likelihood - log_weights, axis=0), sample_weight)
    elbo = weighted_mean(ops.mean(log_weights, axis=0), sample_weight)
    return -weighted_mean(bound, sample_weight), {"reconstruction": reconstruction, "kl": kl, "elbo": elbo}


# --- GAN losses, on discriminator logits ----------------------------------------------------


def discriminator_loss(real_logits, fake_logits, label_smoothing=0.0):
    """The discriminator's binary cross-entropy: real images labelled 1, generated ones 0.

    With one-sided label smoothing s, real images are labelled 1 − s (Salimans et al. 2016) and
    fakes stay at 0, so D is never rewarded for being overconfident on real data. On logits,
    `softplus(−d)` is −log σ(d) and `softplus(d)` is −log(1 − σ(d)), exact and stable for large |d|.

    Args:
        real_logits: tensor `[B]`, D(x) on real images.
        fake_logits: tensor `[B]`, D(G(z)) on generated images.
        label_smoothing: float in [0, 1), s. Defaults to 0.

    Returns:
        The scalar loss, in nats per image pair (0 for an empty batch, as every mean here).
    """
    real = weighted_mean(
        (1.0 - label_smoothing) * ops.softplus(-real_logits) + label_smoothing * ops.softplus(real_logits)
    )
    return real + weighted_mean(ops.softplus(fake_logits))


def non_saturating_generator_loss(fake_logits):
    """The non-saturating generator loss −log σ(D(G(z))) of Goodfellow et al. (2014), averaged.

    The minimax loss log(1 − σ(d)) has gradient −σ(d) in d, which vanishes when D confidently
    rejects the fakes (d ≪ 0), exactly when G most needs a signal.
    """
    # Non-saturating: −log D(G(z)) keeps gradients alive when D wins early; its gradient in d is
    # −(1 − σ(d)) → −1 as d → −∞.
    return weighted_mean(ops.softplus(-fake_logits))


def r1_penalty(real_gradients):
    """The R1 penalty of Mescheder et al. (2018): the mean over the batch of ||∇_x D(x)||² on real images.

    The caller weights it by γ / 2. It pushes D's gradient towards zero on the data, which makes
    GAN training converge locally; it needs each example's own gradient, so D must not mix
    examples (no batch normalization).

    Args:
        real_gradients: tensor `[B, ...]`, ∇_x D(x) for each real image x.

    Returns:
        The scalar penalty.
    """
    squared = ops.square(real_gradients)
    return weighted_mean(ops.sum(ops.reshape(squared, (ops.shape(squared)[0], -1)), axis=-1))


# --- VAE-GAN losses ----------------------------------------------------------------------------


def vaegan_losses(
    real_features,
    reconstruction_features,
    posterior,
    prior,
    real_logits,
    reconstruction_logits,
    prior_logits,
    z=None,
    gamma=1.0,
    feature_scale=1.0,
    beta=1.0,
):
    """The losses of the VAE-GAN of Larsen et al. (2016), one per part, and their named terms.

    With D_l the discriminator's l-th layer, x̃ = Dec(z), z ~ q(z|x) and x_p = Dec(z_p), z_p ~ p(z):

    - L_prior = KL(q(z|x) ‖ p(z));
    - L_llike = −log N(D_l(x) | D_l(x̃), σ² I): the reconstruction likelihood, moved from the pixels
      to D's features (σ = `feature_scale`; the paper's identity covariance is σ = 1);
    - L_GAN: D's cross-entropy on real x (label 1) and on both kinds of fakes, x̃ and x_p (label 0).

    The encoder minimizes β·L_prior + L_llike (β = 1 in the paper), the decoder γ·L_llike plus the non-saturating loss
    −log σ(D(·)) on both kinds of fakes, the discriminator L_GAN. All terms in nats per image.

    Args:
        real_features: tensor `[B, ...]`, D_l(x).
        reconstruction_features: tensor `[B, ...]`, D_l(x̃).
        posterior: `tfd.Distribution`, q(z|x), batch shape `[B]`.
        prior: `tfd.Distribution`, p(z).
        real_logits, reconstruction_logits, prior_logits: tensors `[B]`, D on x, x̃ and x_p.
        z: optional tensor `[B, D]`, the sample of q behind x̃ (for a KL without a closed form).
        gamma: float, γ, the weight of L_llike in the decoder's loss. Defaults to 1.
        feature_scale: float or scalar tensor > 0, σ. Defaults to 1.
        beta: float >= 0, β, the weight of L_prior in the encoder's loss. Defaults to 1.

    Returns:
        `(losses, terms)`: `losses` has `encoder`, `decoder` and `discriminator`; `terms` has
        `kl`, `reconstruction` (L_llike), `d_loss` (L_GAN for D) and `g_loss` (the decoder's
        adversarial part).
    """
    reconstruction = weighted_mean(-feature_gaussian(reconstruction_features, feature_scale).log_prob(real_features))
    kl = weighted_mean(kl_divergence(posterior, prior, z))
    d_loss = (
        weighted_mean(ops.softplus(-real_logits))
        + weighted_mean(ops.softplus(reconstruction_logits))
        + weighted_mean(ops.softplus(prior_logits))
    )
    g_loss = non_saturating_generator_loss(reconstruction_logits) + non_saturating_generator_loss(prior_logits)
    losses = {"encoder": beta * kl + reconstruction, "decoder": gamma * reconstruction + g_loss, "discriminator": d_loss}
    return losses, {"kl": kl, "reconstruction": reconstruction, "d_loss": d_loss, "g_loss": g_loss}
