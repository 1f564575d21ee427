"""Walks through latent space: fixed latent vectors, interpolation paths and 2-D views of codes."""

import numpy as np

INTERPOLATIONS = ("linear", "spherical")


def fixed_latents(num_samples, latent_dim, seed=0):
    """`num_samples` latent vectors from N(0, I), always the same for the same `seed`: `[N, D]` float32.

    `SampleGrid` and the side-by-side comparisons draw their z here, so a comparison with `seed`
    shows the same z as the training grids with that seed.
    """
    return np.random.default_rng(seed).standard_normal((num_samples, latent_dim)).astype(np.float32)


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
    if method not in INTERPOLATIONS:
        raise ValueError(f"method must be one of {INTERPOLATIONS}. Received: method={method!r}")
    if not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an int >= 2. Received: steps={steps!r}")
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
