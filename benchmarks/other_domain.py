"""The pipeline on labelled 28x28 grey images that are not digits: whose classifier scores them?

Writes a seeded dataset of ten kinds of shapes (`make_shapes`: disc, ring, square, outline
square, triangle, cross, X, horizontal bar, vertical bar, diamond, at random sizes, places and
strokes, 6,000 training and 1,000 test images) as an .npz with the keys `images`/`labels` and
`test_images`/`test_labels`, runs `kerasgen pipeline` on it, and prints which classifier scored
the samples, its accuracy on the test images and the GAN's class shares by that classifier — next
to what the shipped digit classifier would have said about the same samples (the silent wrong
answer kerasgen used to print).

    python benchmarks/other_domain.py                       # about 15 minutes on 2 CPU cores
    python benchmarks/other_domain.py --vae-epochs 5 --gan-epochs 3 --out runs/other_quick
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

import kerasgen

kerasgen.quiet_tensorflow_startup()  # this script owns its terminal: TensorFlow's start-up lines are filtered

SHAPES = ("disc", "ring", "square", "outline", "triangle", "cross", "x", "hbar", "vbar", "diamond")


def make_shapes(count, seed):
    """`(images uint8 [count, 28, 28], labels int [count])`: one white shape per image, ten kinds."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28].astype(np.float32)
    labels = np.arange(count) % len(SHAPES)
    rng.shuffle(labels)
    images = np.zeros((count, 28, 28), np.float32)
    for i, label in enumerate(labels):
        cy, cx = rng.uniform(10, 18, size=2)
        r = rng.uniform(5, 9)
        w = rng.uniform(1.2, 2.5)  # stroke width
        dy, dx = yy - cy, xx - cx
        d = np.sqrt(dy**2 + dx**2)
        box = np.maximum(abs(dy), abs(dx))
        name = SHAPES[label]
        if name == "disc":
            shape = r - d
        elif name == "ring":
            shape = w - abs(d - r)
        elif name == "square":
            shape = r - box
        elif name == "outline":
            shape = w - abs(box - r)
        elif name == "triangle":
            shape = np.minimum(dy + r * 0.6, (r * 0.9 - dy) - 1.8 * abs(dx))
        elif name == "cross":
            shape = np.maximum(np.minimum(w - abs(dy), r - abs(dx)), np.minimum(w - abs(dx), r - abs(dy)))
        elif name == "x":
            u, v = (dy + dx) / np.sqrt(2), (dy - dx) / np.sqrt(2)
            shape = np.maximum(np.minimum(w - abs(u), r - abs(v)), np.minimum(w - abs(v), r - abs(u)))
        elif name == "hbar":
            shape = np.minimum(w + 0.5 - abs(dy), r - abs(dx))
        elif name == "vbar":
            shape = np.minimum(w + 0.5 - abs(dx), r - abs(dy))
        else:  # diamond
            shape = r - (abs(dy) + abs(dx))
        images[i] = np.clip(shape + 0.5, 0.0, 1.0)  # one pixel of anti-aliasing
    return (images * 255).round().astype(np.uint8), labels


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/other_domain")
    parser.add_argument("--vae-epochs", type=int, default=50)
    parser.add_argument("--gan-epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run (else start over)")
    args = parser.parse_args()

    os.makedirs(args.out, exist_ok=True)
    data = os.path.join(args.out, "shapes.npz")
    images, labels = make_shapes(6000, seed=args.seed)
    test_images, test_labels = make_shapes(1000, seed=args.seed + 1)
    np.savez_compressed(data, images=images, labels=labels, test_images=test_images, test_labels=test_labels)

    pipeline = os.path.join(args.out, "pipeline")
    command = [sys.executable, "-m", "kerasgen", "pipeline", "--dataset", data, "--vae-epochs", str(args.vae_epochs),
               "--gan-epochs", str(args.gan_epochs), "--seed", str(args.seed), "--out", pipeline,
               "--resume" if args.resume else "--overwrite"]
    print(" ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    summary = json.load(open(os.path.join(pipeline, "summary.json")))

    # What the shipped digit classifier says about the same GAN's samples.
    from kerasgen.artifacts import load_run
    from kerasgen.evaluation import sample_quality

    digits = sample_quality.load_classifier(None, (28, 28, 1))
    gan, _, _ = load_run(os.path.join(pipeline, "gan"))
    samples = sample_quality.sample_images(gan, 10_000, seed=args.seed)
    digit_shares = sample_quality.class_histogram(digits.predict(samples, batch_size=500, verbose=0))
    test_accuracy = float(np.mean(np.argmax(digits.predict(test_images[..., None] / 255.0, verbose=0), -1) == test_labels))

    chosen = summary["classifier"]
    result = {
        "dataset": "ten shapes, 6,000 train / 1,000 test, 28x28 grey (benchmarks/other_domain.py)",
        "classifier": chosen,
        "gan_class_shares": summary["gan"].get("predicted_class_fractions"),
        "gan_frechet_distance": summary["gan"].get("frechet_distance"),
        "vae_frechet_distance": summary["vae"].get("frechet_distance"),
        "shipped_digit_classifier": {
            "test_accuracy_on_shapes": test_accuracy,
            "gan_class_shares": digit_shares.tolist(),
        },
        "seconds": time.perf_counter() - started,
    }
    with open(os.path.join(args.out, "other_domain.json"), "w") as f:
        json.dump(result, f, indent=2)
    shares = result["gan_class_shares"]
    print(f"\nScored by: {chosen['origin']} classifier {chosen['path']} "
          f"({100 * chosen['heldout_accuracy']:.1f}% right on {chosen['heldout_size']} test images)")
    print(f"GAN class shares by it: {100 * min(shares):.1f}% to {100 * max(shares):.1f}% "
          f"(FD {result['gan_frechet_distance']:.1f}; VAE {result['vae_frechet_distance']:.1f})")
    print(f"The shipped digit classifier: {100 * test_accuracy:.1f}% right on the shapes; its class shares of "
          f"the same samples: {100 * digit_shares.min():.1f}% to {100 * digit_shares.max():.1f}%")
    print(f"Results: {os.path.join(args.out, 'other_domain.json')} ({result['seconds'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
