"""Issue 17: every exit code of alkaidc and alkaidd (README.md). test_cli.py covers alkaidc's
0, 1, 2, 3, 6 and 7 on the daemon commands and test_cli_run.py 0-3 on run/inspect; this file adds
4 (past a size limit: refused by the daemon, or by the client before sending), 5 (internal: a
reply that is no protocol message, or an EINTERNAL error reply, from a stand-in daemon that
speaks nng's IPC framing), and alkaidd's own 0 (graceful stop), 1 (cannot start) and 2 (bad
command line or config file)."""
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import unittest

import msgpack

from harness import ALKAIDD, EXAMPLE, Daemon, run_alkaidc, temp_dir

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_IO, EXIT_RESOURCE, EXIT_INTERNAL = 0, 1, 2, 3, 4, 5


def read_exactly(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return data


class StandIn:
    """A REP peer on an ipc path speaking nng's IPC transport: an 8-byte SP header each way,
    then frames of a type byte (1), a 64-bit big-endian length and the message, whose first
    4 bytes are the REQ's request id (echoed in the reply). Answers every request with
    `reply(request body)`."""

    def __init__(self, path, reply):
        self.reply = reply
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(4)
        self.url = "ipc://" + path
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.talk, args=(conn,), daemon=True).start()

    def talk(self, conn):
        with conn:
            try:
                conn.sendall(b"\x00SP\x00\x00\x31\x00\x00")  # REP (0x31)
                read_exactly(conn, 8)
                while True:
                    kind, length = struct.unpack(">BQ", read_exactly(conn, 9))
                    message = read_exactly(conn, length)
                    answer = message[:4] + self.reply(message[4:])
                    conn.sendall(struct.pack(">BQ", 1, len(answer)) + answer)
            except (ConnectionError, OSError):
                return

    def close(self):
        self.server.close()


class Exits(unittest.TestCase):
    # Daemons are stopped with a 3 s grace: one that waits for a request it never answered
    # fails the test at once instead of at the 30 s default.

    @classmethod
    def setUpClass(cls):
        cls.dir = temp_dir()
        cls.model = os.path.join(cls.dir, "example.json")
        with open(cls.model, "w") as f:
            json.dump(EXAMPLE, f)

    def alkaidc(self, *args):
        return run_alkaidc(*args, env={"XDG_RUNTIME_DIR": self.dir + "/nowhere",
                                       "ALKAID_CONNECT": ""})

    def test_1_a_failed_conversion_is_answered(self):
        """Conversions that fail on the worker (the tracer refuses them) get their error reply
        at once; --timeout 1 bounds the wait if none came."""
        d = Daemon(self.dir, name="failing")
        try:
            for name, request, says in (
                    ("no-shape", {"framework": "alkaid", "model": {"input_shape": None}},
                     b"inputs must be provided"),
                    ("unknown", {"framework": "nosuch", "model": {}}, b"alkaid")):
                path = os.path.join(self.dir, name + ".json")
                with open(path, "w") as f:
                    json.dump(request, f)
                out = os.path.join(self.dir, name + ".alir.json")
                r = self.alkaidc("convert", path, "-o", out, "--connect", d.url,
                                 "--timeout", "1")
                self.assertEqual(r.returncode, EXIT_INPUT, r.stderr)
                self.assertIn(b"EINVAL", r.stderr)
                self.assertIn(says, r.stderr)
                self.assertFalse(os.path.exists(out))
        finally:
            self.assertEqual(d.stop(timeout=3), EXIT_OK)

    def test_4_past_a_limit(self):
        d = Daemon(self.dir, name="limits", args=["--max-dims", "2",
                                                  "--max-message-bytes", str(1 << 20)])
        try:
            out = os.path.join(self.dir, "out.alir.json")
            r = self.alkaidc("convert", self.model, "-o", out, "--input-shape", "1,4,5",
                             "--connect", d.url)
            self.assertEqual(r.returncode, EXIT_RESOURCE, r.stderr)
            self.assertIn(b"ELIMIT", r.stderr)
            # Over max_message_bytes: the client asks `info` and does not send it.
            big = os.path.join(self.dir, "big.json")
            with open(big, "w") as f:
                json.dump({"framework": "alkaid",
                           "model": {"input_shape": [4, 5], "pad": "x" * (2 << 20)}}, f)
            r = self.alkaidc("convert", big, "-o", out, "--connect", d.url)
            self.assertEqual(r.returncode, EXIT_RESOURCE, r.stderr)
            self.assertIn(b"max_message_bytes", r.stderr)
            self.assertFalse(os.path.exists(out))
            self.assertEqual(d.stats()["requests"].get("convert", 0), 1, "only the first sent")
        finally:
            self.assertEqual(d.stop(timeout=3), EXIT_OK)

    def test_5_internal(self):
        replies = {
            "garbage": lambda body: b"\xc1 not msgpack",
            "no ok": lambda body: msgpack.packb({"v": 1, "id": msgpack.unpackb(body)["id"]}),
            "EINTERNAL": lambda body: msgpack.packb({
                "v": 1, "id": msgpack.unpackb(body)["id"], "ok": False,
                "error": {"code": 13, "name": "EINTERNAL", "message": "stand-in", "where": None}}),
        }
        for name, reply in replies.items():
            with self.subTest(name):
                path = os.path.join(self.dir, "standin-%d.sock" % len(name))
                stand_in = StandIn(path, reply)
                try:
                    r = self.alkaidc("ping", "--connect", stand_in.url, "--timeout", "5")
                    self.assertEqual(r.returncode, EXIT_INTERNAL, r.stderr)
                finally:
                    stand_in.close()
                    os.unlink(path)

    def test_alkaidd_exit_codes(self):
        def start(*args, config=None):
            return subprocess.run([ALKAIDD, *args], capture_output=True, timeout=20)

        r = start("--no-such-flag")
        self.assertEqual(r.returncode, 2, r.stderr)
        r = start("--workers", "lots")
        self.assertEqual(r.returncode, 2, r.stderr)
        config = os.path.join(self.dir, "bad.conf")
        with open(config, "w") as f:
            f.write("workers = 2\nthis line has no equals sign\n")
        r = start("--config", config)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"bad.conf", r.stderr)
        # A socket it cannot create: cannot start.
        r = start("--listen", "ipc://" + self.dir + "/no/such/dir/d.sock",
                  "--control", "ipc://" + self.dir + "/exits.ctl")
        self.assertEqual(r.returncode, 1, r.stderr)
        d = Daemon(self.dir, name="graceful")
        self.assertEqual(d.stop(timeout=3), EXIT_OK)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])  # test names may narrow the run
