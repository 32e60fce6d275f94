"""The wire protocol against a real alkaidd: every reply conforms to its schema, the envelope's
rules (version, id echo, unknown methods, duplicate keys, unknown fields), both sockets, tcp."""
import json
import os
import socket
import stat
import sys
import unittest

import msgpack

from harness import AlkaidError, Client, Daemon, temp_dir

SCHEMAS = os.path.join(os.environ.get("ALK_SOURCE_ROOT", "."), "schemas")


def load_schema(name):
    with open(os.path.join(SCHEMAS, name + ".json")) as f:
        return json.load(f)


def type_ok(value, types):
    for t in types.split("|"):
        if t == "any" or (t == "nil" and value is None) or (t == "bool" and isinstance(value, bool)):
            return True
        if t in ("int", "uint") and isinstance(value, int) and not isinstance(value, bool):
            if t == "int" or value >= 0:
                return True
        if (t == "float" and isinstance(value, float)) or (t == "str" and isinstance(value, str)):
            return True
        if (t == "bin" and isinstance(value, bytes)) or (t == "array" and isinstance(value, list)):
            return True
        if t == "map" and isinstance(value, dict):
            return True
    return False


def check_reply(testcase, method, reply):
    """Checks a success reply against schemas/<method>.json and the envelope."""
    schema = load_schema(method)
    envelope = load_schema("envelope")
    for field in envelope["reply"] + schema["reply"]:
        name = field["name"]
        if field.get("required"):
            testcase.assertIn(name, reply, f"{method}: reply lacks '{name}'")
        if name in reply:
            testcase.assertTrue(type_ok(reply[name], field["type"]),
                                f"{method}.{name} = {reply[name]!r} is not {field['type']}")
            if "items" in field:
                for item in reply[name]:
                    testcase.assertTrue(type_ok(item, field["items"]),
                                        f"{method}.{name} item {item!r} is not {field['items']}")
    documented = {f["name"] for f in envelope["reply"] + schema["reply"]}
    for name in reply:
        testcase.assertIn(name, documented, f"{method}: reply field '{name}' is not in the schema")


def raw(client, obj):
    return msgpack.unpackb(client.send_raw(msgpack.packb(obj, use_bin_type=True)), raw=False)


class Protocol(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = temp_dir()
        cls.port = free_port()
        cls.daemon = Daemon(cls.dir, args=["--listen", f"tcp://127.0.0.1:{cls.port}"])
        cls.c = cls.daemon.client(timeout=10)
        cls.ctl = cls.daemon.control(timeout=10)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        cls.ctl.close()
        assert cls.daemon.stop() == 0

    def test_replies_conform_to_their_schemas(self):
        for method in ("ping", "info", "plugins"):
            check_reply(self, method, self.c.call(method))
            check_reply(self, method, self.ctl.call(method))
        check_reply(self, "stats", self.ctl.call("stats"))
        check_reply(self, "drain", self.ctl.call("drain", resume=True))

    def test_info_reports_versions_limits_and_methods(self):
        info = self.c.info()
        self.assertEqual(info["protocol"], 1)
        self.assertEqual(info["accepted"], [1])
        self.assertEqual(info["methods"], ["convert", "info", "ping", "plugins"])
        self.assertEqual(info["limits"]["max_message_bytes"], 64 << 20)
        self.assertEqual(info["limits"]["max_dims"], 8)
        self.assertEqual(info["workers"], 2)
        self.assertEqual(info["queue"], 16)
        self.assertNotIn("test.sleep", info["methods"])
        control_methods = self.ctl.info()["methods"]
        for m in ("reload", "load", "unload", "stats", "drain", "shutdown"):
            self.assertIn(m, control_methods)
        self.assertNotIn("convert", control_methods)

    def test_unknown_version_lists_the_supported_ones(self):
        reply = raw(self.c, {"v": 2, "id": 5, "method": "ping"})
        self.assertFalse(reply["ok"])
        self.assertEqual(reply["id"], 5)
        self.assertEqual(reply["error"]["name"], "EVERSION")
        self.assertEqual(reply["error"]["code"], 10)
        self.assertEqual(reply["error"]["supported"], [1])
        self.assertEqual(reply["error"]["where"], "v")

    def test_ids_are_echoed_as_given(self):
        for request_id in (0, 2**63 - 1, "job-42", "é" * 20):
            reply = raw(self.c, {"v": 1, "id": request_id, "method": "ping"})
            self.assertTrue(reply["ok"])
            self.assertEqual(reply["id"], request_id)
        for bad in ("x" * 129, 2**64 - 1, -1, 1.0):
            reply = raw(self.c, {"v": 1, "id": bad, "method": "ping"})
            self.assertEqual(reply["error"]["name"], "EINVAL", repr(bad))
            self.assertEqual(reply["error"]["where"], "id")
            self.assertIsNone(reply["id"], "an invalid id is not echoed")

    def test_unknown_and_misplaced_methods(self):
        reply = raw(self.c, {"v": 1, "id": 1, "method": "frobnicate"})
        self.assertEqual(reply["error"]["name"], "ENOTSUP")
        self.assertIn("convert, info, ping, plugins", reply["error"]["message"])
        for method in ("reload", "shutdown", "stats"):
            reply = raw(self.c, {"v": 1, "id": 1, "method": method})
            self.assertEqual(reply["error"]["name"], "ENOTSUP", method)
        reply = raw(self.ctl, {"v": 1, "id": 1, "method": "convert", "model": {}})
        self.assertEqual(reply["error"]["name"], "ENOTSUP")

    def test_unknown_fields_are_ignored_duplicates_refused(self):
        reply = raw(self.c, {"v": 1, "id": 1, "method": "ping", "future_field": [1, 2]})
        self.assertTrue(reply["ok"])
        # msgpack-python cannot write a duplicate key from a dict: build the bytes by hand.
        packer = msgpack.Packer(use_bin_type=True)
        data = (packer.pack_map_header(4) + packer.pack("v") + packer.pack(1) + packer.pack("id")
                + packer.pack(1) + packer.pack("method") + packer.pack("ping")
                + packer.pack("v") + packer.pack(1))
        reply = msgpack.unpackb(self.c.send_raw(data), raw=False)
        self.assertEqual(reply["error"]["name"], "EINVAL")
        self.assertIn("twice", reply["error"]["message"])

    def test_test_hooks_are_hidden_without_the_flag(self):
        d = Daemon(self.dir, name="nohooks", test_hooks=False)
        try:
            with d.client(timeout=5) as c:
                reply = raw(c, {"v": 1, "id": 1, "method": "test.sleep", "ms": 1})
                self.assertEqual(reply["error"]["name"], "ENOTSUP")
        finally:
            self.assertEqual(d.stop(), 0)

    def test_sockets_permissions(self):
        mode = stat.S_IMODE(os.stat(self.daemon.ctl_path).st_mode)
        self.assertEqual(mode, 0o600, "the control socket must be 0600")
        mode = stat.S_IMODE(os.stat(self.daemon.sock_path).st_mode)
        self.assertEqual(mode, 0o660)

    def test_tcp_listener_and_control_is_ipc_only(self):
        with Client(f"tcp://127.0.0.1:{self.port}", timeout=5) as c:
            self.assertTrue(c.ping()["ok"])
        d = Daemon(self.dir, name="tcpctl", wait=False,
                   args=["--control", f"tcp://127.0.0.1:{free_port()}"])
        self.assertEqual(d.wait(10), 1)
        self.assertIn("control socket must be ipc://", d.log_text())

    def test_bad_command_line_exits_2(self):
        d = Daemon(self.dir, name="badflag", wait=False, args=["--workers", "lots"])
        self.assertEqual(d.wait(10), 2)
        self.assertIn("--workers", d.log_text())

    def test_python_client_checks_before_sending(self):
        with self.assertRaises(AlkaidError) as e:
            self.c.convert({"input_shape": [4, 5]}, framework="alkaid", hwconf=[1, 2])
        self.assertEqual(e.exception.where, "hwconf")
        with self.assertRaises(AlkaidError) as e:
            self.c.call("convert", framework="alkaid")
        self.assertEqual((e.exception.name, e.exception.where), ("EINVAL", "model"))
        # The same request unchecked: the daemon says the same.
        with Client(self.daemon.url, timeout=5, check=False) as c:
            with self.assertRaises(AlkaidError) as e:
                c.call("convert", framework="alkaid")
            self.assertEqual((e.exception.name, e.exception.where), ("EINVAL", "model"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
