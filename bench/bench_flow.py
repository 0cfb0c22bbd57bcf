"""Flow control under hostile load: broker RSS with a client that never reads, and with a publisher flood.

(1) never-reader: one raw client publishes mandatory 4 KB messages that no queue takes, in confirm mode, as
    fast as it can, and never reads; every publish earns it a basic.return and a basic.ack. The broker's
    RSS is sampled for --seconds (or until it passes --cap-mib): baseline, peak, growth, and how many
    publishes the client got into its socket. Run against leveret (this checkout), optionally an older
    leveret (--before REF: that commit's tree, exported with git archive) and the local RabbitMQ (its
    beam process).
(2) flood: --flood-publishers raw clients publish transient 64 KB messages round-robin into
    --flood-queues queues with no consumers and never read, against leveret with
    memory_high_watermark=--watermark: peak RSS against the watermark, whether the memory alarm went on,
    and the messages queued. Each queue keeps its first 8 MiB in memory whatever the budget, so enough
    queues make the alarm, not just paging, hold the process. Not run against the shared RabbitMQ.

    python3 bench/bench_flow.py --before ca5ab60~1            # the figures in docs/benchmarks.md
    python3 bench/bench_flow.py --seconds 5 --skip-rabbitmq

Loads only 127.0.0.1; every broker it starts, it stops.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.loadgen import procinfo  # noqa: E402
from bench.loadgen.client import Connection  # noqa: E402
from bench.loadgen.neverreader import NeverReadingPublisher  # noqa: E402

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
_LISTENING = re.compile(r"listening on [^:\s]+:(\d+)")
MIB = 1024 * 1024


class LeveretProcess:
    """`python -m leveret serve` on a free port in a temp dir, from this checkout or an exported tree."""

    def __init__(self, source: str | None = None, settings: dict[str, str] | None = None) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="bench-flow-")
        env = dict(os.environ, LEVERET_HTTP_PORT="-1")
        if source is not None:
            env["PYTHONPATH"] = source + os.pathsep + env.get("PYTHONPATH", "")
        for name, value in (settings or {}).items():
            env["LEVERET_" + name.upper()] = value
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "leveret", "serve", "--port", "0", "--data-dir", self.data_dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
            cwd=self.data_dir)  # not this checkout: `-m` puts the working directory first on sys.path
        self.log: list[str] = []
        self.port = 0
        found = threading.Event()

        def pump() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.log.append(line)
                match = _LISTENING.search(line)
                if match and not found.is_set():
                    self.port = int(match.group(1))
                    found.set()
            found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(60) or not self.port:
            self.stop()
            raise RuntimeError("leveret did not start:\n" + "".join(self.log))

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def export_tree(ref: str) -> str:
    """The repository's tree at `ref`, in a temp dir (for running an older leveret beside this one)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = tempfile.mkdtemp(prefix="bench-flow-src-")
    archive = subprocess.run(["git", "-C", root, "archive", ref, "leveret"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", target], input=archive.stdout, check=True)
    return target


def sample_rss(pid: int, seconds: float, cap_mib: int, running) -> tuple[int, int]:
    """(peak, last) RSS in KiB over `seconds`, sampled every 0.1 s; stops early past `cap_mib`."""
    peak = last = procinfo.rss_kib(pid) or 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and running():
        time.sleep(0.1)
        last = procinfo.rss_kib(pid) or last
        peak = max(peak, last)
        if peak > cap_mib * 1024:
            break
    return peak, last


def never_reader(name: str, url: str, pid: int, seconds: float, cap_mib: int) -> dict:
    time.sleep(0.5)  # let a freshly started broker settle before the baseline
    baseline = procinfo.rss_kib(pid) or 0
    flood = NeverReadingPublisher(url, body_size=4096).start()
    try:
        peak, _ = sample_rss(pid, seconds, cap_mib, lambda: flood.error is None)
    finally:
        flood.stop()
    row = {"broker": name, "baseline_mib": baseline / 1024, "peak_mib": peak / 1024,
           "growth_mib": (peak - baseline) / 1024, "publishes_sent": flood.published,
           "capped": peak > cap_mib * 1024, "client_error": str(flood.error) if flood.error else ""}
    print(f"  never-reader {name:>16}: RSS {row['baseline_mib']:7.1f} -> peak {row['peak_mib']:7.1f} MiB "
          f"(+{row['growth_mib']:.1f}), {flood.published} publishes written"
          + (" [stopped at the cap]" if row["capped"] else "")
          + (f" [client: {row['client_error']}]" if row["client_error"] else ""), flush=True)
    return row


def flood(name: str, broker: LeveretProcess, seconds: float, queues: int, publishers: int, cap_mib: int,
          watermark: str) -> dict:
    names = [f"flood-{i}" for i in range(queues)]
    setup = Connection(broker.url)
    setup.channel_open(1)
    for queue in names:
        setup.queue_declare(1, queue)
    time.sleep(0.5)
    baseline = procinfo.rss_kib(broker.pid) or 0
    clients = [NeverReadingPublisher(broker.url, body_size=65536, routing_keys=names[i::publishers] or names,
                                     confirm=False, mandatory=False).start() for i in range(publishers)]
    try:
        peak, last = sample_rss(broker.pid, seconds, cap_mib, lambda: all(c.error is None for c in clients))
    finally:
        for client in clients:
            client.stop()
    queued = sum(setup.message_count(1, queue) for queue in names)
    setup.close()
    alarms = sum(1 for line in broker.log if "memory alarm:" in line)
    row = {"broker": name, "watermark": watermark, "baseline_mib": baseline / 1024, "peak_mib": peak / 1024,
           "last_mib": last / 1024, "queued": queued, "alarms": alarms, "capped": peak > cap_mib * 1024}
    print(f"  flood        {name:>16}: watermark {watermark}, RSS {row['baseline_mib']:.1f} -> peak "
          f"{row['peak_mib']:.1f} MiB (last {row['last_mib']:.1f}), {queued} x 64 KB queued, "
          f"memory alarm went on {alarms} time(s)" + (" [stopped at the cap]" if row["capped"] else ""), flush=True)
    return row


def run_never_readers(trees: list, args: argparse.Namespace) -> None:
    print("never-reader: mandatory unroutable 4 KB publishes with confirms, never reading", flush=True)
    for name, source in trees:
        broker = LeveretProcess(source)
        try:
            never_reader(name, broker.url, broker.pid, args.seconds, args.cap_mib)
        finally:
            broker.stop()
    if not args.skip_rabbitmq:
        pid = procinfo.pid_listening_on(5672)
        if pid is None:
            print("  RabbitMQ: nothing listens on 5672 (or its process is not visible); skipped")
        else:
            never_reader("RabbitMQ", RABBITMQ_URL, pid, args.seconds, args.cap_mib)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each load runs")
    parser.add_argument("--cap-mib", type=int, default=3072, help="stop a run once the broker's RSS passes this")
    parser.add_argument("--before", default=None, help="git ref of an older leveret to measure too")
    parser.add_argument("--skip-rabbitmq", action="store_true")
    parser.add_argument("--watermark", default="256MiB", help="memory_high_watermark for the flood")
    parser.add_argument("--flood-queues", type=int, default=48)
    parser.add_argument("--flood-publishers", type=int, default=2)
    parser.add_argument("--flood-only", action="store_true", help="skip the never-reader runs")
    args = parser.parse_args()

    trees = [("leveret", None)]
    exported = []
    if args.before:
        exported.append(export_tree(args.before))
        trees.insert(0, (f"leveret {args.before}", exported[-1]))
    try:
        if not args.flood_only:
            run_never_readers(trees, args)
        print(f"flood: {args.flood_publishers} publishers, transient 64 KB messages into {args.flood_queues} "
              "queues, no consumers, never reading", flush=True)
        for name, source in trees:
            broker = LeveretProcess(source, {"memory_high_watermark": args.watermark,
                                             "memory_monitor_interval": "250"})
            try:
                flood(name, broker, args.seconds, args.flood_queues, args.flood_publishers, args.cap_mib,
                      args.watermark)
            finally:
                broker.stop()
    finally:
        for tree in exported:
            shutil.rmtree(tree, ignore_errors=True)


if __name__ == "__main__":
    main()
