#!/usr/bin/python3
"""A Keras model file's bytes on the wire: `alkaidc convert` (through a daemon and in process)
and `Client.convert_file` send them under `model.file` / `model.weights_file`, and the tracer on
the other side reads the same payload the C reader gives for the file itself (keras_dump). The
tracer here is the test plugin keras_probe, which writes the payload it read and then fails; the
real `keras` tracer does not exist yet, so without the probe a conversion fails naming the
missing framework. Broken files fail in alkaidc before any daemon sees them, and through the
Python client in the daemon, naming the culprit.

Environment (set by meson): ALKAIDD, ALKAIDC, ALK_KERAS_PROBE (the plugin), ALK_KERAS_DUMP,
PYTHONPATH with the client and tests/rpc (harness.py).
"""
import json
import os
import subprocess
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kerasgen as kg  # noqa: E402
from harness import ALKAIDC, AlkaidError, Client, Daemon, temp_dir  # noqa: E402

PROBE = os.environ["ALK_KERAS_PROBE"]
DUMP = os.environ["ALK_KERAS_DUMP"]


def model():
    m = kg.Functional("wire")
    x = m.input((3,), name="x")
    dense = kg.Layer("Dense", "dense", {"units": 2},
                     vars=[kg.Var("kernel", np.arange(6, dtype=np.float32).reshape(3, 2) / 4),
                           kg.Var("bias", np.array([0.5, -1], np.float32))])
    m.output(m.call(dense, x, out_shape=(2,)))
    return m


class Wire(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = temp_dir("keras-wire-")
        cls.plugins = os.path.join(cls.dir, "plugins")
        os.mkdir(cls.plugins)
        with open(os.path.join(cls.plugins, "keras_probe.plugin"), "w") as f:
            f.write(f"group = alir_tracer.plugins\nname = keras_probe\nlibrary = {PROBE}\n"
                    "abi = 2\n")
        cls.out = os.path.join(cls.dir, "payload.json")
        m = model()
        cls.keras = os.path.join(cls.dir, "m.keras")
        kg.write_keras(m, cls.keras)
        cls.h5 = os.path.join(cls.dir, "m.h5")
        kg.write_h5(m, cls.h5, keras=2)
        cls.json = os.path.join(cls.dir, "m.json")
        cls.weights = os.path.join(cls.dir, "w.h5")
        kg.write_json_pair(m, cls.json, cls.weights)
        cls.daemon = Daemon(cls.dir, args=["--plugin-dir", cls.plugins],
                            env={"ALK_KERAS_PROBE_OUT": cls.out})

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()

    def expected(self, *files):
        r = subprocess.run([DUMP, *files], capture_output=True, check=True)
        return json.loads(r.stdout)

    def probed(self):
        with open(self.out) as f:
            payload = json.load(f)
        os.remove(self.out)
        return payload

    def alkaidc(self, *args):
        env = dict(os.environ, ALK_KERAS_PROBE_OUT=self.out)
        env.pop("ALKAID_CONNECT", None)
        return subprocess.run([ALKAIDC, "convert", *args, "-o", os.path.join(self.dir, "o.json")],
                              capture_output=True, text=True, env=env, timeout=60)

    def test_alkaidc_daemon_and_local_send_the_file(self):
        for files in ([self.keras], [self.h5], [self.json, "--weights", self.weights]):
            expected = self.expected(*[f for f in files if f != "--weights"])
            for where in (["--connect", self.daemon.url],
                          ["--local", "--plugin-dir", self.plugins]):
                r = self.alkaidc(*files, "--framework", "keras_probe", *where)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn("keras_probe tracer: read a", r.stderr)
                self.assertEqual(self.probed(), expected, f"{files} {where[0]}")

    def test_python_client_convert_file(self):
        with Client(self.daemon.url, timeout=30) as c:
            for files, weights in ((self.keras, None), (self.h5, None), (self.json, self.weights)):
                with self.assertRaises(AlkaidError) as e:
                    c.convert_file(files, weights, framework="keras_probe")
                self.assertEqual(e.exception.name, "EINVAL")
                self.assertIn("keras_probe tracer: read a", e.exception.message)
                args = [files] + ([weights] if weights else [])
                self.assertEqual(self.probed(), self.expected(*args))
            # A broken file reaches the daemon through the client; the reader names the entry.
            cut = os.path.join(self.dir, "cut.keras")
            with open(self.keras, "rb") as f, open(cut, "wb") as g:
                g.write(f.read()[:200])
            with self.assertRaises(AlkaidError) as e:
                c.convert_file(cut, framework="keras_probe")
            self.assertIn("model.file: not a readable zip archive", e.exception.message)
            with self.assertRaises(AlkaidError) as e:
                c.convert_file(self.dir)
            self.assertIn("is a directory", e.exception.message)
            with self.assertRaises(AlkaidError) as e:
                c.convert({"file": "not bytes"}, framework="keras")
            self.assertEqual(e.exception.where, "model.file")

    def test_keras_is_implied_and_missing_for_now(self):
        # No keras tracer yet: the request is built with framework "keras" and refused by name.
        for files in ([self.keras], [self.h5], [self.json, "--weights", self.weights]):
            for where in (["--connect", self.daemon.url], ["--local"]):
                r = self.alkaidc(*files, *where)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn("unknown framework 'keras'", r.stderr)

    def test_broken_files_fail_in_alkaidc(self):
        cut = os.path.join(self.dir, "broken.keras")
        with open(self.keras, "rb") as f, open(cut, "wb") as g:
            g.write(f.read()[:-40])
        cases = [
            ([cut], "broken.keras: not a readable zip archive"),
            ([self.weights], "holds only weights"),
            ([self.json], "--weights weights.h5"),
            ([self.json, "--weights", self.json], "the weights file is not an HDF5 file"),
            ([self.dir], "is a directory"),
        ]
        for args, text in cases:
            # --connect to a daemon that would accept anything: the file never gets there.
            r = self.alkaidc(*args, "--framework", "keras_probe", "--connect", self.daemon.url)
            self.assertEqual(r.returncode, 1, f"{args}: {r.stderr}")
            self.assertIn(text, r.stderr)
            self.assertFalse(os.path.exists(self.out), f"{args} reached the tracer")


if __name__ == "__main__":
    unittest.main(verbosity=2)
