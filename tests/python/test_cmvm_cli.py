#!/usr/bin/python3
"""Issue 4, "Done when" 2 (last part): CMVM and SCM solutions written by `alkaidc cmvm -o` /
`alkaidc scm -o` run under `alkaidc run` with the expected outputs, x . W computed by numpy
(exact: the weights are dyadic and the products fit a double), in both solver modes.

Usage: /usr/bin/python3 test_cmvm_cli.py ALKAIDC
"""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

LINE = re.compile(r"^cost=\S+ adders=\d+ latency=\S+ time_ms=\S+$")


def run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), proc.returncode, proc.stderr))
    return proc.stdout


def check(alkaidc, tmp, name, solve_cmd, w, x):
    out = run(solve_cmd + ["-o", os.path.join(tmp, name + ".json")])
    if not LINE.match(out.strip()):
        return "%s: unexpected summary line %r" % (name, out)
    inp = os.path.join(tmp, "in.txt")
    np.savetxt(inp, x, fmt="%d")
    got = np.loadtxt(run([alkaidc, "run", os.path.join(tmp, name + ".json"), "--input", inp])
                     .splitlines(), ndmin=2)
    want = x @ w
    bad = np.argwhere(got != want)
    if len(bad):
        s, j = bad[0]
        return "%s: %d mismatches, sample %d output %d: %r vs %r" % (
            name, len(bad), s, j, got[s, j], want[s, j])
    return None


def main():
    alkaidc = sys.argv[1]
    rng = np.random.default_rng(7)
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, m, bits in ((8, 6, 4), (12, 12, 8), (5, 9, 6)):
            w = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=(n, m)) / 2.0 ** (bits // 2)
            kernel = os.path.join(tmp, "kernel_%d.txt" % n)
            np.savetxt(kernel, w, fmt="%r")
            x = rng.integers(-128, 128, size=(500, n)).astype(np.float64)
            for mode in ("compat", "improved"):
                problems.append(check(alkaidc, tmp, "cmvm_%d_%s" % (n, mode),
                                      [alkaidc, "cmvm", kernel, "--mode", mode], w, x))
        for c in (3.0, -0.375, 45.0, 1234.5):
            x = rng.integers(-128, 128, size=(500, 1)).astype(np.float64)
            problems.append(check(alkaidc, tmp, "scm_%r" % c, [alkaidc, "scm", repr(c)],
                                  np.array([[c]]), x))
    failed = [p for p in problems if p]
    for p in failed:
        print("FAIL " + p)
    print("%d passed, %d failed" % (len(problems) - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
