#!/usr/bin/env python3
"""Writes the seed corpora of the ALIR JSON and graph-message fuzzers (checked in; run again after
changing either format): corpus_alir/ (ALIR files of spec versions 2, 3 and 4, plain and gzip,
written by our own alkaidc from the example model, the solvers and the examples/ program, plus
truncated and mangled variants), corpus_graph_json/ and corpus_graph_msgpack/ (graph messages:
the example model with every optional field, tensors, inputs, options, and malformed ones).
Usage: make_seed_corpora.py ALKAIDC (the build's alkaidc). Needs python3-msgpack."""
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")


def write_all(directory, seeds):
    path = os.path.join(HERE, directory)
    os.makedirs(path, exist_ok=True)
    for old in os.listdir(path):
        os.remove(os.path.join(path, old))
    for data in seeds:
        name = hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)
    print(f"{directory}: {len(seeds)} inputs")


def alkaidc_outputs(alkaidc, work):
    """ALIR files written by alkaidc: the example model, trace-example, cmvm and scm."""
    example = os.path.join(work, "example.json")
    with open(example, "w") as f:
        json.dump({"framework": "alkaid", "model": {"input_shape": [2, 3]}}, f)
    kernel = os.path.join(work, "kernel.txt")
    with open(kernel, "w") as f:
        f.write("3 -5\n0.5 7\n-2 1\n")
    commands = [
        ["convert", example, "-o", "{out}", "--local"],
        ["trace-example", "--shape", "2,2", "-o", "{out}"],
        ["cmvm", kernel, "--mode", "compat", "-o", "{out}"],
        ["scm", "0.375", "-o", "{out}"],
    ]
    outputs = []
    for i, command in enumerate(commands):
        out = os.path.join(work, f"out{i}.alir.json")
        subprocess.run([alkaidc] + [a.format(out=out) for a in command], check=True,
                       capture_output=True, env=dict(os.environ, ALKAID_CONNECT=""))
        with open(out, "rb") as f:
            outputs.append(f.read())
    return outputs


def alir_seeds(alkaidc):
    with open(os.path.join(ROOT, "examples", "affine_relu.alir.json"), "rb") as f:
        small = f.read()
    with tempfile.TemporaryDirectory() as work:
        docs = [small] + alkaidc_outputs(alkaidc, work)
    seeds = []
    for doc in docs:
        if len(doc) > 60000:
            continue  # the fuzzer's max_len
        seeds.append(doc)
        seeds.append(gzip.compress(doc, mtime=0))
        seeds.append(doc[: len(doc) // 2])  # truncated
    v4 = json.loads(small)
    v3 = dict(v4, spec_version=3)
    seeds.append(json.dumps(v3).encode())
    seeds.append(json.dumps(v4["model"]).encode())  # a bare model list
    seeds.append(json.dumps(dict(v4, spec_version=9)).encode())
    seeds.append(b'{"model": [], "meta": "ALIRModel", "spec_version": 4}')
    seeds.append(gzip.compress(small, mtime=0) + b"trailing")
    # Found by fuzz_alir_json: a shape of 685 million inputs with one inp_shift made the reader
    # allocate 2.7 GB before it compared the two.
    seeds.append(b'{"model":[[685146747,1],[0],[1],[-1],[false],[[[],-9.0]],-1,-1,null],'
                 b'"meta":"ALIRModel","spec_version":4}')
    return seeds


EXAMPLE = {"framework": "alkaid", "model": {"input_shape": [4, 5]}}


def graph_messages():
    tensor = {"dtype": "f4", "shape": [2, 2], "data": b"\x00" * 16}
    return [
        EXAMPLE,
        {"module": "alkaid.converter.example", "model": {"input_shape": [4, 5]}},
        dict(EXAMPLE, inputs=[{"shape": [4, 5], "kif": [1, 3, 2]}]),
        dict(EXAMPLE, inputs_kif=[1, 2, 3], hwconf=[1, -1, 5.5], dump=True),
        dict(EXAMPLE, solver_options={"method0": "mc", "method1": "auto", "hard_dc": 2,
                                      "decompose_dc": -1, "search_all_decompose_dc": False,
                                      "binary_lut": None, "binary_lut_width": 4,
                                      "mode": "improved"}),
        dict(EXAMPLE, solver_options={"hard_dcc": 1}),
        dict(EXAMPLE, hwconf=[0, 0, 1]),
        dict(EXAMPLE, timeout_ms=100, alir_encoding="gzip"),
        {"framework": "torch", "model": {"graph": {"nodes": [{"op": "placeholder"}]},
                                         "tensors": {"w": tensor}}},
        {"framework": "keras", "model": {"config": "{}", "weights": {"dense/kernel": tensor}}},
        {"framework": "alkaid", "model": {"input_shape": [5000, 5000]}},
        [1, 2, 3],
        {},
    ]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    write_all("corpus_alir", alir_seeds(sys.argv[1]))
    messages = graph_messages()
    json_seeds = [json.dumps(m, default=lambda b: b.hex()).encode() for m in messages]
    json_seeds += [b"", b"\xef\xbb\xbf" + json_seeds[0], b'{"framework": "alk', b"[[[[[[[["]
    write_all("corpus_graph_json", json_seeds)
    mp_seeds = [msgpack.packb(m, use_bin_type=True) for m in messages]
    mp_seeds += [b"", b"\xc1", mp_seeds[0][:-2], b"\xdf\xff\xff\xff\xff"]
    write_all("corpus_graph_msgpack", mp_seeds)


if __name__ == "__main__":
    main()
