#!/usr/bin/python3
"""The Keras benchmark models (bench/README.md "Keras"), and their conversion through a daemon.

    bench/keras_models.py DIR                 writes DIR/dense.keras and DIR/cnn.keras
    bench/keras_models.py DIR --daemon [N]    also converts each N times (default 20) through
                                              an alkaidd it starts, and prints the median
                                              round trip and the reply's timings

* dense: 16-64-32-32-5 Dense layers with ReLU, 8-bit weights and biases (multiples of 2^-6 in
  [-2, 2), seeded); converted with inputs (1, 3, 4) and --layer-output-kif 1,4,4 (8-bit
  activations, as bench_trace's dense network);
* cnn: 16x16x1 -> Conv2D(4, 3x3, relu) -> MaxPooling2D(2) -> Conv2D(8, 3x3, relu) ->
  MaxPooling2D(2) -> Flatten -> Dense(10), 8-bit weights, same formats.

Needs Debian's python3-numpy and python3-h5py (tests/keras/kerasgen.py writes the files);
--daemon needs build/daemon/alkaidd and the Python client (tests/rpc/harness.py).
"""
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path[:0] = [os.path.join(ROOT, "tests", "keras"), os.path.join(ROOT, "tests", "rpc"),
                os.path.join(ROOT, "client", "python")]

import numpy as np  # noqa: E402

import models as M  # noqa: E402 (tests/keras: the test models' builders)

INPUT_KIF = (1, 3, 4)
OUTPUT_KIF = (1, 4, 4)


def eight_bit(model, seed):
    """Every weight a multiple of 2^-6 in [-2, 2): 8 bits with the sign."""
    rng = np.random.default_rng(seed)
    for var, _ in model.weights():
        var.value = (rng.integers(-128, 128, var.value.shape) / 64.0).astype(np.float32)


def dense():
    b = M.Builder()
    x = b.input((16,))
    for units in (64, 32, 32):
        x = M._dense(b, x, units, "relu")
    model = b.output(M._dense(b, x, 5))
    eight_bit(model, 1)
    return model


def cnn():
    b = M.Builder()
    x = b.input((16, 16, 1))
    x = M._conv(b, x, 2, 4, 3, activation="relu")
    x = b.layer("MaxPooling2D", M.pool_cfg(2, 2), x)
    x = M._conv(b, x, 2, 8, 3, activation="relu")
    x = b.layer("MaxPooling2D", M.pool_cfg(2, 2), x)
    x = b.layer("Flatten", {"data_format": "channels_last"}, x)
    model = b.output(M._dense(b, x, 10))
    eight_bit(model, 2)
    return model


def write(directory):
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for name, build in (("dense", dense), ("cnn", cnn)):
        paths[name] = os.path.join(directory, name + ".keras")
        M.kg.write_keras(build(), paths[name])
    return paths


def through_daemon(paths, n):
    from harness import Client, Daemon, temp_dir
    d = Daemon(temp_dir("keras-bench-"), name="kb", test_hooks=False, workers=1)
    try:
        with Client(d.url, timeout=600) as c:
            for name, path in paths.items():
                rounds, runs, solves, encodes = [], [], [], []
                for i in range(n + 1):
                    start = time.monotonic()
                    # Every call has a fresh id: the daemon's reply cache answers only resends.
                    r = c.convert_file(path, inputs_kif=list(INPUT_KIF),
                                       layer_output_kif=OUTPUT_KIF)
                    if i == 0:
                        continue  # warm-up: the plugin's first use
                    rounds.append((time.monotonic() - start) * 1e3)
                    runs.append(r["timings"]["run_ms"])
                    solves.append(r["timings"]["solve_ms"])
                    encodes.append(r["timings"]["encode_ms"])
                med = statistics.median
                print(f"{name}: daemon round trip {med(rounds):.2f} ms (median of {n}); "
                      f"run {med(runs):.2f} ms (solving {med(solves):.2f}), "
                      f"encode {med(encodes):.2f} ms, RPC and queue "
                      f"{med(rounds) - med(runs) - med(encodes):.2f} ms")
    finally:
        d.stop()


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    paths = write(sys.argv[1])
    for name, path in paths.items():
        print(f"{name}: {path}")
    if "--daemon" in sys.argv:
        rest = sys.argv[sys.argv.index("--daemon") + 1:]
        through_daemon(paths, int(rest[0]) if rest else 20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
