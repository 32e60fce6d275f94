"""Conversions in worker processes (issue 15, "Done when" 1 and 11.5): a plugin that segfaults,
aborts, calls exit(), divides by zero, allocates without bound or never returns fails only its
own request, with an error naming what happened, the framework and the last trace; every other
request in flight or queued is answered correctly; the daemon keeps serving, and drain and
SIGTERM finish. A request that killed a worker is answered at once when it comes again (the
poison list), also by the second daemon of a farm sent it 10 times. A misspelled solver option
never reaches a worker.

The misbehaving tracer is tests/plugins/mock_crash.c ("crashy"); the well-behaved requests are
`test.sleep` jobs and conversions of the example model, checked against `alkaidc convert
--local`."""
import os
import signal
import sys
import time
import unittest

from harness import (EXAMPLE, AlkaidError, Client, Daemon, crashy_plugin_dir, in_threads,
                     join, run_alkaidc, temp_dir, wait_for)

MOCK_DIR = os.environ["ALK_MOCK_DIR"]


def crashy(what, **extra):
    return {"framework": "crashy", "model": {"do": what}, **extra}


class Workers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = temp_dir()
        cls.plugins = crashy_plugin_dir(cls.dir)
        example = os.path.join(cls.dir, "example.json")
        with open(example, "w") as f:
            import json
            json.dump(EXAMPLE, f)
        out = os.path.join(cls.dir, "ref.alir.json")
        r = run_alkaidc("convert", example, "-o", out, "--local", env={"ALKAID_CONNECT": ""})
        assert r.returncode == 0, r.stderr
        with open(out) as f:
            cls.reference = f.read()

    def daemon(self, name, workers=2, queue=32, args=()):
        return Daemon(self.dir, name=name, workers=workers, queue=queue,
                      args=["--plugin-dir", self.plugins, "--worker-memory-mb", "256",
                            "--kill-grace-ms", "300", *args])

    def assert_crash_reported(self, error, name, *needles):
        self.assertEqual(error.name, name, error.message)
        for needle in needles:
            self.assertIn(needle, error.message)

    def test_each_misbehaviour_fails_only_its_own_request(self):
        cases = [
            ("segv", "EPLUGIN", ("signal 11", "crashy tracer", "/victim/final")),
            ("abort", "EPLUGIN", ("signal 6", "crashy tracer", "/victim/final")),
            ("fpe", "EPLUGIN", ("signal 8", "crashy tracer")),
            ("exit", "EPLUGIN", ("exited with status 3", "crashy tracer")),
            ("alloc", "ENOMEM", ("memory limit of 256 MiB", "crashy tracer")),
        ]
        with self.daemon("each") as d, d.client(timeout=60) as c:
            for what, name, needles in cases:
                with self.subTest(what):
                    # Other work in flight and queued while the victim dies: 2 workers, 6 jobs.
                    threads, results = in_threads(
                        6, lambda i: c.convert(message=EXAMPLE) if i % 2 else
                        c.call("test.sleep", ms=150))
                    with self.assertRaises(AlkaidError) as e:
                        c.convert(message=crashy(what))
                    join(threads)
                    self.assert_crash_reported(e.exception, name, *needles)
                    for i, r in enumerate(results):
                        self.assertNotIsInstance(r, Exception, f"{what}: job {i}: {r!r}")
                        if i % 2:
                            self.assertEqual(r.alir, self.reference)
                    self.assertEqual(c.convert(message=EXAMPLE).alir, self.reference)
            stats = d.stats()
            self.assertEqual(stats["worker_crashes"], len(cases))
            self.assertEqual(stats["errors"].get("EPLUGIN"), 4)
            self.assertEqual(stats["errors"].get("ENOMEM"), 1)
            self.assertGreaterEqual(stats["worker_starts"], 2 + len(cases))
            self.assertEqual(d.stop(), 0, d.log_text())

    def test_a_plugin_that_never_returns(self):
        with self.daemon("hang", workers=2) as d, d.client(timeout=30) as c:
            start = time.monotonic()
            with self.assertRaises(AlkaidError) as e:
                c.convert(message=crashy("hang"), timeout=0.3)
            self.assertEqual(e.exception.name, "ETIMEDOUT")
            self.assertLess(time.monotonic() - start, 1.0)
            # The worker is killed after the grace time and replaced.
            wait_for(lambda: d.stats()["worker_kills"] == 1, what="the stuck worker killed")
            # Both workers stuck at once, then freed: the queued conversion still runs.
            threads, results = in_threads(
                3, lambda i: c.convert(message=crashy("hang"), timeout=0.3) if i < 2
                else c.convert(message=EXAMPLE, timeout=5))
            join(threads)
            self.assertEqual([r.name for r in results[:2]], ["ETIMEDOUT", "ETIMEDOUT"])
            self.assertEqual(results[2].alir, self.reference)
            # drain waits for a stuck job only until its deadline and the kill.
            with d.control() as ctl:
                threads, _ = in_threads(1, lambda i: c.convert(message=crashy("hang"),
                                                               timeout=0.4))
                wait_for(lambda: d.stats()["busy_workers"] == 1, what="a stuck job")
                start = time.monotonic()
                self.assertEqual(ctl.drain()["state"], "draining")
                self.assertLess(time.monotonic() - start, 2.0)
                join(threads)
                ctl.drain(resume=True)
            self.assertEqual(c.convert(message=EXAMPLE).alir, self.reference)
            # The last stuck worker is killed after its grace time, maybe after that reply.
            wait_for(lambda: d.stats()["worker_kills"] == 4, what="four stuck workers killed")
            self.assertEqual(d.stats()["worker_crashes"], 0, "a deadline is not a crash")

    def test_sigterm_finishes_with_a_stuck_plugin(self):
        with self.daemon("term", args=["--stop-timeout", "1"]) as d, d.client(timeout=30) as c:
            # The stuck job first, then three conversions, all received before the signal (a
            # request that arrives while the daemon stops is answered EBUSY, rightly).
            threads, results = in_threads(1, lambda i: c.convert(message=crashy("hang")))
            wait_for(lambda: d.stats()["busy_workers"] >= 1, what="the stuck job")
            more, more_results = in_threads(3, lambda i: c.convert(message=EXAMPLE))
            wait_for(lambda: d.stats()["requests"].get("convert", 0) >= 4,
                     what="the three conversions received")
            start = time.monotonic()
            d.signal(signal.SIGTERM)
            self.assertEqual(d.wait(10), 0, d.log_text())
            # The stop timeout (1 s), the grace (0.3 s), the linger: well within 3 s.
            self.assertLess(time.monotonic() - start, 3.0)
            join(threads + more)
            self.assertEqual(results[0].name, "ECANCELED")
            self.assertIn("stopped before the job finished", results[0].message)
            for r in more_results:
                self.assertEqual(r.alir, self.reference)

    def test_a_poison_request_is_answered_at_once_when_it_comes_again(self):
        with self.daemon("poison") as d, d.client(timeout=30) as c:
            with self.assertRaises(AlkaidError) as first:
                c.convert(message=crashy("segv"))
            for _ in range(5):  # new ids and timeouts: still the same conversion
                start = time.monotonic()
                with self.assertRaises(AlkaidError) as again:
                    c.convert(message=crashy("segv", timeout_ms=20000))
                self.assertLess(time.monotonic() - start, 0.2)
                self.assertEqual(again.exception.name, "EPLUGIN")
                self.assertIn(first.exception.message, again.exception.message)
                self.assertIn("not run again", again.exception.message)
            stats = d.stats()
            self.assertEqual(stats["worker_crashes"], 1)
            self.assertEqual(stats["poison_hits"], 5)
            # A reload that changes the plugins forgets the list.
            with open(os.path.join(self.plugins, "crashy.plugin"), "a") as f:
                f.write("# touched\n")
            os.utime(f"{MOCK_DIR}/libmock_crash.so")
            with d.control() as ctl:
                ctl.reload()
            with self.assertRaises(AlkaidError):
                c.convert(message=crashy("segv"))
            self.assertEqual(d.stats()["worker_crashes"], 2)

    def test_a_farm_of_two_survives_a_poison_request_sent_10_times(self):
        a = self.daemon("farm_a")
        b = self.daemon("farm_b")
        try:
            with Client([a.url, b.url], timeout=30, resend=2.0) as c:
                for _ in range(10):
                    with self.assertRaises(AlkaidError) as e:
                        c.convert(message=crashy("abort"))
                    self.assertEqual(e.exception.name, "EPLUGIN")
                for _ in range(4):
                    self.assertEqual(c.convert(message=EXAMPLE).alir, self.reference)
            crashes = a.stats()["worker_crashes"] + b.stats()["worker_crashes"]
            self.assertLessEqual(crashes, 2, "each daemon runs the poison request once at most")
            self.assertIsNone(a.proc.poll())
            self.assertIsNone(b.proc.poll())
            self.assertEqual(a.stop(), 0)
            self.assertEqual(b.stop(), 0)
        finally:
            a.kill()
            b.kill()

    def test_a_misspelled_option_never_reaches_a_worker(self):
        with self.daemon("typo") as d, d.client(timeout=10) as c:
            self.assertEqual(c.convert(message=EXAMPLE).alir, self.reference)
            before = d.stats()["worker_jobs"]
            for options, where, needle in (
                    ({"hard_dcc": 2}, "solver_options.hard_dcc", "unknown solver option"),
                    ({"method0": "wmcc"}, "solver_options.method0", "unknown method 'wmcc'"),
                    ({"mode": "fast"}, "solver_options.mode", "unknown mode 'fast'")):
                with self.assertRaises(AlkaidError) as e:
                    c.convert(message={**EXAMPLE, "solver_options": options})
                self.assertEqual((e.exception.name, e.exception.where), ("EINVAL", where))
                self.assertIn(needle, e.exception.message)
            self.assertEqual(d.stats()["worker_jobs"], before, "a refused job reached a worker")

    def test_workers_hold_no_socket_of_the_daemon(self):
        with self.daemon("fds") as d, d.client(timeout=10) as c:
            c.convert(message=EXAMPLE)
            workers = [int(p) for p in os.listdir("/proc") if p.isdigit() and
                       self._parent(int(p)) == d.pid]
            self.assertEqual(len(workers), 2)
            for pid in workers:
                targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in
                           os.listdir(f"/proc/{pid}/fd")]
                sockets = [t for t in targets if t.startswith("socket:")]
                # fd 3 only: its socket to the daemon (no listening socket, no nng pipe).
                self.assertEqual(len(sockets), 1, targets)

    @staticmethod
    def _parent(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            return -1


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
