"""The ipc socket cannot be wedged (issue 15, "Done when" 3). nng 1.5.2 stops handing new
connections to the socket after one closes during the SP handshake; the daemon probes its own
listeners and re-creates a wedged one, and a lock file keeps a second daemon from probing the
socket at all. After 1,000 raw connect+close (and half-sent handshakes) and a second alkaidd on
the same path, ping and convert answer. The bound here (3 s) leaves room for a loaded test
machine; the measured time is bench/reliability.py's (bench/README.md: under 1 s)."""
import os
import socket
import subprocess
import sys
import time
import unittest

from harness import ALKAIDD, EXAMPLE, Client, Daemon, temp_dir


def poke(path, payload=b""):
    """Connects to `path`, sends `payload`, closes. While the daemon re-creates a wedged listener
    the socket file is briefly absent, and a slow daemon's backlog may be full: such a
    connection is simply not made."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(path)
        if payload:
            s.sendall(payload)
    except (ConnectionRefusedError, FileNotFoundError, BlockingIOError, socket.timeout):
        pass
    finally:
        s.close()


def timed(fn):
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


class Sockets(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = temp_dir()

    def assert_serving(self, d, within=3.0):
        """A fresh client's ping and conversion are each answered within `within` seconds. The
        client resends (nng's REQ resends a request at once when its connection is reset, which
        is what the re-creation of a wedged listener does to connections it had stranded)."""
        with Client(d.url, timeout=within + 2) as c:
            reply, elapsed = timed(c.ping)
            self.assertTrue(reply["ok"])
            self.assertLess(elapsed, within, f"ping took {elapsed:.2f} s")
            result, elapsed = timed(lambda: c.convert(message=EXAMPLE))
            self.assertEqual(result.output_names, ["output_name"])
            self.assertLess(elapsed, within, f"convert took {elapsed:.2f} s")

    def test_1000_connect_and_close(self):
        with Daemon(self.dir, name="flood", workers=1) as d:
            for i in range(1000):
                poke(d.sock_path, b"\x00SP" if i % 3 == 1 else b"")  # some half a handshake
            self.assert_serving(d)
            # One ping (two if nng resent it from a connection the re-creation reset): the
            # daemon's own probes, one a second, are not counted.
            self.assertLessEqual(d.stats()["requests"].get("ping"), 2)
            self.assertEqual(d.stop(), 0, d.log_text())

    def test_a_second_daemon_on_the_same_path(self):
        with Daemon(self.dir, name="first", workers=1) as d:
            second = subprocess.run(
                [ALKAIDD, "--listen", d.url, "--control", "ipc://" + self.dir + "/second.ctl",
                 "--workers", "1"], capture_output=True, timeout=20)
            self.assertEqual(second.returncode, 1)
            self.assertIn(f"served by another alkaidd (pid {d.pid}".encode(), second.stderr)
            self.assertIn(b".sock.lock", second.stderr)
            self.assert_serving(d)
            self.assertTrue(os.path.exists(d.sock_path), "the second daemon left the socket")
            self.assertEqual(d.stop(), 0, d.log_text())

    def test_a_dead_daemons_socket_is_taken_over(self):
        d = Daemon(self.dir, name="stale", workers=1)
        d.kill()  # SIGKILL: the socket file and the lock file stay
        self.assertTrue(os.path.exists(d.sock_path))
        with Daemon(self.dir, name="stale", workers=1) as again:
            self.assert_serving(again)
            self.assertEqual(again.stop(), 0, again.log_text())

    def test_a_wedged_listener_is_recreated(self):
        """Close connections during the handshake until the listener wedges (it does within a
        few hundred on nng 1.5.2), then check that a probe finds it and the daemon recovers."""
        with Daemon(self.dir, name="wedge", workers=1) as d:
            for _ in range(300):
                poke(d.sock_path)
                if d.stats()["listener_restarts"] > 0:
                    break
            deadline = time.monotonic() + 5
            while d.stats()["listener_restarts"] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            if d.stats()["listener_restarts"] == 0:
                self.skipTest("this nng did not wedge (fixed upstream in 1.6)")
            self.assertIn("re-creating the listener", d.log_text())
            self.assert_serving(d)
            self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
