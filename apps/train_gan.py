"""
Title: A GAN whose generator starts as a pretrained VAE decoder
Description: Load the shipped mnist-5k VAE, turn its decoder into a GAN generator and train it
adversarially with the non-saturating loss, with `model.fit`.

The generator is a copy of the VAE's decoder followed by the Bernoulli likelihood's mean, so
before the first step it draws exactly the VAE's samples. The discriminator is a small convnet
with an R1 penalty. Run it as `python apps/train_gan.py`; it writes into `runs/app_gan/`.
"""

import os

import kerasgen

# This script owns its terminal: TensorFlow's start-up log lines are filtered.
kerasgen.quiet_tensorflow_startup()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasgen import GAN  # noqa: E402
from kerasgen.callbacks import DivergenceGuard, SampleGrid, SampleQuality  # noqa: E402
from kerasgen.data import load_dataset  # noqa: E402
from kerasgen.evaluation.sample_quality import load_classifier  # noqa: E402
from kerasgen.export import export_gan  # noqa: E402
from kerasgen.images import image_grid, save_png  # noqa: E402

EPOCHS = int(os.environ.get("EPOCHS", 30))
# For a quick look: STEPS_PER_EPOCH=10 trains on 10 batches per epoch.
STEPS_PER_EPOCH = int(os.environ["STEPS_PER_EPOCH"]) if os.environ.get("STEPS_PER_EPOCH") else None
VAE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "saved_models", "vae-mnist-5k")
OUT = "runs/app_gan"

"""
## The data

A GAN compares images in pixel space, so the digits stay grey (no binarization). The split is
the VAE's (500 validation digits, seed 0): the GAN never trains on the digits the VAE held out.
"""

keras.utils.set_random_seed(0)
data = load_dataset("mnist-5k", batch_size=64, binarize="none", validation_size=500, seed=0)
heldout = np.concatenate([x for x, _ in data.validation.as_numpy_iterator()])

"""
## The model

`GAN.from_vae` copies the decoder's architecture and weights and builds a discriminator for the
VAE's image shape. `compile` takes one optimizer per network.
"""

gan = GAN.from_vae(VAE, r1_weight=10.0, ema_decay=0.99, seed=0)
gan.compile(
    d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
    g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
)

"""
## Training

`SampleGrid` draws the same 64 latent vectors every 5 epochs: `samples/epoch_000.png` is the
VAE's own grid. `SampleQuality` adds the classifier Fréchet distance and KID against the
held-out digits to the logs every 5 epochs. `DivergenceGuard` stops training if D wins for good.
"""

gan.fit(
    data.train,
    epochs=EPOCHS,
    steps_per_epoch=STEPS_PER_EPOCH,
    callbacks=[
        SampleQuality(load_classifier(None, gan.image_shape), heldout, every=5),
        SampleGrid(OUT, every=5, logdir=f"{OUT}/logs"),
        keras.callbacks.TensorBoard(f"{OUT}/logs"),
        keras.callbacks.CSVLogger(f"{OUT}/history.csv"),
        DivergenceGuard(),
    ],
)

"""
## Save, export, sample

The `.keras` file reloads the whole GAN with both optimizers; the SavedModel serves the
weight-averaged generator as `generate(z)` and `sample(n, seed)` without kerasgen.
"""

gan.save(f"{OUT}/gan.keras")
export_gan(gan, f"{OUT}/saved_model")
save_png(f"{OUT}/samples.png", image_grid(gan.sample(64, seed=1)))
print(f"Wrote {OUT}/gan.keras, {OUT}/saved_model and {OUT}/samples.png")
