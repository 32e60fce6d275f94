"""Starts real alkaidd processes on ipc:// paths in a temporary directory, for the tests.

Every daemon started here is killed when the test process exits, whatever happens (atexit and
the context manager), so a failing test never leaves a daemon behind. Paths come from the
environment meson sets: ALKAIDD, ALKAIDC (binaries), PYTHONPATH (the Python client),
ALK_MOCK_DIR (the mock plugins' build directory).
"""
import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from alkaid_client import AlkaidError, Client, Control  # noqa: F401 (re-exported)

ALKAIDD = os.environ.get("ALKAIDD", "build/daemon/alkaidd")
ALKAIDC = os.environ.get("ALKAIDC", "build/client/alkaidc")
EXAMPLE = {"framework": "alkaid", "model": {"input_shape": [4, 5]}}

_live = []


def _kill_all():
    for d in list(_live):
        d.kill()


atexit.register(_kill_all)


def temp_dir(prefix="alkaidd-test-"):
    """A short temporary directory (ipc paths are limited to ~100 bytes), removed at exit."""
    path = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    atexit.register(shutil.rmtree, path, True)
    return path


class Daemon:
    """One alkaidd on <dir>/<name>.sock (+ .ctl), started with --test-hooks by default."""

    def __init__(self, directory, name="d", args=(), env=None, test_hooks=True, workers=2,
                 queue=16, wait=True, control=True, listen=None):
        self.dir = directory
        self.name = name
        self.sock_path = os.path.join(directory, name + ".sock")
        self.ctl_path = os.path.join(directory, name + ".ctl")
        self.url = listen if listen not in (None, "default") else "ipc://" + self.sock_path
        self.ctl = "ipc://" + self.ctl_path
        self.log_path = os.path.join(directory, name + ".log")
        cmd = [ALKAIDD, "--workers", str(workers), "--queue", str(queue), "--log-level", "debug"]
        if listen != "default":  # "default": the daemon's own default socket
            cmd += ["--listen", self.url]
        if control:
            cmd += ["--control", self.ctl]
        if test_hooks:
            cmd.append("--test-hooks")
        cmd += list(args)
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, env=full_env)
        _live.append(self)
        if wait:
            self.wait_ready()

    @property
    def pid(self):
        return self.proc.pid

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"alkaidd exited with {self.proc.returncode}:\n{self.log_text()}")
            if os.path.exists(self.sock_path) or not self.url.startswith("ipc://"):
                try:
                    with Client(self.url, timeout=1.0) as c:
                        c.ping()
                    return
                except AlkaidError:
                    pass
            time.sleep(0.02)
        raise RuntimeError(f"alkaidd did not come up:\n{self.log_text()}")

    def client(self, **kwargs):
        kwargs.setdefault("timeout", 30.0)
        return Client(self.url, **kwargs)

    def control(self, **kwargs):
        kwargs.setdefault("timeout", 30.0)
        return Control(self.ctl, **kwargs)

    def stats(self):
        with self.control() as c:
            return c.stats()

    def rss(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=30.0):
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is not None and self in _live:
                _live.remove(self)
                self.log.close()

    def stop(self, timeout=30.0):
        """SIGTERM and wait; returns the exit code (the process is killed after `timeout`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self in _live:
            _live.remove(self)
            self.log.close()

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def run_alkaidc(*args, env=None, timeout=60, input=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([ALKAIDC, *args], capture_output=True, env=full_env, timeout=timeout,
                          input=input)


def raw_ipc_connect(path, protocol=0x30):
    """A raw connection speaking nng's ipc transport (SP header, then frames) to `path`, as a
    REQ peer (protocol 0x30) by default."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5.0)
    s.connect(path)
    s.sendall(bytes([0, ord("S"), ord("P"), 0, protocol >> 8, protocol & 0xFF, 0, 0]))
    header = b""
    while len(header) < 8:
        chunk = s.recv(8 - len(header))
        if not chunk:
            raise ConnectionError("the daemon closed the connection during the handshake")
        header += chunk
    return s


def in_threads(n, fn):
    """Runs fn(i) on n threads; returns the threads and their results (or exceptions) in order."""
    results = [None] * n

    def run(i):
        try:
            results[i] = fn(i)
        except Exception as e:  # noqa: BLE001 - collected for the assertions
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads, results


def join(threads, timeout=60):
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a client thread hung"


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def crashy_plugin_dir(directory, mock_dir=None):
    """A plugin directory holding the misbehaving tracer of tests/plugins/mock_crash.c ("crashy",
    whose model {"do": WHAT} segfaults, aborts, exits, hangs or allocates without bound)."""
    mock_dir = mock_dir or os.environ["ALK_MOCK_DIR"]
    plugins = os.path.join(directory, "plugins")
    os.makedirs(plugins, exist_ok=True)
    with open(os.path.join(plugins, "crashy.plugin"), "w") as f:
        f.write(f"group = alir_tracer.plugins\nname = crashy\n"
                f"library = {mock_dir}/libmock_crash.so\nabi = 2\n")
    return plugins
