#!/usr/bin/env python3
"""Reliability figures of alkaidd (issue 15, bench/README.md "Reliability"). Each subcommand
starts its own daemons (the build's alkaidd, temporary ipc sockets) and prints its figures:

  neighbour [--seconds S] [--flooders K]
      "Done when" 4: one client floods 4 MB messages of a million small arrays (K in flight on
      one socket); another converts the example model one request at a time. Prints the second
      client's conversions/s and p50/p99 latency alone and beside the flood.
  reloads [--conversions N] [--reloads R] [--clients C] [--changing]
      "Done when" 5: C clients convert the example model N times in all while the plugins are
      reloaded R times; every reply is compared with `alkaidc convert --local`. Prints lost and
      wrong replies and the rate. With --changing, the built-in plugin's file is touched before
      each reload, so that every reload starts new worker processes and retires the old ones.
  sockets
      "Done when" 3: 1,000 raw connect+close on the service socket and a second alkaidd on the
      same path; prints how long a fresh client's ping and conversion then take.
  memory [--requests N]
      "Done when" 2: N requests refused at decode (zero hwconf sizes, bad options, a 25 M-element
      input_shape); prints the daemon's RSS before and after.
  poison
      "Done when" 1: a farm of two daemons behind one client, a request that kills its worker
      sent 10 times; prints the crashes per daemon and whether both still serve.

Usage: bench/reliability.py [--build DIR] SUBCOMMAND [OPTIONS]. Needs python3-msgpack; the
`poison` subcommand uses the build's mock plugins (tests/plugins).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "client", "python"))
sys.path.insert(0, os.path.join(ROOT, "tests", "rpc"))

EXAMPLE = {"framework": "alkaid", "model": {"input_shape": [4, 5]}}


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


def light_client(url, seconds, stop=None):
    """Sequential example conversions for `seconds`; returns the latencies in ms."""
    from alkaid_client import Client
    latencies = []
    with Client(url, timeout=60) as c:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            start = time.monotonic()
            c.convert(message=EXAMPLE)
            latencies.append((time.monotonic() - start) * 1000)
    return latencies


def flood_request(request_id):
    """A 4 MB convert request: a million arrays of three ints beside the example model, within
    every default limit (max_items 1 Mi, max_nodes 4 Mi, max_message_bytes 64 MiB). Packed once:
    later requests differ only in the 8 bytes of their id (a uint64 written at a fixed place)."""
    import msgpack
    head = b"\x85" + msgpack.packb("v") + msgpack.packb(1) + msgpack.packb("id") + b"\xcf"
    rest = b"".join(msgpack.packb(x) for x in (
        "method", "convert", "framework", "alkaid", "model",
        dict(EXAMPLE["model"], padding=[[1, 2, 3]] * 1_000_000)))
    return head, rest


def flooder(url, k, stop, counts):
    """K threads of one process (one client, one socket) send flood requests until `stop`."""
    from alkaid_client import Client
    head, rest = flood_request(0)
    client = Client(url, timeout=120, check=False)
    ids = iter(range(1, 1 << 62))
    lock = threading.Lock()

    def run():
        while not stop.is_set():
            with lock:
                request_id = next(ids)
            reply = client.send_raw(head + request_id.to_bytes(8, "big") + rest)
            with lock:
                counts[0 if b"\xa2ok\xc3" in reply[:64] else 1] += 1

    threads = [threading.Thread(target=run) for _ in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def neighbour(args, harness):
    import multiprocessing
    spawn = multiprocessing.get_context("spawn")  # nng cannot live on in a forked child
    d = harness.Daemon(harness.temp_dir(), name="neighbour", workers=args.workers, queue=64,
                       test_hooks=False)
    try:
        alone = light_client(d.url, args.seconds)
        stop = spawn.Event()
        counts = spawn.Array("i", 2)
        flood = spawn.Process(target=flooder,
                                        args=(d.url, args.flooders, stop, counts))
        flood.start()
        time.sleep(3.0)  # the flood in full swing
        beside = light_client(d.url, args.seconds)
        stop.set()
        flood.join(180)
        head, rest = flood_request(0)
        rate_alone = len(alone) / args.seconds
        rate_beside = len(beside) / args.seconds
        print(f"flood: {(len(head) + 8 + len(rest)) / 1e6:.1f} MB messages, {args.flooders} in "
              f"flight from one client: {counts[0]} converted, {counts[1]} refused")
        print(f"alone:  {rate_alone:7.1f} conversions/s  p50 {percentile(alone, 50):6.1f} ms  "
              f"p99 {percentile(alone, 99):6.1f} ms")
        print(f"beside: {rate_beside:7.1f} conversions/s  p50 {percentile(beside, 50):6.1f} ms  "
              f"p99 {percentile(beside, 99):6.1f} ms  ({100 * rate_beside / rate_alone:.0f} % "
              f"of alone)")
        d.stop()
    finally:
        d.kill()


def reloads(args, harness):
    from alkaid_client import AlkaidError
    directory = harness.temp_dir()
    example = os.path.join(directory, "example.json")
    with open(example, "w") as f:
        json.dump(EXAMPLE, f)
    out = os.path.join(directory, "ref.alir.json")
    subprocess.run([harness.ALKAIDC, "convert", example, "-o", out, "--local"], check=True,
                   capture_output=True, env=dict(os.environ, ALKAID_CONNECT=""))
    with open(out) as f:
        reference = f.read()
    d = harness.Daemon(directory, name="reloads", workers=args.workers, queue=256,
                       test_hooks=False)
    try:
        per_client = args.conversions // args.clients
        lost, wrong, done = [0], [0], [0]
        lock = threading.Lock()

        def client(_):
            with d.client(timeout=120) as c:
                for _ in range(per_client):
                    try:
                        ok = c.convert(message=EXAMPLE).alir == reference
                    except AlkaidError:
                        ok = None
                    with lock:
                        done[0] += 1
                        lost[0] += ok is None
                        wrong[0] += ok is False

        start = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        generations = set()
        plugin = os.path.join(args.build, "src", "plugins", "libalkaid_example.so")
        with d.control() as ctl:
            for i in range(args.reloads):
                if args.changing:
                    os.utime(plugin)
                generations.add(ctl.reload()["generation"])
                target = (i + 1) * per_client * args.clients // (args.reloads + 1)
                while done[0] < target and any(t.is_alive() for t in threads):
                    time.sleep(0.005)
        for t in threads:
            t.join(600)
        elapsed = time.monotonic() - start
        stats = d.stats()
        print(f"{done[0]} conversions, {args.clients} clients, {len(generations)} reloads in "
              f"{elapsed:.1f} s ({done[0] / elapsed:.0f}/s): {lost[0]} lost, {wrong[0]} wrong; "
              f"daemon: {stats['worker_starts']} worker starts, {stats['worker_crashes']} "
              f"crashes")
        d.stop()
    finally:
        d.kill()


def sockets(args, harness):
    import socket
    from alkaid_client import Client
    directory = harness.temp_dir()
    d = harness.Daemon(directory, name="sockets", workers=1, test_hooks=False)
    try:
        def timed(fn):
            start = time.monotonic()
            fn()
            return (time.monotonic() - start) * 1000

        for i in range(1000):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(1.0)
            try:
                s.connect(d.sock_path)
            except OSError:
                pass
            s.close()
        with Client(d.url, timeout=10) as c:
            ping = timed(c.ping)
            convert = timed(lambda: c.convert(message=EXAMPLE))
        print(f"after 1000 connect+close: ping {ping:.0f} ms, convert {convert:.0f} ms "
              f"({d.stats()['listener_restarts']} listener re-creations)")
        second = subprocess.run([harness.ALKAIDD, "--listen", d.url, "--control",
                                 "ipc://" + directory + "/second.ctl"], capture_output=True,
                                timeout=30)
        with Client(d.url, timeout=10) as c:
            ping = timed(c.ping)
            convert = timed(lambda: c.convert(message=EXAMPLE))
        print(f"after a second alkaidd (exit {second.returncode}): ping {ping:.0f} ms, "
              f"convert {convert:.0f} ms")
        d.stop()
    finally:
        d.kill()


def memory(args, harness):
    import msgpack
    d = harness.Daemon(harness.temp_dir(), name="memory", workers=2, test_hooks=False)
    try:
        bad = [dict(EXAMPLE, hwconf=[0, 0, 1]), dict(EXAMPLE, hwconf=[1, 1, float("nan")]),
               dict(EXAMPLE, solver_options={"hard_dc": -9}),
               dict(EXAMPLE, solver_options={"binary_lut_width": 1 << 40}),
               dict(EXAMPLE, solver_options={"methd0": "mc"}),
               {"framework": "alkaid", "model": {"input_shape": [5000, 5000]}}]
        with d.client(timeout=30) as c:
            for m in bad:  # warm up
                c.send_raw(msgpack.packb(dict(m, v=1, id=1, method="convert")))
            before = d.rss()
            for i in range(args.requests):
                m = bad[i % len(bad)]
                reply = msgpack.unpackb(c.send_raw(msgpack.packb(
                    dict(m, v=1, id=i + 2, method="convert"))))
                assert not reply["ok"], reply
            after = d.rss()
        print(f"{args.requests} refused requests: daemon RSS {before / 1e6:.1f} MB -> "
              f"{after / 1e6:.1f} MB ({(after - before) / 1e6:+.1f} MB)")
        d.stop()
    finally:
        d.kill()


def poison(args, harness):
    from alkaid_client import AlkaidError, Client
    directory = harness.temp_dir()
    plugins = harness.crashy_plugin_dir(directory, os.path.join(args.build, "tests", "plugins"))
    daemons = [harness.Daemon(directory, name=f"farm{i}", workers=2, test_hooks=False,
                              args=["--plugin-dir", plugins]) for i in range(2)]
    try:
        errors = []
        start = time.monotonic()
        with Client([d.url for d in daemons], timeout=30) as c:
            for _ in range(10):
                try:
                    c.convert({"do": "segv"}, framework="crashy")
                except AlkaidError as e:
                    errors.append(e.name)
            served = c.convert(message=EXAMPLE)["n_outputs"] > 0
        crashes = [d.stats()["worker_crashes"] for d in daemons]
        alive = [d.proc.poll() is None for d in daemons]
        print(f"10 poison requests in {time.monotonic() - start:.2f} s: errors {errors}; "
              f"worker crashes per daemon {crashes}; daemons alive {alive}; serving {served}")
        for d in daemons:
            d.stop()
    finally:
        for d in daemons:
            d.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    sub = ap.add_subparsers(dest="command", required=True)
    n = sub.add_parser("neighbour")
    n.add_argument("--seconds", type=float, default=10)
    n.add_argument("--flooders", type=int, default=4)
    n.add_argument("--workers", type=int, default=2)
    r = sub.add_parser("reloads")
    r.add_argument("--conversions", type=int, default=10000)
    r.add_argument("--reloads", type=int, default=100)
    r.add_argument("--clients", type=int, default=8)
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--changing", action="store_true")
    sub.add_parser("sockets")
    m = sub.add_parser("memory")
    m.add_argument("--requests", type=int, default=1000)
    sub.add_parser("poison")
    args = ap.parse_args()
    os.environ.setdefault("ALKAIDD", os.path.join(args.build, "daemon", "alkaidd"))
    os.environ.setdefault("ALKAIDC", os.path.join(args.build, "client", "alkaidc"))
    import harness
    {"neighbour": neighbour, "reloads": reloads, "sockets": sockets, "memory": memory,
     "poison": poison}[args.command](args, harness)


if __name__ == "__main__":
    main()
