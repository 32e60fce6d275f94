"""A farm (issue 7, "Done when" 5): three daemons on ipc, one client socket dialed to all of
them; one daemon is killed mid-run and every request is still answered. Then the same through
`alkaidd --broker` in front of the three. Jobs are `test.sleep` (the same queue and reply path as
`convert`); tests/e2e repeats this with conversions."""
import signal
import sys
import threading
import time
import unittest

from harness import ALKAIDD, AlkaidError, Client, Daemon, temp_dir

import subprocess

THREADS = 8
PER_THREAD = 25


def run_load(client, kill, after):
    """THREADS threads send PER_THREAD jobs each through `client`; `kill()` runs once `after`
    replies have arrived. Returns (replies, errors)."""
    replies = []
    errors = []
    lock = threading.Lock()
    killed = threading.Event()

    def worker(t):
        for k in range(PER_THREAD):
            try:
                r = client.call("test.sleep", ms=20)
            except AlkaidError as e:
                with lock:
                    errors.append((t, k, e))
                continue
            with lock:
                replies.append(r)
                if len(replies) == after and not killed.is_set():
                    killed.set()
                    kill()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
        assert not th.is_alive(), "a client thread hung"
    return replies, errors


class Farm(unittest.TestCase):
    def setUp(self):
        self.dir = temp_dir()
        self.daemons = [Daemon(self.dir, name=f"d{i}", workers=2, queue=64) for i in range(3)]

    def tearDown(self):
        for d in self.daemons:
            d.kill()

    def served(self, daemon):
        return daemon.stats()["requests"].get("test.sleep", 0)

    def test_client_dialed_to_three_daemons_survives_a_kill(self):
        with Client([d.url for d in self.daemons], timeout=30, resend=2.0) as c:
            victim = self.daemons[1]
            replies, errors = run_load(c, victim.kill, after=50)
        self.assertEqual(errors, [])
        self.assertEqual(len(replies), THREADS * PER_THREAD)
        self.assertTrue(all(r["ok"] for r in replies))
        self.assertIsNotNone(victim.proc.poll(), "the victim was killed")
        for d in (self.daemons[0], self.daemons[2]):
            self.assertGreater(self.served(d), 0, "nng spreads requests over the daemons")

    def test_broker_in_front_of_three_daemons(self):
        front = "ipc://" + self.dir + "/broker.sock"
        cmd = [ALKAIDD, "--broker", "--listen", front]
        for d in self.daemons:
            cmd += ["--upstream", d.url]
        log = open(self.dir + "/broker.log", "ab")
        broker = subprocess.Popen(cmd, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with Client(front, timeout=1.0) as probe:
                        probe.ping()
                    break
                except AlkaidError:
                    if time.monotonic() > deadline or broker.poll() is not None:
                        raise
                    time.sleep(0.05)
            # The broker's raw REQ socket does not resend: a request lost with the victim is
            # resent by the client's own REQ socket after its resend time.
            with Client(front, timeout=30, resend=0.5) as c:
                victim = self.daemons[2]
                replies, errors = run_load(c, victim.kill, after=50)
            self.assertEqual(errors, [])
            self.assertEqual(len(replies), THREADS * PER_THREAD)
            for d in self.daemons[:2]:
                self.assertGreater(self.served(d), 0, "the broker spreads requests")
            broker.send_signal(signal.SIGTERM)
            self.assertEqual(broker.wait(10), 0)
        finally:
            if broker.poll() is None:
                broker.kill()
                broker.wait()
            log.close()

    def test_broker_needs_listen_and_upstream(self):
        r = subprocess.run([ALKAIDD, "--broker", "--listen", "ipc://" + self.dir + "/x.sock"],
                           capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"--upstream", r.stderr)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
