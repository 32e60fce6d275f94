"""A Python client for alkaidd, the alkaid conversion daemon.

Needs only the standard library's ctypes, libnng (Debian: libnng1) and msgpack (Debian:
python3-msgpack). The wire protocol is docs/protocol.md; the request tables in _schema.py are
generated from the same schemas as the daemon's validation, and the client checks a request
against them before sending.

    from alkaid_client import Client
    with Client("ipc:///run/user/1000/alkaid/alkaidd.sock") as c:
        c.ping()
        result = c.convert({"input_shape": [4, 5]}, framework="alkaid")
        open("model.alir.json", "w").write(result.alir)
        result = c.convert_file("model.keras", inputs_kif=[1, 4, 3])
        result = c.convert_torch(net.eval(), [(1, 3, 8, 8)], inputs_kif=(1, 4, 4))

A Client holds one nng REQ socket dialed to every URL given (nng spreads requests over the
daemons and resends to another one when a connection drops); each call runs on its own nng
context, so one Client may be shared by many threads.
"""

import ctypes
import ctypes.util
import itertools
import os
import threading

import msgpack

from . import _schema

__all__ = ["AlkaidError", "Client", "Control", "ConvertResult", "default_url", "PROTOCOL"]

PROTOCOL = _schema.PROTOCOL

# nng constants (nng.h of nng 1.5).
_NNG_ETIMEDOUT = 5
_NNG_ECLOSED = 7
_NNG_EAGAIN = 8  # an ipc listener's backlog is full: someone listens
_NNG_DURATION_INFINITE = -1
_NNG_FLAG_NONBLOCK = 2

_CHECK_SIZE_ABOVE = 1 << 20  # ask the daemon for its limits before sending more than this

# Seconds a call waits for its reply by default: the daemon's longest deadline by default
# (alkaidd --max-timeout-ms); the daemon answers every request by its deadline, 300 s unless the
# request or alkaidd --timeout says otherwise.
DEFAULT_TIMEOUT = 3600.0


class AlkaidError(Exception):
    """An error reply of the daemon, or a transport failure (name "EIO", "ETIMEDOUT", ...).

    `code` and `name` are the stable codes of docs/protocol.md; `where` names the request
    field at fault (or is None); `reply` is the whole decoded reply when there was one.
    """

    def __init__(self, name, message, where=None, code=None, reply=None):
        self.name = name
        self.code = code if code is not None else _schema.ERRORS.get(name, 0)
        self.message = message
        self.where = where
        self.reply = reply
        super().__init__(f"{name}: {message}" + (f" (at {where})" if where else ""))


class ConvertResult(dict):
    """The `convert` reply: a dict with the reply's fields, plus `.alir` (the ALIR JSON text)."""

    @property
    def alir(self):
        data = self["alir"]
        if self.get("alir_encoding") == "gzip":
            import gzip
            return gzip.decompress(data).decode("utf-8")
        return data

    @property
    def output_names(self):
        return self["output_names"]


class _Nng:
    """The few libnng functions the client needs, loaded once."""

    _lock = threading.Lock()
    _lib = None

    @classmethod
    def get(cls, path=None):
        with cls._lock:
            if cls._lib is None or path is not None:
                name = path or ctypes.util.find_library("nng") or "libnng.so.1"
                lib = ctypes.CDLL(name)
                cls._declare(lib)
                if path is not None:
                    return lib
                cls._lib = lib
            return cls._lib

    @staticmethod
    def _declare(lib):
        c = ctypes
        sock = _Socket
        ctx = _Ctx
        lib.nng_req0_open.argtypes = [c.POINTER(sock)]
        lib.nng_close.argtypes = [sock]
        lib.nng_dial.argtypes = [sock, c.c_char_p, c.c_void_p, c.c_int]
        lib.nng_socket_set_ms.argtypes = [sock, c.c_char_p, c.c_int32]
        lib.nng_socket_set_size.argtypes = [sock, c.c_char_p, c.c_size_t]
        lib.nng_strerror.argtypes = [c.c_int]
        lib.nng_strerror.restype = c.c_char_p
        lib.nng_ctx_open.argtypes = [c.POINTER(ctx), sock]
        lib.nng_ctx_close.argtypes = [ctx]
        lib.nng_ctx_send.argtypes = [ctx, c.c_void_p]
        lib.nng_ctx_send.restype = None
        lib.nng_ctx_recv.argtypes = [ctx, c.c_void_p]
        lib.nng_ctx_recv.restype = None
        lib.nng_ctx_set_ms.argtypes = [ctx, c.c_char_p, c.c_int32]
        lib.nng_aio_alloc.argtypes = [c.POINTER(c.c_void_p), c.c_void_p, c.c_void_p]
        lib.nng_aio_free.argtypes = [c.c_void_p]
        lib.nng_aio_free.restype = None
        lib.nng_aio_wait.argtypes = [c.c_void_p]
        lib.nng_aio_wait.restype = None
        lib.nng_aio_result.argtypes = [c.c_void_p]
        lib.nng_aio_set_timeout.argtypes = [c.c_void_p, c.c_int32]
        lib.nng_aio_set_timeout.restype = None
        lib.nng_aio_set_msg.argtypes = [c.c_void_p, c.c_void_p]
        lib.nng_aio_set_msg.restype = None
        lib.nng_aio_get_msg.argtypes = [c.c_void_p]
        lib.nng_aio_get_msg.restype = c.c_void_p
        lib.nng_msg_alloc.argtypes = [c.POINTER(c.c_void_p), c.c_size_t]
        lib.nng_msg_free.argtypes = [c.c_void_p]
        lib.nng_msg_free.restype = None
        lib.nng_msg_body.argtypes = [c.c_void_p]
        lib.nng_msg_body.restype = c.c_void_p
        lib.nng_msg_len.argtypes = [c.c_void_p]
        lib.nng_msg_len.restype = c.c_size_t


class _Socket(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32)]


class _Ctx(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32)]


def default_url(control=False):
    """The URL alkaidc would use: ALKAID_CONNECT (service), else the user's or the system's
    default socket, whichever exists (else the user's)."""
    if not control and os.environ.get("ALKAID_CONNECT"):
        return os.environ["ALKAID_CONNECT"].split(",")[0]
    name = "alkaidd.ctl" if control else "alkaidd.sock"
    candidates = []
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(os.path.join(os.environ["XDG_RUNTIME_DIR"], "alkaid", name))
    system = os.environ.get("ALKAID_SYSTEM_RUNTIME_DIR", "")
    candidates.append(os.path.join(system if system.startswith("/") else "/run/alkaid", name))
    for path in candidates:
        if os.path.exists(path):
            return "ipc://" + path
    return "ipc://" + candidates[0]


def _type_ok(value, types):
    for t in types.split("|"):
        if t == "any":
            return True
        if t == "nil" and value is None:
            return True
        if t == "bool" and isinstance(value, bool):
            return True
        if t in ("int", "uint") and isinstance(value, int) and not isinstance(value, bool):
            if t == "int" or value >= 0:
                return True
        if t == "float" and isinstance(value, float):
            return True
        if t == "str" and isinstance(value, str):
            return True
        if t == "bin" and isinstance(value, (bytes, bytearray)):
            return True
        if t == "array" and isinstance(value, (list, tuple)):
            return True
        if t == "map" and isinstance(value, dict):
            return True
    return False


def check_request(request):
    """Checks `request` (a dict) against the generated schema tables, like the daemon does
    first; raises AlkaidError("EINVAL", ...) naming the field."""
    method = request.get("method")
    spec = _schema.METHODS.get(method)
    if spec is None:
        raise AlkaidError("ENOTSUP", f"unknown method '{method}'", "method")
    for field in _schema.ENVELOPE + spec["request"]:
        name = field["name"]
        value = request.get(name)
        if value is None:
            if field.get("required"):
                raise AlkaidError("EINVAL", f"missing field '{name}'", name)
            continue
        if not _type_ok(value, field["type"]):
            raise AlkaidError("EINVAL", f"field '{name}' must be {field['type']}", name)
        if isinstance(value, (str, bytes, list, tuple, dict)):
            n = len(value.encode() if isinstance(value, str) else value)
            if n < field.get("min_len", 0) or ("max_len" in field and n > field["max_len"]):
                raise AlkaidError("EINVAL", f"field '{name}' has a bad length ({n})", name)
        if isinstance(value, int) and not isinstance(value, bool):
            if ("min" in field and value < field["min"]) or ("max" in field and value > field["max"]):
                raise AlkaidError("EINVAL", f"field '{name}' is out of range", name)
        if "enum" in field and value not in field["enum"]:
            raise AlkaidError("EINVAL", f"field '{name}' must be one of {field['enum']}", name)
        if "items" in field and isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if not _type_ok(item, field["items"]):
                    raise AlkaidError("EINVAL", f"{name}[{i}] must be {field['items']}",
                                      f"{name}[{i}]")
    payload = _schema.PAYLOADS.get(request.get("framework"))
    model = request.get("model")
    if payload is not None and isinstance(model, dict):
        for field in payload["fields"]:
            name = field["name"]
            value = model.get(name)
            if value is not None and not _type_ok(value, field["type"]):
                raise AlkaidError("EINVAL", f"model.{name} must be {field['type']}",
                                  f"model.{name}")
            if value is not None and "enum" in field and value not in field["enum"]:
                raise AlkaidError("EINVAL", f"model.{name} must be one of {field['enum']}",
                                  f"model.{name}")


class Client:
    """A connection to one daemon, or to several (a farm), or to a broker.

    url: a URL or a list of URLs (default: default_url()); timeout: seconds to wait for each
    reply (default DEFAULT_TIMEOUT; None: forever); resend: seconds after which nng resends a
    request that got no reply (the daemon answers duplicates once, from its reply cache);
    max_reply_bytes: the largest reply accepted (nng's NNG_OPT_RECVMAXSZ).

    The constructor fails at once (AlkaidError "EIO") when no daemon listens at any of the URLs;
    a URL that does not answer now is dialed again in the background, so that a farm with one
    daemon down still works.
    """

    _ids = itertools.count(1)

    def __init__(self, url=None, *, timeout=DEFAULT_TIMEOUT, resend=10.0, check=True,
                 libnng=None, max_reply_bytes=1 << 30):
        self._nng = _Nng.get(libnng)
        urls = [url] if isinstance(url, str) else list(url or [default_url()])
        self.urls = urls
        self.timeout = timeout
        self.check = check
        self._limits = None
        self._socket = _Socket()
        self._closed = False
        rv = self._nng.nng_req0_open(ctypes.byref(self._socket))
        if rv != 0:
            raise self._error(rv, "opening a REQ socket")
        ms = int(resend * 1000) if resend else _NNG_DURATION_INFINITE
        self._nng.nng_socket_set_ms(self._socket, b"req:resend-time", ms)
        # nng 1.5 reads messages of any size by default: bound what a peer can make us allocate.
        self._nng.nng_socket_set_size(self._socket, b"recv-size-max", max_reply_bytes)
        reached = 0
        last = 0
        for u in urls:
            # First synchronously, so that "nothing listens" is known at once; a URL that does
            # not answer is then dialed in the background (nng retries it). EAGAIN is a full
            # backlog: a daemon listens, busy for a moment.
            rv = self._nng.nng_dial(self._socket, u.encode(), None, 0)
            if rv in (0, _NNG_EAGAIN):
                reached += 1
            if rv == 0:
                continue
            last = rv
            rv = self._nng.nng_dial(self._socket, u.encode(), None, _NNG_FLAG_NONBLOCK)
            if rv != 0:
                self.close()
                raise self._error(rv, f"dialing {u}")
        if reached == 0:
            self.close()
            raise AlkaidError("EIO", f"no daemon at {', '.join(urls)}: "
                              f"{self._nng.nng_strerror(last).decode()}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if not self._closed:
            self._closed = True
            self._nng.nng_close(self._socket)

    def _error(self, rv, doing):
        text = self._nng.nng_strerror(rv).decode()
        name = "ETIMEDOUT" if rv == _NNG_ETIMEDOUT else "EIO"
        return AlkaidError(name, f"{doing}: {text}")

    def send_raw(self, data, timeout=None):
        """Sends `data` (bytes) as one message and returns the reply's bytes."""
        nng = self._nng
        timeout = self.timeout if timeout is None else timeout
        ms = _NNG_DURATION_INFINITE if timeout is None else max(1, int(timeout * 1000))
        ctx = _Ctx()
        rv = nng.nng_ctx_open(ctypes.byref(ctx), self._socket)
        if rv != 0:
            raise self._error(rv, "opening a context")
        aio = ctypes.c_void_p()
        try:
            rv = nng.nng_aio_alloc(ctypes.byref(aio), None, None)
            if rv != 0:
                raise self._error(rv, "allocating an aio")
            msg = ctypes.c_void_p()
            rv = nng.nng_msg_alloc(ctypes.byref(msg), len(data))
            if rv != 0:
                raise self._error(rv, "allocating a message")
            ctypes.memmove(nng.nng_msg_body(msg), data, len(data))
            nng.nng_aio_set_msg(aio, msg)
            nng.nng_aio_set_timeout(aio, ms)
            nng.nng_ctx_send(ctx, aio)
            nng.nng_aio_wait(aio)
            rv = nng.nng_aio_result(aio)
            if rv != 0:
                unsent = nng.nng_aio_get_msg(aio)
                if unsent:
                    nng.nng_msg_free(unsent)
                raise self._error(rv, "sending")
            nng.nng_aio_set_timeout(aio, ms)
            nng.nng_ctx_recv(ctx, aio)
            nng.nng_aio_wait(aio)
            rv = nng.nng_aio_result(aio)
            if rv != 0:
                raise self._error(rv, "waiting for the reply")
            reply = nng.nng_aio_get_msg(aio)
            try:
                return ctypes.string_at(nng.nng_msg_body(reply), nng.nng_msg_len(reply))
            finally:
                nng.nng_msg_free(reply)
        finally:
            if aio:
                nng.nng_aio_free(aio)
            nng.nng_ctx_close(ctx)

    def call(self, method, timeout=None, **fields):
        """Calls `method` with `fields`; returns the reply as a dict or raises AlkaidError."""
        request = {"v": PROTOCOL, "id": (os.getpid() << 32) | next(self._ids), "method": method}
        request.update({k: v for k, v in fields.items() if v is not None})
        if self.check:
            check_request(request)
        data = msgpack.packb(request, use_bin_type=True)
        if len(data) > _CHECK_SIZE_ABOVE and method != "info":
            limit = self.limits()["max_message_bytes"]
            if len(data) > limit:
                raise AlkaidError("ELIMIT", f"the request has {len(data)} bytes; the daemon "
                                  f"accepts at most {limit} (max_message_bytes)")
        reply = msgpack.unpackb(self.send_raw(data, timeout), raw=False)
        if not isinstance(reply, dict) or "ok" not in reply:
            raise AlkaidError("EPROTO", "the reply is not a protocol message")
        if reply.get("id") != request["id"]:
            raise AlkaidError("EPROTO", f"the reply answers id {reply.get('id')!r}, "
                              f"not {request['id']!r}")
        if not reply["ok"]:
            err = reply.get("error") or {}
            raise AlkaidError(err.get("name", "EUNKNOWN"), err.get("message", ""),
                              err.get("where"), err.get("code"), reply)
        return reply

    def ping(self):
        return self.call("ping")

    def info(self):
        return self.call("info")

    def limits(self):
        if self._limits is None:
            self._limits = self.info()["limits"]
        return self._limits

    def plugins(self):
        """The plugins of the daemon's current generation (a list of dicts)."""
        return self.call("plugins")["plugins"]

    def convert(self, model=None, *, framework=None, module=None, inputs=None, inputs_kif=None,
                hwconf=None, solver_options=None, dump=None, timeout=None, alir_encoding=None,
                message=None):
        """Converts a model. Either give the framework payload `model` (a dict, e.g.
        {"input_shape": [4, 5]} for the example tracer) and the envelope fields, or a whole
        graph message (frontends.md §7) as `message`; explicit arguments override it.
        `timeout` (seconds) is also the daemon's deadline for the job; without it the daemon's
        own deadline applies and the client waits as long as the Client's timeout."""
        fields = dict(message or {})
        explicit = {"model": model, "framework": framework, "module": module,
                    "inputs": inputs, "inputs_kif": inputs_kif,
                    "hwconf": list(hwconf) if hwconf is not None else None,
                    "solver_options": solver_options, "dump": dump,
                    "alir_encoding": alir_encoding}
        fields.update({k: v for k, v in explicit.items() if v is not None})
        if timeout is not None:
            fields["timeout_ms"] = int(timeout * 1000)
        # The daemon answers ETIMEDOUT at the deadline; the margin lets that reply arrive.
        wait = None if timeout is None or timeout <= 0 else timeout + 1.0
        return ConvertResult(self.call("convert", timeout=wait, **fields))

    def convert_file(self, path, weights=None, *, weight_kif=None, layer_output_kif=None,
                     **options):
        """Converts a Keras model file: `path` is a `.keras` or `.h5` file, or a model JSON
        with `weights` its weights `.h5` (Keras 2 to_json() + save_weights()). The files'
        bytes travel as they are (`model.file`, `model.weights_file`); the daemon reads them
        exactly as `alkaidc convert` does. `weight_kif` and `layer_output_kif` ((K, I, F)) are
        the precision options of plain float models (`model.precision`, alkaidc --weight-kif
        and --layer-output-kif). `options` are those of convert() (framework defaults to
        "keras", e.g. inputs_kif=[1, 4, 3])."""
        model = {"file": _read_model_file(path)}
        if weights is not None:
            model["weights_file"] = _read_model_file(weights)
        precision = {k: list(v) for k, v in (("weight_kif", weight_kif),
                                             ("layer_output_kif", layer_output_kif))
                     if v is not None}
        if precision:
            model["precision"] = precision
        options.setdefault("framework", "keras")
        return self.convert(model, **options)

    def convert_torch(self, module, input_shapes, inputs_kif=(1, 4, 4), *, leaf_modules=(),
                      **options):
        """Converts a torch module: exports its graph with alkaid_client.torch.export()
        (input shapes with the batch axis of 1, one (k, i, f) for all inputs or one per
        input) and sends it; `options` are convert()'s (hwconf, dump, timeout, ...).
        Needs torch."""
        from . import torch as torch_export  # torch is optional for the rest of the client
        message = torch_export.export(module, input_shapes, inputs_kif,
                                      leaf_modules=leaf_modules)
        return self.convert(message=message, **options)


def _read_model_file(path):
    if os.path.isdir(path):
        raise AlkaidError("EINVAL", f"{path} is a directory (an unzipped Keras model?): give "
                          "the .keras file")
    with open(path, "rb") as f:
        return f.read()


class Control(Client):
    """The control socket (ipc only, mode 0600): reload, load, unload, stats, drain, shutdown."""

    def __init__(self, url=None, **kwargs):
        super().__init__(url or default_url(control=True), **kwargs)

    def reload(self, name=None):
        return self.call("reload", name=name)

    def load(self, path):
        return self.call("load", path=os.path.abspath(path))

    def unload(self, name):
        return self.call("unload", name=name)

    def stats(self):
        return self.call("stats")

    def drain(self, resume=False):
        return self.call("drain", resume=True if resume else None)

    def shutdown(self):
        return self.call("shutdown")
