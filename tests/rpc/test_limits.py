"""Every limit of docs/protocol.md through a running alkaidd, at exactly the limit and one past
it (issue 17): the request at the limit is served, the one past it gets ELIMIT naming the field
and the limit. Also the deadlines (`default_timeout_ms`, `max_timeout_ms`), the length
constraints of the request fields, a message too big for nng's receive limit, and the limits'
own bounds on the command line. tests/rpc/test_wire_limits.c checks the same boundaries on the
decoder alone.

Messages are packed here with python3-msgpack and sent raw (the client's own checks are off), so
the daemon is the one that decides."""
import struct
import subprocess
import sys
import time
import unittest

import msgpack

from harness import ALKAIDD, Daemon, raw_ipc_connect, temp_dir

# The limits under test, each small enough to reach; every daemon sets one of them (the
# deadlines: two), so that no other limit gets in the way.
SMALL = {
    "max_depth": 6, "max_items": 40, "max_nodes": 100, "max_string_bytes": 16,
    "max_tensor_elements": 24, "max_dims": 2, "max_graph_nodes": 5, "max_inputs": 1,
}
DEADLINES = {"default_timeout_ms": 600, "max_timeout_ms": 1000}
MESSAGE_BYTES = 2048


def flags(limits):
    out = []
    for name, value in limits.items():
        out += ["--" + name.replace("_", "-"), str(value)]
    return out


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def ping(**more):
    return {"v": 1, "id": 7, "method": "ping", **more}


def convert(model_more=None, **more):
    model = {"input_shape": [4, 5]}
    model.update(model_more or {})
    return {"v": 1, "id": 7, "method": "convert", "framework": "alkaid", "model": model, **more}


def nest(n, inner):
    """n nested containers counting the top-level map: ping's pad holds n - 1 arrays."""
    value = inner
    for _ in range(n - 2):
        value = [value]
    return ping(pad=value)


def tensor(shape):
    count = 1
    for d in shape:
        count *= d
    return {"dtype": "f4", "shape": list(shape), "data": b"\x00" * (4 * count)}


def rows(n):
    """A 2-D shape of n elements, both extents at least 4 (24: [4, 6], 25: [5, 5])."""
    a = next(a for a in range(4, n) if n % a == 0 and n // a >= 4)
    return [a, n // a]


def exact_bytes(n):
    """A ping of exactly n bytes (a bin pad of 256..65535 bytes: 3 header bytes)."""
    head = len(pack(ping(pad=b""))) + 1  # an empty pad's bin8 header is 2 bytes, bin16's 3
    data = pack(ping(pad=b"\x00" * (n - head)))
    assert len(data) == n, (len(data), n)
    return data


# (name, limit, build(n) -> request dict, error.where past the limit, the message names this)
SIZE_CASES = [
    ("depth, innermost empty", "max_depth", lambda n: nest(n, []), "pad[0][0][0][0][0]",
     "max_depth"),
    ("depth, innermost holds nil", "max_depth", lambda n: nest(n, [None]), "pad[0][0][0][0][0]",
     "max_depth"),
    ("array items", "max_items", lambda n: ping(pad=[None] * n), "pad", "max_items"),
    ("map entries", "max_items", lambda n: ping(pad={"k%d" % i: None for i in range(n)}), "pad",
     "max_items"),
    # The top map, 4 keys, 3 envelope values and pad's array are 9 values.
    ("values", "max_nodes", lambda n: ping(pad=[None] * (n - 9)), "pad[91]", "max_nodes"),
    ("str bytes", "max_string_bytes", lambda n: ping(pad="a" * n), "pad", "max_string_bytes"),
    ("bin bytes", "max_string_bytes", lambda n: ping(pad=b"a" * n), "pad", "max_string_bytes"),
    ("tensor elements", "max_tensor_elements", lambda n: convert({"w": tensor([n])}),
     "model.w.shape", "max_tensor_elements"),
    # The example model takes one 2-D input of at least 4 x 4: [a, n / a] has n elements,
    # [1] * (n - 2) + [4, 5] has n dimensions (served at n = 2).
    ("input elements", "max_tensor_elements", lambda n: convert(inputs=[{"shape": rows(n)}]),
     "inputs[0].shape", "max_tensor_elements"),
    ("tensor dims", "max_dims", lambda n: convert({"w": tensor([1] * n)}), "model.w.shape",
     "max_dims"),
    ("input dims", "max_dims", lambda n: convert(inputs=[{"shape": [1] * (n - 2) + [4, 5]}]),
     "inputs[0].shape", "max_dims"),
    ("graph nodes", "max_graph_nodes", lambda n: convert({"graph": {"nodes": [{}] * n}}),
     "model.graph.nodes", "max_graph_nodes"),
    ("inputs", "max_inputs", lambda n: convert(inputs=[{"shape": [4, 5]}] * n), "inputs", "1"),
    ("inputs_kif triples", "max_inputs", lambda n: convert(inputs_kif=[[1, 3, 2]] * n),
     "inputs_kif", "1"),
]


class Limits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = temp_dir()
        cls.daemons = {}
        cls.clients = {}
        cls.big = Daemon(cls.dir, name="big", args=flags({"max_message_bytes": MESSAGE_BYTES}))
        # Short timeouts: a missing reply fails the test quickly.
        cls.b = cls.big.client(timeout=3, check=False)
        cls.deadline = Daemon(cls.dir, name="deadline", args=flags(DEADLINES))
        cls.d = cls.deadline.client(timeout=10, check=False)

    @classmethod
    def tearDownClass(cls):
        for client in list(cls.clients.values()) + [cls.b, cls.d]:
            client.close()
        for daemon in list(cls.daemons.values()) + [cls.big, cls.deadline]:
            assert daemon.stop(timeout=3) == 0, daemon.log_text()

    def client_for(self, limit):
        """A client of a daemon with `limit` set to SMALL[limit] and every other at its default."""
        if limit not in self.daemons:
            self.daemons[limit] = Daemon(self.dir, name=limit, args=flags({limit: SMALL[limit]}))
            self.clients[limit] = self.daemons[limit].client(timeout=10, check=False)
        return self.clients[limit]

    def send(self, client, data):
        return msgpack.unpackb(client.send_raw(data), raw=False)

    def test_info_reports_the_limits_in_force(self):
        for limit, value in SMALL.items():
            reply = self.send(self.client_for(limit), pack({"v": 1, "id": 1, "method": "info"}))
            self.assertEqual(reply["limits"][limit], value, limit)
        limits = self.send(self.d, pack({"v": 1, "id": 1, "method": "info"}))["limits"]
        self.assertEqual({k: limits[k] for k in DEADLINES}, DEADLINES)

    def test_each_size_limit_at_the_limit_and_one_past(self):
        for name, limit, build, where, says in SIZE_CASES:
            n = SMALL[limit]
            client = self.client_for(limit)
            with self.subTest(name, n=n):
                reply = self.send(client, pack(build(n)))
                self.assertTrue(reply["ok"], f"{name}: {n} is the limit: {reply.get('error')}")
            with self.subTest(name, n=n + 1):
                reply = self.send(client, pack(build(n + 1)))
                self.assertFalse(reply["ok"], f"{name}: {n + 1} is past the limit, yet served")
                error = reply["error"]
                self.assertEqual((error["name"], error["code"]), ("ELIMIT", 5), error)
                self.assertEqual(error["where"], where, error)
                self.assertIn(says, error["message"])
            self.assertTrue(self.send(client, pack(ping()))["ok"], "the daemon still serves")

    def test_message_bytes(self):
        reply = self.send(self.b, exact_bytes(MESSAGE_BYTES))
        self.assertTrue(reply["ok"], f"a message of exactly the limit: {reply.get('error')}")
        reply = self.send(self.b, exact_bytes(MESSAGE_BYTES + 1))
        self.assertFalse(reply["ok"])
        self.assertEqual(reply["error"]["name"], "ELIMIT")
        self.assertIn("max_message_bytes", reply["error"]["message"])

    def test_message_far_past_nngs_limit_is_not_read(self):
        """Past the limit plus nng's header room the connection is closed, without a reply."""
        data = exact_bytes(MESSAGE_BYTES + 128)
        s = raw_ipc_connect(self.big.sock_path)
        # One SP frame: type 1, 64-bit length, the REQ header (request id, high bit set), body.
        s.sendall(b"\x01" + struct.pack(">Q", 4 + len(data)) + b"\x80\x00\x00\x01" + data)
        try:
            answer = s.recv(100)
        except ConnectionResetError:
            answer = b""
        s.close()
        self.assertEqual(answer, b"")
        self.assertTrue(self.send(self.b, pack(ping()))["ok"])

    def test_field_lengths(self):
        """The constraints columns of docs/protocol.md: lengths of id, method, framework,
        module; an id below 2^63; timeout_ms >= 1."""
        cases = [
            ("id", 128, lambda n: {"v": 1, "id": "i" * n, "method": "ping"}, None),
            ("method", 64, lambda n: {"v": 1, "id": 1, "method": "m" * n}, "ENOTSUP"),
            ("framework", 64, lambda n: {**convert(), "framework": "f" * n}, "EINVAL"),
            ("module", 256, lambda n: {**convert(), "framework": None, "module": "m" * n},
             "EINVAL"),
        ]
        for field, limit, build, at_error in cases:
            with self.subTest(field, n=limit):
                # Not about the length at the limit: served, or refused for another reason
                # (no such method or framework), never EINVAL at this field for its length.
                reply = self.send(self.b, pack(build(limit)))
                if not reply["ok"]:
                    self.assertEqual(reply["error"]["name"], at_error, reply["error"])
                    self.assertNotIn(str(limit), reply["error"]["message"])
            with self.subTest(field, n=limit + 1):
                reply = self.send(self.b, pack(build(limit + 1)))
                self.assertFalse(reply["ok"])
                self.assertEqual(reply["error"]["name"], "EINVAL", reply["error"])
                self.assertEqual(reply["error"]["where"], field)
                self.assertIn(str(limit), reply["error"]["message"])
        reply = self.send(self.b, pack({"v": 1, "id": 2**63 - 1, "method": "ping"}))
        self.assertEqual(reply["id"], 2**63 - 1)
        reply = self.send(self.b, pack({"v": 1, "id": 2**63, "method": "ping"}))
        self.assertEqual((reply["error"]["name"], reply["error"]["where"]), ("EINVAL", "id"))
        reply = self.send(self.b, pack(convert(timeout_ms=1)))
        self.assertNotEqual(reply.get("error", {}).get("where"), "timeout_ms")
        reply = self.send(self.b, pack(convert(timeout_ms=0)))
        self.assertEqual((reply["error"]["name"], reply["error"]["where"]),
                         ("EINVAL", "timeout_ms"))

    def sleep(self, ms, timeout_ms=None):
        request = {"v": 1, "id": 9, "method": "test.sleep", "ms": ms}
        if timeout_ms is not None:
            request["timeout_ms"] = timeout_ms
        start = time.monotonic()
        reply = self.send(self.d, pack(request))
        return reply, time.monotonic() - start

    def test_deadlines(self):
        """default_timeout_ms = 600 applies without timeout_ms; timeout_ms up to
        max_timeout_ms = 1000 is honoured and a longer one is capped to it (not refused)."""
        reply, _ = self.sleep(100)
        self.assertTrue(reply["ok"], reply)
        reply, elapsed = self.sleep(5000)
        self.assertEqual(reply["error"]["name"], "ETIMEDOUT")
        self.assertTrue(0.5 < elapsed < 3.0, f"the default deadline fired after {elapsed:.2f} s")
        for timeout_ms in (DEADLINES["max_timeout_ms"], DEADLINES["max_timeout_ms"] + 1):
            reply, _ = self.sleep(300, timeout_ms)
            self.assertTrue(reply["ok"], f"timeout_ms {timeout_ms}: {reply}")
            reply, elapsed = self.sleep(5000, timeout_ms)
            self.assertEqual(reply["error"]["name"], "ETIMEDOUT")
            self.assertTrue(0.9 < elapsed < 3.5, f"timeout_ms {timeout_ms}: {elapsed:.2f} s")

    def test_limits_own_bounds_on_the_command_line(self):
        """alkaidd refuses a limit outside its schema bounds (exit 2) and takes one at them."""
        for flag, good, bad in (("--max-dims", 8, 9), ("--max-inputs", 64, 65),
                                ("--max-depth", 2, 1), ("--max-string-bytes", 16, 15)):
            r = subprocess.run([ALKAIDD, flag, str(bad), "--listen", "ipc://" + self.dir + "/x",
                                "--control", "ipc://" + self.dir + "/x.ctl"],
                               capture_output=True, timeout=10)
            self.assertEqual(r.returncode, 2, f"{flag} {bad}: {r.stderr}")
            self.assertIn(flag[2:].encode(), r.stderr)
            d = Daemon(self.dir, name="bound", args=[flag, str(good)])
            self.assertEqual(d.stop(timeout=3), 0)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])  # test names may narrow the run
