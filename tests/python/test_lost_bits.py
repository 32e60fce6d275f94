#!/usr/bin/python3
"""Issue 17: arithmetic that drops low bits, on negative values, through `alkaidc run`.

The fixtures and the tracer's programs keep every add/sub at full precision and never use
opcode 11, so a rounding toward zero instead of down there went unnoticed. This test writes its
own ALIR programs (not traced by our code): add/sub whose result format is coarser than their
operands (right shifts), opcode 11 with mixed signs and shifts, quantize (opcode 3) with scales
and signed/unsigned targets, constant adds and relu that drop bits, and the tracer's networks for
quantize in WRAP+RND, SAT and SAT_SYM modes (spec trace-alir.md 1.11). Every output is compared
bit for bit with two oracles:

* alir_numpy.py, the integer form of spec 4.2 (every op's format from its interval), and
* the meaning of each op written here as a float formula on the inputs' values, rounded down to
  the output's step (numpy; all values are small dyadic numbers, so floats are exact).

The two oracles must agree with each other, and each lossy output must differ from what rounding
toward zero would give on some samples (otherwise the case could not catch that bug).

Usage: /usr/bin/python3 test_lost_bits.py ALKAIDC [--samples N]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alir_numpy as A  # noqa: E402

# The inputs: (k, i, f) formats chosen here; the read ops carry the matching intervals.
INPUTS = [(1, 3, 2), (1, 2, 3), (1, 1, 4), (0, 4, 1)]


def interval(k, i, f):
    """The value set of a format (spec 0): [-k 2^i, 2^i - 2^-f], step 2^-f."""
    return (-k * 2.0**i, 2.0**i - 2.0**-f, 2.0**-f)


def down(v, step, rnd):
    """v rounded to a multiple of step by `rnd` (np.floor: the ALIR rule; np.trunc: the bug);
    + 0.0 turns numpy's -0.0 into the 0.0 an integer result prints as."""
    return rnd(v / step) * step + 0.0


def wrap(v, k, i):
    """Two's-complement wrap of a value into [-k 2^i, 2^i) (k = 1) or [0, 2^i) (k = 0)."""
    low = -k * 2.0**i
    return np.mod(v - low, 2.0 ** (i + k)) + low


class Program:
    """An ALIR v4 program built op by op; `out(name, op, formula)` makes an op an output."""

    def __init__(self):
        self.ops = []
        self.outputs = []  # (name, op index, formula(values, rnd), lossy)
        self.reads = [self.op([], -1, [d], interval(*kif)) for d, kif in enumerate(INPUTS)]

    def op(self, addr, opcode, data, qint):
        self.ops.append([list(addr), opcode, list(data), [float(q) for q in qint], 0, 0])
        return len(self.ops) - 1

    def out(self, name, index, formula, lossy=True):
        self.outputs.append((name, index, formula, lossy))

    def document(self):
        n_out = len(self.outputs)
        model = [[len(INPUTS), n_out], [0] * len(INPUTS), [o[1] for o in self.outputs],
                 [0] * n_out, [False] * n_out, self.ops, 1, 1, None]
        return {"model": model, "meta": "ALIRModel", "spec_version": 4}


def build():
    p = Program()
    a, b, c, u = p.reads  # formats (1,3,2), (1,2,3), (1,1,4), (0,4,1)

    # add/sub (opcodes 0/1): buf_a +- buf_b 2^s, rounded down to the result's step.
    p.out("a+b step 1", p.op([a, b], 0, [0], (-12, 11, 1)), lambda x, r: down(x[0] + x[1], 1, r))
    p.out("a-2b step 1/2", p.op([a, b], 1, [1], (-16, 15.5, 0.5)),
          lambda x, r: down(x[0] - 2 * x[1], 0.5, r))
    p.out("a+c/4 step 1/4", p.op([a, c], 0, [-2], (-8.5, 8, 0.25)),
          lambda x, r: down(x[0] + x[2] / 4, 0.25, r))
    p.out("b-a step 4", p.op([b, a], 1, [0], (-12, 8, 4)), lambda x, r: down(x[1] - x[0], 4, r))
    p.out("u+a step 2", p.op([u, a], 0, [0], (-8, 22, 2)), lambda x, r: down(x[3] + x[0], 2, r))

    # opcode 11: sum of +-buf_t 2^s_t (p_t = 1 for +), then rounded down to the result's step.
    p.out("a-b/2+4c step 1/2", p.op([a, b, c], 11, [1, 0, 0, -1, 1, 2], (-18, 17.5, 0.5)),
          lambda x, r: down(x[0] - x[1] / 2 + 4 * x[2], 0.5, r))
    p.out("-a-c step 1", p.op([a, c], 11, [0, 0, 0, 0], (-10, 10, 1)),
          lambda x, r: down(-x[0] - x[2], 1, r))
    p.out("-u+2b-c/8 step 1/8", p.op([u, b, c], 11, [0, 0, 1, 1, 0, -3], (-23.75, 8, 0.125)),
          lambda x, r: down(-x[3] + 2 * x[1] - x[2] / 8, 0.125, r))
    p.out("a+a step 1/8 (finer)", p.op([a, a], 11, [1, 0, 1, 0], (-16, 15.5, 0.125)),
          lambda x, r: 2 * x[0], lossy=False)

    # quantize (opcode 3): wrap(floor(buf_a 2^d)) into the result's format.
    p.out("q(a) to (1,1,0)", p.op([a], 3, [0], (-2, 1, 1)),
          lambda x, r: wrap(down(x[0], 1, r), 1, 1))
    p.out("q(4b) to (1,3,0)", p.op([b], 3, [2], (-8, 7, 1)),
          lambda x, r: wrap(down(4 * x[1], 1, r), 1, 3))
    p.out("q(c/2) to (1,0,2)", p.op([c], 3, [-1], (-1, 0.75, 0.25)),
          lambda x, r: wrap(down(x[2] / 2, 0.25, r), 1, 0))
    p.out("q(a) to (0,2,1)", p.op([a], 3, [0], (0, 3.5, 0.5)),
          lambda x, r: wrap(down(x[0], 0.5, r), 0, 2))

    # Constant add (opcode 4, buf_a + m 2^-s) and relu (opcode 2) with coarser results.
    p.out("a+3/8 step 1", p.op([a], 4, [3, 3], (-8, 8, 1)), lambda x, r: down(x[0] + 0.375, 1, r))
    # (relu drops bits of non-negative values only: down and toward zero agree there.)
    p.out("relu(b) to (0,1,1)", p.op([b], 2, [], (0, 1.5, 0.5)),
          lambda x, r: wrap(down(np.maximum(x[1], 0), 0.5, r), 0, 1), lossy=False)

    # Quantize modes as the tracer builds them (spec 1.11). WRAP+RND to (1,3,0): add half a
    # step, then wrap-truncate.
    half = p.op([a], 4, [1, 1], (-7.5, 8.25, 0.25))
    p.out("quantize(a,1,3,0,WRAP,RND)", p.op([half], 3, [0], (-8, 7, 1)),
          lambda x, r: wrap(down(x[0] + 0.5, 1, r), 1, 3))
    # SAT and SAT_SYM + TRN to (1,2,1): t = a - low, u = msb t ? low : a, w = u - high,
    # v = msb w ? u : high, then truncate to step 1/2.
    for mode, low_m, low_s, low_q in (("SAT", -1, -2, (-4, -4, 4)),
                                      ("SAT_SYM", -7, 1, (-3.5, -3.5, 0.5))):
        low = low_m * 2.0**-low_s
        low_const = p.op([], 5, [low_m], low_q)
        t = p.op([a], 4, [-low_m, low_s], (-8 - low, 7.75 - low, 0.25))
        lower = p.op([low_const, a, t], 6, [0], (low, 7.75, 0.25))
        w = p.op([lower], 4, [-7, 1], (low - 3.5, 4.25, 0.25))
        high_const = p.op([], 5, [7], (3.5, 3.5, 0.5))
        clamped = p.op([lower, high_const, w], 6, [0], (low, 3.5, 0.25))
        p.out("quantize(a,1,2,1,%s,TRN)" % mode, p.op([clamped], 3, [0], (low, 3.5, 0.5)),
              (lambda low: lambda x, r: down(np.clip(x[0], low, 3.5), 0.5, r))(low))
    return p


def samples(rng, n):
    """Raw inputs: on-grid values inside and outside each input's range (wrapped by the read),
    off-grid values (floored by the read), and the range bounds; about half negative."""
    cols = []
    for k, i, f in INPUTS:
        lo, hi, step = interval(k, i, f)
        grid = rng.integers(round(lo / step), round(hi / step) + 1, size=n) * step
        wide = rng.uniform(2 * lo - 4, 2 * hi + 4, size=n)
        bounds = rng.choice([lo, hi, 0.0, -step], size=n)
        pick = rng.choice(3, size=n, p=[0.5, 0.4, 0.1])
        cols.append(np.where(pick == 0, grid, np.where(pick == 1, wide, bounds)))
    return np.stack(cols, axis=1)


def read_values(x):
    """The inputs as the read ops see them (spec 4.8): floor to the step, wrap to the format."""
    return [wrap(down(x[:, d], 2.0**-f, np.floor), k, i) for d, (k, i, f) in enumerate(INPUTS)]


def bits(v):
    return struct.pack("<d", float(v))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("alkaidc")
    parser.add_argument("--samples", type=int, default=3000)
    args = parser.parse_args()
    program = build()
    x = samples(np.random.default_rng(17), args.samples)
    values = read_values(x)
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "lost_bits.json")
        with open(path, "w") as fh:
            json.dump(program.document(), fh)
        inp = os.path.join(tmp, "in.txt")
        with open(inp, "w") as fh:
            for row in x:
                fh.write(" ".join(repr(float(v)) for v in row) + "\n")
        run = subprocess.run([args.alkaidc, "run", path, "--input", inp], capture_output=True,
                             text=True)
        if run.returncode != 0:
            print("FAIL alkaidc run exited with %d: %s" % (run.returncode, run.stderr))
            return 1
        got = np.array([[float(v) for v in line.split()] for line in run.stdout.splitlines()])
        oracle = A.load(path).predict(x)
    if got.shape != oracle.shape:
        print("FAIL alkaidc printed %s values, the program has %s" % (got.shape, oracle.shape))
        return 1
    for j, (name, _, formula, lossy) in enumerate(program.outputs):
        want = formula(values, np.floor)
        problems = []
        for s in range(len(x)):
            if bits(oracle[s, j]) != bits(want[s]):
                problems.append("the oracles disagree on sample %d: alir_numpy %r, formula %r"
                                % (s, oracle[s, j], want[s]))
            elif bits(got[s, j]) != bits(want[s]):
                problems.append("sample %d (inputs %s): alkaidc %r, oracles %r"
                                % (s, [float(v[s]) for v in values], got[s, j], want[s]))
        toward_zero = formula(values, np.trunc)
        if lossy and not np.any(toward_zero != want):
            problems.append("no sample tells rounding down from rounding toward zero")
        if len(np.unique(want)) < 3:
            problems.append("the output takes fewer than 3 values: it tests nothing")
        for p in problems[:3]:
            print("FAIL %-30s %s" % (name, p))
        if not problems:
            changed = int(np.sum(toward_zero != want))
            print("ok   %-30s %d samples (%d round differently toward zero)"
                  % (name, len(x), changed))
        status |= 1 if problems else 0
    return status


if __name__ == "__main__":
    sys.exit(main())
