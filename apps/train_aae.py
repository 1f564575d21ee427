"""
Title: An adversarial autoencoder with a mixture-of-Gaussians prior
Description: Makhzani et al. (2015) on 5,000 MNIST digits, warm-started from the shipped VAE,
trained with `model.fit`.

An adversarial autoencoder keeps the autoencoder's reconstruction likelihood and replaces the
VAE's KL term by a GAN in latent space: a discriminator learns to tell draws of the prior from
the codes of the data, and the encoder learns to fool it, so the codes of all digits together
fill the prior. Here the prior is a mixture of 10 Gaussians on a circle, and decoding its draws
gives digits. Run it as `python apps/train_aae.py`; it writes into `runs/app_aae/`.
"""

import os

import kerasgen

# This script owns its terminal: TensorFlow's start-up log lines are filtered.
kerasgen.quiet_tensorflow_startup()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasgen import AAE  # noqa: E402
from kerasgen.callbacks import SampleGrid  # noqa: E402
from kerasgen.data import load_dataset  # noqa: E402
from kerasgen.evaluation.reconstruction import aggregated_posterior_mmd  # noqa: E402
from kerasgen.export import export_autoencoder  # noqa: E402
from kerasgen.images import image_grid, save_png  # noqa: E402

EPOCHS = int(os.environ.get("EPOCHS", 30))
# For a quick look: STEPS_PER_EPOCH=10 trains on 10 batches per epoch.
STEPS_PER_EPOCH = int(os.environ["STEPS_PER_EPOCH"]) if os.environ.get("STEPS_PER_EPOCH") else None
VAE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "saved_models", "vae-mnist-5k")
OUT = "runs/app_aae"

"""
## The data

The VAE's: binarized afresh every epoch for the Bernoulli likelihood, split with seed 0.
"""

keras.utils.set_random_seed(0)
data = load_dataset("mnist-5k", batch_size=64, binarize="dynamic", validation_size=500, seed=0)
heldout = np.concatenate([x for x, _ in data.validation.as_numpy_iterator()])

"""
## The model

`AAE.from_vae` copies the VAE's decoder and, for a deterministic encoder, the VAE's encoder up
to the posterior mean: before the first step it reconstructs exactly as the VAE. One optimizer
per phase: reconstruction (encoder and decoder), the latent discriminator, and the encoder's
adversarial update.
"""

model = AAE.from_vae(VAE, encoder="deterministic", prior="mixture", seed=0)
model.compile(
    optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
    d_optimizer=keras.optimizers.Adam(3e-3, beta_1=0.5),  # a sharper latent D: q(z) nearer p(z)
    g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
)
before = aggregated_posterior_mmd(model, heldout, seed=0)["mmd"]

"""
## Training

`SampleGrid` decodes the same 64 latent vectors and reconstructs the same 32 held-out digits
every 5 epochs.
"""

model.fit(
    data.train,
    validation_data=data.validation,
    epochs=EPOCHS,
    steps_per_epoch=STEPS_PER_EPOCH,
    callbacks=[
        SampleGrid(OUT, images=heldout[:32], every=5, logdir=f"{OUT}/logs"),
        keras.callbacks.TensorBoard(f"{OUT}/logs"),
        keras.callbacks.CSVLogger(f"{OUT}/history.csv"),
    ],
)

"""
## How close the codes came to the prior

The unbiased MMD between the codes of the held-out digits and draws of the prior: near 0 when
the aggregated posterior matches the prior.
"""

after = aggregated_posterior_mmd(model, heldout, seed=0)["mmd"]
print(f"Aggregated posterior vs prior, MMD²: {before:.4f} before training, {after:.4f} after")

model.save(f"{OUT}/aae.keras")
export_autoencoder(model, f"{OUT}/saved_model")
save_png(f"{OUT}/samples.png", image_grid(model.sample(64, seed=1)))
print(f"Wrote {OUT}/aae.keras, {OUT}/saved_model and {OUT}/samples.png")
