"""One process of a 2-worker `MultiWorkerMirroredStrategy` job, or the one-process run it must equal.

`tests/test_distribute.py` starts two of these with `TF_CONFIG` naming both on 127.0.0.1, and a
third with the same flags on one device:

    python tests/multi_worker_cases.py STRATEGY DATA.npz OUT RESULT.npz

Each trains through the run harness as `kerasgen train-vae/train-gan --strategy STRATEGY` would: a
Gaussian VAE and a Bernoulli VAE (dynamic binarization), 2 epochs each, then a 1-epoch GAN from the
Gaussian one. It saves the final weights it holds, each run's history and the folder it wrote to
in `RESULT.npz`.
"""

import csv
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasgen.config import TrainGANConfig, TrainVAEConfig  # noqa: E402
from kerasgen.runs.gan import train_gan  # noqa: E402
from kerasgen.runs.vae import train_vae  # noqa: E402

# A global batch of 16 over 53 training images: the last batch has 5, split 3 and 2 over the workers.
COMMON = {"batch_size": 16, "grid_every": 1, "seed": 3}


def main(strategy, data, out, result_path):
    common = {**COMMON, "strategy": strategy}
    vae = {"validation_size": 16, "latent_dim": 2, "num_filters": (4,), "hidden_dim": 8, "epochs": 2, **common}
    runs = {
        "vae": train_vae(TrainVAEConfig(dataset=data, likelihood="gaussian", out=os.path.join(out, "vae"), **vae), verbose=0),
        "bernoulli": train_vae(
            TrainVAEConfig(dataset=data, likelihood="bernoulli", out=os.path.join(out, "bernoulli"), **vae), verbose=0
        ),
    }
    # Each worker's own VAE (the chief's folder, or this worker's temporary one): the same weights.
    runs["gan"] = train_gan(TrainGANConfig(vae=runs["vae"].out, epochs=1, out=os.path.join(out, "gan"), **common), verbose=0)
    arrays = {}
    for name, result in runs.items():
        for index, weight in enumerate(keras.saving.load_model(result.model).get_weights()):
            arrays[f"{name}_weight_{index}"] = weight
        with open(result.history) as f:
            for column, values in _columns(f).items():
                arrays[f"{name}_history_{column}"] = values
        arrays[f"{name}_out"] = np.array(result.out)
    np.savez(result_path, **arrays)


def _columns(f):
    rows = list(csv.DictReader(f))
    return {column: np.array([float(row[column]) for row in rows]) for column in rows[0] if column != "seconds"}


if __name__ == "__main__":
    main(*sys.argv[1:])
