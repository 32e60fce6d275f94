#!/usr/bin/env python3
"""Writes the seed corpus of the wire fuzzer into tests/fuzz/corpus/ (checked in; run again
after changing the protocol): valid requests of every method, conversions with every optional
field, and the malformed messages of tests/rpc/test_malformed.py. Needs python3-msgpack."""
import hashlib
import os
import sys

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "rpc"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "client", "python"))
from test_malformed import corpus  # noqa: E402


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def seeds():
    env = {"v": 1, "id": 1}
    yield pack({**env, "method": "ping"})
    yield pack({**env, "id": "text-id", "method": "info"})
    yield pack({**env, "method": "plugins"})
    yield pack({**env, "method": "stats"})
    yield pack({**env, "method": "reload", "name": "alkaid"})
    yield pack({**env, "method": "load", "path": "/opt/p/x.plugin"})
    yield pack({**env, "method": "unload", "name": "hgq"})
    yield pack({**env, "method": "drain", "resume": True})
    yield pack({**env, "method": "shutdown"})
    yield pack({**env, "method": "test.sleep", "ms": 5, "timeout_ms": 100})
    yield pack({**env, "method": "convert", "framework": "alkaid",
                "model": {"input_shape": [4, 5]}})
    yield pack({**env, "method": "convert", "framework": "alkaid",
                "model": {"input_shape": None},
                "inputs": [{"shape": [4, 5], "kif": [1, 3, 2]}, {"shape": [2]}],
                "inputs_kif": [[1, 2, 3], [0, 4, 0]], "hwconf": [1, 1, 2.5],
                "solver_options": {"hard_dc": 2, "method0": "wmc"}, "dump": True,
                "timeout_ms": 1000, "alir_encoding": "gzip"})
    yield pack({**env, "method": "convert", "module": "torch.nn.modules.container",
                "model": {"graph": {"nodes": [{"name": "x", "op": "placeholder", "target": "x",
                                               "args": [], "kwargs": {}}]},
                          "tensors": {"w": {"dtype": "f4", "shape": [2, 2],
                                            "data": b"\x00" * 16}}},
                "inputs": [{"shape": [1, 2], "kif": None}]})
    yield pack({**env, "method": "convert", "framework": "keras",
                "model": {"config": "{}", "format": "keras_v3",
                          "weights": {"layers/dense/vars/0": {"dtype": "i1", "shape": [3],
                                                              "data": b"\x01\x02\x03"}}}})
    # Keras file form (frontends.md §7.2): the file's bytes as they are.
    yield pack({**env, "method": "convert", "framework": "keras",
                "model": {"file": b"PK\x05\x06" + bytes(18)}, "inputs_kif": [1, 4, 3]})
    yield pack({**env, "method": "convert", "framework": "keras",
                "model": {"file": b'{"class_name": "Model", "config": {}}',
                          "weights_file": b"\x89HDF\r\n\x1a\n"}})
    for _, data, _, _ in corpus():
        yield data


def main():
    out = os.path.join(HERE, "corpus")
    os.makedirs(out, exist_ok=True)
    for data in seeds():
        name = hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
