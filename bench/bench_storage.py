"""Durable storage, leveret beside RabbitMQ in one run (issue 3's figures).

For each broker: (1) persistent 1 KB publishes with confirms to a durable queue, window 1000: msgs/s and
confirm latency; (2) a backlog of N persistent 1 KB messages in a durable queue: broker RSS when full;
(3) recovery: leveret is stopped (SIGTERM) and started again, then killed (SIGKILL) and started again, each
time measuring how long until the queue answers with all N messages; RabbitMQ only with
--restart-rabbitmq (rabbitmqctl stop_app/start_app on the shared local broker); (4) the drain rate of
that backlog, every message checked (no gap, no duplicate).

    python3 bench/bench_storage.py --count 1000000            # the issue's figure (takes minutes)
    python3 bench/bench_storage.py --count 100000 --skip-rabbitmq

Loads only 127.0.0.1; every broker it starts, it stops.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.loadgen import procinfo  # noqa: E402
from bench.loadgen.client import BrokerAddress, Connection, Consumer, Publisher  # noqa: E402
from bench.loadgen.ledger import Ledger  # noqa: E402

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
QUEUE = "bench-storage"
_LISTENING = re.compile(r"listening on [^:\s]+:(\d+)")


class LeveretProcess:
    """`python -m leveret serve` on a free port over a data directory that outlives restarts."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self, timeout: float = 600.0) -> float:
        """Start and wait until it listens; returns the seconds that took (recovery happens before listening)."""
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "leveret", "serve", "--port", "0", "--data-dir", self.data_dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        found = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stderr is not None
            for line in self.proc.stderr:
                match = _LISTENING.search(line)
                if match and not found.is_set():
                    self.port = int(match.group(1))
                    found.set()
            found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(timeout) or not self.port:
            self.kill()
            raise RuntimeError("leveret did not start")
        return time.monotonic() - started

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(120)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def reachable(url: str) -> bool:
    try:
        Connection(url, timeout=2).close()
        return True
    except OSError:
        return False


def confirms(url: str, count: int) -> dict:
    ctl = Connection(url)
    ctl.channel_open(1)
    ctl.queue_declare(1, QUEUE + "-confirms", durable=True)
    ctl.queue_purge(1, QUEUE + "-confirms")
    conn = Connection(url)
    ch = conn.channel_open(1)
    res = Publisher(conn, ch, "", QUEUE + "-confirms", 1024, persistent=True, confirms=True).run(count, window=1000)
    conn.close()
    ctl.queue_delete(1, QUEUE + "-confirms")
    ctl.close()
    lat = sorted(res.confirm_latencies_us)
    pick = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] / 1000, 1)) if lat else (lambda q: None)
    return {"confirm_msgs_per_s": round(res.confirmed / res.elapsed) if res.elapsed else 0,
            "confirm_p50_ms": pick(0.50), "confirm_p99_ms": pick(0.99), "nacked": res.nacked}


def fill(url: str, count: int) -> dict:
    ctl = Connection(url)
    ctl.channel_open(1)
    ctl.queue_declare(1, QUEUE, durable=True)
    ctl.queue_purge(1, QUEUE)
    ctl.close()
    conn = Connection(url)
    ch = conn.channel_open(1)
    res = Publisher(conn, ch, "", QUEUE, 1024, persistent=True, confirms=True).run(
        count, window=1000, record_latency=False)
    conn.close()
    if res.confirmed != count:
        raise RuntimeError(f"fill confirmed {res.confirmed} of {count} ({res.error})")
    return {"fill_msgs_per_s": round(res.confirmed / res.elapsed) if res.elapsed else 0}


def wait_for_count(url: str, count: int, timeout: float = 600.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            ctl = Connection(url, timeout=5)
            ctl.channel_open(1)
            got = ctl.message_count(1, QUEUE)
            ctl.close()
            if got == count:
                return time.monotonic() - started
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError("queue did not come back in time")


def drain(url: str, count: int) -> dict:
    conn = Connection(url)
    ch = conn.channel_open(1)
    ledger = Ledger([count])
    res = Consumer(conn, ch, QUEUE).run(count, ledger, deadline=time.monotonic() + 1800)
    conn.close()
    summary = ledger.summary()
    ctl = Connection(url)
    ctl.channel_open(1)
    left = ctl.message_count(1, QUEUE)
    ctl.queue_delete(1, QUEUE)
    ctl.close()
    honest = summary["gaps"] == 0 and summary["duplicates"] == 0 and summary["unknown"] == 0 and left == 0
    return {"drain_msgs_per_s": round(res.received / res.elapsed) if res.elapsed else 0,
            "honest": honest, "ledger": summary}


def rss_mib(pid: int | None) -> float | None:
    kib = procinfo.rss_kib(pid) if pid else None
    return round(kib / 1024, 1) if kib else None


def run_leveret(count: int, confirm_count: int) -> dict:
    data_dir = tempfile.mkdtemp(prefix="leveret-bench-storage-")
    broker = LeveretProcess(data_dir)
    out: dict = {}
    try:
        broker.start()
        out.update(confirms(broker.url, confirm_count))
        out.update(fill(broker.url, count))
        out["rss_full_mib"] = rss_mib(broker.pid)
        broker.stop()
        listen = broker.start()
        out["recovery_clean_s"] = round(listen + wait_for_count(broker.url, count), 2)
        out["rss_after_recovery_mib"] = rss_mib(broker.pid)
        broker.kill()
        listen = broker.start()
        out["recovery_after_kill_s"] = round(listen + wait_for_count(broker.url, count), 2)
        out.update(drain(broker.url, count))
        out["rss_drained_mib"] = rss_mib(broker.pid)
    finally:
        broker.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
    return out


def run_rabbitmq(count: int, confirm_count: int, restart: bool) -> dict:
    url = RABBITMQ_URL
    pid = procinfo.pid_listening_on(BrokerAddress.parse(url).port)
    out: dict = {}
    out.update(confirms(url, confirm_count))
    out.update(fill(url, count))
    out["rss_full_mib"] = rss_mib(pid)
    if restart:
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True)
        started = time.monotonic()
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True)
        out["recovery_clean_s"] = round(time.monotonic() - started + wait_for_count(url, count), 2)
    out.update(drain(url, count))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="backlog size (the issue's figure: 1000000)")
    parser.add_argument("--confirm-count", type=int, default=20_000)
    parser.add_argument("--skip-rabbitmq", action="store_true")
    parser.add_argument("--restart-rabbitmq", action="store_true",
                        help="also time RabbitMQ's recovery (stop_app/start_app on the shared broker)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    with open("/proc/loadavg") as f:
        load_before = f.read().split()[:3]
    results = {"leveret": run_leveret(args.count, args.confirm_count)}
    if not args.skip_rabbitmq and reachable(RABBITMQ_URL):
        results["rabbitmq"] = run_rabbitmq(args.count, args.confirm_count, args.restart_rabbitmq)
    with open("/proc/loadavg") as f:
        load_after = f.read().split()[:3]
    keys = sorted({k for r in results.values() for k in r if k != "ledger"})
    print(f"# {args.count} persistent 1 KB messages; loadavg before {' '.join(load_before)}, "
          f"after {' '.join(load_after)}")
    print(f"{'metric':28s}" + "".join(f"{name:>14s}" for name in results) + "   leveret/rabbitmq")
    for key in keys:
        values = [results[name].get(key) for name in results]
        ratio = ""
        if len(values) == 2 and isinstance(values[0], (int, float)) and isinstance(values[1], (int, float)) \
                and values[1] and not isinstance(values[0], bool):
            ratio = f"{values[0] / values[1]:.2f}"
        print(f"{key:28s}" + "".join(f"{str(v):>14s}" for v in values) + f"   {ratio}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"count": args.count, "load_before": load_before, "load_after": load_after,
                       "results": results}, f, indent=2)
    return 0 if all(r.get("honest", True) for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
