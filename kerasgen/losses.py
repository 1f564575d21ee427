"""Loss math as pure functions of distributions, shared by `train_step`, evaluation and tests."""

from keras import ops

from kerasgen.distributions import kl_divergence


def negative_elbo(x, likelihood, posterior, prior, z=None, beta=1.0):
    """The β-weighted negative ELBO, averaged over the batch, with its named terms.

    -ELBO = -E_q[log p(x|z)] + KL(q(z|x) || p(z)), estimated with the sample `z` that produced
    `likelihood`. All terms are in nats per image.

    Args:
        x: tensor `[B, H, W, C]`, the images.
        likelihood: `tfd.Distribution`, p(x|z) for the sampled z, batch shape `[B]`.
        posterior: `tfd.Distribution`, q(z|x), batch shape `[B]`.
        prior: `tfd.Distribution`, p(z).
        z: optional tensor `[B, D]`, the sample, used when the KL has no closed form.
        beta: float or scalar tensor, the weight on the KL term in the returned loss. The
            reported `elbo` term always uses weight 1.

    Returns:
        `(loss, terms)` where `terms` has `reconstruction`, `kl` and `elbo`.
    """
    reconstruction = -ops.mean(likelihood.log_prob(x))
    kl = ops.mean(kl_divergence(posterior, prior, z))
    loss = reconstruction + beta * kl
    return loss, {"reconstruction": reconstruction, "kl": kl, "elbo": -(reconstruction + kl)}
