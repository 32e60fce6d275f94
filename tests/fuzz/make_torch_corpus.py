#!/usr/bin/env python3
"""Writes the generated seeds of the torch tracer's fuzzer (fuzz_torch.c) into
tests/fuzz/corpus_torch/: graph messages exported by alkaid_client.torch.export from a few small
models (modules with parameters, a conv/batch-norm stack, functional code over two inputs with
tuples, slices, methods and a dict output, a get_attr constant, an embedding, shape functions), and broken
variants of them that the daemon and the tracer must refuse naming the culprit (a dangling
reference, a cycle, a forward reference, tensor bytes that do not match shape or dtype, a
missing module, ...). Needs python3-torch and python3-msgpack.

Generated seeds are named seed-<hash>; other files in the corpus (the fuzzer's reproducers,
regress-*, and a few inputs it found that reach new code, cov-*) are kept by hand and left alone.

Usage: make_torch_corpus.py [--out DIR]   write the seeds (default: tests/fuzz/corpus_torch/)
       make_torch_corpus.py --check DIR   exit 1 unless DIR holds exactly the generated seeds,
                                          byte for byte (77 without torch)
"""
import argparse
import copy
import hashlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "client", "python"))
PREFIX = "seed-"


def _quarters(module, seed):
    """Every parameter and float buffer set to multiples of 1/4 in [-2, 2] from a fixed numpy
    generator, so the seeds do not depend on torch's random initialisation. Variances are 1/4, 1
    or 4, so that a batch norm without eps folds to dyadic constants: a product by any other
    constant costs an SCM solve of its 53-bit odd part, which dominates an execution."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if not t.is_floating_point():
                continue
            values = np.round(rng.uniform(-2, 2, size=tuple(t.shape)) * 4) / 4
            if name.endswith("running_var"):
                values = rng.choice([0.25, 1.0, 4.0], size=tuple(t.shape))
            t.copy_(torch.from_numpy(values))
    return module.eval()


def _models():
    """(module, input shapes with the batch axis, kif) of the valid seeds."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Mlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 3)
            self.act = nn.ReLU()
            self.fc2 = nn.Linear(3, 2, bias=False)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    class ConvStack(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)
            self.bn = nn.BatchNorm2d(2, eps=0.0)
            self.pool = nn.MaxPool2d(2)
            self.flat = nn.Flatten()

        def forward(self, x):
            return self.flat(self.pool(F.relu(self.bn(self.conv(x)))))

    class TwoInputs(nn.Module):
        def forward(self, x, y):
            z = torch.cat([x, y], -1).sigmoid() * 16
            z = torch.round(z)
            part = z[:, 1::2]
            total = part.sum(dim=-1, keepdim=True)
            return {"total": total, "both": (x.view(1, 2, 2).permute(0, 2, 1), y + 1)}

    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(4, 2))

        def forward(self, x):
            return torch.clamp(x @ self.w, -3, 3) - x[..., :2].abs()

    class Lookup(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(8, 2)

        def forward(self, i):
            return self.embed(i.to(torch.int64)).flatten(1)

    class Shapes(nn.Module):
        def forward(self, x):
            a = x.expand(2, x.size(-1))
            z = torch.zeros(2, 4)
            b = torch.where(a > z, a, z)
            c = F.pad(b, (1, 1)).repeat(1, 2)
            parts = torch.chunk(c, 2, dim=1)
            g = torch.stack([parts[0], parts[1]], 0).transpose(0, 2).reshape(1, -1)
            return torch.split(g, 8, dim=-1)[1], x.flatten().unsqueeze(0)

    return [
        (_quarters(Mlp(), 1), [(1, 4)], (1, 3, 2)),
        (_quarters(ConvStack(), 2), [(1, 2, 4, 4)], (1, 2, 2)),
        (TwoInputs(), [(1, 4), (1, 4)], [(1, 2, 2), (0, 3, 1)]),
        (_quarters(Constant(), 4), [(1, 4)], (1, 2, 2)),
        (_quarters(Lookup(), 5), [(1, 3)], (0, 3, 0)),
        (Shapes(), [(1, 4)], (1, 2, 1)),
    ]


def _node(message, name):
    return next(n for n in message["model"]["graph"]["nodes"] if n["name"] == name)


def _broken(mlp, two, const):
    """Variants that must be refused, each (what, edit of a deep copy)."""

    def dangling(m):
        _node(m, "fc2")["args"] = [{"$node": "nowhere"}]

    def self_cycle(m):
        _node(m, "act")["args"] = [{"$node": "act"}]

    def cycle(m):  # act reads fc2 and fc2 reads act: the first is a forward reference
        _node(m, "act")["args"] = [{"$node": "fc2"}]

    def short_data(m):
        t = m["model"]["tensors"]["fc1.weight"]
        t["data"] = t["data"][:-1]

    def wrong_dtype(m):  # the same bytes read as int16: twice the elements' worth
        m["model"]["tensors"]["fc1.weight"]["dtype"] = "i2"

    def wrong_shape(m):
        m["model"]["tensors"]["fc1.bias"]["shape"] = [4]

    def huge_shape(m):
        m["model"]["tensors"]["fc1.bias"]["shape"] = [1 << 20, 1 << 20]

    def missing_module(m):
        del m["model"]["modules"]["fc1"]

    def missing_param_tensor(m):
        del m["model"]["tensors"]["fc1.bias"]

    def module_type(m):
        m["model"]["modules"]["act"]["type"] = "ReLU"

    def duplicate_name(m):
        _node(m, "act")["name"] = "fc1"

    def output_not_last(m):
        nodes = m["model"]["graph"]["nodes"]
        nodes.insert(0, nodes.pop())

    def extra_input(m):
        m["inputs"].append({"shape": [1, 4]})

    def unknown_op(m):
        _node(m, "act")["op"] = "call_everything"

    def version(m):
        m["model"]["version"] = 2

    def missing_attr_tensor(m):
        del m["model"]["tensors"]["w"]

    def inline_tensor(m):
        _node(m, "matmul")["args"][1] = {"$tensor": "w"}

    def tagged_junk(m):
        _node(m, "clamp")["kwargs"] = {"min": {"$node": "x", "$tuple": []}}

    def method_without_receiver(m):
        node = next(n for n in m["model"]["graph"]["nodes"] if n["op"] == "call_method")
        node["args"] = []

    def output_constant(m):
        m["model"]["graph"]["nodes"][-1]["args"] = [7]

    def unknown_function(m):
        node = next(n for n in m["model"]["graph"]["nodes"] if n["op"] == "call_function")
        node["target"] = "otherpkg.ops.frobnicate"

    edits = [(mlp, e) for e in (dangling, self_cycle, cycle, short_data, wrong_dtype, wrong_shape,
                                huge_shape, missing_module, missing_param_tensor, module_type,
                                duplicate_name, output_not_last, extra_input, unknown_op,
                                version)]
    edits += [(const, e) for e in (missing_attr_tensor, inline_tensor, tagged_junk)]
    edits += [(two, e) for e in (method_without_receiver, output_constant, unknown_function)]
    for base, edit in edits:
        m = copy.deepcopy(base)
        edit(m)
        yield m


def seeds():
    from alkaid_client.torch import export, pack

    messages = []
    for module, shapes, kif in _models():
        m = export(module, shapes, kif)
        del m["model"]["torch_version"]  # informative only; the seeds outlive a torch upgrade
        messages.append(m)
    mlp, _, two, const, _, _ = messages
    messages += list(_broken(mlp, two, const))
    data = [pack(m) for m in messages]
    data += [data[0][: len(data[0]) // 2], b"\x80", pack([mlp])]  # truncated, {}, not a map
    return {PREFIX + hashlib.sha1(d).hexdigest()[:16]: d for d in data}


def check(directory, want):
    have = {name for name in os.listdir(directory) if name.startswith(PREFIX)}
    problems = [f"missing seed {name}" for name in sorted(set(want) - have)]
    problems += [f"{name} is not a seed the generator writes" for name in sorted(have - set(want))]
    for name in sorted(set(want) & have):
        with open(os.path.join(directory, name), "rb") as f:
            if f.read() != want[name]:
                problems.append(f"{name} differs from its seed")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--out", default=os.path.join(HERE, "corpus_torch"))
    group.add_argument("--check", metavar="DIR")
    args = parser.parse_args()
    try:
        want = seeds()
    except ImportError as e:
        print(f"SKIP: {e} (Debian packages python3-torch, python3-msgpack)")
        return 77
    if args.check:
        problems = check(args.check, want)
        for p in problems:
            print("FAIL:", p)
        if not problems:
            print(f"ok: {args.check} holds the {len(want)} seeds of make_torch_corpus.py")
        return 1 if problems else 0
    os.makedirs(args.out, exist_ok=True)
    for old in os.listdir(args.out):
        if old.startswith(PREFIX):
            os.remove(os.path.join(args.out, old))
    for name, data in want.items():
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(data)
    print(f"{args.out}: {len(want)} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
