"""
Title: A convolutional VAE with TensorFlow Probability distributions
Description: Train kerasgen's VAE on 5,000 real MNIST digits with `model.fit`, then sample from it.

The posterior q(z|x) is a diagonal Gaussian and the likelihood p(x|z) is a Bernoulli over
pixels, both `tfd` distributions built inside the model; the loss is the negative ELBO.
Run it as `python apps/train_vae.py`; it writes into `runs/app_vae/`.
"""

import kerasgen

# This script owns its terminal: TensorFlow's start-up log lines are filtered.
kerasgen.quiet_tensorflow_startup()

import keras  # noqa: E402

from kerasgen import VAE  # noqa: E402
from kerasgen.callbacks import SampleGrid  # noqa: E402
from kerasgen.data import load_dataset  # noqa: E402
from kerasgen.export import export_vae  # noqa: E402
from kerasgen.images import image_grid, save_png  # noqa: E402

EPOCHS = 50
OUT = "runs/app_vae"

"""
## The data

Dynamic binarization draws fresh black-and-white pixels every epoch; the 500 validation
digits are binarized once, with a fixed seed, so every evaluation sees the same images.
"""

keras.utils.set_random_seed(0)
data = load_dataset("mnist-5k", batch_size=128, binarize="dynamic", validation_size=500, seed=0)
validation_images = next(iter(data.validation))[0][:32]

"""
## The model

`compile` takes only the optimizer: the VAE computes its own loss in `train_step`.
"""

vae = VAE(image_shape=data.image_shape, latent_dim=16, likelihood="bernoulli", seed=0)
steps = EPOCHS * -(-data.num_train // 128)
vae.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, steps, alpha=0.05)))

"""
## Training

`SampleGrid` decodes the same 64 latent vectors every 5 epochs, so the grids compare.
"""

vae.fit(
    data.train,
    validation_data=data.validation,
    epochs=EPOCHS,
    callbacks=[
        SampleGrid(OUT, images=validation_images, every=5, logdir=f"{OUT}/logs"),
        keras.callbacks.TensorBoard(f"{OUT}/logs"),
        keras.callbacks.CSVLogger(f"{OUT}/history.csv"),
        keras.callbacks.TerminateOnNaN(),
    ],
)

"""
## Save, export, sample

The `.keras` file reloads the Python model (and resumes training); the SavedModel serves
`decode`, `sample`, `encode` and `reconstruct` without kerasgen.
"""

vae.save(f"{OUT}/vae.keras")
export_vae(vae, f"{OUT}/saved_model")
save_png(f"{OUT}/samples.png", image_grid(vae.sample(64, seed=1)))
print(f"Validation ELBO: {vae.evaluate(data.validation, verbose=0, return_dict=True)['elbo']:.2f} nats per image")
