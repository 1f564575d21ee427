"""Walks through latent space: latents from a model's prior, interpolation paths and 2-D views of codes."""

import statistics

import numpy as np
from keras import ops

from kerasgen import distribute, distributions

from kerasgen import validate

INTERPOLATIONS = ("linear", "spherical")
# Prior draws that place the latent manifold's grid on a prior other than N(0, I): the 5% and 95%
# quantiles of 20,000 draws are within about 0.02 of the true ones for the AAE's circle mixture.
MANIFOLD_PRIOR_DRAWS = 20000


def fixed_latents(num_samples, latent_dim, seed=0):
    """`num_samples` latent vectors from N(0, I), always the same for the same `seed`: `[N, D]` float32.

    `prior_latents` draws here for every model whose prior is N(0, I), so a comparison with `seed`
    shows the same z as the training grids with that seed.
    """
    return np.random.default_rng(seed).standard_normal((num_samples, latent_dim)).astype(np.float32)


def prior_latents(model, num_samples, seed=0):
    """`num_samples` latent vectors from `model`'s own prior p(z), the same for the same `seed`: `[N, D]` float32.

    Sample grids (`SampleGrid`, so also TensorBoard's images and the report's training progress),
    the side-by-side comparisons and the latent manifold draw their z here, so each model decodes
    latents from the prior it was trained to decode.

    - A prior N(0, I) (a VAE's, a GAN's, a VAE-GAN's, a normal-prior AAE's), or a model without
      `prior()` (a GAN): `fixed_latents(num_samples, model.latent_dim, seed)`. Models with this
      prior see the same z for one `seed`, so a GAN warm-started from a VAE's decoder draws the
      VAE's own grid.
    - Any other prior (the AAE's mixture of Gaussians on a circle): drawn by the prior's own
      `sample` with the stateless seed `model.sample(n, seed)` uses, so the images decoded from
      these latents are `model.sample(num_samples, seed)`.

    The latents are flat vectors of `model.latent_dim` numbers whatever the latent layout: a
    `latent_layout="map"` decoder reshapes them itself.

    Args:
        model: a model with `latent_dim` and, optionally, `prior()` returning a `tfd.Distribution`
            with event shape `[latent_dim]`.
        num_samples: int >= 1, N.
        seed: int or None. Defaults to 0.

    Returns:
        A float32 numpy array `[num_samples, latent_dim]`.
    """
    validate.positive_int("num_samples", num_samples)
    prior = model.prior() if hasattr(model, "prior") else None
    if prior is None or distributions.is_standard_normal(prior):
        return fixed_latents(num_samples, model.latent_dim, seed)
    z = ops.convert_to_numpy(prior.sample(num_samples, seed=distribute.stateless_seed(seed))).astype(np.float32)
    if z.shape != (num_samples, model.latent_dim):
        raise ValueError(
            f"The model's prior must give latents of shape [N, latent_dim={model.latent_dim}]. "
            f"Received: draws of shape {z.shape}"
        )
    return z


def manifold_latents(model, grid_size=20, low=0.05, high=0.95):
    """The grid of 2-D latents the latent manifold decodes: equal steps of the prior's quantiles.

    Each axis runs over the quantiles `low` ... `high` of the prior's marginal on it, as in
    Kingma & Welling (2014), fig. 4: exact for N(0, I) (and a model without `prior()`), else
    estimated from `MANIFOLD_PRIOR_DRAWS` of `prior_latents` (seed 0), so the grid covers the
    region where the model's prior puts its mass (for the AAE's circle of Gaussians, the circle).

    Args:
        model: a model with `latent_dim == 2` and, optionally, `prior()`.
        grid_size: int >= 2, points per axis. Defaults to 20.
        low, high: floats, 0 < low < high < 1, the quantiles at the grid's edges. Default 0.05, 0.95.

    Returns:
        `(values_1, values_2, z)`: each axis's `grid_size` values, increasing, and the latents
        `[grid_size², 2]` float32 in image order: rows from the largest z₂ down, z₁ increasing
        along each row.
    """
    if model.latent_dim != 2:
        raise ValueError(f"The latent manifold needs a 2-D latent. Received: latent_dim={model.latent_dim}")
    validate.integer("grid_size", grid_size, minimum=2)
    if not 0.0 < low < high < 1.0:
        raise ValueError(f"The quantiles must satisfy 0 < low < high < 1. Received: low={low!r}, high={high!r}")
    quantiles = np.linspace(low, high, grid_size)
    prior = model.prior() if hasattr(model, "prior") else None
    if prior is None or distributions.is_standard_normal(prior):
        normal = statistics.NormalDist()
        values_1 = values_2 = np.array([normal.inv_cdf(q) for q in quantiles])
    else:
        draws = prior_latents(model, MANIFOLD_PRIOR_DRAWS, seed=0).astype(np.float64)
        values_1, values_2 = (np.quantile(draws[:, axis], quantiles) for axis in (0, 1))
    z1, z2 = np.meshgrid(values_1, values_2[::-1])
    return values_1, values_2, np.stack([z1.ravel(), z2.ravel()], axis=-1).astype(np.float32)


def images_from_latents(model, z, seed=None):
    """`model`'s images for `z`: `generate` for a GAN, `decode` (the likelihood's mean) for a VAE.

    Args:
        model: a model with `generate` or `decode`.
        z: latents `[N, D]`.
        seed: int or None: the pixel noise of a decoder that draws its images (a VAE with a
            PixelCNN decoder decodes a sample of p(x|z)). An int fixes it, so the same z give
            the same images on every call, as grids compared across epochs need; None takes the
            model's own sampling stream. Other models ignore it. Defaults to None.
    """
    if hasattr(model, "generate"):
        return model.generate(z)
    if seed is not None and _samples_pixels(model):
        return model.decode(z, seed=seed)
    return model.decode(z)


def reconstructions_of(model, x, seed=None):
    """`model.reconstruct(x)`, with the pixel noise of a decoder that draws fixed by `seed` (see `images_from_latents`)."""
    if seed is not None and _samples_pixels(model):
        return model.reconstruct(x, seed=seed)
    return model.reconstruct(x)


def _samples_pixels(model):
    """Whether `model`'s decode draws its images (a PixelCNN decoder) rather than returning a mean."""
    return getattr(model, "pixelcnn", None) is not None


def interpolate(start, end, steps, method="linear"):
    """Points from `start` to `end` (both `[D]`), endpoints included: `[steps, D]`.

    `"spherical"` is slerp (Shoemake 1985; White 2016 for generative models): it follows the
    great circle between the two directions and interpolates the norm linearly, so intermediate
    points keep the norm typical of Gaussian codes instead of shrinking toward the origin as the
    straight line does.

    Args:
        start: array `[D]`.
        end: array `[D]`.
        steps: int >= 2, how many points.
        method: `"linear"` or `"spherical"`. Defaults to `"linear"`.
    """
    validate.one_of("method", method, INTERPOLATIONS)
    validate.integer("steps", steps, minimum=2)
    start, end = np.asarray(start, np.float64), np.asarray(end, np.float64)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    if method == "linear":
        return ((1 - t) * start + t * end).astype(np.float32)
    start_norm, end_norm = np.linalg.norm(start), np.linalg.norm(end)
    cosine = np.dot(start, end) / max(start_norm * end_norm, 1e-12)
    angle = np.arccos(np.clip(cosine, -1.0, 1.0))
    if angle < 1e-6:  # Parallel directions: the great circle degenerates to the line.
        return ((1 - t) * start + t * end).astype(np.float32)
    directions = (np.sin((1 - t) * angle) * start / start_norm + np.sin(t * angle) * end / end_norm) / np.sin(angle)
    return (directions * ((1 - t) * start_norm + t * end_norm)).astype(np.float32)


def project_2d(codes):
    """Codes `[N, D]` as `[N, 2]`: themselves when D = 2, else their first two principal components.

    Returns:
        `(points, explained)`: the points and the fraction of variance the two axes explain.
    """
    codes = np.asarray(codes, np.float64)
    if codes.ndim != 2 or codes.shape[1] < 2:
        raise ValueError(f"codes must have shape [N, D] with D >= 2. Received: shape={codes.shape}")
    if codes.shape[1] == 2:
        return codes.astype(np.float32), 1.0
    centred = codes - codes.mean(axis=0)
    _, singular_values, components = np.linalg.svd(centred, full_matrices=False)
    variance = singular_values**2
    return (centred @ components[:2].T).astype(np.float32), float(variance[:2].sum() / variance.sum())
