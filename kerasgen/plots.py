"""Plots people look at, written as PNG files with matplotlib."""

import csv

import matplotlib

matplotlib.use("Agg")  # Files only: no display needed.
import matplotlib.pyplot as plt  # noqa: E402

from kerasgen.artifacts import atomic_path  # noqa: E402


def read_history(csv_path):
    """A Keras `CSVLogger` file as `{column: [float, ...]}`."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"The history file has no epochs. Received: csv_path={csv_path!r}")
    return {name: [float(row[name]) for row in rows] for name in rows[0]}


def plot_history(csv_path, png_path, title="VAE"):
    """Training curves of a VAE run: −ELBO, reconstruction and KL per epoch, train and validation."""
    history = read_history(csv_path)
    epochs = [int(e) + 1 for e in history["epoch"]]
    panels = [
        ("elbo", "−ELBO (nats / image)", -1.0),
        ("reconstruction", "−E_q[log p(x|z)] (nats / image)", 1.0),
        ("kl", "KL(q(z|x) ‖ p(z)) (nats / image)", 1.0),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    for axis, (name, label, sign) in zip(axes, panels):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + name in history:
                values = [sign * v for v in history[prefix + name]]
                axis.plot(epochs, values, style, label=("validation" if prefix else "train"))
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend()
    # The first epochs dwarf the rest; show the range that matters.
    final = -history.get("val_elbo", history["elbo"])[-1]
    axes[0].set_ylim(final - 10, final + 60)
    minutes = f", {history['seconds'][-1] / 60:.1f} min" if "seconds" in history else ""
    axes[0].set_title(f"validation −ELBO {final:.1f} after {epochs[-1]} epochs{minutes}")
    figure.suptitle(title)
    figure.tight_layout()
    with atomic_path(png_path) as tmp:
        figure.savefig(tmp, dpi=110)
    plt.close(figure)
