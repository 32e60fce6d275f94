"""Export and conversion time of two torch models through a daemon (bench/README.md).

    PYTHONPATH=client/python:tests/rpc /usr/bin/python3 bench/torch_convert.py [--repeat N]
        [--connect URL]

Models (weights on a grid of 2^-6, seeded, so the CMVM problems are those of an 8-bit network;
activations quantized to 8 bits after each ReLU, written in torch as round(x * 16) / 16 clamped to
[0, 16), as a fake-quantized model has them; bench_trace's dense network is the same):
  * mlp: a 16-64-32-32-5 dense network, input (1, 16), inputs_kif (1, 3, 4);
  * cnn: Conv2d(1, 4, 3) - ReLU - q - MaxPool2d(2) - Conv2d(4, 8, 3) - ReLU - q - Flatten -
    Linear(32, 10) on a (1, 1, 10, 10) input, inputs_kif (1, 3, 4).
For each: the export (torch.fx tracing and packing the graph message, in this process) and the
conversion (request to reply, through alkaidd), best of N runs. Without --connect it starts its
own build/daemon/alkaidd on an ipc socket in a temporary directory (one worker per core) and
stops it afterwards. Each request is sent with a different `timeout_ms`, so the daemon's reply
cache never answers one.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn

from alkaid_client import Client
from alkaid_client.torch import export, pack


def _grid_weights(module, seed=0, fbits=6):
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for p in module.parameters():
            w = rng.uniform(-1, 1, tuple(p.shape)).astype(np.float32)
            p.copy_(torch.tensor(np.round(w * 2 ** fbits) / 2 ** fbits))
    return module.eval()


class Quant(nn.Module):
    """Unsigned 8-bit fake quantization, 4 fractional bits: the format (0, 4, 4)."""

    def forward(self, x):
        return torch.clamp(torch.round(x * 16) / 16, 0, 16 - 1 / 16)


def models():
    mlp = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), Quant(), nn.Linear(64, 32), nn.ReLU(),
                        Quant(), nn.Linear(32, 32), nn.ReLU(), Quant(), nn.Linear(32, 5))
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), Quant(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 8, 3), nn.ReLU(), Quant(), nn.Flatten(), nn.Linear(32, 10))
    return [("mlp 16-64-32-32-5", _grid_weights(mlp), (1, 16)),
            ("cnn 1x10x10", _grid_weights(cnn, 1), (1, 1, 10, 10))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--connect", help="a running daemon (default: start one)")
    args = parser.parse_args()
    daemon = None
    url = args.connect
    if url is None:
        import harness
        daemon = harness.Daemon(tempfile.mkdtemp(prefix="alkb-", dir="/tmp"),
                                workers=os.cpu_count() or 1, test_hooks=False)
        url = daemon.url
    print(f"{'model':20} {'export ms':>10} {'convert ms':>11} {'message KiB':>12} "
          f"{'ALIR ops':>9}")
    try:
        with Client(url, timeout=600) as client:
            for k, (name, module, shape) in enumerate(models()):
                exports, converts = [], []
                for r in range(args.repeat):
                    t = time.perf_counter()
                    message = export(module, [shape], (1, 3, 4))
                    size = len(pack(message))
                    exports.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    # A distinct deadline per request keeps the reply cache out of the timing.
                    result = client.convert(message=message, timeout=600 + k * 100 + r)
                    converts.append(time.perf_counter() - t)
                n_ops = len(json.loads(result.alir)["model"][5])  # ALIR v4: model[5] = ops
                print(f"{name:20} {min(exports) * 1e3:10.1f} {min(converts) * 1e3:11.1f} "
                      f"{size / 1024:12.1f} {n_ops:9}")
    finally:
        if daemon is not None:
            daemon.stop()


if __name__ == "__main__":
    sys.exit(main())
