#!/usr/bin/python3
"""Differential test: `alkaidc run` (the C interpreter) against the numpy oracle alir_numpy.py.

The oracle is written from the specification (shared/spec/trace-alir.md 4.1-4.5, 4.8 and
cmvm.md 2.2-2.3), not from the C code.  For every model given on the command line this script

1. generates seeded random samples with numpy, per read input (an op with opcode -1 reading input
   d, using that op's interval; inputs that are not read get arbitrary values):
   on-grid values inside the interval, on-grid values outside it by up to 4x its span (exercises
   the two's-complement wrap of the read), off-grid floats (exercises floor), grid points nudged
   by one ulp either way, and the exact interval bounds (and +-0.0 when inside);
2. drops samples that would make a lookup go out of its table (the interpreter must reject
   those; one such sample, when found, is fed to the C tool alone and must make it fail);
3. writes the samples to a temp file (repr of each float, space-separated, one sample a line),
   runs `ALKAIDC run MODEL --input IN --output OUT`, parses OUT and compares every value
   bit-for-bit with the oracle; it also checks that every value is printed as repr(float(v)).

Usage:
    /usr/bin/python3 check_run.py --alkaidc PATH [--samples 1000] [--seed 0] MODEL...
    (MODEL may be RUN_MODEL=ORACLE_MODEL: run a legacy v2/v3 file, evaluate its v4 upgrade.)
Exit status: 0 all models agree, 1 a mismatch or failure, 2 bad usage (e.g. no alkaidc).
"""

import argparse
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alir_numpy as A  # noqa: E402

MAX_REPORTED = 5  # mismatches printed per model


# ---------------------------------------------------------------------------------------------
# Sample generation
# ---------------------------------------------------------------------------------------------


def _grid_bounds(qint):
    """Integer grid indices (a, b) of an interval and a span that keeps values int64-safe."""
    lo, hi, step = qint
    a, b = A.llround(lo / step), A.llround(hi / step)
    span = max(b - a, 8)
    # floor(in * 2^f) must stay far inside int64: |index| <= 2^58 is plenty (spec 4.7: huge
    # inputs are undefined behaviour in the reference, so they are not generated).
    limit = 1 << 58
    span = min(span, max((limit - max(abs(a), abs(b))) // 5, 1))
    return a, b, span


def _column(rng, n, qint, inp_shift):
    """n raw input values for one read interval (before the read's 2^inp_shift scaling)."""
    if sum(A.minimal_kif(*qint)) == 0:
        # A zero-width read (e.g. the zero interval, step 2^127) reads every input as 0;
        # generate values on the unit grid so floor(in * 2^f) stays small.
        qint = (0.0, 0.0, 1.0)
    lo, hi, step = qint
    a, b, span = _grid_bounds(qint)
    kind = rng.choice(5, size=n, p=[0.45, 0.20, 0.15, 0.10, 0.10])
    idx = rng.integers(a, b + 1, size=n).astype(np.float64)  # kind 0: grid, inside
    vals = idx * step

    # kind 1: grid, outside the interval by up to 4 spans on either side.
    below = rng.random(n) < 0.5
    out_idx = np.where(below, rng.integers(a - 4 * span, a, size=n),
                       rng.integers(b + 1, b + 4 * span + 2, size=n)).astype(np.float64)
    vals = np.where(kind == 1, out_idx * step, vals)

    # kind 2: off-grid floats over the interval widened by one span each side.
    width = (b - a + 2 * span) * step
    cont = lo - span * step + rng.random(n) * width
    vals = np.where(kind == 2, cont, vals)

    # kind 3: an in-range grid point nudged by one ulp down (floor must drop a step) or up.
    nudged = np.where(rng.random(n) < 0.5, np.nextafter(idx * step, -np.inf),
                      np.nextafter(idx * step, np.inf))
    vals = np.where(kind == 3, nudged, vals)

    # kind 4: the exact bounds, and signed zeros when zero lies inside the interval.
    choices = [lo, hi] + ([0.0, -0.0] if lo <= 0.0 <= hi else [])
    pick = np.array(choices, dtype=np.float64)[rng.integers(0, len(choices), size=n)]
    vals = np.where(kind == 4, pick, vals)

    return np.ldexp(vals, -inp_shift)


def generate(model, rng, n, in_range_only=False):
    """(n, n_in) float64 samples for `model`; see the module docstring for the mix."""
    x = rng.normal(scale=100.0, size=(n, model.n_in))  # inputs that are never read
    for d, qints in sorted(model.input_intervals().items()):
        choice = rng.integers(0, len(qints), size=n)
        col = np.empty(n)
        for j, q in enumerate(qints):
            if in_range_only:
                a, b, _ = _grid_bounds(q)
                c = np.ldexp(rng.integers(a, b + 1, size=n) * q[2], -model.inp_shifts[d])
            else:
                c = _column(rng, n, q, model.inp_shifts[d])
            col = np.where(choice == j, c, col)
        x[:, d] = col
    return x


def write_samples(path, x):
    with open(path, "w") as fh:
        for row in x:
            fh.write(" ".join(repr(float(v)) for v in row) + "\n")


# ---------------------------------------------------------------------------------------------
# Running the C tool and comparing
# ---------------------------------------------------------------------------------------------


def run_tool(alkaidc, model_path, x, tmpdir, timeout):
    """Run `alkaidc run`; returns (returncode, stdout+stderr text, output text or None)."""
    inp = os.path.join(tmpdir, "in.txt")
    out = os.path.join(tmpdir, "out.txt")
    if os.path.exists(out):
        os.unlink(out)
    write_samples(inp, x)
    cmd = [alkaidc, "run", model_path, "--input", inp, "--output", out]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timed out after %ss: %s" % (timeout, " ".join(cmd)), None
    text = None
    if os.path.exists(out):
        with open(out, "r") as fh:
            text = fh.read()
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), text


def bits_of(v):
    return struct.pack("<d", v)


def compare(name, x, expect, text, check_format):
    """Compare the C output text with the oracle; returns a list of problem strings."""
    problems = []
    shown = set()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != expect.shape[0]:
        return ["%s: C output has %d lines, expected %d" % (name, len(lines), expect.shape[0])]
    for s, line in enumerate(lines):
        tokens = line.split(" ") if line else []
        if len(tokens) != expect.shape[1]:
            problems.append("%s: sample %d: C printed %d values, expected %d: %r"
                            % (name, s, len(tokens), expect.shape[1], line[:200]))
            continue
        for j, tok in enumerate(tokens):
            want = float(expect[s, j])
            try:
                got = float(tok)
            except ValueError:
                problems.append("%s: sample %d output %d: unparsable %r" % (name, s, j, tok))
                continue
            if bits_of(got) != bits_of(want):
                problems.append("%s: sample %d output %d: C %r != oracle %r"
                                % (name, s, j, tok, repr(want)))
                if s not in shown:  # the input once per failing sample, to reproduce it
                    shown.add(s)
                    problems[-1] += "\n     input of sample %d: %s" % (
                        s, " ".join(repr(float(v)) for v in x[s]))
            elif check_format and tok != repr(got):
                problems.append("%s: sample %d output %d: value right but printed %r, "
                                "repr is %r" % (name, s, j, tok, repr(got)))
        if len(problems) >= MAX_REPORTED:
            break
    return problems


def check_model(args, spec, tmpdir):
    """Returns True when the model passes.

    `spec` is MODEL, or RUN_MODEL=ORACLE_MODEL to run a file the oracle cannot read (a legacy
    spec version 2 or 3) against the oracle's evaluation of its reference-upgraded v4 form.
    """
    path, _, oracle_path = spec.partition("=")
    oracle_path = oracle_path or path
    name = os.path.basename(path)
    try:
        model = A.load(oracle_path)
    except (A.AlirError, OSError) as e:
        print("FAIL %s: the oracle cannot load it: %s" % (name, e))
        return False
    if model.n_in == 0:
        print("skip %s: no inputs" % name)
        return True
    rng = np.random.default_rng(args.seed)
    x = generate(model, rng, args.samples)

    # Drop samples whose (wrapped) inputs push a lookup out of its table: the interpreter
    # rejects those (spec 4.2), so they cannot be compared.  Keep one to test the rejection.
    oob_sample = None
    for attempt in range(5):
        _, bad = model.predict(x, lookup_oob="mask")
        if not bad.any():
            break
        if oob_sample is None:
            oob_sample = x[np.argmax(bad)].copy()
        x[bad] = generate(model, rng, int(bad.sum()), in_range_only=(attempt > 0))
    else:
        print("FAIL %s: lookups go out of range even for in-range inputs (unsound model?)" % name)
        return False
    try:
        expect = model.predict(x)
    except A.AlirError as e:
        print("FAIL %s: oracle error: %s" % (name, e))
        return False
    for w in model.warnings:
        print("note %s: oracle: %s" % (name, w))

    rc, log, text = run_tool(args.alkaidc, path, x, tmpdir, args.timeout)
    if rc != 0 or text is None:
        print("FAIL %s: alkaidc run exited with %s%s" % (
            name, rc, "" if text is not None or rc != 0 else " but wrote no output"))
        if log.strip():
            print("     " + log.strip().replace("\n", "\n     ")[:4000])
        return False
    problems = compare(name, x, expect, text, not args.no_format_check)
    if problems:
        for p in problems[:MAX_REPORTED]:
            print("FAIL " + p)
        return False

    if oob_sample is not None and not args.no_oob_check:
        rc, log, _ = run_tool(args.alkaidc, path, oob_sample[None, :], tmpdir, args.timeout)
        if rc == 0:
            print("FAIL %s: alkaidc accepted a sample whose lookup is out of range: %s"
                  % (name, " ".join(repr(float(v)) for v in oob_sample)))
            return False
        print("ok   %s: out-of-range lookup rejected (exit %s)" % (name, rc))

    print("ok %s: %d samples x %d outputs" % (name, x.shape[0], model.n_out))
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description="Compare `alkaidc run` with the numpy ALIR oracle.")
    ap.add_argument("--alkaidc", required=True, help="path of the alkaidc executable")
    ap.add_argument("--samples", type=int, default=1000, help="samples per model (1000)")
    ap.add_argument("--seed", type=int, default=0, help="numpy seed (0)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per alkaidc run (600)")
    ap.add_argument("--no-format-check", action="store_true",
                    help="accept any float spelling, compare values only")
    ap.add_argument("--no-oob-check", action="store_true",
                    help="do not check that an out-of-range lookup makes alkaidc fail")
    ap.add_argument("models", nargs="+", metavar="MODEL",
                    help="ALIR v4 JSON files (.json[.gz]), or RUN_MODEL=ORACLE_MODEL pairs")
    args = ap.parse_args(argv)

    if not os.path.isfile(args.alkaidc) or not os.access(args.alkaidc, os.X_OK):
        print("check_run: error: alkaidc not found or not executable: %s" % args.alkaidc,
              file=sys.stderr)
        return 2
    if args.samples < 1:
        print("check_run: error: --samples must be >= 1", file=sys.stderr)
        return 2

    ok = True
    with tempfile.TemporaryDirectory(prefix="check_run.") as tmpdir:
        for path in args.models:
            ok = check_model(args, path, tmpdir) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
