#!/usr/bin/env python3
"""Writes the seed corpus of the wire fuzzer into tests/fuzz/corpus/ (checked in; run again
after changing the protocol): valid requests of every method, conversions with every optional
field, and the malformed messages of tests/rpc/test_malformed.py. Needs python3-msgpack.

Usage: make_corpus.py [--out DIR]   write the seeds (default: tests/fuzz/corpus/)
       make_corpus.py --check DIR   exit 1 unless DIR holds exactly the seeds, byte for byte
                                    (`meson test fuzz_corpus_current` runs this on corpus/)
"""
import argparse
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


def named_seeds():
    """{file name: bytes}; a file is named by the hash of its bytes."""
    return {hashlib.sha1(data).hexdigest()[:16]: data for data in seeds()}


def check(directory):
    """Compares DIR with the seeds; returns the list of differences."""
    want = named_seeds()
    have = set(os.listdir(directory))
    problems = ["missing seed %s (%r...)" % (name, want[name][:40])
                for name in sorted(set(want) - have)]
    problems += ["%s is not a seed the generator writes" % name for name in sorted(have - set(want))]
    for name in sorted(set(want) & have):
        with open(os.path.join(directory, name), "rb") as f:
            if f.read() != want[name]:
                problems.append("%s differs from its seed" % name)
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--out", default=os.path.join(HERE, "corpus"))
    group.add_argument("--check", metavar="DIR")
    args = parser.parse_args()
    if args.check:
        problems = check(args.check)
        for p in problems:
            print("FAIL:", p)
        if not problems:
            print("ok: %s holds the %d seeds of make_corpus.py" % (args.check, len(named_seeds())))
        return 1 if problems else 0
    os.makedirs(args.out, exist_ok=True)
    for name, data in named_seeds().items():
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
