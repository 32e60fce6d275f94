#!/usr/bin/python3
"""Issue 6, "Done when" 4: the out-of-tree plugin example (examples/plugin) builds with
pkg-config against the *installed* alkaid (a `meson install --destdir` into a temp dir: headers,
library, alkaid.pc) and converts its model through `alkaidc convert --local`; the converted
program, run by `alkaidc run`, equals numpy's relu(q(x) @ W + b) with q = 8-bit truncate + wrap.

Usage: /usr/bin/python3 test_out_of_tree_plugin.py BUILD_DIR SOURCE_DIR ALKAIDC
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np


def run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise RuntimeError("%s failed (%d): %s%s" % (" ".join(cmd), proc.returncode,
                                                   proc.stdout, proc.stderr))
    return proc


def main():
    build, source, alkaidc = sys.argv[1:4]
    with tempfile.TemporaryDirectory() as tmp:
        inst = os.path.join(tmp, "inst")
        run(["meson", "install", "-C", build, "--destdir", inst, "--quiet", "--no-rebuild"])
        pcs = glob.glob(os.path.join(inst, "**", "pkgconfig", "alkaid.pc"), recursive=True)
        if len(pcs) != 1:
            print("FAIL: alkaid.pc not installed exactly once: %s" % pcs)
            return 1
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]),
                   PKG_CONFIG_SYSROOT_DIR=inst)
        work = os.path.join(tmp, "plugin")
        shutil.copytree(os.path.join(source, "examples", "plugin"), work)
        run(["make", "-C", work, "libdense.so"], env=env)
        # The plugin must have been compiled from the installed headers only.
        cflags = run(["pkg-config", "--cflags", "alkaid"], env=env).stdout
        if inst not in cflags:
            print("FAIL: pkg-config does not point into the installed tree: %s" % cflags)
            return 1
        plugins = os.path.join(tmp, "plugins")
        os.mkdir(plugins)
        for name in ("libdense.so", "dense.plugin"):
            shutil.copy(os.path.join(work, name), plugins)
        listing = run([alkaidc, "plugins"], env=dict(os.environ, ALKAID_PLUGIN_PATH=plugins))
        if "dense" not in listing.stdout or "loaded" not in listing.stdout:
            print("FAIL: the plugin is not listed as loaded:\n" + listing.stdout)
            return 1
        model_path = os.path.join(work, "model.json")
        out = os.path.join(tmp, "dense.alir.json")
        run([alkaidc, "convert", model_path, "--local", "-o", out],
            env=dict(os.environ, ALKAID_PLUGIN_PATH=plugins))

        model = json.load(open(model_path))["model"]
        w = np.array(model["weights"], dtype=np.float64)
        b = np.array(model["bias"], dtype=np.float64)
        rng = np.random.default_rng(1)
        x = rng.uniform(-300, 300, size=(1000, w.shape[0]))
        inp = os.path.join(tmp, "in.txt")
        np.savetxt(inp, x, fmt="%r")
        got = np.loadtxt(run([alkaidc, "run", out, "--input", inp]).stdout.splitlines(), ndmin=2)
        q = np.mod(np.floor(x) + 128, 256) - 128
        want = np.maximum(q @ w + b, 0)
        bad = np.argwhere(got != want)
        if len(bad):
            s, j = bad[0]
            print("FAIL: %d mismatches; sample %d output %d: %r vs numpy %r"
                  % (len(bad), s, j, got[s, j], want[s, j]))
            return 1
    print("ok out-of-tree plugin: built from installed headers, converted, 1000 samples exact")
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
