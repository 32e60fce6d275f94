#!/usr/bin/python3
"""The `hgq` plugin against the oracle (issue 13, Done-when 1-3).

1. Every model of hgq_models.py: written (.keras, and the Keras 3 .h5 for the `legacy` ones),
   converted with `alkaidc convert --local` (auto-width inputs for WRAP models, --input-kif
   1,3,8 for SAT ones, as HGQ2's own test), every form giving the same ALIR, and `alkaidc run`
   on 1,000 samples equal to hgq_oracle.py bit for bit (HGQ2's test allows 1 LSB; we allow
   none). The broken models must fail naming the layer.
2. The two real HGQ2 files of ../shared/fixtures/keras, converted in-process and through a
   daemon, against fixture_eval.py's independent evaluation on 1,000 inputs.
3. A sample through a real daemon (the same ALIR as --local), and on-demand loading: the hgq
   plugin is listed on-demand until a model holds an hgq layer (a plain Keras model does not
   load it), two HGQ2 models load it once (loaded, same generation), a broken HGQ2 config fails
   the request naming the layer and the daemon goes on, a reload keeps HGQ2 models
   converting to the same ALIR, and unload/load re-registers the plugin.

The machinery (converting, running, comparing, the daemon sample) is tests/keras/run_models.py's.
Exit status: 0 all good, 1 a failure, 77 skipped (no keras tracer or no hgq plugin in
`alkaidc plugins --local`).
Usage: run_hgq.py [--alkaidc PATH] [--alkaidd PATH] [--samples N] [--only SUBSTRING]...
                  [--keep DIR] [--jobs N] [--no-daemon]
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "keras"))
import fixture_eval as fe  # noqa: E402
import hgq_models as hm  # noqa: E402
import models as km  # noqa: E402
import run_models as rm  # noqa: E402

DAEMON_SAMPLE = ("QDense[kif,SAT,RND]", "Merge", "QSoftmax[stable]", "QMultiHeadAttention",
                 "QGRU[reset_after=True]", "QDenseT[bn]")
FIXTURES = ("hgq2_jsc_16-64-32-32-5.keras", "hgq2_randmat_64x64_bw8.keras")


class FixtureCase:
    """A real HGQ2 file as a case of run_models.Runner: its bytes as they are, auto-width
    inputs (both start with a WRAP input quantizer), fixture_eval.py as the oracle."""

    def __init__(self, path):
        self.fixture_path = path
        self.name = f"fixture {os.path.basename(path)}"
        self.evaluator = fe.FixtureModel(path)
        self.kif = None
        self.input_shapes = None
        self.options = None
        self.plain_float = False
        self.legacy = False
        self.mutate = None

    def file_stem(self):
        return "".join(c if c.isalnum() else "_" for c in self.name)

    def data(self, n):
        return [self.evaluator.sample_inputs(n)]

    def expected(self, datas):
        return [self.evaluator.predict(datas[0])]


class Models:
    """write_forms for run_models.Runner: hgq_models' files, the fixtures as they are."""

    @staticmethod
    def write_forms(case, directory):
        if isinstance(case, FixtureCase):
            return {"keras": [case.fixture_path]}
        return hm.write_forms(case, directory)


def plugin_present(alkaidc, group, name):
    r = subprocess.run([alkaidc, "plugins", "--local"], capture_output=True, text=True)
    return any(line.split()[:2] == [group, name] for line in r.stdout.splitlines())


def plugin_state(client):
    """The hgq plugin's state in a daemon's listing (and its manifest)."""
    found = [p for p in client.plugins() if p["group"] == "alkaid_keras" and p["name"] == "hgq"]
    if len(found) != 1:
        return None, None
    return found[0]["state"], found[0].get("manifest")


class OnDemand:
    """Done-when 3 through one daemon (see the module's doc)."""

    def __init__(self, runner, tmp, cases):
        self.runner = runner
        self.tmp = tmp
        self.by_name = {c.name: c for c in cases}
        self.plain = [next(km.dense_cases())]  # Dense[bias]: a model without HGQ2 layers

    def fail(self, text):
        self.runner.failures.append(f"on-demand loading: {text}")
        print(f"FAIL on-demand loading: {text}", flush=True)

    def convert(self, client, case):
        directory = os.path.join(self.tmp, "on-demand")
        os.makedirs(directory, exist_ok=True)
        module = km if case in self.plain else hm
        path = module.write_forms(case, directory)["keras"][0]
        reply = client.convert_file(path, inputs_kif=None if case.kif is None else
                                    list(case.kif), timeout=120)
        program = reply["alir"]
        return json.loads(program.decode() if isinstance(program, bytes) else program)

    def local_alir(self, case):
        path = os.path.join(self.tmp, case.file_stem(), "keras.alir.json")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)

    def run(self, alkaidd):
        os.environ.setdefault("ALKAIDD", alkaidd)
        os.environ.setdefault("ALKAIDC", self.runner.alkaidc)
        from harness import Daemon  # noqa: E402 (tests/rpc, on PYTHONPATH)
        a, b = self.by_name["QDense[kif,SAT,RND]"], self.by_name["Merge"]
        broken = hm.broken_cases()[0]
        d = Daemon(self.tmp, name="hgq-od")
        c = ctl = None
        try:
            c, ctl = d.client(timeout=180), d.control(timeout=60)
            self.steps(c, ctl, self.plain[0], a, b, broken)
        finally:
            for conn in (c, ctl):
                if conn is not None:
                    conn.close()
            d.stop()

    def expect_state(self, c, want, when):
        state, _ = plugin_state(c)
        if state not in want:
            self.fail(f"{when}: hgq is {state!r}, expected {' or '.join(want)}")

    def steps(self, c, ctl, plain, a, b, broken):
        self.expect_state(c, ("on_demand",), "before any conversion")
        self.convert(c, plain)
        self.expect_state(c, ("on_demand",), "after a model without HGQ2 layers")
        first = self.convert(c, a)
        if self.local_alir(a) not in (None, first):
            self.fail(f"{a.name}: the daemon's ALIR differs from --local")
        self.expect_state(c, ("loaded",), "after an HGQ2 model")
        generation = ctl.stats()["generation"]
        self.convert(c, b)
        self.expect_state(c, ("loaded",), "after a second HGQ2 model")
        if ctl.stats()["generation"] != generation:
            self.fail("a second HGQ2 model changed the plugin generation")
        try:
            self.convert(c, broken)
            self.fail(f"{broken.name} converted through the daemon")
        except Exception as e:  # AlkaidError: the request failed, as it must
            if "q_dense" not in str(e):
                self.fail(f"{broken.name}: the daemon's error names no layer: {e}")
        c.info()  # the daemon goes on
        ctl.reload()
        self.expect_state(c, ("loaded", "on_demand"), "after a reload")
        if self.convert(c, a) != first:
            self.fail("after a reload the HGQ2 model converts differently")
        self.expect_state(c, ("loaded",), "after a reload and an HGQ2 model")
        _, manifest = plugin_state(c)
        ctl.unload("hgq")
        try:
            self.convert(c, a)
            self.fail("an HGQ2 model converted with the hgq plugin unloaded")
        except Exception as e:
            if "hgq" not in str(e):
                self.fail(f"with hgq unloaded the error does not name it: {e}")
        if manifest:
            ctl.load(manifest)
            if self.convert(c, a) != first:
                self.fail("after unload/load the HGQ2 model converts differently")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    build = os.path.join(HERE, "..", "..", "build")
    ap.add_argument("--alkaidc", default=os.environ.get(
        "ALKAIDC", os.path.join(build, "client", "alkaidc")))
    ap.add_argument("--alkaidd", default=os.environ.get(
        "ALKAIDD", os.path.join(build, "daemon", "alkaidd")))
    ap.add_argument("--fixtures", default=os.path.join(os.environ.get(
        "ALK_FIXTURES", os.path.join(HERE, "..", "..", "..", "shared", "fixtures")), "keras"))
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--keep", help="write the files into this directory and keep them")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-daemon", action="store_true")
    args = ap.parse_args()
    if not rm.keras_tracer_present(args.alkaidc):
        print("no keras tracer yet (alkaidc plugins --local lists none): skipped")
        return 77
    if not plugin_present(args.alkaidc, "alkaid_keras", "hgq"):
        print("no hgq plugin yet (alkaidc plugins --local lists none): skipped")
        return 77
    start = time.monotonic()
    cases, broken = hm.cases(), hm.broken_cases()
    fixtures = [FixtureCase(os.path.join(args.fixtures, f)) for f in FIXTURES]
    if args.only:
        keep = lambda c: any(s in c.name for s in args.only)  # noqa: E731
        cases, broken = [c for c in cases if keep(c)], [c for c in broken if keep(c)]
        fixtures = [c for c in fixtures if keep(c)]
    tmp = args.keep or tempfile.mkdtemp(prefix="hgq-models-", dir="/tmp")
    os.makedirs(tmp, exist_ok=True)
    runner = rm.Runner(args, tmp, models=Models)
    try:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(runner.check_model, cases + fixtures))
            list(pool.map(runner.check_broken, broken))
        if not args.no_daemon:
            sample = [c for c in cases if c.name in DAEMON_SAMPLE] + fixtures
            if sample:
                runner.check_daemon(sample, args.alkaidd)
            if not args.only:
                OnDemand(runner, tmp, cases).run(args.alkaidd)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    dropped = sum(getattr(c, "dropped", 0) for c in cases)
    print(f"{len(cases)} HGQ2 models ({sum(c.beyond_reference for c in cases)} beyond the "
          f"reference), {len(fixtures)} fixtures, {len(broken)} broken models, {args.samples} "
          f"samples each ({dropped} ambiguous samples redrawn): {len(runner.failures)} failures "
          f"in {time.monotonic() - start:.1f} s")
    return 1 if runner.failures else 0


if __name__ == "__main__":
    sys.exit(main())
