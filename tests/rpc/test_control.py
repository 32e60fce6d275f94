"""The control socket and plugin generations through a real alkaidd, with the mock plugins of
tests/plugins: reload/load/unload, a failing reload that changes nothing, the old plugin code
kept until the last job on its generation ends, SIGHUP and the config file, reloads under load
(exactly one reply per request), memory across 200 reloads, sd_notify, and the listing of
on-demand plugins that the worker processes load."""
import os
import signal
import socket
import sys
import threading
import time
import unittest

from harness import AlkaidError, Daemon, temp_dir

MOCK_DIR = os.environ["ALK_MOCK_DIR"]


def write_manifest(directory, file, name, library, group="alir_tracer.plugins"):
    with open(os.path.join(directory, file + ".plugin"), "w") as f:
        f.write(f"group = {group}\nname = {name}\nlibrary = {MOCK_DIR}/lib{library}.so\nabi = 2\n")


def names(plugins):
    return sorted(p["name"] for p in plugins if p["state"] != "refused")


class Control(unittest.TestCase):
    def setUp(self):
        self.dir = temp_dir()
        self.plugins = os.path.join(self.dir, "plugins")
        os.mkdir(self.plugins)
        write_manifest(self.plugins, "mock", "mock", "mock_tracer")
        self.mock_log = os.path.join(self.dir, "fini.log")
        self.daemon = Daemon(self.dir, args=["--plugin-dir", self.plugins],
                             env={"ALK_MOCK_LOG": self.mock_log, "ALKAID_PLUGIN_PATH": ""})
        self.ctl = self.daemon.control(timeout=20)
        self.c = self.daemon.client(timeout=20)

    def tearDown(self):
        self.ctl.close()
        self.c.close()
        self.assertEqual(self.daemon.stop(), 0, self.daemon.log_text())

    def fini_log(self):
        if not os.path.exists(self.mock_log):
            return ""
        with open(self.mock_log) as f:
            return f.read()

    def test_reload_load_unload(self):
        listing = self.c.plugins()
        mock = [p for p in listing if p["name"] == "mock"][0]
        self.assertEqual((mock["state"], mock["version"], mock["abi_version"]), ("loaded", "a", 2))
        self.assertTrue(mock["library"].endswith("libmock_tracer.so"))
        first = self.ctl.stats()["generation"]

        reply = self.ctl.reload()
        self.assertEqual(reply["previous"], first)
        self.assertGreater(reply["generation"], first)
        self.assertEqual(self.ctl.reload("mock")["previous"], reply["generation"])
        with self.assertRaises(AlkaidError) as e:
            self.ctl.reload("nosuch")
        self.assertEqual((e.exception.name, e.exception.where), ("ENOENT", "name"))

        self.ctl.unload("mock")
        self.assertNotIn("mock", names(self.c.plugins()))
        with self.assertRaises(AlkaidError) as e:
            self.ctl.unload("mock")
        self.assertEqual(e.exception.name, "ENOENT")

        self.ctl.load(os.path.join(self.plugins, "mock.plugin"))
        self.assertIn("mock", names(self.c.plugins()))

        # A second directory through load.
        extra = os.path.join(self.dir, "extra")
        os.mkdir(extra)
        write_manifest(extra, "fakepkg", "fakepkg", "mock_fakepkg", group="alkaid_keras")
        self.ctl.load(extra)
        listing = self.c.plugins()
        fake = [p for p in listing if p["name"] == "fakepkg"][0]
        self.assertEqual(fake["state"], "on_demand")

        for bad, name in ((os.path.join(self.dir, "nothing.plugin"), "ENOENT"),
                          ("relative/path.plugin", "EINVAL"),
                          (self.mock_log if os.path.exists(self.mock_log) else __file__,
                           "EINVAL")):
            with self.assertRaises(AlkaidError) as e:
                self.ctl.call("load", path=bad)
            self.assertEqual(e.exception.name, name, bad)
        self.assertEqual(self.ctl.stats()["reload_failures"], 0)

    def test_the_built_in_plugin_can_be_unloaded_and_loaded_again(self):
        manifest = [p for p in self.c.plugins() if p["name"] == "alkaid"][0]["manifest"]
        self.ctl.unload("alkaid")
        self.assertNotIn("alkaid", names(self.c.plugins()))
        # Its directory is on the search path already: loading it again must not make its
        # manifest a duplicate of itself.
        self.ctl.load(manifest)
        self.assertIn("alkaid", names(self.c.plugins()))
        self.assertGreater(self.ctl.reload()["plugins"], 0)
        self.assertEqual(self.c.convert({"input_shape": [4, 5]}, framework="alkaid")
                         .output_names, ["output_name"])

    def test_failed_reload_keeps_the_old_generation(self):
        before = self.ctl.stats()["generation"]
        write_manifest(self.plugins, "broken", "failing_init", "mock_broken_failing_init")
        with self.assertRaises(AlkaidError) as e:
            self.ctl.reload()
        self.assertEqual(e.exception.name, "EPLUGIN")
        self.assertIn("failing_init", e.exception.message)
        stats = self.ctl.stats()
        self.assertEqual(stats["generation"], before)
        self.assertEqual(stats["reload_failures"], 1)
        self.assertIn("mock", names(self.c.plugins()))
        self.assertNotIn("failing_init", [p["name"] for p in self.c.plugins()])
        os.remove(os.path.join(self.plugins, "broken.plugin"))
        self.assertGreater(self.ctl.reload()["generation"], before)

    def test_old_code_stays_until_its_last_job_ends(self):
        hold = threading.Thread(target=lambda: self.c.call("test.sleep", ms=700))
        hold.start()
        time.sleep(0.2)  # the job now holds the current generation
        write_manifest(self.plugins, "mock", "mock", "mock_tracer_b")
        self.ctl.reload()
        mock = [p for p in self.c.plugins() if p["name"] == "mock"][0]
        self.assertEqual(mock["version"], "b")
        self.assertNotIn("fini a", self.fini_log(), "plugin a unloaded under a running job")
        hold.join(10)
        deadline = time.monotonic() + 5
        while "fini a" not in self.fini_log() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertIn("fini a", self.fini_log(), "plugin a never unloaded after its last job")
        self.assertNotIn("fini b", self.fini_log())

    def test_sighup_and_config_file_reload(self):
        config = os.path.join(self.dir, "alkaidd.conf")
        empty = os.path.join(self.dir, "empty")
        os.mkdir(empty)
        with open(config, "w") as f:
            f.write(f"# test\nplugin-dir = {empty}\nworkers = 1\nmax-dims = 5\n")
        d = Daemon(self.dir, name="conf", args=["--config", config],
                   env={"ALKAID_PLUGIN_PATH": ""})
        try:
            with d.client() as c, d.control() as ctl:
                self.assertNotIn("mock", names(c.plugins()))
                info = c.info()
                self.assertEqual(info["limits"]["max_dims"], 5, "a key from the file")
                self.assertEqual(info["workers"], 2, "the command line overrides the file")
                generation = ctl.stats()["generation"]
                with open(config, "w") as f:
                    f.write(f"plugin-dir = {self.plugins}\nworkers = 1\nmax-dims = 5\n")
                d.signal(signal.SIGHUP)
                deadline = time.monotonic() + 5
                while ctl.stats()["generation"] == generation and time.monotonic() < deadline:
                    time.sleep(0.02)
                self.assertGreater(ctl.stats()["generation"], generation)
                self.assertIn("mock", names(c.plugins()))
        finally:
            self.assertEqual(d.stop(), 0)

    def test_reloads_under_load_answer_every_request_once(self):
        """8 client threads send 800 requests while the test reloads 50 times (one of them
        failing): every request gets exactly one correct reply."""
        results = {}
        errors = []

        def client_thread(t):
            with self.daemon.client(timeout=30) as c:
                for k in range(100):
                    try:
                        reply = c.call("test.sleep", ms=1)
                        results[(t, k)] = reply
                    except AlkaidError as e:  # noqa: PERF203
                        errors.append((t, k, e))

        threads = [threading.Thread(target=client_thread, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        generations = set()
        failures = 0
        for i in range(50):
            if i == 25:
                write_manifest(self.plugins, "broken", "failing_init", "mock_broken_failing_init")
            try:
                generations.add(self.ctl.reload()["generation"])
            except AlkaidError as e:
                self.assertEqual(e.name, "EPLUGIN")
                failures += 1
            if i == 25:
                os.remove(os.path.join(self.plugins, "broken.plugin"))
        for th in threads:
            th.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 800)
        self.assertTrue(all(r["ok"] for r in results.values()))
        self.assertEqual(failures, 1)
        self.assertEqual(len(generations), 49)
        stats = self.ctl.stats()
        self.assertEqual(stats["requests"]["test.sleep"], 800)
        self.assertEqual(stats["reload_failures"], 1)

    def test_memory_does_not_grow_per_generation(self):
        for _ in range(10):
            self.ctl.reload()
            self.c.call("test.sleep", ms=0)
        after_10 = self.daemon.rss()
        for _ in range(190):
            self.ctl.reload()
            self.c.call("test.sleep", ms=0)
        after_200 = self.daemon.rss()
        self.assertLess(after_200, after_10 * 1.10,
                        f"RSS {after_10} after 10 reloads, {after_200} after 200")


class OnDemandInWorkers(unittest.TestCase):
    """The listing of on-demand (alkaid_torch) plugins, which only the worker processes load:
    torchpkg (a working one, mock_torchpkg.c) and brokenpkg (one whose load fails: its library's
    descriptor names another plugin), under the built-in torch tracer. One worker, so that which
    process loaded what is known."""

    def setUp(self):
        self.dir = temp_dir()
        plugins = os.path.join(self.dir, "plugins")
        os.mkdir(plugins)
        write_manifest(plugins, "torchpkg", "torchpkg", "mock_torchpkg", group="alkaid_torch")
        write_manifest(plugins, "brokenpkg", "brokenpkg", "mock_broken_no_table",
                       group="alkaid_torch")
        self.daemon = Daemon(self.dir, args=["--plugin-dir", plugins], workers=1,
                             env={"ALKAID_PLUGIN_PATH": ""})
        self.ctl = self.daemon.control(timeout=20)
        self.c = self.daemon.client(timeout=20)
        self.graphs = 0

    def tearDown(self):
        self.ctl.close()
        self.c.close()
        self.assertEqual(self.daemon.stop(), 0, self.daemon.log_text())

    def convert(self, function="operator.mul"):
        """Converts the graph output = function(x, n): a fresh n each call, so that no reply
        comes from the reply cache."""
        self.graphs += 1
        args = [{"$node": "x"}] + ([self.graphs] if function == "operator.mul" else [])
        kwargs = {} if function == "operator.mul" else {"n": self.graphs}
        nodes = [{"name": "x", "op": "placeholder", "target": "x", "args": [], "kwargs": {}},
                 {"name": "f", "op": "call_function", "target": function, "args": args,
                  "kwargs": kwargs},
                 {"name": "output", "op": "output", "target": "output",
                  "args": [{"$node": "f"}], "kwargs": {}}]
        self.c.convert({"version": 1, "graph": {"nodes": nodes}, "modules": {}, "tensors": {}},
                       framework="torch", inputs=[{"shape": [1, 4]}], inputs_kif=[[1, 3, 0]])

    def torchpkg_state(self):
        return [p["state"] for p in self.c.plugins() if p["name"] == "torchpkg"][0]

    def assert_listed(self, torchpkg, brokenpkg, when):
        listing = {p["name"]: p for p in self.c.plugins()}
        self.assertEqual((listing["torchpkg"]["state"], listing["torchpkg"]["error"]),
                         (torchpkg, None), when)
        self.assertEqual(listing["brokenpkg"]["state"], brokenpkg, when)
        if brokenpkg == "refused":
            self.assertIn("descriptor says group 'alkaid_keras' name 'no_table'",
                          listing["brokenpkg"]["error"], when)

    def test_the_listing_follows_what_the_workers_loaded(self):
        self.assert_listed("on_demand", "on_demand", "at the start")
        self.convert()
        self.assert_listed("on_demand", "on_demand", "after a graph without their functions")
        self.convert("torchpkg.ops.add_n")
        self.assert_listed("loaded", "on_demand", "after a graph with torchpkg.ops.add_n")
        with self.assertRaises(AlkaidError) as e:
            self.convert("brokenpkg.ops.f")
        self.assertEqual(e.exception.name, "EPLUGIN")
        self.assertIn("descriptor says group 'alkaid_keras'", e.exception.message)
        self.assert_listed("loaded", "refused", "after a failed load")

        # A reload that changes no plugin keeps the worker, its plugins loaded; the new
        # generation lists them on demand until the worker runs one of its jobs, even a job
        # that needs neither.
        starts = self.ctl.stats()["worker_starts"]
        self.ctl.reload()
        self.assert_listed("on_demand", "on_demand", "after a reload")
        self.convert()
        self.assert_listed("loaded", "refused", "after a reload and a plain graph")
        self.assertEqual(self.ctl.stats()["worker_starts"], starts, "the worker was not kept")

        # A reload that changes the plugins starts a new worker, which has loaded nothing.
        self.ctl.unload("brokenpkg")
        self.convert()
        self.assertEqual(self.torchpkg_state(), "on_demand", "after an unload and a plain graph")
        self.convert("torchpkg.ops.add_n")
        self.assertEqual(self.torchpkg_state(), "loaded", "after an unload and torchpkg's graph")
        self.assertGreater(self.ctl.stats()["worker_starts"], starts)


class Notify(unittest.TestCase):
    def test_sd_notify_ready_reloading_stopping_watchdog(self):
        directory = temp_dir()
        path = os.path.join(directory, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(5.0)
        messages = []

        def expect(text):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if any(text in m for m in messages):
                    return
                try:
                    messages.append(sock.recv(4096).decode())
                except socket.timeout:
                    break
            self.fail(f"no {text!r} in {messages}")

        d = Daemon(directory, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "300000"})
        try:
            expect("READY=1")
            expect("STATUS=serving")
            messages.clear()
            expect("WATCHDOG=1")
            messages.clear()
            d.signal(signal.SIGHUP)
            expect("RELOADING=1")
            expect("READY=1")
            messages.clear()
            d.signal(signal.SIGTERM)
            expect("STOPPING=1")
            self.assertEqual(d.wait(10), 0)
        finally:
            d.kill()
            sock.close()


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
