"""
Title: From a VAE to a GAN: pre-train, warm-start, compare
Description: Train a convolutional VAE on 5,000 MNIST digits, load its decoder as the generator
of a GAN, train the GAN, and measure what adversarial training changed.

The VAE's samples are blurry: its Bernoulli likelihood rewards the mean image. Starting the GAN's
generator at that decoder gives it a generator that already draws every digit class; the
non-saturating adversarial loss then sharpens it. Run it as `python apps/vae_to_gan.py`
(about 8 minutes on 2 CPU cores); it writes into `runs/app_vae_to_gan/`.
"""

import os

import kerasgen

# This script owns its terminal: TensorFlow's start-up log lines are filtered.
kerasgen.quiet_tensorflow_startup()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasgen import GAN, VAE  # noqa: E402
from kerasgen.callbacks import SampleQuality  # noqa: E402
from kerasgen.data import load_dataset  # noqa: E402
from kerasgen.evaluation.sample_quality import load_classifier  # noqa: E402
from kerasgen.plots import plot_same_latents  # noqa: E402

VAE_EPOCHS = int(os.environ.get("VAE_EPOCHS", 50))
GAN_EPOCHS = int(os.environ.get("GAN_EPOCHS", 30))
# For a quick look: STEPS_PER_EPOCH=10 trains both stages on 10 batches per epoch.
STEPS_PER_EPOCH = int(os.environ["STEPS_PER_EPOCH"]) if os.environ.get("STEPS_PER_EPOCH") else None
OUT = "runs/app_vae_to_gan"

"""
## Stage 1: the VAE

Binarized digits for the Bernoulli likelihood, fresh pixels every epoch.
"""

keras.utils.set_random_seed(0)
binary = load_dataset("mnist-5k", batch_size=128, binarize="dynamic", validation_size=500, seed=0)
# An 8-d latent rather than 16: the prior N(0, I) fits the encoded digits better, so the decoder's
# samples, which the GAN starts from, are closer to real digits.
vae = VAE(image_shape=binary.image_shape, latent_dim=8, likelihood="bernoulli", seed=0)
steps = VAE_EPOCHS * -(-binary.num_train // 128)
vae.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, steps, alpha=0.05)))
vae.fit(binary.train, validation_data=binary.validation, epochs=VAE_EPOCHS, steps_per_epoch=STEPS_PER_EPOCH, verbose=2)

"""
## Stage 2: the GAN from the VAE's decoder

Grey digits (the same split), since the generator emits the likelihood's mean in pixel space.
"""

grey = load_dataset("mnist-5k", batch_size=64, binarize="none", validation_size=500, seed=0)
heldout = np.concatenate([x for x, _ in grey.validation.as_numpy_iterator()])
gan = GAN.from_vae(vae, seed=0)
gan.compile(
    d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
    g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
)
quality = SampleQuality(load_classifier(None, gan.image_shape), heldout, every=10)
gan.fit(grey.train, epochs=GAN_EPOCHS, steps_per_epoch=STEPS_PER_EPOCH, callbacks=[quality], verbose=2)

"""
## What adversarial training changed

Epoch 0 of `quality.records` is the generator before any GAN step, that is the VAE decoder.
"""

for record in quality.records:
    print(f"GAN epoch {record['epoch']:>3}: Fréchet distance {record['fd']:7.1f}, KID {record['kid']:7.1f}")
before, after = quality.records[0]["fd"], quality.records[-1]["fd"]
print(f"Fréchet distance {before:.1f} (VAE decoder) -> {after:.1f} (GAN): {100 * (1 - after / before):.0f}% lower")

plot_same_latents({"VAE": vae, "GAN from its decoder": gan}, f"{OUT}/comparison.png")
vae.save(f"{OUT}/vae.keras")
gan.save(f"{OUT}/gan.keras")
print(f"Wrote {OUT}/comparison.png, {OUT}/vae.keras and {OUT}/gan.keras")
