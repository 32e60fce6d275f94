"""alkaidc's daemon commands against a real alkaidd: output, exit codes (README.md), the default
sockets under $XDG_RUNTIME_DIR/alkaid/, ALKAID_CONNECT, and the embedded default of `convert`."""
import json
import os
import re
import sys
import threading
import time
import unittest

from harness import EXAMPLE, Daemon, run_alkaidc, temp_dir

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_IO = 0, 1, 2, 3
EXIT_UNAVAILABLE, EXIT_RETRY = 6, 7


class Cli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = temp_dir()
        cls.daemon = Daemon(cls.dir, workers=1, queue=0)
        cls.model = os.path.join(cls.dir, "example.json")
        with open(cls.model, "w") as f:
            json.dump(EXAMPLE, f)

    @classmethod
    def tearDownClass(cls):
        assert cls.daemon.stop() == 0

    def alkaidc(self, *args, env=None):
        base = {"XDG_RUNTIME_DIR": self.dir + "/nowhere", "ALKAID_CONNECT": ""}
        base.update(env or {})
        return run_alkaidc(*args, env=base)

    def test_ping(self):
        r = self.alkaidc("ping", "--connect", self.daemon.url)
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertRegex(r.stdout.decode(), r"^alkaidd \S+ at ipc://\S+: [0-9.]+ ms, up \d+ s\n$")
        r = self.alkaidc("ping", "--connect", "ipc://" + self.dir + "/none.sock")
        self.assertEqual(r.returncode, EXIT_UNAVAILABLE)
        self.assertIn(b"cannot reach", r.stderr)
        r = self.alkaidc("ping")
        self.assertEqual(r.returncode, EXIT_UNAVAILABLE, "no daemon at the default socket")
        r = self.alkaidc("ping", "--control", self.daemon.ctl)
        self.assertEqual(r.returncode, EXIT_USAGE)

    def test_stats_text_and_prometheus(self):
        r = self.alkaidc("stats", "--control", self.daemon.ctl)
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        lines = dict(line.split(": ", 1) for line in r.stdout.decode().splitlines())
        self.assertEqual(lines["state"], "serving")
        self.assertEqual(lines["workers"], "1")
        r = self.alkaidc("stats", "--prometheus", "--control", self.daemon.ctl)
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        text = r.stdout.decode()
        declared = set(re.findall(r"^# TYPE (\S+) (gauge|counter|histogram)$", text, re.M))
        names = {name for name, _ in declared}
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            m = re.fullmatch(r'([a-z_]+)(\{[a-z_]+="[^"]*"\})? (-?[0-9.e+]+|\+Inf)', line)
            self.assertIsNotNone(m, f"not a sample line: {line!r}")
            base = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
            self.assertTrue(m.group(1) in names or base in names, f"undeclared: {line}")
        self.assertIn('alkaidd_state{state="serving"} 1', text)
        self.assertIn('alkaidd_job_duration_seconds_bucket{le="+Inf"}', text)

    def test_control_commands(self):
        ctl = ("--control", self.daemon.ctl)
        r = self.alkaidc("reload", *ctl)
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertRegex(r.stdout.decode(), r"^generation \d+ \(was \d+\), \d+ plugins\n$")
        r = self.alkaidc("unload", "nosuch", *ctl)
        self.assertEqual(r.returncode, EXIT_IO)
        self.assertIn(b"ENOENT at name", r.stderr)
        r = self.alkaidc("load", self.dir + "/missing.plugin", *ctl)
        self.assertEqual(r.returncode, EXIT_IO)
        r = self.alkaidc("unload", *ctl)
        self.assertEqual(r.returncode, EXIT_USAGE)
        r = self.alkaidc("drain", *ctl)
        self.assertEqual((r.returncode, r.stdout), (EXIT_OK, b"draining\n"))
        r = self.alkaidc("drain", "--resume", *ctl)
        self.assertEqual((r.returncode, r.stdout), (EXIT_OK, b"serving\n"))
        # A control command sent to the service socket is refused by the daemon.
        r = self.alkaidc("stats", "--control", self.daemon.url)
        self.assertEqual(r.returncode, EXIT_INPUT)
        self.assertIn(b"ENOTSUP", r.stderr)

    def test_plugins_listing(self):
        r = self.alkaidc("plugins", "--connect", self.daemon.url)
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertTrue(r.stdout.startswith(b"GROUP"))
        r = self.alkaidc("plugins", "--connect", "ipc://" + self.dir + "/none.sock")
        self.assertEqual(r.returncode, EXIT_UNAVAILABLE)
        r = self.alkaidc("plugins", "--local")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertTrue(r.stdout.startswith(b"GROUP"))

    def test_convert_usage_and_input_errors(self):
        out = os.path.join(self.dir, "out.alir.json")
        r = self.alkaidc("convert", self.model)
        self.assertEqual(r.returncode, EXIT_USAGE)
        r = self.alkaidc("convert", self.model, "-o", out, "--local", "--connect", self.daemon.url)
        self.assertEqual(r.returncode, EXIT_USAGE)
        r = self.alkaidc("convert", self.dir + "/missing.json", "-o", out)
        self.assertEqual(r.returncode, EXIT_IO)
        bad = os.path.join(self.dir, "bad.json")
        with open(bad, "w") as f:
            f.write('{"framework": "alkaid", "model": [4, 5]}')
        for where in (("--local",), ("--connect", self.daemon.url)):
            r = self.alkaidc("convert", bad, "-o", out, *where)
            self.assertEqual(r.returncode, EXIT_INPUT, where)
            self.assertIn(b"EINVAL at model", r.stderr, where)
        r = self.alkaidc("convert", self.model, "-o", out, "--hwconf", "1,2",
                         "--connect", self.daemon.url)
        self.assertEqual(r.returncode, EXIT_USAGE)
        r = self.alkaidc("convert", self.model, "-o", out, "--input-shape", "1,2,3,4,5,6,7,8,9",
                         "--connect", self.daemon.url)
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertFalse(os.path.exists(out), "nothing is written on failure")

    def test_convert_busy_daemon_exits_7(self):
        """One worker, no queue, held by a job: the conversion is refused with EBUSY."""
        out = os.path.join(self.dir, "busy.alir.json")
        with self.daemon.client() as c:
            hold = threading.Thread(target=lambda: c.call("test.sleep", ms=800))
            hold.start()
            deadline = time.monotonic() + 5
            while self.daemon.stats()["busy_workers"] == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            r = self.alkaidc("convert", self.model, "-o", out, "--connect", self.daemon.url)
            hold.join(10)
        self.assertEqual(r.returncode, EXIT_RETRY, r.stderr)
        self.assertIn(b"EBUSY", r.stderr)

    def test_default_sockets_and_embedded_default(self):
        runtime = temp_dir("alkaid-xdg-")
        d = Daemon(runtime, name="default", wait=False, listen="default", control=False,
                   env={"XDG_RUNTIME_DIR": runtime})
        try:
            d.sock_path = runtime + "/alkaid/alkaidd.sock"
            d.url = "ipc://" + d.sock_path
            d.ctl_path = runtime + "/alkaid/alkaidd.ctl"
            d.ctl = "ipc://" + d.ctl_path
            d.wait_ready()
            self.assertEqual(os.stat(runtime + "/alkaid").st_mode & 0o777, 0o700)
            env = {"XDG_RUNTIME_DIR": runtime}
            r = self.alkaidc("ping", env=env)
            self.assertEqual(r.returncode, EXIT_OK, r.stderr)
            self.assertIn(runtime.encode() + b"/alkaid/alkaidd.sock", r.stdout)
            r = self.alkaidc("stats", env=env)
            self.assertEqual(r.returncode, EXIT_OK, r.stderr)
            # ALKAID_CONNECT wins over the default socket.
            r = self.alkaidc("ping", env={"XDG_RUNTIME_DIR": runtime,
                                          "ALKAID_CONNECT": "ipc://" + runtime + "/none"})
            self.assertEqual(r.returncode, EXIT_UNAVAILABLE)
            # The daemon at the default socket converts (its answer, whatever it is, names it).
            out = os.path.join(runtime, "x.alir.json")
            r = self.alkaidc("convert", self.model, "-o", out, env=env)
            self.assertNotIn(b"cannot reach", r.stderr)
            self.assertEqual(d.stats()["requests"].get("convert"), 1, "the daemon converted")
            self.assertEqual(self.alkaidc("shutdown", env=env).returncode, EXIT_OK)
            self.assertEqual(d.wait(10), 0)
        finally:
            d.kill()
        # No daemon at the default socket: converted in-process, never "unreachable".
        r = self.alkaidc("convert", self.model, "-o", os.path.join(runtime, "y.alir.json"),
                         env={"XDG_RUNTIME_DIR": runtime})
        self.assertNotEqual(r.returncode, EXIT_UNAVAILABLE, r.stderr)
        self.assertNotIn(b"cannot reach", r.stderr)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
