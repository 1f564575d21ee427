"""How fast an image folder is read: the in-memory decode and one streamed epoch.

1. In memory: `load_arrays(folder)` (file headers, then every image of every split decoded by
   a parallel `tf.data` map into one uint8 array), timed once: images/s.
2. Streamed: `load_dataset(folder, stream=True)` built, then one epoch of its training batches
   iterated (read, decoded, scaled inside the pipeline): images/s over the epoch.

    python benchmarks/input_rate.py /work/shared/data/cifar10 [--batch-size 256]
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import kerasgen  # noqa: E402

kerasgen.quiet_tensorflow_startup()  # this script owns its terminal: TensorFlow's start-up lines are filtered


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="an image folder (class subfolders, train/ and test/ split folders)")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    if not os.path.isdir(args.folder):
        sys.exit(f"No image folder at {args.folder!r}: nothing measured.")

    from kerasgen.data import load_arrays, load_dataset

    start = time.perf_counter()
    raw = load_arrays(args.folder)
    seconds = time.perf_counter() - start
    count = sum(len(x) for x in (raw.x_train, raw.x_validation, raw.x_test) if x is not None)
    print(f"in memory: {count} images {raw.x_train.shape[1:]} in {seconds:.1f} s = {count / seconds:.0f} images/s")
    del raw

    start = time.perf_counter()
    data = load_dataset(args.folder, batch_size=args.batch_size, stream=True)
    built = time.perf_counter() - start
    start = time.perf_counter()
    seen = sum(int(images.shape[0]) for images, _ in data.train)
    seconds = time.perf_counter() - start
    print(
        f"streamed: built in {built:.1f} s (headers and held-out splits read); one epoch of "
        f"{seen} training images in {seconds:.1f} s = {seen / seconds:.0f} images/s"
    )


if __name__ == "__main__":
    main()
