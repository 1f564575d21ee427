"""Plots people look at, written as PNG files with matplotlib."""

import csv
import glob
import os

import keras
import matplotlib
import numpy as np
import tensorflow as tf

matplotlib.use("Agg")  # Files only: no display needed.
import matplotlib.pyplot as plt  # noqa: E402

from kerasgen import validate  # noqa: E402
from kerasgen.artifacts import atomic_path  # noqa: E402
from kerasgen.images import image_grid, interleave  # noqa: E402
from kerasgen.latent import (  # noqa: E402
    INTERPOLATIONS, images_from_latents, interpolate, manifold_latents, prior_latents, project_2d, reconstructions_of,
)


def read_history(csv_path):
    """A Keras `CSVLogger` file as `{column: [float, ...]}`; epochs without a value (`NA`) give NaN."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"The history file has no epochs. Received: csv_path={csv_path!r}")
    return {name: [float(row[name]) if row[name] not in ("", "NA") else float("nan") for row in rows] for name in rows[0]}


# Every curve a run may log, in the order shown: (metrics on one panel, y label, sign).
HISTORY_PANELS = (
    (("elbo",), "−ELBO (nats / image)", -1.0),
    (("reconstruction",), "reconstruction: −log p (nats / image)", 1.0),
    (("kl",), "KL(q(z|x) ‖ p(z)) (nats / image)", 1.0),
    (("d_loss", "g_loss"), "adversarial losses", 1.0),
    (("d_real", "d_fake", "d_reconstruction"), "D's probability of real", 1.0),
)


def plot_history(csv_path, png_path, title="VAE"):
    """Training curves of a run, train and validation: the panels of `HISTORY_PANELS` it logged.

    A VAE gets −ELBO, reconstruction and KL; a VAE-GAN or an adversarial autoencoder also its
    adversarial losses and D's outputs.
    """
    history = read_history(csv_path)
    epochs = [int(e) + 1 for e in history["epoch"]]
    panels = [panel for panel in HISTORY_PANELS if any(name in history for name in panel[0])]
    if not panels:
        raise ValueError(f"The history has none of the curves plot_history draws. Received: columns {sorted(history)}")
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    axes = axes[0]
    for axis, (names, label, sign) in zip(axes, panels):
        for name in names:
            for prefix, style in (("", "-"), ("val_", "--")):
                if prefix + name in history:
                    values = [sign * v for v in history[prefix + name]]
                    caption = ("validation" if prefix else "train") + (f" {name}" if len(names) > 1 else "")
                    axis.plot(epochs, values, style, label=caption)
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    minutes = f", {history['seconds'][-1] / 60:.1f} min" if "seconds" in history else ""
    if "elbo" in history:
        # The first epochs dwarf the rest; show the range that matters.
        final = -history.get("val_elbo", history["elbo"])[-1]
        axes[0].set_ylim(final - 10, final + 60)
        axes[0].set_title(f"validation −ELBO {final:.1f} after {epochs[-1]} epochs{minutes}")
    else:
        axes[0].set_title(f"{epochs[-1]} epochs{minutes}")
    figure.suptitle(title)
    _save(figure, png_path)


def _save(figure, png_path):
    figure.tight_layout()
    with atomic_path(png_path) as tmp:
        figure.savefig(tmp, dpi=110)
    plt.close(figure)


def _show_image(axis, image):
    image = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
    if image.shape[-1] == 1:
        axis.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
    else:
        axis.imshow(image)


def plot_latent_manifold(vae, png_path, grid_size=20, title="VAE"):
    """For a 2-D latent: the images decoded on a grid over the quantiles (5% to 95%) of the model's
    own prior on each axis (`latent.manifold_latents`)."""
    # Equal prior probability between neighbouring rows and columns, as in Kingma & Welling (2014), fig. 4.
    values_1, values_2, z = manifold_latents(vae, grid_size)
    images = keras.ops.convert_to_numpy(vae.decode(z))
    grid = image_grid(images, columns=grid_size, padding=0)
    figure, axis = plt.subplots(figsize=(7, 7))
    extent = [values_1[0], values_1[-1], values_2[0], values_2[-1]]
    axis.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", extent=extent)
    axis.set_xlabel("z₁ (prior quantiles 5% … 95%)")
    axis.set_ylabel("z₂ (prior quantiles 5% … 95%)")
    axis.set_title(f"{title}: decoded latent manifold")
    _save(figure, png_path)


def plot_latent_scatter(vae, images, labels, png_path, title="VAE", batch_size=256):
    """Posterior means of `images`, coloured by label; a PCA projection when the latent is not 2-D."""
    codes = np.concatenate(
        [keras.ops.convert_to_numpy(vae.encode(images[i : i + batch_size])[0]) for i in range(0, len(images), batch_size)]
    )
    points, explained = project_2d(codes)
    figure, axis = plt.subplots(figsize=(7, 6))
    labels = np.asarray(labels)
    known = labels >= 0
    scatter = axis.scatter(points[known, 0], points[known, 1], c=labels[known], cmap="tab10", s=6, alpha=0.8)
    if (~known).any():
        axis.scatter(points[~known, 0], points[~known, 1], c="grey", s=6, alpha=0.5, label="no label")
    if known.any():
        figure.colorbar(scatter, ax=axis, label="label", ticks=np.unique(labels[known]))
    if codes.shape[1] == 2:
        axis.set_xlabel("E_q[z₁]")
        axis.set_ylabel("E_q[z₂]")
        axis.set_title(f"{title}: posterior means of {len(codes)} images")
    else:
        axis.set_xlabel("principal component 1 of E_q[z]")
        axis.set_ylabel("principal component 2 of E_q[z]")
        axis.set_title(f"{title}: {codes.shape[1]}-D posterior means, PCA ({explained:.0%} of variance)")
    axis.grid(alpha=0.3)
    _save(figure, png_path)


def plot_interpolations(vae, pairs, png_path, steps=10, title="VAE"):
    """For each pair of images: decoded linear and spherical interpolations between their codes.

    Args:
        vae: a VAE with `encode` and `decode`.
        pairs: array `[P, 2, H, W, C]`, the image pairs.
        png_path: str, where the figure goes.
        steps: int, points per path, endpoints included. Defaults to 10.
    """
    pairs = np.asarray(pairs, np.float32)
    loc = keras.ops.convert_to_numpy(vae.encode(pairs.reshape((-1, *pairs.shape[2:])))[0]).reshape(len(pairs), 2, -1)
    rows = [(p, method) for p in range(len(pairs)) for method in INTERPOLATIONS]
    figure, axes = plt.subplots(len(rows), steps + 2, figsize=(0.9 * (steps + 2), 0.95 * len(rows) + 0.6), squeeze=False)
    for row, (p, method) in enumerate(rows):
        decoded = keras.ops.convert_to_numpy(vae.decode(interpolate(loc[p, 0], loc[p, 1], steps, method)))
        for column, image in enumerate([pairs[p, 0], *decoded, pairs[p, 1]]):
            axis = axes[row, column]
            _show_image(axis, image)
            axis.set_xticks([])
            axis.set_yticks([])
        axes[row, 0].set_ylabel(method, rotation=0, ha="right", va="center", fontsize=8)
    axes[0, 0].set_title("input", fontsize=8)
    axes[0, -1].set_title("input", fontsize=8)
    figure.suptitle(f"{title}: interpolation between encoded test images (linear, spherical)")
    _save(figure, png_path)


def plot_training_progress(samples_dir, png_path, title="VAE"):
    """The sample grids of the first, middle and last saved epochs side by side (same latents)."""
    paths = sorted(glob.glob(os.path.join(samples_dir, "epoch_*.png")))
    if not paths:
        raise FileNotFoundError(f"No sample grids (epoch_NNN.png) found. Received: samples_dir={samples_dir!r}")
    if len(paths) > 3:
        paths = paths[1:]  # epoch 0 is the untrained decoder: start at the first trained grid
    chosen = sorted({paths[0], paths[len(paths) // 2], paths[-1]})
    figure, axes = plt.subplots(1, len(chosen), figsize=(4 * len(chosen), 4.4), squeeze=False)
    for axis, path in zip(axes[0], chosen):
        image = tf.io.decode_png(tf.io.read_file(path)).numpy() / 255.0
        _show_image(axis, image)
        axis.set_title(f"epoch {int(os.path.basename(path)[len('epoch_'):-len('.png')])}")
        axis.axis("off")
    figure.suptitle(f"{title}: samples from the same latent vectors during training")
    _save(figure, png_path)


def plot_kl_per_dimension(kl_per_dimension, variances, png_path, threshold=0.01, title="VAE"):
    """KL(q(z_i|x) ‖ p(z_i)) per latent dimension, inactive units marked: posterior collapse at a glance."""
    kl = np.asarray(kl_per_dimension, np.float64)
    active = np.asarray(variances) > threshold
    order = np.argsort(-kl)
    figure, axis = plt.subplots(figsize=(max(5.0, 0.35 * len(kl) + 2), 3.6))
    colours = np.where(active[order], "tab:blue", "tab:grey")
    axis.bar(np.arange(len(kl)), kl[order], color=colours)
    axis.set_xticks(np.arange(len(kl)), [str(i) for i in order], fontsize=7)
    axis.set_xlabel("latent dimension (sorted by KL)")
    axis.set_ylabel("KL(q(z_i|x) ‖ p(z_i)) (nats)")
    axis.set_title(f"{title}\n{int(active.sum())} of {len(kl)} units active (grey: inactive, Cov_x(E_q[z_i]) ≤ {threshold})", fontsize=10)
    axis.grid(axis="y", alpha=0.3)
    _save(figure, png_path)


def plot_quality_curves(runs, png_path, title="GAN", metric="fd", pretraining=None):
    """Sample quality during training for several runs: against epochs and against wall-clock time.

    Args:
        runs: dict `{label: (records, start_seconds)}`, `records` as kept by the `SampleQuality`
            callback; `start_seconds` shifts a run on the time axis (e.g. by its VAE pre-training,
            drawn as a shaded span).
        png_path: str, the PNG to write.
        title: str. Defaults to "GAN".
        metric: `"fd"` or `"kid"`. Defaults to `"fd"`.
        pretraining: dict or None, `{label: records}` of a VAE's prior samples during its training
            (`train-vae --quality-every`), drawn dashed on the time axis only. Defaults to None.
    """
    labels = {"fd": "Fréchet distance (classifier features)", "kid": "KID (classifier features)"}
    label = labels[validate.one_of("metric", metric, tuple(labels))]
    figure, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, (records, start_seconds) in runs.items():
        epochs = [r["epoch"] for r in records]
        values = [r[metric] for r in records]
        minutes = [(start_seconds + r["seconds"]) / 60 for r in records]
        (line,) = by_epoch.plot(epochs, values, "o-", markersize=3, label=name)
        by_time.plot(minutes, values, "o-", markersize=3, color=line.get_color(), label=name)
        if start_seconds:
            by_time.axvspan(0, start_seconds / 60, color=line.get_color(), alpha=0.12, label=f"{name}: VAE pre-training")
    for name, records in (pretraining or {}).items():
        by_time.plot([r["seconds"] / 60 for r in records], [r[metric] for r in records], "s--", markersize=3, label=name)
    by_epoch.set_xlabel("GAN epoch")
    by_time.set_xlabel("wall-clock minutes (VAE pre-training included)")
    for axis in (by_epoch, by_time):
        axis.set_ylabel(label)
        axis.set_yscale("log")
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=8)
    figure.suptitle(title)
    _save(figure, png_path)


def plot_sample_grids(grids, png_path, title="Samples"):
    """Image grids side by side, one panel per entry of `grids` (`{caption: images [N, H, W, C]}`)."""
    figure, axes = plt.subplots(1, len(grids), figsize=(4.2 * len(grids), 4.6), squeeze=False)
    for axis, (caption, images) in zip(axes[0], grids.items()):
        _show_image(axis, image_grid(keras.ops.convert_to_numpy(images)) / 255.0)
        axis.set_title(caption, fontsize=10)
        axis.axis("off")
    figure.suptitle(title)
    _save(figure, png_path)


def plot_same_latents(models, png_path, title="The same latent vectors", num_samples=64, seed=0):
    """Side-by-side grids of several models (`{caption: VAE or GAN}`), each on `prior_latents` with `seed`.

    Models whose prior is N(0, I) decode the very same latent vectors; a model with another prior
    (an AAE's mixture) decodes draws from its own prior, with the same seed. `seed` also fixes a
    PixelCNN decoder's pixel noise (`images_from_latents`).
    """
    latent_dims = {model.latent_dim for model in models.values()}
    if len(latent_dims) != 1:
        raise ValueError(f"The models must share one latent size. Received: latent sizes {sorted(latent_dims)}")
    grids = {
        caption: images_from_latents(model, prior_latents(model, num_samples, seed), seed=seed) for caption, model in models.items()
    }
    plot_sample_grids(grids, png_path, title)


def plot_samples_and_reconstructions(models, images, png_path, title="Samples and reconstructions", num_samples=36, seed=0):
    """Each model's samples from `prior_latents` with `seed` (top row) and its reconstructions of the same `images` (bottom row).

    As in `plot_same_latents`, models whose prior is N(0, I) decode the same latent vectors and a
    model with another prior decodes draws from it.

    Args:
        models: dict `{caption: model}` sharing one latent size; a model without `reconstruct`
            (a GAN) gets an empty bottom panel.
        images: array `[N, H, W, C]`, the inputs to reconstruct, shown beside each reconstruction.
        png_path: str, the PNG to write.
        seed: int, draws the latents and fixes a PixelCNN decoder's pixel noise. Defaults to 0.
    """
    latent_dims = {model.latent_dim for model in models.values()}
    if len(latent_dims) != 1:
        raise ValueError(f"The models must share one latent size. Received: latent sizes {sorted(latent_dims)}")
    images = np.asarray(images, np.float32)
    columns = 2 * int(np.ceil(np.sqrt(len(images) / 2)))
    figure, axes = plt.subplots(2, len(models), figsize=(3.6 * len(models), 7.4), squeeze=False)
    for column, (caption, model) in enumerate(models.items()):
        samples = images_from_latents(model, prior_latents(model, num_samples, seed), seed=seed)
        _show_image(axes[0, column], image_grid(keras.ops.convert_to_numpy(samples)) / 255.0)
        axes[0, column].set_title(f"{caption}: samples", fontsize=10)
        if hasattr(model, "reconstruct"):
            pairs = interleave(images, keras.ops.convert_to_numpy(reconstructions_of(model, images, seed=seed)))
            _show_image(axes[1, column], image_grid(pairs, columns=columns) / 255.0)
            axes[1, column].set_title(f"{caption}: inputs | reconstructions", fontsize=10)
        else:
            axes[1, column].text(0.5, 0.5, "no encoder", ha="center", va="center")
        for row in (0, 1):
            axes[row, column].axis("off")
    figure.suptitle(title)
    _save(figure, png_path)
