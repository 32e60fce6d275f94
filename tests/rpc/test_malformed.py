"""Bad input (issue 7, "Done when" 2): a corpus of malformed messages, each answered with its
documented error within 100 ms, while the daemon's memory stays flat; a 1 GiB length prefix at
the transport level is refused without reading it; the daemon keeps serving throughout."""
import struct
import sys
import time
import unittest

import msgpack

from harness import Daemon, raw_ipc_connect, temp_dir

P = msgpack.Packer(use_bin_type=True)


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def envelope(method="convert", **fields):
    message = {"v": 1, "id": 99, "method": method}
    message.update(fields)
    return message


EXAMPLE_FIELDS = {"framework": "alkaid", "model": {"input_shape": [4, 5]}}


def corpus():
    """(name, bytes, error name, where or None) for every malformed message."""
    good = pack(envelope(**EXAMPLE_FIELDS))
    deep = b"\x91" * 100 + b"\xc0"
    cases = [
        # Truncated msgpack.
        ("truncated in a key", good[:7], "EPROTO", None),
        ("truncated in the model", good[:-3], "EPROTO", None),
        ("empty message", b"", "EPROTO", None),
        ("trailing bytes", good + b"\xc0", "EPROTO", None),
        ("reserved byte 0xc1", b"\xc1", "EPROTO", None),
        ("ext type", P.pack_map_header(1) + pack("v") + b"\xd4\x01\x02", "EPROTO", "v"),
        ("invalid UTF-8", P.pack_map_header(1) + b"\xa1v" + b"\xa2\xff\xfe", "EPROTO", "v"),
        ("non-string key", b"\x81\x01\x02", "EPROTO", None),
        ("not a map", pack([1, 2, 3]), "EPROTO", None),
        # Huge declared sizes (1 GiB, 4 Gi entries), with almost nothing behind them.
        ("str32 of 1 GiB", P.pack_map_header(1) + pack("model") + b"\xdb\x40\x00\x00\x00abc",
         "ELIMIT", "model"),
        ("bin32 of 1 GiB", P.pack_map_header(1) + pack("model") + b"\xc6\x40\x00\x00\x00abc",
         "ELIMIT", "model"),
        ("array32 of 4 Gi items", b"\xdd\xff\xff\xff\xff\x01", "ELIMIT", None),
        ("map32 of 4 Gi entries", b"\xdf\xff\xff\xff\xff\xa1k\x01", "ELIMIT", None),
        ("a 1 GiB length prefix in the model",
         P.pack_map_header(5) + pack("v") + pack(1) + pack("id") + pack(99) + pack("method") +
         pack("convert") + pack("framework") + pack("alkaid") + pack("model") +
         b"\x81\xa6tensor\xc6\x40\x00\x00\x00" + b"\x00" * 16, "ELIMIT", "model.tensor"),
        ("nested 100 deep", P.pack_map_header(1) + pack("model") + deep, "ELIMIT", None),
        # Wrong types and missing fields.
        ("v is a string", pack({"v": "1", "id": 1, "method": "ping"}), "EINVAL", "v"),
        ("id is a float", pack({"v": 1, "id": 1.5, "method": "ping"}), "EINVAL", "id"),
        ("method is an int", pack({"v": 1, "id": 1, "method": 3}), "EINVAL", "method"),
        ("no v", pack({"id": 1, "method": "ping"}), "EINVAL", "v"),
        ("no id", pack({"v": 1, "method": "ping"}), "EINVAL", "id"),
        ("no method", pack({"v": 1, "id": 1}), "EINVAL", "method"),
        ("no model", pack(envelope(framework="alkaid")), "EINVAL", "model"),
        ("model is a list", pack(envelope(framework="alkaid", model=[4, 5])), "EINVAL", "model"),
        ("framework is an int", pack(envelope(framework=7, model={})), "EINVAL", "framework"),
        ("hwconf of 2", pack(envelope(hwconf=[1, 1], **EXAMPLE_FIELDS)), "EINVAL", "hwconf"),
        ("dump is a string", pack(envelope(dump="yes", **EXAMPLE_FIELDS)), "EINVAL", "dump"),
        ("negative timeout", pack(envelope(timeout_ms=-5, **EXAMPLE_FIELDS)), "EINVAL",
         "timeout_ms"),
        ("input shape of 9 dims", pack(envelope(inputs=[{"shape": [1] * 9}], **EXAMPLE_FIELDS)),
         "ELIMIT", "inputs[0].shape"),
        ("input shape of 2^62 elements",
         pack(envelope(inputs=[{"shape": [2**31, 2**31]}], **EXAMPLE_FIELDS)), "ELIMIT",
         "inputs[0].shape"),
        ("tensor data shorter than its shape",
         pack(envelope(framework="torch", model={"tensors": {"w": {
             "dtype": "f4", "shape": [3, 3], "data": b"\x00" * 8}}})), "EINVAL",
         "model.tensors.w.data"),
        ("unknown version", pack({"v": 9, "id": 1, "method": "ping"}), "EVERSION", "v"),
        # Unknown method and framework.
        ("unknown method", pack(envelope(method="transmogrify")), "ENOTSUP", "method"),
        ("control method on the service socket", pack(envelope(method="shutdown")), "ENOTSUP",
         "method"),
        ("unknown framework", pack(envelope(framework="nosuch", model={})), "EINVAL",
         "framework"),
        # Values a conversion would divide by, loop on or allocate for (issue 15): refused with
        # the field named, before anything is allocated for them.
        ("hwconf 0/0/x", pack(envelope(hwconf=[0, 0, 3], **EXAMPLE_FIELDS)), "EINVAL",
         "hwconf[0]"),
        ("hwconf NaN cutoff", pack(envelope(hwconf=[1, 1, float("nan")], **EXAMPLE_FIELDS)),
         "EINVAL", "hwconf[2]"),
        ("negative hard_dc", pack(envelope(solver_options={"hard_dc": -7}, **EXAMPLE_FIELDS)),
         "EINVAL", "solver_options.hard_dc"),
        ("huge binary_lut_width",
         pack(envelope(solver_options={"binary_lut_width": 1 << 40}, **EXAMPLE_FIELDS)),
         "EINVAL", "solver_options.binary_lut_width"),
        ("misspelled solver option", pack(envelope(solver_options={"hardd_dc": 1},
                                                   **EXAMPLE_FIELDS)),
         "EINVAL", "solver_options.hardd_dc"),
        ("input_shape of 25 M elements",
         pack(envelope(framework="alkaid", model={"input_shape": [5000, 5000]})), "ELIMIT",
         "model"),
        ("the tracer refuses the model",
         pack(envelope(framework="alkaid", model={"input_shape": [4, "five"]})), "EINVAL",
         "model"),
    ]
    return cases


class Malformed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = temp_dir()
        cls.daemon = Daemon(cls.dir, args=["--max-string-bytes", str(16 << 20)])
        cls.c = cls.daemon.client(timeout=5)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        assert cls.daemon.stop() == 0, cls.daemon.log_text()

    def send(self, data):
        start = time.monotonic()
        reply = msgpack.unpackb(self.c.send_raw(data), raw=False)
        return reply, time.monotonic() - start

    def test_each_message_gets_its_documented_error_fast(self):
        for name, data, error, where in corpus():
            with self.subTest(name):
                reply, elapsed = self.send(data)
                self.assertFalse(reply["ok"], name)
                self.assertEqual(reply["error"]["name"], error, f"{name}: {reply['error']}")
                self.assertEqual(reply["error"]["code"],
                                 {"EINVAL": 1, "ELIMIT": 5, "ENOTSUP": 9, "EVERSION": 10,
                                  "EPROTO": 11}[error])
                if where is not None:
                    self.assertEqual(reply["error"]["where"], where, name)
                self.assertTrue(reply["error"]["message"], name)
                self.assertLess(elapsed, 0.1, f"{name}: answered in {elapsed * 1000:.1f} ms")
        self.assertTrue(self.c.ping()["ok"])

    def test_unknown_framework_lists_the_available_ones(self):
        reply, _ = self.send(pack(envelope(framework="nosuch", model={})))
        self.assertEqual(reply["error"]["name"], "EINVAL")
        self.assertIn("alkaid", reply["error"]["message"])

    def test_memory_stays_flat(self):
        cases = corpus()
        for _ in range(5):  # warm up the allocator's arenas
            for _, data, _, _ in cases:
                self.send(data)
        before = self.daemon.rss()
        for _ in range(40):
            for _, data, _, _ in cases:
                self.send(data)
        after = self.daemon.rss()
        self.assertLess(after - before, 2 << 20,
                        f"RSS grew from {before} to {after} over {40 * len(cases)} bad messages")

    def test_transport_length_prefix_of_1_gib(self):
        """An SP frame announcing 1 GiB: nng refuses it (NNG_OPT_RECVMAXSZ) and closes the
        connection at once, without allocating; the daemon goes on serving."""
        before = self.daemon.rss()
        for _ in range(20):
            s = raw_ipc_connect(self.daemon.sock_path)
            start = time.monotonic()
            s.sendall(b"\x01" + struct.pack(">Q", 1 << 30) + b"\x00" * 64)
            try:
                data = s.recv(100)
            except ConnectionResetError:
                data = b""
            elapsed = time.monotonic() - start
            s.close()
            self.assertEqual(data, b"", "no reply can come for a message never read")
            self.assertLess(elapsed, 0.1, f"closed after {elapsed * 1000:.1f} ms")
        self.assertLess(self.daemon.rss() - before, 1 << 20)
        self.assertTrue(self.c.ping()["ok"])

    def test_message_over_the_limit_is_caught_by_the_client(self):
        """The bundled client asks `info` for the limit before sending a big message."""
        d = Daemon(self.dir, name="small", args=["--max-message-bytes", str(1 << 20)])
        try:
            with d.client(timeout=5) as c:
                from alkaid_client import AlkaidError
                with self.assertRaises(AlkaidError) as e:
                    c.convert({"blob": b"\x00" * (2 << 20)}, framework="alkaid")
                self.assertEqual(e.exception.name, "ELIMIT")
                self.assertTrue(c.ping()["ok"])
        finally:
            self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
