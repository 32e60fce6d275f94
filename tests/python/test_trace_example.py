#!/usr/bin/python3
"""Issue 5, "Done when" 1: the example model traced by `alkaidc trace-example` and run by
`alkaidc run` equals the numpy evaluation of the same function (example_model.py) bit for bit,
on 1,000 random inputs in [-128, 128), for the shapes (4, 5), (5, 8) and (16, 4). At (16, 4) the
lookup table of the written JSON must be byte for byte the one in the reference's own trace of
the same model (fixture alir/v3_upgraded.json, spec trace-alir.md 4.5 and 4.9): same values,
hash, out_qint and key order.

Usage: /usr/bin/python3 test_trace_example.py ALKAIDC [--samples N] [--seed S]
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import example_model  # noqa: E402

SHAPES = [(4, 5), (5, 8), (16, 4)]


def bits(v):
    return struct.pack("<d", float(v))


def tables_text(text):
    """The JSON text of the lookup tables (the model's 9th element)."""
    return text[text.index('[{"spec":'):text.rindex('],"meta":') + 1]


def check_table_text(model):
    """The (16, 4) trace's table against the reference's file, as text."""
    fixture = os.path.join(os.environ["ALK_FIXTURES"], "alir", "v3_upgraded.json")
    with open(fixture) as fh:
        want = tables_text(fh.read())
    with open(model) as fh:
        got = tables_text(fh.read())
    if got != want:
        at = next(i for i in range(min(len(got), len(want)) + 1) if got[i:i + 1] != want[i:i + 1])
        print("FAIL (16, 4): the lookup table JSON differs from the reference's at byte %d:\n"
              "  got:  %s\n  want: %s" % (at, got[max(at - 40, 0):at + 40],
                                          want[max(at - 40, 0):at + 40]))
        return 1
    print("ok   (16, 4): lookup table JSON identical to the reference's (%d bytes)" % len(got))
    return 0


def check_shape(alkaidc, shape, samples, rng, tmp):
    model = os.path.join(tmp, "example_%dx%d.alir.json" % shape)
    subprocess.run([alkaidc, "trace-example", "--shape", "%d,%d" % shape, "-o", model],
                   check=True)
    if shape == (16, 4) and check_table_text(model):
        return 1
    x = rng.uniform(-128, 128, size=(samples,) + shape)
    inp = os.path.join(tmp, "in.txt")
    with open(inp, "w") as fh:
        for row in x.reshape(samples, -1):
            fh.write(" ".join(repr(float(v)) for v in row) + "\n")
    out = subprocess.run([alkaidc, "run", model, "--input", inp], capture_output=True,
                         text=True, check=True)
    got = [[float(v) for v in line.split()] for line in out.stdout.splitlines()]
    if len(got) != samples:
        print("FAIL %s: %d result lines for %d samples" % (shape, len(got), samples))
        return 1
    failures = 0
    for s in range(samples):
        want = example_model.operation(x[s]).ravel()
        if len(got[s]) != len(want):
            print("FAIL %s sample %d: %d outputs, numpy has %d" % (shape, s, len(got[s]),
                                                                   len(want)))
            return 1
        for j, (g, w) in enumerate(zip(got[s], want)):
            if bits(g) != bits(w):
                failures += 1
                if failures <= 5:
                    print("FAIL %s sample %d output %d: alkaidc %r, numpy %r" % (shape, s, j, g,
                                                                                 float(w)))
    print("%s %s: %d samples x %d outputs, %d mismatches" % (
        "ok  " if failures == 0 else "FAIL", shape, samples, len(got[0]), failures))
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("alkaidc")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        for shape in SHAPES:
            status |= check_shape(args.alkaidc, shape, args.samples, rng, tmp)
    return status


if __name__ == "__main__":
    sys.exit(main())
