"""End to end (issue 7, "Done when" 1, 3, 4 and 5 with real conversions): the example model
`{"framework": "alkaid", "model": {"input_shape": [4, 5]}}` converted through a real alkaidd by
the C CLI and by the Python client gives exactly the bytes of `alkaidc convert --local`; then
hot reloads under load, memory across 200 reload cycles, SIGTERM with conversions in flight and
a farm with a daemon killed mid-run."""
import json
import os
import signal
import sys
import threading
import unittest

import msgpack

from harness import EXAMPLE, AlkaidError, Client, Daemon, run_alkaidc
from harness import temp_dir

MOCK_DIR = os.environ.get("ALK_MOCK_DIR", "")


class EndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = temp_dir()
        cls.plugins = os.path.join(cls.dir, "plugins")
        os.mkdir(cls.plugins)
        cls.daemon = Daemon(cls.dir, workers=2, queue=256, args=["--plugin-dir", cls.plugins])
        cls.c = cls.daemon.client(timeout=60)
        cls.model_json = os.path.join(cls.dir, "example.json")
        with open(cls.model_json, "w") as f:
            json.dump(EXAMPLE, f)
        cls.model_msgpack = os.path.join(cls.dir, "example.msgpack")
        with open(cls.model_msgpack, "wb") as f:
            f.write(msgpack.packb(EXAMPLE))
        cls.reference = cls.local("ref.alir.json")

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        assert cls.daemon.stop() == 0

    @classmethod
    def local(cls, name, model=None, *extra):
        out = os.path.join(cls.dir, name)
        r = run_alkaidc("convert", model or cls.model_json, "-o", out, "--local", *extra,
                        env={"ALKAID_CONNECT": ""})
        assert r.returncode == 0, r.stderr.decode()
        with open(out, "rb") as f:
            return f.read(), r.stdout

    def remote(self, name, model=None, *extra):
        out = os.path.join(self.dir, name)
        r = run_alkaidc("convert", model or self.model_json, "-o", out, "--connect",
                        self.daemon.url, *extra)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        with open(out, "rb") as f:
            return f.read(), r.stdout

    def test_cli_remote_equals_local_byte_for_byte(self):
        alir, names = self.reference
        self.assertTrue(alir.startswith(b"{"))
        self.assertEqual(self.remote("r1.alir.json"), (alir, names))
        self.assertEqual(self.remote("r2.alir.json", self.model_msgpack), (alir, names))
        gz_remote = self.remote("r3.alir.json.gz")
        gz_local = self.local("l3.alir.json.gz")
        self.assertEqual(gz_remote, gz_local)
        import gzip
        self.assertEqual(gzip.decompress(gz_remote[0]), alir)
        # Options travel too: the same hwconf both ways.
        self.assertEqual(self.remote("r4.alir.json", None, "--hwconf", "1,1,2"),
                         self.local("l4.alir.json", None, "--hwconf", "1,1,2"))

    def test_python_client_equals_local(self):
        alir, names = self.reference
        result = self.c.convert({"input_shape": [4, 5]}, framework="alkaid")
        self.assertEqual(result.alir.encode(), alir)
        self.assertEqual("".join(n + "\n" for n in result.output_names).encode(), names)
        result = self.c.convert(message=EXAMPLE, alir_encoding="gzip")
        self.assertEqual(result.alir.encode(), alir)

    def test_inputs_must_be_provided(self):
        with self.assertRaises(AlkaidError) as e:
            self.c.convert({"input_shape": None}, framework="alkaid")
        self.assertEqual(e.exception.name, "EINVAL")
        self.assertIn("inputs must be provided", e.exception.message)
        result = self.c.convert({"input_shape": None}, framework="alkaid",
                                inputs=[{"shape": [4, 5], "kif": None}])
        self.assertEqual(result.alir.encode(), self.reference[0])

    def test_hot_reload_under_load(self):
        """8 client threads send 5,000 requests while the test reloads 50 times (one reload
        failing): every request gets exactly one correct reply."""
        alir = self.reference[0].decode()
        errors = []
        counts = [0] * 8

        def client_thread(t):
            with self.daemon.client(timeout=120) as c:
                for _ in range(625):
                    try:
                        result = c.convert(message=EXAMPLE)
                    except AlkaidError as e:
                        errors.append(e)
                        continue
                    if result.alir != alir:
                        errors.append("a reply differs from the reference")
                    counts[t] += 1

        threads = [threading.Thread(target=client_thread, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        failures = 0
        with self.daemon.control() as ctl:
            for i in range(50):
                if i == 25 and MOCK_DIR:
                    with open(os.path.join(self.plugins, "broken.plugin"), "w") as f:
                        f.write(f"group = alir_tracer.plugins\nname = failing_init\n"
                                f"library = {MOCK_DIR}/libmock_broken_failing_init.so\nabi = 2\n")
                try:
                    ctl.reload()
                except AlkaidError as e:
                    self.assertEqual(e.name, "EPLUGIN")
                    failures += 1
                if i == 25 and MOCK_DIR:
                    os.remove(os.path.join(self.plugins, "broken.plugin"))
        for th in threads:
            th.join(600)
        self.assertEqual(errors, [])
        self.assertEqual(sum(counts), 5000)
        self.assertEqual(failures, 1 if MOCK_DIR else 0)

    def test_memory_across_200_reload_cycles(self):
        with self.daemon.control() as ctl:
            for _ in range(10):
                ctl.reload()
                self.c.convert(message=EXAMPLE)
            after_10 = self.daemon.rss()
            for _ in range(190):
                ctl.reload()
                self.c.convert(message=EXAMPLE)
            after_200 = self.daemon.rss()
        self.assertLess(after_200, after_10 * 1.10, f"RSS {after_10} -> {after_200}")

    def test_sigterm_with_conversions_in_flight(self):
        d = Daemon(self.dir, name="term", workers=2, queue=64)
        results = [None] * 20

        def one(i):
            with Client(d.url, timeout=60) as c:
                try:
                    results[i] = c.convert(message=EXAMPLE).alir
                except AlkaidError as e:
                    results[i] = e

        threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
        for th in threads:
            th.start()
        import time
        deadline = time.monotonic() + 30
        while d.stats()["requests"].get("convert", 0) < 20 and time.monotonic() < deadline:
            time.sleep(0.001)
        d.signal(signal.SIGTERM)
        for th in threads:
            th.join(60)
        self.assertEqual(d.wait(30), 0)
        self.assertEqual(results, [self.reference[0].decode()] * 20)

    def test_farm_with_a_daemon_killed(self):
        farm_dir = temp_dir()
        daemons = [Daemon(farm_dir, name=f"f{i}", workers=1) for i in range(3)]
        try:
            alir = self.reference[0].decode()
            done = []
            errors = []
            lock = threading.Lock()

            def worker(c):
                for _ in range(50):
                    try:
                        result = c.convert(message=EXAMPLE)
                    except AlkaidError as e:
                        errors.append(e)
                        continue
                    with lock:
                        done.append(result.alir == alir)
                        if len(done) == 100:
                            daemons[0].kill()

            with Client([d.url for d in daemons], timeout=60, resend=2.0) as c:
                threads = [threading.Thread(target=worker, args=(c,)) for _ in range(8)]
                for th in threads:
                    th.start()
                for th in threads:
                    th.join(300)
            self.assertEqual(errors, [])
            self.assertEqual(len(done), 400)
            self.assertTrue(all(done))
        finally:
            for d in daemons:
                d.kill()


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
