"""The torch tracer end to end, with torch's own forward pass as the oracle.

Every model of spec frontends.md §6.2 (torch_models.cases()), every coverage model of §4.3-§4.5
(torch_models.coverage_cases()), and the models of tracer_cases.py (each deliberate difference
from the reference; the spellings the reference's models leave out) is exported with
alkaid_client.torch, then converted twice: by a real daemon (one alkaidd on a private ipc path
for the whole run) and by `alkaidc convert graph.msgpack --local` from the exported file. Both
programs must be the same, and `alkaidc run` of the program on up to 1,000 samples of the kif
grid must equal torch's float64 forward bit for bit (table activations are compared as
round(f(x)·16), as the reference's tests do). The three must-fail cases of §6.2 fail with the
reference's messages; broken and unsupported graphs fail naming their culprit. Every row of the
tracer's table (src/plugins/torch/table.c) must be reached by a model that converts.

One process, one daemon; conversions and runs go two at a time (the machines have 2 cores).
Exit 77 without torch.
"""
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

try:
    import torch  # noqa: F401 (the exporter and the oracle need it)
except ImportError:
    print("skip: torch is not installed (Debian: python3-torch)")
    sys.exit(77)

import numpy as np
from alkaid_client import AlkaidError
from alkaid_client.torch import pack

import harness
import torch_models
import torch_oracle
import tracer_cases

ALKAIDC = os.environ.get("ALKAIDC", "build/client/alkaidc")
SOURCE_ROOT = os.environ.get("ALK_SOURCE_ROOT", ".")
N_SAMPLES = 1000
WORKERS = 2
TIMEOUT = 600

_state = {}


def _cases():
    """(case, edit of its message or None) for every model."""
    cases = (torch_models.cases() + torch_models.coverage_cases() + tracer_cases.differences()
             + tracer_cases.extras() + tracer_cases.regressions())
    return [(case, None) for case in cases] + tracer_cases.respellings()


def _parallel(fn, items):
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(fn, items))


def _run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT,
                          env={**os.environ, "ALKAID_CONNECT": ""})


def _float32_oracle(case):
    """Batch-norm cases compare with torch's float32 forward: their parameters are chosen so that
    the float32 fold is exact (gamma = sqrt(1 + eps) in float32, spec §6.2), which the model's own
    precision computes and a float64 forward of the same float32 numbers does not."""
    return "BatchNorm" in case.name or "batch_norm" in case.name


def _prepare(case):
    module = case.make()
    n = min(case.n, N_SAMPLES)
    if not _float32_oracle(case):
        return torch_oracle.prepare(module, case.shapes, case.kif, n, case.data, case.perturb,
                                    case.fails is not None, case.per_sample)
    p = torch_oracle.prepare(module, case.shapes, case.kif, n, case.data, case.perturb, True)
    sizes = [int(np.prod(s)) for s in case.shapes]
    datas = [part.reshape((n,) + tuple(s)).astype(np.float32) for part, s in
             zip(np.split(p.inputs, np.cumsum(sizes)[:-1], axis=1), case.shapes)]
    expected = torch_oracle.forward(module, datas, dtype=torch.float32,
                                    per_sample=case.per_sample)
    return torch_oracle.Prepared(p.message, p.inputs, expected)


def setUpModule():
    started = time.monotonic()
    tmp = tempfile.TemporaryDirectory(prefix="alkt-", dir="/tmp")
    _state["tmp"] = tmp
    _state["daemon"] = harness.Daemon(tmp.name, workers=WORKERS, queue=64)
    cases = _cases()
    prepared = []
    for i, (case, edit) in enumerate(cases):
        p = _prepare(case)
        if edit is not None:
            p = p._replace(message=edit(p.message))
        path = os.path.join(tmp.name, f"{i}")
        with open(path + ".msgpack", "wb") as f:
            f.write(pack(p.message))
        if p.expected is not None:
            torch_oracle.write_run_input(path + ".in", p.inputs)
        prepared.append((case, p, path))
    exported = time.monotonic()

    def through_daemon(item):
        case, p, _ = item
        t = time.monotonic()
        try:
            with _state["daemon"].client(timeout=TIMEOUT) as client:
                return client.convert(message=p.message, timeout=TIMEOUT).alir, None
        except AlkaidError as e:
            return None, e.message
        finally:
            durations.append((time.monotonic() - t, case.name))

    def locally(item):
        _, _, path = item
        r = _run([ALKAIDC, "convert", path + ".msgpack", "--local", "-o", path + ".json"])
        if r.returncode != 0:
            return None, r.stderr
        with open(path + ".json") as f:
            return f.read(), None

    durations = []
    daemon = _parallel(through_daemon, prepared)
    converted = time.monotonic()
    local = _parallel(locally, prepared)
    converted_locally = time.monotonic()

    def run(item):
        (case, p, path), (text, _) = item
        if text is None or p.expected is None:
            return None, None
        r = _run([ALKAIDC, "run", path + ".json", "-i", path + ".in"])
        if r.returncode != 0:
            return None, r.stderr
        return torch_oracle.parse_run_output(r.stdout), None

    runs = _parallel(run, list(zip(prepared, local)))
    _state["results"] = [dict(case=case, prepared=p, daemon=d, local=lo, run=r)
                         for (case, p, _), d, lo, r in zip(prepared, daemon, local, runs)]
    print(f"{len(cases)} models: export {exported - started:.1f} s, daemon conversions "
          f"{converted - exported:.1f} s, local conversions {converted_locally - converted:.1f} s, "
          f"runs {time.monotonic() - converted_locally:.1f} s; slowest through the daemon: "
          + ", ".join(f"{name} {dt:.1f} s" for dt, name in sorted(durations)[-5:]),
          file=sys.stderr)


def tearDownModule():
    daemon = _state.get("daemon")
    try:
        # A clean exit: no crash, and under the sanitizers no leak or error report.
        if daemon is not None and daemon.stop() != 0:
            raise AssertionError("alkaidd did not exit cleanly:\n" + daemon.log_text()[-4000:])
    finally:
        if "tmp" in _state:
            _state["tmp"].cleanup()


def _table_rows():
    """(module, name) of every row of src/plugins/torch/table.c, from its shorthands."""
    with open(os.path.join(SOURCE_ROOT, "src", "plugins", "torch", "table.c")) as f:
        text = f.read()
    body = text[text.index("torch_ops[] = {"):]
    rows = set()
    prefixes = {"FUNCTIONAL": ["torch.nn.functional"], "TORCH": ["torch"],
                "OPERATOR": ["operator"], "METHOD": ["torch.Tensor"],
                "UNARY": ["torch", "torch.Tensor"]}
    for macro, first, second in re.findall(r'\b([A-Z]+)\("([^"]+)"(?:, "([^"]+)")?', body):
        if macro == "MODULE":
            rows.add(("torch.nn.modules." + first, second))
        elif macro == "ROW":
            rows.add((first, second))
        elif macro in prefixes:
            rows.update((module, first) for module in prefixes[macro])
    return rows


def _node_rows(message):
    """(module, name) of every call node of a graph message."""
    model = message["model"]
    for node in model["graph"]["nodes"]:
        if node["op"] == "call_module":
            module, _, name = model["modules"][node["target"]]["type"].rpartition(".")
        elif node["op"] == "call_function":
            module, _, name = node["target"].rpartition(".")
        elif node["op"] == "call_method":
            module, name = "torch.Tensor", node["target"]
        else:
            continue
        yield module, name


class Conversions(unittest.TestCase):
    maxDiff = None
    def test_every_model_equals_torch(self):
        for r in _state["results"]:
            case = r["case"]
            if case.fails is not None:
                continue
            with self.subTest(case.name):
                (daemon, daemon_error), (local, local_error) = r["daemon"], r["local"]
                self.assertIsNone(daemon_error, "daemon")
                self.assertIsNone(local_error, "alkaidc convert --local")
                self.assertEqual(json.loads(daemon), json.loads(local),
                                 "the daemon and alkaidc --local made different programs")
                got, run_error = r["run"]
                self.assertIsNone(run_error, "alkaidc run")
                bad = torch_oracle.compare(got, r["prepared"].expected, case.atol)
                self.assertEqual(bad[:5], [], f"{len(bad)} values differ from torch")

    def test_must_fail_cases_fail_with_the_references_messages(self):
        must_fail = [r for r in _state["results"] if r["case"].fails is not None]
        self.assertEqual(len(must_fail), 3)
        for r in must_fail:
            with self.subTest(r["case"].name):
                text = r["case"].fails[1]
                (daemon, daemon_error), (local, local_error) = r["daemon"], r["local"]
                self.assertIsNone(daemon)
                self.assertIsNone(local)
                self.assertIn(text, daemon_error)
                self.assertIn(text, local_error)

    def test_every_row_of_the_table_is_exercised(self):
        reached = set()
        for r in _state["results"]:
            # A must-fail case exercises its rows by failing with the reference's message.
            fails = r["case"].fails
            if (r["daemon"][1] is None) if fails is None else (fails[1] in r["daemon"][1]):
                reached.update(_node_rows(r["prepared"].message))
        rows = _table_rows()
        self.assertGreater(len(rows), 100)
        self.assertEqual(sorted(rows - reached), [])


def _readme_names():
    """The backticked names of the README's torch section, with `X1d/2d/3d` expanded."""
    with open(os.path.join(SOURCE_ROOT, "README.md")) as f:
        text = f.read()
    section = text[text.index("## Torch models"):]
    section = section[:section.index("\n## ", 1)]
    names = set()
    for token in re.findall(r"`([^`]+)`", section):
        m = re.fullmatch(r"(.+)1d/2d/3d", token)
        names.update([m.group(1) + r for r in ("1d", "2d", "3d")] if m else [token])
    return names


class Support(unittest.TestCase):
    """The table covers the protocol's names, and the README's support table every row."""

    def test_every_name_the_exporter_sends_has_a_row(self):
        from alkaid_client import _schema
        payload = _schema.PAYLOADS["torch"]
        rows = _table_rows()
        for row in payload["modules"]:
            for module_type in row["types"]:
                self.assertIn(tuple(module_type.rsplit(".", 1)), rows)
        for name in payload["functions"]:
            self.assertIn(tuple(name.rsplit(".", 1)), rows)
        methods = ("view reshape permute transpose t flatten unsqueeze squeeze expand expand_as "
                   "repeat size contiguous clone detach type_as float double int long to sum "
                   "mean prod amax max amin min all any argmax argmin clamp clip").split()
        for name in methods:  # frontends.md §4.5
            self.assertIn(("torch.Tensor", name), rows)

    def test_the_readme_lists_every_row(self):
        spelled = {"torch.nn.functional": "F.", "torch": "torch.", "operator": "operator.",
                   "builtins": "builtins.", "torch.Tensor": ""}
        readme = _readme_names()
        missing = []
        for module, name in sorted(_table_rows()):
            prefix = "" if module.startswith("torch.nn.modules.") else spelled[module]
            if prefix + name not in readme:
                missing.append(f"{module} {name}")
        self.assertEqual(missing, [])


class Dumps(unittest.TestCase):
    """The trace map's names (spec frontends.md §1.3): `inputs`, then `<target with / for .>/final`
    for modules (`#N` on a second call) and `<node>/final` for function and method calls whose
    value is an array, then `final`."""

    def dump_names(self, module, shapes, kif=(1, 4, 4)):
        from alkaid_client.torch import export
        message = export(module.eval(), [(1,) + tuple(s) for s in shapes], kif)
        with _state["daemon"].client(timeout=TIMEOUT) as client:
            result = client.convert(message=message, dump=True, timeout=TIMEOUT)
        for name, alir in result["dump"].items():
            self.assertEqual(json.loads(alir)["spec_version"], 4, name)
        return list(result["dump"])

    def test_modules_functions_and_renames(self):
        from torch import nn
        self.assertEqual(
            self.dump_names(torch_models._wrap(nn.Sequential(nn.Linear(4, 4), nn.ReLU())), [(4,)]),
            ["inputs", "_fn/0/final", "_fn/1/final", "final"])
        self.assertEqual(self.dump_names(torch_models._Shared(), [(4,)]),
                         ["inputs", "shared/final", "shared#1/final", "final"])
        # split's tuple is not dumped, its items are.
        self.assertEqual(
            self.dump_names(torch_models._wrap(lambda x: torch.split(x, 2, -1)[0] * 2), [(4,)]),
            ["inputs", "getitem/final", "mul/final", "final"])
        # A table function waiting for its quantizer is dumped with its float values.
        self.assertEqual(
            self.dump_names(torch_models._wrap(lambda x: torch.round(torch.sigmoid(x) * 16)),
                            [(4,)], (1, 2, 4)),
            ["inputs", "sigmoid/final", "mul/final", "round_1/final", "final"])


class Outputs(unittest.TestCase):
    def test_nested_outputs_are_flattened_in_order(self):
        from alkaid_client.torch import export
        module = torch_models._wrap(lambda x: (x + 1, [x * 2, {"a": x - 1, "b": x * 4}]))
        message = export(module.eval(), [(1, 4)], (1, 3, 2))
        with _state["daemon"].client(timeout=TIMEOUT) as client:
            result = client.convert(message=message, timeout=TIMEOUT)
        self.assertEqual(result["n_outputs"], 16)
        path = os.path.join(_state["tmp"].name, "nested")
        with open(path + ".json", "w") as f:
            f.write(result.alir)
        x = torch_oracle.grid_data((64, 4), (1, 3, 2), seed=0).astype(np.float64)
        torch_oracle.write_run_input(path + ".in", x)
        r = _run([ALKAIDC, "run", path + ".json", "-i", path + ".in"])
        self.assertEqual(r.returncode, 0, r.stderr)
        expected = np.concatenate([x + 1, x * 2, x - 1, x * 4], axis=1)
        self.assertEqual(torch_oracle.compare(torch_oracle.parse_run_output(r.stdout), expected),
                         [])


class Refusals(unittest.TestCase):
    """Broken and unsupported graphs fail cleanly, naming the culprit."""

    def test_through_the_daemon(self):
        with _state["daemon"].client(timeout=TIMEOUT) as client:
            for refusal in tracer_cases.refusals():
                with self.subTest(refusal.name):
                    with self.assertRaises(AlkaidError) as e:
                        client.convert(message=refusal.message, timeout=TIMEOUT)
                    self.assertIn(refusal.expect, str(e.exception))

    def test_random_breakage_gets_an_answer(self):
        """Randomly broken graphs: every request is answered (a result or a structured error)
        and the daemon stays up; a few go through alkaidc --local too."""
        messages = [r["prepared"].message for r in _state["results"][::7]]
        broken = tracer_cases.mutations(messages, 400)
        answered = errors = 0
        with _state["daemon"].client(timeout=TIMEOUT) as client:
            for m in broken:
                try:
                    client.convert(message=m, timeout=TIMEOUT)
                except AlkaidError as e:
                    self.assertIn(e.name, ("EINVAL", "ENOTSUP", "ELIMIT", "EPROTO"), e.message)
                    errors += 1
                answered += 1
            client.ping()
        self.assertEqual(answered, len(broken))
        self.assertGreater(errors, len(broken) // 2)
        tmp = _state["tmp"].name
        for i, m in enumerate(broken[:20]):
            path = os.path.join(tmp, f"broken{i}.msgpack")
            with open(path, "wb") as f:
                f.write(pack(m))
            r = _run([ALKAIDC, "convert", path, "--local", "-o", path + ".json"])
            self.assertIn(r.returncode, (0, 1, 4), r.stderr)  # ok, refused, over a limit

    def test_locally(self):
        tmp = _state["tmp"].name
        for i, refusal in enumerate(tracer_cases.refusals()[:6]):
            with self.subTest(refusal.name):
                path = os.path.join(tmp, f"refused{i}.msgpack")
                with open(path, "wb") as f:
                    f.write(pack(refusal.message))
                r = _run([ALKAIDC, "convert", path, "--local", "-o", path + ".json"])
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(refusal.expect, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=1)
