"""Jobs on the worker pool (issue 7, "Done when" 4 and the reply cache): a full queue answers
EBUSY at once, a deadline answers ETIMEDOUT and frees the worker, SIGTERM with 20 jobs in flight
answers all 20 and exits 0, drain waits for the jobs in flight, duplicates and nng resends run
once. The jobs are the daemon's `test.sleep` hook (--test-hooks), which runs through the same
queue, deadline, cache and reply path as `convert`."""
import signal
import sys
import time
import unittest

import msgpack

from harness import AlkaidError, Client, Daemon, in_threads, join, temp_dir, wait_for


def sleep_call(client, ms, **fields):
    return client.call("test.sleep", ms=ms, **fields)


class Jobs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = temp_dir()

    def test_full_queue_answers_ebusy_at_once(self):
        with Daemon(self.dir, name="busy", workers=1, queue=1) as d, d.client() as c:
            threads, results = in_threads(2, lambda i: sleep_call(c, 600))
            wait_for(lambda: d.stats()["inflight"] == 2, what="two jobs in flight")
            start = time.monotonic()
            with self.assertRaises(AlkaidError) as e:
                sleep_call(c, 10)
            elapsed = time.monotonic() - start
            self.assertEqual(e.exception.name, "EBUSY")
            self.assertIn("queue is full", e.exception.message)
            self.assertLess(elapsed, 0.1, f"EBUSY took {elapsed * 1000:.0f} ms")
            join(threads)
            for r in results:
                self.assertTrue(r["ok"], r)
            self.assertEqual(d.stats()["errors"].get("EBUSY"), 1)
            self.assertEqual(d.stop(), 0)

    def test_deadline_answers_etimedout_and_frees_the_worker(self):
        with Daemon(self.dir, name="deadline", workers=1, queue=4) as d, d.client() as c:
            # A running job past its deadline: answered at the deadline, worker freed.
            start = time.monotonic()
            with self.assertRaises(AlkaidError) as e:
                sleep_call(c, 10000, timeout_ms=200)
            elapsed = time.monotonic() - start
            self.assertEqual(e.exception.name, "ETIMEDOUT")
            self.assertIn("running", e.exception.message)
            self.assertGreaterEqual(elapsed, 0.19)
            self.assertLess(elapsed, 0.5)
            start = time.monotonic()
            self.assertTrue(sleep_call(c, 1)["ok"])
            self.assertLess(time.monotonic() - start, 0.1, "the only worker must be free again")
            stats = d.stats()
            self.assertEqual(stats["abandoned"], 1)
            self.assertEqual(stats["busy_workers"], 0)

            # A queued job past its deadline: taken out of the queue, never run.
            threads, results = in_threads(1, lambda i: sleep_call(c, 500))
            wait_for(lambda: d.stats()["busy_workers"] == 1, what="the worker busy")
            start = time.monotonic()
            with self.assertRaises(AlkaidError) as e:
                sleep_call(c, 1, timeout_ms=100)
            self.assertEqual(e.exception.name, "ETIMEDOUT")
            self.assertIn("waiting for a worker", e.exception.message)
            self.assertLess(time.monotonic() - start, 0.4)
            join(threads)
            self.assertTrue(results[0]["ok"])
            self.assertEqual(d.stats()["queued"], 0)

            # The daemon's default deadline applies without timeout_ms.
        with Daemon(self.dir, name="deftimeout", workers=1,
                    args=["--default-timeout-ms", "150"]) as d, d.client() as c:
            with self.assertRaises(AlkaidError) as e:
                sleep_call(c, 5000)
            self.assertEqual(e.exception.name, "ETIMEDOUT")
            self.assertEqual(d.stop(), 0)

    def test_sigterm_with_20_jobs_in_flight(self):
        with Daemon(self.dir, name="term", workers=2, queue=32) as d, d.client() as c:
            # 400 ms each: all 20 must have arrived before the first ones end.
            threads, results = in_threads(20, lambda i: sleep_call(c, 400))
            wait_for(lambda: d.stats()["inflight"] == 20, what="20 jobs in flight")
            d.signal(signal.SIGTERM)
            wait_for(lambda: d.stats()["state"] == "stopping", what="the daemon stopping")
            # A new request is answered EBUSY at once while stopping, not left to time out.
            with Client(d.url, timeout=5) as late:
                start = time.monotonic()
                with self.assertRaises(AlkaidError) as e:
                    late.ping()
                self.assertEqual(e.exception.name, "EBUSY")
                self.assertIn("stopping", e.exception.message)
                self.assertLess(time.monotonic() - start, 0.5)
            join(threads)
            for i, r in enumerate(results):
                self.assertIsInstance(r, dict, f"job {i}: {r!r}")
                self.assertTrue(r["ok"], f"job {i}")
                self.assertGreaterEqual(r["slept_ms"], 390)
            self.assertEqual(d.wait(30), 0, d.log_text())
            self.assertIn("stopped: ", d.log_text())

    def test_shutdown_method_and_drain(self):
        with Daemon(self.dir, name="drain", workers=2) as d, d.client() as c:
            threads, results = in_threads(3, lambda i: sleep_call(c, 400))
            wait_for(lambda: d.stats()["inflight"] == 3, what="3 jobs in flight")
            start = time.monotonic()
            with d.control() as ctl:
                self.assertEqual(ctl.drain()["state"], "draining")
            self.assertGreater(time.monotonic() - start, 0.2, "drain waits for the jobs")
            join(threads)
            self.assertTrue(all(r["ok"] for r in results))
            with Client(d.url, timeout=0.3) as late:
                with self.assertRaises(AlkaidError):
                    late.ping()
            with d.control() as ctl:
                self.assertEqual(ctl.stats()["state"], "draining")
                self.assertEqual(ctl.drain(resume=True)["state"], "serving")
            self.assertTrue(c.ping()["ok"])
            with d.control() as ctl:
                # At most the ping above, whose send may not have completed in the daemon yet.
                self.assertLessEqual(ctl.shutdown()["inflight"], 1)
            self.assertEqual(d.wait(10), 0)

    def test_duplicates_run_once(self):
        with Daemon(self.dir, name="dup", workers=1, queue=0) as d:
            request = msgpack.packb({"v": 1, "id": 7, "method": "test.sleep", "ms": 300})
            clients = [d.client() for _ in range(3)]
            start = time.monotonic()
            threads, results = in_threads(3, lambda i: clients[i].send_raw(request))
            join(threads)
            elapsed = time.monotonic() - start
            replies = [msgpack.unpackb(r) for r in results]
            for r in replies:
                self.assertTrue(r["ok"], r)
                self.assertEqual(r["id"], 7)
            self.assertEqual(results[0], results[1])
            self.assertEqual(results[1], results[2])
            # One worker, no queue: three separate jobs would take 900 ms or get EBUSY.
            self.assertLess(elapsed, 0.8)
            stats = d.stats()
            self.assertEqual(stats["requests"]["test.sleep"], 3)
            self.assertEqual(stats["cache_hits"], 2)
            # After the job: answered from the cache, at once.
            start = time.monotonic()
            self.assertEqual(clients[0].send_raw(request), results[0])
            self.assertLess(time.monotonic() - start, 0.1)
            for c in clients:
                c.close()

    def test_nng_resends_do_not_run_the_job_again(self):
        with Daemon(self.dir, name="resend", workers=1, queue=0) as d:
            # Not closed: nng 1.5's nng_close can hang on a REQ socket that resent requests
            # (nanomsg/nng#1813); the process exit releases it.
            c = Client(d.url, timeout=10, resend=0.1)
            reply = sleep_call(c, 600)
            self.assertTrue(reply["ok"])
            stats = d.stats()
            n = stats["requests"]["test.sleep"]
            self.assertGreaterEqual(n, 3, "nng should have resent the request")
            self.assertEqual(stats["cache_hits"], n - 1, "every resend attached to the job")
            self.assertNotIn("EBUSY", stats["errors"])

    def test_timeouts_are_not_cached(self):
        with Daemon(self.dir, name="nocache", workers=1) as d:
            request = msgpack.packb({"v": 1, "id": 8, "method": "test.sleep", "ms": 300,
                                     "timeout_ms": 100})
            with d.client() as c:
                first = msgpack.unpackb(c.send_raw(request))
                self.assertEqual(first["error"]["name"], "ETIMEDOUT")
                wait_for(lambda: d.stats()["busy_workers"] == 0, what="the worker to return")
                second = msgpack.unpackb(c.send_raw(request))
                self.assertEqual(second["error"]["name"], "ETIMEDOUT")
                self.assertEqual(d.stats()["cache_hits"], 0)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
