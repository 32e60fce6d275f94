"""The clients do not wait forever (issue 15, item 6 and 8): alkaidc gives up within seconds when
it loses its daemon, refuses a message above the daemon's size limit before sending it, honours
--timeout in-process (--local) and remotely without a 5 s surcharge, exits 1 for a malformed
model file; the Python client fails at once when nothing listens."""
import json
import os
import subprocess
import sys
import time
import unittest

from harness import ALKAIDC, EXAMPLE, AlkaidError, Client, Daemon, crashy_plugin_dir, temp_dir

EXIT_OK, EXIT_INPUT, EXIT_RESOURCE, EXIT_UNAVAILABLE, EXIT_RETRY = 0, 1, 4, 6, 7


def hang_model():
    return {"framework": "crashy", "model": {"do": "hang"}}


class Clients(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = temp_dir()
        cls.plugins = crashy_plugin_dir(cls.dir)
        cls.env = {"ALKAID_CONNECT": "", "XDG_RUNTIME_DIR": cls.dir + "/nowhere"}

    def write(self, name, content):
        path = os.path.join(self.dir, name)
        with open(path, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)
        return path

    def alkaidc(self, *args, timeout=60):
        env = dict(os.environ)
        env.update(self.env)
        start = time.monotonic()
        r = subprocess.run([ALKAIDC, *args], capture_output=True, env=env, timeout=timeout)
        return r, time.monotonic() - start

    def test_python_client_fails_at_once_when_nothing_listens(self):
        start = time.monotonic()
        with self.assertRaises(AlkaidError) as e:
            Client("ipc://" + self.dir + "/nobody.sock")
        self.assertEqual(e.exception.name, "EIO")
        self.assertIn("no daemon at", e.exception.message)
        self.assertLess(time.monotonic() - start, 1.0)
        self.assertEqual(Client.__init__.__kwdefaults__["timeout"], 3600.0,
                         "the documented default timeout")

    def test_alkaidc_gives_up_when_it_loses_the_daemon(self):
        model = self.write("hang.json", json.dumps(hang_model()))
        d = Daemon(self.dir, name="dies", workers=1, args=["--plugin-dir", self.plugins])
        try:
            env = dict(os.environ)
            env.update(self.env)
            out = os.path.join(self.dir, "out.json")
            proc = subprocess.Popen([ALKAIDC, "convert", model, "-o", out, "--connect", d.url],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            time.sleep(0.5)
            d.kill()
            start = time.monotonic()
            _, err = proc.communicate(timeout=30)
            self.assertEqual(proc.returncode, EXIT_UNAVAILABLE, err)
            self.assertIn(b"lost the daemon", err)
            self.assertLess(time.monotonic() - start, 10.0)
        finally:
            d.kill()

    def test_alkaidc_checks_the_size_limit_before_sending(self):
        big = dict(EXAMPLE, blob="x" * (3 << 20))
        model = self.write("big.json", json.dumps(big))
        with Daemon(self.dir, name="small", workers=1,
                    args=["--max-message-bytes", str(1 << 20),
                          "--max-string-bytes", str(4 << 20)]) as d:
            r, elapsed = self.alkaidc("convert", model, "-o", self.dir + "/x.json",
                                      "--connect", d.url)
            self.assertEqual(r.returncode, EXIT_RESOURCE, r.stderr)
            self.assertIn(b"max_message_bytes", r.stderr)
            self.assertLess(elapsed, 5.0)
            self.assertEqual(d.stats()["requests"].get("convert"), None, "nothing was sent")

    def test_timeout_remote_and_local(self):
        model = self.write("hang2.json", json.dumps(hang_model()))
        with Daemon(self.dir, name="slow", workers=1,
                    args=["--plugin-dir", self.plugins, "--kill-grace-ms", "200"]) as d:
            r, elapsed = self.alkaidc("convert", model, "-o", self.dir + "/y.json",
                                      "--connect", d.url, "--timeout", "1")
            self.assertEqual(r.returncode, EXIT_RETRY, r.stderr)
            self.assertIn(b"ETIMEDOUT", r.stderr)
            self.assertLess(elapsed, 3.0, "--timeout 1 waits about 1 s, not 6")
        r, elapsed = self.alkaidc("convert", model, "-o", self.dir + "/z.json", "--local",
                                  "--plugin-dir", self.plugins, "--timeout", "1")
        self.assertEqual(r.returncode, EXIT_RETRY, r.stderr)
        self.assertIn(b"--timeout", r.stderr)
        self.assertLess(elapsed, 5.0, "the in-process conversion is stopped too")

    def test_malformed_model_files_exit_1(self):
        for name, content, needle in (
                ("empty.json", b"", b"empty"),
                ("array.json", b"[1, 2, 3]", b"must be a map"),
                ("garbage.bin", b"\xc1\x00\x00", b"not a JSON or msgpack"),
                ("truncated.json", b'{"framework": "alk', b"")):
            with self.subTest(name):
                r, _ = self.alkaidc("convert", self.write(name, content), "-o",
                                    self.dir + "/w.json", "--local")
                self.assertEqual(r.returncode, EXIT_INPUT, r.stderr)
                self.assertIn(needle, r.stderr)
        # A UTF-8 byte-order mark before JSON is allowed (RFC 8259).
        bom = self.write("bom.json", b"\xef\xbb\xbf" + json.dumps(EXAMPLE).encode())
        r, _ = self.alkaidc("convert", bom, "-o", self.dir + "/v.json", "--local")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)

    def test_output_names_with_output_to_stdout(self):
        model = self.write("ex.json", json.dumps(EXAMPLE))
        r, _ = self.alkaidc("convert", model, "-o", "-", "--local")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertTrue(r.stdout.startswith(b"{"), "the program on stdout")
        self.assertEqual(r.stderr.decode().splitlines()[-1], "output_name")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
