#!/usr/bin/python3
"""Issue 17: `alkaidc run` and `alkaidc inspect` on the command line (README.md, "alkaidc"):
the sample format (spaces, tabs, commas, blank lines, # comments, standard input and output),
every input error with the line and column it names, and the exit codes 0 (success), 1 (a
malformed model or sample), 2 (usage) and 3 (a file that cannot be read or written); inspect's
whole summary, computed here from the program's JSON (spec trace-alir.md 4.1; minimal kif of
cmvm.md 2.3 via alir_numpy). The daemon commands' codes 4-7 are in tests/rpc/test_cli_exits.py.

Usage: /usr/bin/python3 test_cli_run.py ALKAIDC FIXTURES_DIR
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from alir_numpy import minimal_kif  # noqa: E402

ALKAIDC = None
FIXTURES = None
EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_IO = 0, 1, 2, 3

OPCODE_NAMES = {-2: "negate", -1: "read", 0: "add", 1: "sub", 2: "relu", 3: "quantize",
                4: "add-const", 5: "const", 6: "msb-mux", 7: "mul", 8: "lookup",
                9: "bit-unary", 10: "bit-binary", 11: "sum"}

# x0 in (-8, 7.5, 0.5), x1 in (0, 3, 1); outputs: x0 + 4 x1, -(2 (x0 - x1)) and a constant 0.
PROGRAM = {"model": [
    [2, 3], [0, 0], [2, 3, -1], [0, 1, 0], [False, True, False],
    [[[], -1, [0], [-8.0, 7.5, 0.5], 0, 0],
     [[], -1, [1], [0.0, 3.0, 1.0], 0, 0],
     [[0, 1], 0, [2], [-8.0, 19.5, 0.5], 1.119140625, 2],
     [[0, 1], 1, [0], [-11.0, 7.5, 0.5], 1.169921875, 4.5]],
    1, 1, None], "meta": "ALIRModel", "spec_version": 4}


def alkaidc(*args, stdin=None):
    return subprocess.run([ALKAIDC, *args], capture_output=True, text=True, input=stdin)


def fmt_qint(q):
    k, i, f = minimal_kif(*q)
    return "[%r, %r] step %r  kif (%d, %d, %d)" % (float(q[0]), float(q[1]), float(q[2]), k, i, f)


def expected_inspect(path, doc):
    """inspect's summary, from the JSON alone."""
    m = doc["model"]
    (n_in, n_out), inp_shifts, out_idxs, out_shifts, out_negs, ops = m[:6]
    tables = (m[8] if len(m) > 8 else None) or []
    lines = ["file: %s" % path, "shape: %d inputs, %d outputs" % (n_in, n_out),
             "ops: %d" % len(ops)]
    for opcode in sorted({op[1] for op in ops}):
        count = sum(op[1] == opcode for op in ops)
        lines.append("  %3d %-10s %d" % (opcode, OPCODE_NAMES[opcode], count))
    cost = 0
    for op in ops:
        cost += op[5]
    lats = [ops[j][4] for j in out_idxs] or [0]  # index -1 reads the last op (spec 4.1)
    lines += ["cost: %r" % float(cost), "latency: %r .. %r" % (float(min(lats)), float(max(lats))),
              "carry_size: %d  adder_size: %d" % (m[6], m[7]), "inputs:"]
    for n in range(n_in):
        q = [0.0, 0.0, 1.0]
        for op in ops:
            if op[1] == -1 and op[2][0] == n:
                q = op[3]
        lines.append("  %4d: shift %d  %s" % (n, inp_shifts[n], fmt_qint(q)))
    lines.append("outputs:")
    for j in range(n_out):
        if out_idxs[j] < 0:
            lines.append("  %4d: constant 0" % j)
            continue
        lo, hi, step = (v * 2.0 ** out_shifts[j] for v in ops[out_idxs[j]][3])
        if out_negs[j]:
            lo, hi = -hi, -lo
        lines.append("  %4d: op %d shift %d%s  %s" % (j, out_idxs[j], out_shifts[j],
                                                      " negated" if out_negs[j] else "",
                                                      fmt_qint((lo, hi, step))))
    lines.append("lookup tables: %d" % len(tables))
    for t, table in enumerate(tables):
        spec = table["spec"]
        q = spec["out_qint"]
        lines.append("  %4d: %d entries, inp_width %d, out %s, hash %s" % (
            t, len(table["table"]), spec["inp_width"], fmt_qint((q["min"], q["max"], q["step"])),
            spec["hash"]))
    return "\n".join(lines) + "\n"


class Run(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.model = os.path.join(cls.tmp.name, "model.json")
        with open(cls.model, "w") as fh:
            json.dump(PROGRAM, fh)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name, text=None):
        p = os.path.join(self.tmp.name, name)
        if text is not None:
            with open(p, "w") as fh:
                fh.write(text)
        return p

    def test_samples_in_every_accepted_form(self):
        # x0 = -3.3 floors to -3.5; x1 = 5 wraps to 1; outputs -3.5 + 4, -2 (-3.5 - 1), 0.
        text = "# comment\n\n-3.3 5\n  2,1\n7.5\t3\n"
        r = alkaidc("run", self.model, "--input", self.path("in.txt", text))
        self.assertEqual((r.returncode, r.stderr), (EXIT_OK, ""))
        self.assertEqual(r.stdout, "0.5 9.0 0.0\n6.0 -2.0 0.0\n19.5 -9.0 0.0\n")
        r = alkaidc("run", self.model, stdin=text)
        self.assertEqual(r.stdout, "0.5 9.0 0.0\n6.0 -2.0 0.0\n19.5 -9.0 0.0\n")
        out = self.path("out.txt")
        r = alkaidc("run", self.model, "-i", "-", "-o", out, stdin="1 1\n")
        self.assertEqual((r.returncode, r.stdout), (EXIT_OK, ""))
        with open(out) as fh:
            self.assertEqual(fh.read(), "5.0 0.0 0.0\n")  # an integer 0 negated is 0.0

    def test_sample_errors_name_line_and_column(self):
        cases = [
            ("1 2\n1 2 3\n", "line 2: more than 2 values"),
            ("1 2\n\n1\n", "line 3: 1 values, the model has 2 inputs"),
            ("1 x2\n", "line 1, column 3: not a number"),
            ("1 2\n3;4\n", "line 2, column 1: not a number"),
            ("nan 1\n", "line 1, column 1: value is not finite"),
            ("1 -inf\n", "line 1, column 3: value is not finite"),
            ("1 1e999\n", "line 1, column 3: value is not finite"),
        ]
        for text, message in cases:
            with self.subTest(text=text):
                r = alkaidc("run", self.model, stdin=text)
                self.assertEqual(r.returncode, EXIT_INPUT, r.stderr)
                self.assertIn(message, r.stderr)

    def test_model_errors(self):
        broken = dict(PROGRAM, spec_version=9)
        for name, text, message in (
                ("truncated.json", json.dumps(PROGRAM)[:-5], ""),
                ("version.json", json.dumps(broken), "spec_version"),
                ("not_json.json", "hello", "")):
            with self.subTest(name):
                r = alkaidc("run", self.path(name, text), stdin="1 2\n")
                self.assertEqual(r.returncode, EXIT_INPUT, r.stderr)
                self.assertIn(message, r.stderr)
                self.assertTrue(r.stderr.startswith("alkaidc: "), r.stderr)
                r = alkaidc("inspect", self.path(name))
                self.assertEqual(r.returncode, EXIT_INPUT, r.stderr)

    def test_files_that_cannot_be_read_or_written(self):
        missing = self.path("missing.json")
        r = alkaidc("run", missing, stdin="1 2\n")
        self.assertEqual(r.returncode, EXIT_IO)
        self.assertIn("missing.json", r.stderr)
        r = alkaidc("run", self.model, "--input", self.path("no-samples.txt"))
        self.assertEqual(r.returncode, EXIT_IO)
        r = alkaidc("run", self.model, "--output", self.path("no/such/dir.txt"), stdin="1 2\n")
        self.assertEqual(r.returncode, EXIT_IO)
        self.assertEqual(alkaidc("inspect", missing).returncode, EXIT_IO)

    def test_usage(self):
        for args in (["run"], ["run", self.model, self.model], ["run", self.model, "--bogus"],
                     ["inspect"], ["inspect", self.model, self.model], ["frobnicate"], []):
            with self.subTest(args=args):
                r = alkaidc(*args)
                self.assertEqual(r.returncode, EXIT_USAGE, r.stderr)
                self.assertEqual(r.stdout, "")
        for args in (["run", "--help"], ["inspect", "--help"], ["--help"]):
            with self.subTest(args=args):
                r = alkaidc(*args)
                self.assertEqual(r.returncode, EXIT_OK)
                self.assertIn("usage: alkaidc", r.stdout)

    def test_out_of_range_lookup_is_an_input_error(self):
        # A lookup of 4 entries on the producer (-3, 3, 1), kif (1, 2, 0): pad (-3 + 4) / 1 = 1
        # (spec 4.4), index x + 4 - 1; the read wraps x into [-4, 3], so -4 and 1..3 fall
        # outside the table.
        doc = {"model": [[1, 1], [0], [1], [0], [False],
                         [[[], -1, [0], [-3.0, 3.0, 1.0], 0, 0],
                          [[0], 8, [0], [0.0, 3.0, 1.0], 0, 0]],
                         1, 1, [{"spec": {"hash": "", "out_qint": {"min": 0.0, "max": 3.0,
                                                                  "step": 1.0},
                                          "inp_width": 3}, "table": [0, 1, 2, 3]}]],
               "meta": "ALIRModel", "spec_version": 4}
        path = self.path("lookup.json", json.dumps(doc))
        r = alkaidc("run", path, stdin="-3\n-2\n0\n")
        self.assertEqual((r.returncode, r.stdout), (EXIT_OK, "0.0\n1.0\n3.0\n"), r.stderr)
        r = alkaidc("run", path, stdin="-3\n1\n")
        self.assertEqual(r.returncode, EXIT_INPUT)
        self.assertIn("sample 1", r.stderr)


class Inspect(unittest.TestCase):
    def check(self, path):
        with open(path) as fh:
            doc = json.load(fh)
        r = alkaidc("inspect", path)
        self.assertEqual((r.returncode, r.stderr), (EXIT_OK, ""))
        self.assertEqual(r.stdout, expected_inspect(path, doc))

    def test_hand_written_program(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.json")
            with open(path, "w") as fh:
                json.dump(PROGRAM, fh)
            self.check(path)

    def test_the_references_files(self):
        for name in ("v3_upgraded.json", "testdata_comb_upgraded.json"):
            with self.subTest(name):
                self.check(os.path.join(FIXTURES, "alir", name))


if __name__ == "__main__":
    ALKAIDC, FIXTURES = sys.argv[1], sys.argv[2]
    unittest.main(argv=[sys.argv[0], "-v"])
