"""The Python client (client/python/alkaid_client): default URLs, the schema checks it makes
before sending, calls on the service and control sockets, errors, timeouts, sharing one client
between threads. Conversions are checked byte for byte against `alkaidc convert --local` in
tests/e2e."""
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "rpc"))

import alkaid_client  # noqa: E402
from alkaid_client import AlkaidError, Client, Control, check_request, default_url  # noqa: E402
from harness import Daemon, temp_dir  # noqa: E402


class Offline(unittest.TestCase):
    def test_default_url(self):
        runtime = temp_dir("alkaid-pyclient-")
        saved = dict(os.environ)
        try:
            os.environ["XDG_RUNTIME_DIR"] = runtime
            os.environ.pop("ALKAID_CONNECT", None)
            self.assertEqual(default_url(), f"ipc://{runtime}/alkaid/alkaidd.sock")
            self.assertEqual(default_url(control=True), f"ipc://{runtime}/alkaid/alkaidd.ctl")
            os.environ["ALKAID_CONNECT"] = "tcp://farm:7450,tcp://farm2:7450"
            self.assertEqual(default_url(), "tcp://farm:7450")
            self.assertEqual(default_url(control=True), f"ipc://{runtime}/alkaid/alkaidd.ctl")
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def test_check_request_follows_the_schemas(self):
        ok = {"v": 1, "id": 1, "method": "convert", "framework": "alkaid",
              "model": {"input_shape": [4, 5]}, "hwconf": [1, 1, -1.5]}
        check_request(ok)
        cases = [
            ({"method": "convert", "v": 1, "id": 1}, "model"),
            (dict(ok, model=[4, 5]), "model"),
            (dict(ok, hwconf=[1, 1]), "hwconf"),
            (dict(ok, hwconf=[1, "x", 1]), "hwconf[1]"),
            (dict(ok, alir_encoding="zstd"), "alir_encoding"),
            (dict(ok, id=-1), "id"),
            (dict(ok, id="x" * 129), "id"),
            (dict(ok, framework=""), "framework"),
            ({"v": 1, "id": 1, "method": "load"}, "path"),
            ({"v": 1, "id": 1, "method": "drain", "resume": "yes"}, "resume"),
        ]
        for request, where in cases:
            with self.subTest(where=where):
                with self.assertRaises(AlkaidError) as e:
                    check_request(request)
                self.assertEqual(e.exception.where, where)
                self.assertEqual(e.exception.name, "EINVAL")
                self.assertEqual(e.exception.code, 1)
        with self.assertRaises(AlkaidError) as e:
            check_request({"v": 1, "id": 1, "method": "nope"})
        self.assertEqual(e.exception.name, "ENOTSUP")

    def test_error_codes_come_from_the_generated_tables(self):
        self.assertEqual(alkaid_client._schema.ERRORS["EBUSY"], 6)
        self.assertEqual(alkaid_client._schema.ERRORS["ETIMEDOUT"], 7)
        self.assertEqual(AlkaidError("EPLUGIN", "x").code, 12)

    def test_unreachable_daemon_fails_at_once(self):
        d = temp_dir("alkaid-pyclient-")
        start = time.monotonic()
        with self.assertRaises(AlkaidError) as e:
            Client(f"ipc://{d}/none.sock", timeout=60)
        self.assertEqual(e.exception.name, "EIO")
        self.assertLess(time.monotonic() - start, 1.0, "no wait for the timeout")


class Online(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = temp_dir()
        cls.daemon = Daemon(cls.dir, workers=2, queue=64)

    @classmethod
    def tearDownClass(cls):
        assert cls.daemon.stop() == 0

    def test_calls_on_both_sockets(self):
        with Client(self.daemon.url, timeout=5) as c:
            self.assertTrue(c.ping()["server"].startswith("alkaidd "))
            self.assertEqual(c.info()["protocol"], alkaid_client.PROTOCOL)
            self.assertIsInstance(c.plugins(), list)
            self.assertEqual(c.limits()["max_dims"], 8)
        with Control(self.daemon.ctl, timeout=5) as k:
            self.assertEqual(k.stats()["state"], "serving")
            before = k.stats()["generation"]
            self.assertEqual(k.reload()["previous"], before)
            with self.assertRaises(AlkaidError) as e:
                k.unload("no-such-plugin")
            self.assertEqual((e.exception.name, e.exception.where), ("ENOENT", "name"))
            self.assertIsNotNone(e.exception.reply)
            self.assertFalse(e.exception.reply["ok"])

    def test_one_client_shared_by_threads(self):
        with Client(self.daemon.url, timeout=30) as c:
            results = []

            def run():
                for _ in range(10):
                    results.append(c.call("test.sleep", ms=20)["ok"])

            threads = [threading.Thread(target=run) for _ in range(8)]
            start = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            elapsed = time.monotonic() - start
        self.assertEqual(results, [True] * 80)
        # 80 jobs of 20 ms on 2 workers: about 0.8 s when the threads really run concurrently.
        self.assertLess(elapsed, 1.6)

    def test_convert_errors_are_raised_with_the_field(self):
        with Client(self.daemon.url, timeout=5) as c:
            with self.assertRaises(AlkaidError) as e:
                c.convert({"input_shape": [4, 5]}, framework="alkaid",
                          inputs=[{"shape": [1] * 9}])
            self.assertEqual((e.exception.name, e.exception.where), ("ELIMIT", "inputs[0].shape"))
            with self.assertRaises(AlkaidError) as e:
                c.convert({"input_shape": [4, 5]}, framework="alkaid", timeout=-1)
            self.assertEqual(e.exception.where, "timeout_ms")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
