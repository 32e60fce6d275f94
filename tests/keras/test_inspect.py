#!/usr/bin/python3
"""`alkaidc inspect` on Keras model files: every layer of the model with its class, module,
shapes, stored weights (dtype and shape as the description gives them) and whether a handler
exists, so that every unsupported layer shows at once; the same listing for the Keras 3 .keras,
the legacy .h5 and the Keras 2 json + weights forms.

Environment (set by meson): ALKAIDC.
"""
import os
import re
import subprocess
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kerasgen as kg  # noqa: E402

ALKAIDC = os.environ["ALKAIDC"]


def model():
    """in -> Dense(3) -> LayerNormalization -> QKeras QDense -> ReLU (two unsupported)."""
    m = kg.Functional("inspected")
    x = m.input((4,), name="x")
    dense = kg.Layer("Dense", "dense", {"units": 3, "activation": "relu", "use_bias": True},
                     vars=[kg.Var("kernel", np.zeros((4, 3), np.float32)),
                           kg.Var("bias", np.zeros(3, np.float32))])
    ln = kg.Layer("LayerNormalization", "layer_normalization", {"axis": [-1]},
                  vars=[kg.Var("gamma", np.ones(3, np.float32)),
                        kg.Var("beta", np.zeros(3, np.float32))])
    q = kg.Layer("QDense", "q_dense", {"units": 2}, module="qkeras.qlayers",
                 registered_name="qkeras>QDense",
                 vars=[kg.Var("kernel", np.zeros((3, 2), np.float32))])
    relu = kg.Layer("ReLU", "re_lu", {})
    h = m.call(dense, x, out_shape=(3,))
    h = m.call(ln, h, out_shape=(3,))
    h = m.call(q, h, out_shape=(2,))
    m.output(m.call(relu, h, out_shape=(2,)))
    return m


class Inspect(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="keras-inspect-")
        cls.keras = os.path.join(cls.dir, "m.keras")
        kg.write_keras(model(), cls.keras)

    def inspect(self, *args):
        r = subprocess.run([ALKAIDC, "inspect", *args], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_every_layer_and_every_unsupported_one(self):
        out = self.inspect(self.keras)
        self.assertIn("model: inspected (Functional), 1 input(s), 1 output(s)", out)
        self.assertRegex(out, r"dense +Dense +keras\.layers +\(None, 4\) -> \(None, 3\)")
        self.assertRegex(out, r"layers/dense/vars/0 +float32 +\(4, 3\)")
        self.assertRegex(out, r"layers/dense/vars/1 +float32 +\(3,\)")
        self.assertRegex(out, r"handler: NO: unsupported layer LayerNormalization "
                              r"\(module keras\.layers\)")
        self.assertRegex(out, r"q_dense +QDense +qkeras\.qlayers")
        self.assertIn("no alkaid_keras plugin named 'qkeras' is installed", out)
        self.assertEqual(len(re.findall(r"handler: yes", out)), 2)  # dense, re_lu
        self.assertIn("4 layer(s) and op(s), 2 without a handler", out)

    def test_broken_file_is_refused(self):
        cut = os.path.join(self.dir, "cut.keras")
        with open(self.keras, "rb") as f, open(cut, "wb") as g:
            g.write(f.read()[:100])
        r = subprocess.run([ALKAIDC, "inspect", cut], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cut.keras: not a readable zip archive", r.stderr)


if __name__ == "__main__":
    unittest.main()
