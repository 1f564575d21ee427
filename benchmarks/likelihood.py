"""Test negative log-likelihood of kerasgen's VAE next to the published numbers.

Trains the VAE (or takes a trained one with --model) on the fixed binarization of MNIST
(Larochelle & Murray 2011: 50k train / 10k validation / 10k test) or on dynamically binarized
full MNIST, then estimates test NLL = −log p(x) by importance sampling (Burda et al. 2016).
The papers use K = 5000 over all 10,000 test images, which takes hours on 2 CPU cores; this
script uses --k (default 1000) on the full test set (or --test-images of it) and, to measure the
gap, --k-large (default 5000) on a --large-images subset (default 1000).

The data comes from ../shared/data (or --data-root); it is never part of the project.

    python benchmarks/likelihood.py --dataset static --out runs/bench_static     # train, then evaluate
    python benchmarks/likelihood.py --dataset static --model runs/bench_static --test-images 1000
"""

import argparse
import dataclasses
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import kerasgen  # noqa: E402

kerasgen.quiet_tensorflow_startup()  # this script owns its terminal: TensorFlow's start-up lines are filtered

import tensorflow as tf  # noqa: E402

from kerasgen.artifacts import load_run  # noqa: E402
from kerasgen.config import TrainVAEConfig  # noqa: E402
from kerasgen.data import load_dataset  # noqa: E402
from kerasgen.evaluation import elbo, importance_weighted_log_likelihood  # noqa: E402
from kerasgen.runs.vae import train_vae  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA_ROOT = os.path.join(HERE, "..", "..", "shared", "data")

DATASETS = {
    # name: (path below the data root, binarization for training, published NLLs)
    "static": (
        "binarized_mnist/binarized_mnist.npz",
        "none",
        [
            ("VAE (Rezende & Mohamed 2015)", 89.9),
            ("IWAE k=1, one stochastic layer (Burda et al. 2016)", 88.71),
            ("IWAE k=5, one stochastic layer", 87.63),
            ("IWAE k=50, one stochastic layer", 87.10),
        ],
    ),
    "dynamic": (
        "mnist",
        "dynamic",
        [
            ("VAE, one stochastic layer (Burda et al. 2016)", 86.76),
            ("IWAE k=50, one stochastic layer", 84.78),
            ("VAE, two stochastic layers", 85.33),
            ("IWAE k=50, two stochastic layers", 82.90),
        ],
    ),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="static")
    parser.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    parser.add_argument("--model", help="evaluate this trained run instead of training one")
    parser.add_argument("--out", default=None, help="training output folder (default runs/bench_DATASET)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--latent-dim", type=int, default=None, help="size of z (default: chosen from the data, 16 for digits)")
    parser.add_argument("--posterior", default="diagonal")
    parser.add_argument("--validation-size", type=int, default=1000, help="dynamic MNIST only: held out of the 60k")
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--test-images", type=int, default=None, help="a seeded random subset of N test images (default: all)")
    parser.add_argument("--k-large", type=int, default=5000)
    parser.add_argument("--large-images", type=int, default=1000, help="a random subset for the K-large estimate; 0 skips it")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    relative, binarize, published = DATASETS[args.dataset]
    source = os.path.normpath(os.path.join(args.data_root, relative))
    if not os.path.exists(source):
        sys.exit(f"The benchmark data is not here: {source}. Pass --data-root (the folder holding "
                 f"binarized_mnist/ and mnist/, as ../shared/data does).")

    started = time.perf_counter()
    if args.model:
        model, run, _ = load_run(args.model)
        training_note = f"trained earlier: {run.get('epochs', '?')} epochs"
    else:
        config = TrainVAEConfig(
            dataset=source,
            binarize=binarize,
            validation_size=args.validation_size,
            latent_dim=args.latent_dim,
            posterior=args.posterior,
            epochs=args.epochs,
            seed=args.seed,
            grid_every=10,
            out=args.out or f"runs/bench_{args.dataset}",
            overwrite=True,  # a benchmark reruns from scratch
        )
        artifacts = train_vae(config)
        model, run, _ = load_run(artifacts.model)
        training_note = f"{config.epochs} epochs, {(time.perf_counter() - started) / 60:.0f} min of training"
    data = load_dataset(source, binarize=binarize, validation_size=args.validation_size, seed=args.seed, batch_size=100)
    test = data.test if args.test_images is None else random_subset(data.test, args.test_images, args.seed)
    num_test = args.test_images or data.num_test

    rows = []
    started = time.perf_counter()
    bound = elbo(model, test, seed=args.seed)
    rows.append((f"kerasgen VAE, −ELBO ({num_test}{' random' if args.test_images else ''} test images)", -bound["elbo"], time.perf_counter() - started))
    started = time.perf_counter()
    iwae = importance_weighted_log_likelihood(model, test, num_samples=args.k, seed=args.seed)
    rows.append((f"kerasgen VAE, K={args.k} ({num_test}{' random' if args.test_images else ''} test images)", -iwae["log_likelihood"], time.perf_counter() - started))
    if args.large_images:
        subset = random_subset(data.test, args.large_images, args.seed)
        for k in (args.k, args.k_large):
            started = time.perf_counter()
            estimate = importance_weighted_log_likelihood(model, subset, num_samples=k, seed=args.seed)
            rows.append((f"kerasgen VAE, K={k} ({args.large_images} random test images)", -estimate["log_likelihood"],
                         time.perf_counter() - started))

    name = {"static": "fixed binarization of MNIST", "dynamic": "dynamically binarized MNIST"}[args.dataset]
    print(f"\nTest NLL on the {name} (nats per image, lower is better); model: {dataclasses.asdict(_summary(model))}, "
          f"{training_note}; devices: {[d.device_type for d in tf.config.list_physical_devices()]}")
    print(f"{'model':60s} {'NLL':>8s} {'seconds':>9s}")
    for label, value in published:
        print(f"{label:60s} {value:8.2f} {'':>9s}")
    for label, value, seconds in rows:
        print(f"{label:60s} {value:8.2f} {seconds:9.0f}")


def random_subset(dataset, size, seed):
    """A seeded random subset of a batched dataset: the fixed binarization's test set is stored
    in blocks by class (1,000 ones score ~47 nats, 1,000 eights ~107), so its first N images are
    no sample of it."""
    examples = dataset.unbatch()
    return examples.shuffle(100_000, seed=seed, reshuffle_each_iteration=False).take(size).batch(100)


@dataclasses.dataclass
class _Summary:
    latent_dim: int
    posterior: str
    likelihood: str
    num_filters: tuple


def _summary(model):
    return _Summary(model.latent_dim, model.posterior, model.likelihood, tuple(model.num_filters))


if __name__ == "__main__":
    main()
