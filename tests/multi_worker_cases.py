"""One worker of a 2-process `MultiWorkerMirroredStrategy` job: a short VAE, then a short GAN.

`tests/test_distribute.py` starts two of these with `TF_CONFIG` naming both on 127.0.0.1:

    python tests/multi_worker_cases.py DATA.npz OUT RESULT.npz

Each trains through the run harness as `kerasgen train-vae/train-gan --strategy multi-worker`
would, then saves the final weights it holds, and the folder it wrote to, in `RESULT.npz`.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasgen.config import TrainGANConfig, TrainVAEConfig  # noqa: E402
from kerasgen.runs.gan import train_gan  # noqa: E402
from kerasgen.runs.vae import train_vae  # noqa: E402


def main(data, out, result_path):
    common = {"strategy": "multi-worker", "batch_size": 16, "grid_every": 1, "seed": 3}
    vae = train_vae(
        TrainVAEConfig(
            dataset=data, validation_size=16, latent_dim=2, num_filters=(4,), hidden_dim=8, epochs=2,
            out=os.path.join(out, "vae"), **common,
        ),
        verbose=0,
    )
    # Each worker's own VAE (the chief's folder, or this worker's temporary one): the same weights.
    gan = train_gan(TrainGANConfig(vae=vae.out, epochs=1, out=os.path.join(out, "gan"), **common), verbose=0)
    arrays = {}
    for name, result in (("vae", vae), ("gan", gan)):
        for index, weight in enumerate(keras.saving.load_model(result.model).get_weights()):
            arrays[f"{name}_{index}"] = weight
        arrays[f"{name}_out"] = np.array(result.out)
    np.savez(result_path, **arrays)


if __name__ == "__main__":
    main(*sys.argv[1:])
