"""
Title: A VAE-GAN: reconstruction judged by a discriminator's features
Description: Larsen et al. (2016) on 5,000 MNIST digits, warm-started from the shipped VAE,
trained with `model.fit`.

The VAE's Bernoulli likelihood compares pixels, so its reconstructions and samples are blurry
averages. The VAE-GAN moves the reconstruction likelihood into the features of a discriminator's
last convolution, a similarity that D learns while it learns to tell real digits from the
decoder's; the decoder is at the same time a GAN generator (non-saturating loss on prior samples
and on reconstructions). Encoder, decoder and discriminator each have their own optimizer. Run it
as `python apps/train_vaegan.py`; it writes into `runs/app_vaegan/`.
"""

import os

import kerasgen

# This script owns its terminal: TensorFlow's start-up log lines are filtered.
kerasgen.quiet_tensorflow_startup()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasgen import VAEGAN  # noqa: E402
from kerasgen.callbacks import DivergenceGuard, SampleGrid, SampleQuality  # noqa: E402
from kerasgen.data import load_dataset  # noqa: E402
from kerasgen.evaluation.sample_quality import load_classifier  # noqa: E402
from kerasgen.export import export_autoencoder  # noqa: E402
from kerasgen.images import image_grid, save_png  # noqa: E402

EPOCHS = int(os.environ.get("EPOCHS", 30))
# For a quick look: STEPS_PER_EPOCH=10 trains on 10 batches per epoch.
STEPS_PER_EPOCH = int(os.environ["STEPS_PER_EPOCH"]) if os.environ.get("STEPS_PER_EPOCH") else None
VAE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "saved_models", "vae-mnist-5k")
OUT = "runs/app_vaegan"

"""
## The data

D compares images in pixel space, so the digits stay grey. The split is the VAE's (500
validation digits, seed 0): the VAE-GAN never trains on the digits the VAE held out.
"""

keras.utils.set_random_seed(0)
data = load_dataset("mnist-5k", batch_size=64, binarize="none", validation_size=500, seed=0)
heldout = np.concatenate([x for x, _ in data.validation.as_numpy_iterator()])

"""
## The model

`VAEGAN.from_vae` copies the VAE's encoder and decoder and builds a discriminator. Before the
first step it encodes, reconstructs and samples exactly as the VAE. The feature likelihood's σ is
fitted to each batch (`feature_scale="fitted"`), so its weight does not drift with the scale of
D's features.
"""

model = VAEGAN.from_vae(VAE, seed=0)
model.compile(
    e_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
    g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
    d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
)

"""
## Training

`SampleGrid` draws the same 64 latent vectors and reconstructs the same 32 held-out digits every
5 epochs; `SampleQuality` adds the classifier Fréchet distance and KID of prior samples.
"""

model.fit(
    data.train,
    validation_data=data.validation,
    epochs=EPOCHS,
    steps_per_epoch=STEPS_PER_EPOCH,
    callbacks=[
        SampleQuality(load_classifier(None, model.image_shape), heldout, every=5),
        SampleGrid(OUT, images=heldout[:32], every=5, logdir=f"{OUT}/logs"),
        keras.callbacks.TensorBoard(f"{OUT}/logs"),
        keras.callbacks.CSVLogger(f"{OUT}/history.csv"),
        DivergenceGuard(),
    ],
)

"""
## Save, export, sample

The `.keras` file reloads the model with its three optimizers; the SavedModel serves `encode`,
`decode`, `sample` and `reconstruct` without kerasgen.
"""

model.save(f"{OUT}/vaegan.keras")
export_autoencoder(model, f"{OUT}/saved_model")
save_png(f"{OUT}/samples.png", image_grid(model.sample(64, seed=1)))
print(f"Wrote {OUT}/vaegan.keras, {OUT}/saved_model and {OUT}/samples.png")
