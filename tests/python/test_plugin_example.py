#!/usr/bin/python3
"""Issue 6, "Done when" 1: the reference's plugin test (tests/test_plugin.py, spec frontends.md 5).

The example model is converted through the `alkaid` tracer plugin with `alkaidc convert --local`,
parametrised over input_shape in {(4, 5), None} x inputs given explicitly in {False, True}. Each
converted program, run by `alkaidc run` on 1,000 samples uniform[0, 1) * 256 - 128 (float32, not
pre-quantized), must equal the numpy evaluation of operation(x) (example_model.py, written from
the spec) bit for bit. With no shape and no inputs the conversion must fail with the "inputs must
be provided" error.

Usage: /usr/bin/python3 test_plugin_example.py ALKAIDC
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from example_model import operation  # noqa: E402

SHAPE = (4, 5)


def convert(alkaidc, tmp, input_shape, manual):
    message = os.path.join(tmp, "message.json")
    with open(message, "w") as fh:
        json.dump({"framework": "alkaid",
                   "model": {"input_shape": list(input_shape) if input_shape else None}}, fh)
    out = os.path.join(tmp, "model.alir.json")
    cmd = [alkaidc, "convert", message, "--local", "-o", out]
    if manual:
        cmd += ["--input-shape", "%d,%d" % SHAPE]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return proc, out


def check_values(alkaidc, model, tmp):
    rng = np.random.default_rng(0)
    x = (rng.random((1000,) + SHAPE) * 256 - 128).astype(np.float32).astype(np.float64)
    inp = os.path.join(tmp, "in.txt")
    with open(inp, "w") as fh:
        for sample in x:
            fh.write(" ".join(repr(float(v)) for v in sample.ravel()) + "\n")
    run = subprocess.run([alkaidc, "run", model, "--input", inp], capture_output=True, text=True)
    if run.returncode != 0:
        return "alkaidc run failed: " + run.stderr.strip()
    got = np.array([[float(v) for v in line.split()] for line in run.stdout.splitlines()])
    want = np.array([operation(sample).ravel() for sample in x])
    if got.shape != want.shape:
        return "shape %s, expected %s" % (got.shape, want.shape)
    bad = np.argwhere(got != want)
    if len(bad):
        s, j = bad[0]
        return "%d mismatches; sample %d output %d: %r vs numpy %r" % (
            len(bad), s, j, got[s, j], want[s, j])
    return None


def main():
    alkaidc = sys.argv[1]
    passed = failed = 0
    for input_shape in (SHAPE, None):
        for manual in (False, True):
            case = "input_shape=%s manual=%s" % (input_shape, manual)
            with tempfile.TemporaryDirectory() as tmp:
                proc, model = convert(alkaidc, tmp, input_shape, manual)
                if input_shape is None and not manual:
                    ok = proc.returncode != 0 and "inputs must be provided" in proc.stderr
                    problem = None if ok else "expected the 'inputs must be provided' error, " \
                        "got exit %d: %s" % (proc.returncode, proc.stderr.strip())
                elif proc.returncode != 0:
                    problem = "conversion failed: " + proc.stderr.strip()
                else:
                    problem = check_values(alkaidc, model, tmp)
            if problem:
                print("FAIL %s: %s" % (case, problem))
                failed += 1
            else:
                print("ok %s" % case)
                passed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
