"""Two `--strategy multi-worker` processes on 127.0.0.1 against one process with the same flags.

For each likelihood (and binarization), the script starts three `kerasgen train-vae` commands at
once, two workers whose `TF_CONFIG` names both and one process on one device, then compares every
value of their histories (the clock aside) and every weight of their `vae.keras`. Two workers
train one global batch as one device does, so they must agree to float round-off.

    python benchmarks/multi_worker.py [--images 576] [--validation-size 64] [--batch-size 64]
        [--seed 3] [--epochs 2] [--cases gaussian,bernoulli-dynamic,bernoulli-static]
        [--out benchmarks/results/multi_worker]

Data: the first `--images` of the shipped digits (`kerasgen/data/mnist_5k.npz`), 512 training
images by default. Networks: the defaults `train-vae` picks for them. Writes `multi_worker.json`.
"""

import argparse
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

import kerasgen

kerasgen.quiet_tensorflow_startup()  # this script owns its terminal: TensorFlow's start-up lines are filtered

CASES = {
    "gaussian": ["--likelihood", "gaussian"],
    "bernoulli-dynamic": ["--likelihood", "bernoulli", "--binarize", "dynamic"],
    "bernoulli-static": ["--likelihood", "bernoulli", "--binarize", "static"],
}


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_case(flags, work):
    """Runs the two workers and the one process; returns their folders."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    launches = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        launches.append((f"worker{index}", [*flags, "--strategy", "multi-worker", "--out", os.path.join(work, "workers")], env))
    launches.append(("one", [*flags, "--out", os.path.join(work, "one")], dict(os.environ)))
    processes = []
    for name, args, env in launches:
        log = open(os.path.join(work, f"{name}.log"), "w")
        command = [sys.executable, "-m", "kerasgen", "train-vae", *args]
        processes.append((name, subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    for name, process, log in processes:
        code = process.wait()
        log.close()
        if code != 0:
            with open(os.path.join(work, f"{name}.log")) as f:
                raise SystemExit(f"{name} failed (exit {code}):\n{f.read()[-3000:]}")
    return os.path.join(work, "workers"), os.path.join(work, "one")


def history(folder):
    with open(os.path.join(folder, "history.csv")) as f:
        return list(csv.DictReader(f))


def compare(workers, one):
    import keras

    rows_w, rows_1 = history(workers), history(one)
    worst = 0.0
    for row_w, row_1 in zip(rows_w, rows_1, strict=True):
        for name in row_w:
            if name != "seconds":
                a, b = float(row_w[name]), float(row_1[name])
                worst = max(worst, abs(a - b) / max(abs(b), 1e-3))
    weights_w = keras.saving.load_model(os.path.join(workers, "vae.keras")).get_weights()
    weights_1 = keras.saving.load_model(os.path.join(one, "vae.keras")).get_weights()
    return {
        "elbo_two_workers": float(rows_w[-1]["elbo"]),
        "elbo_one_process": float(rows_1[-1]["elbo"]),
        "val_elbo_two_workers": float(rows_w[-1]["val_elbo"]),
        "val_elbo_one_process": float(rows_1[-1]["val_elbo"]),
        "largest_relative_history_difference": worst,
        "largest_weight_difference": float(max(np.abs(a - b).max() for a, b in zip(weights_w, weights_1, strict=True))),
        "largest_weight": float(max(np.abs(b).max() for b in weights_1)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=576)
    parser.add_argument("--validation-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "multi_worker"))
    args = parser.parse_args(argv)
    cases = args.cases.split(",")
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"--cases must name some of {', '.join(CASES)}. Received: {', '.join(unknown)}")

    from kerasgen.data import __file__ as data_init

    digits = np.load(os.path.join(os.path.dirname(data_init), "mnist_5k.npz"))["x"][: args.images]
    results = {"machine": os.uname().machine, "cpus": os.cpu_count(), "flags": {}, "cases": {}}
    with tempfile.TemporaryDirectory() as work:
        data = os.path.join(work, "digits.npz")
        np.savez(data, x=digits)
        flags = [
            "--dataset", data, "--validation-size", str(args.validation_size), "--batch-size", str(args.batch_size),
            "--seed", str(args.seed), "--epochs", str(args.epochs), "--lr-schedule", "constant",
            "--grid-every", str(args.epochs), "--latent-images", "0",
        ]
        results["flags"] = {"images": args.images, "common": flags[2:]}
        print(f"{'case':<20}{'ELBO, 2 workers':>18}{'ELBO, 1 process':>18}{'history diff':>14}{'weight diff':>13}{'seconds':>9}")
        for case in cases:
            folder = os.path.join(work, case)
            os.makedirs(folder)
            start = time.perf_counter()
            measured = compare(*run_case([*flags, *CASES[case]], folder))
            measured["seconds"] = time.perf_counter() - start
            results["cases"][case] = {"flags": CASES[case], **measured}
            print(
                f"{case:<20}{measured['elbo_two_workers']:>18.3f}{measured['elbo_one_process']:>18.3f}"
                f"{measured['largest_relative_history_difference']:>14.1e}{measured['largest_weight_difference']:>13.1e}"
                f"{measured['seconds']:>9.0f}",
                flush=True,
            )
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "multi_worker.json")
    with open(path + ".tmp", "w") as f:
        json.dump(results, f, indent=2)
    os.replace(path + ".tmp", path)
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
