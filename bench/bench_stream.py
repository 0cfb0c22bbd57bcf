"""Stream queues: publish throughput with confirms and read throughput from "first", leveret beside RabbitMQ.

Guards leveret/broker/stream.py (delivery path: tail cache, header splice) and leveret/store/stream.py
(append, read_from). For each broker the same run: declare a stream, publish N messages of S bytes
with publisher confirms (a window of W unconfirmed), then read them all back from x-stream-offset
"first" with prefetch P, acking with `multiple`; the broker's RSS is sampled while it serves the read.
`--big-mb M` then fills a second stream with M MB (no confirms) and reads it from "first", reporting
the broker's peak RSS: reading a stream much larger than the memory budget must stay flat.

    python3 -m bench.bench_stream                       # 100,000 x 100 B, leveret and RabbitMQ
    python3 -m bench.bench_stream --big-mb 2048 --no-rabbitmq

leveret is started as `python3 -m leveret serve --port 0 --data-dir TMP` (and stopped); RabbitMQ is the
one already running at 127.0.0.1:5672 (skipped when unreachable). The clients are the raw-socket
clients of bench/loadgen, so the client costs little next to either broker.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from bench.loadgen import wire
from bench.loadgen.client import Connection, Publisher
from bench.loadgen.procinfo import pid_listening_on, rss_kib
from bench.loadgen.wire import FRAME_HDR, U16, bits, method_frame, shortstr, table

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASIC_DELIVER = (60 << 16) | 60


def start_leveret(data_dir: str) -> tuple[subprocess.Popen, str]:
    """Run leveret on a free port; return the process and its URL once it logs 'listening on'."""
    proc = subprocess.Popen([sys.executable, "-m", "leveret", "serve", "--port", "0", "--data-dir", data_dir],
                            cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "listening on" in line:
            port = int(line.strip().rsplit(":", 1)[1])
            # Keep draining its log so a chatty broker never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, f"amqp://guest:guest@127.0.0.1:{port}/%2F"
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("leveret did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def reachable(port: int = 5672) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class RssSampler:
    """Samples a process's resident set every 50 ms on a thread; `peak_mib` after stop()."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            value = rss_kib(self.pid) or 0
            self.peak = max(self.peak, value)
            self._stop.wait(0.05)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return self.peak / 1024


def declare_stream(conn: Connection, name: str) -> None:
    conn.queue_declare(1, name, durable=True, arguments={"x-queue-type": "stream"})


def publish(url: str, name: str, count: int, size: int, window: int | None) -> tuple[float, str]:
    """Publish `count` messages (confirmed when `window` is set); (seconds, error)."""
    conn = Connection(url)
    try:
        conn.channel_open(1)
        publisher = Publisher(conn, 1, "", name, size, persistent=True, confirms=window is not None)
        result = publisher.run(count, window=window, record_latency=False)
        if window is None:
            conn.message_count(1, name)  # a synchronous round trip: every publish before it was handled
        return result.elapsed, result.error or ("timed out" if result.timed_out else "")
    finally:
        conn.close()


def read_from_first(url: str, name: str, count: int, prefetch: int, timeout: float = 600.0) -> float:
    """Consume `count` deliveries from "first", acking every prefetch/2 with multiple; seconds taken."""
    conn = Connection(url)
    try:
        conn.channel_open(1)
        conn.basic_qos(1, prefetch)
        conn.send(method_frame(1, wire.BASIC_CONSUME, U16.pack(0) + shortstr(name) + shortstr("bench")
                               + bits(False, False, False, False) + table({"x-stream-offset": "first"})))
        conn.wait_method(1, wire.BASIC_CONSUME_OK)
        sock = conn.sock
        sock.settimeout(1.0)
        buf = conn.splitter.take()
        ack_every = max(1, prefetch // 2)
        received = unacked = last_tag = 0
        unpack_hdr = FRAME_HDR.unpack_from
        deadline = time.monotonic() + timeout
        t0 = time.perf_counter()
        while received < count:
            pos = 0
            n = len(buf)
            while n - pos >= 8:
                ftype, _ch, size = unpack_hdr(buf, pos)
                end = pos + 7 + size
                if end >= n:
                    break
                if ftype == 1 and int.from_bytes(buf[pos + 7:pos + 11], "big") == BASIC_DELIVER:
                    tag_at = pos + 12 + buf[pos + 11]
                    last_tag = int.from_bytes(buf[tag_at:tag_at + 8], "big")
                    received += 1
                    unacked += 1
                pos = end + 1
            if unacked >= ack_every or (received >= count and unacked):
                conn.send(method_frame(1, wire.BASIC_ACK, last_tag.to_bytes(8, "big") + bits(True)))
                unacked = 0
            buf = buf[pos:]
            if received >= count:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {received} of {count}")
            try:
                data = sock.recv(1 << 20)
            except socket.timeout:
                continue
            if not data:
                raise ConnectionError("broker closed the socket")
            buf = buf + data if buf else data
        return time.perf_counter() - t0
    finally:
        conn.close()


def delete_stream(url: str, name: str) -> None:
    conn = Connection(url)
    try:
        conn.channel_open(1)
        conn.queue_delete(1, name)
    finally:
        conn.close()


def run_broker(label: str, url: str, pid: int | None, args: argparse.Namespace) -> list[str]:
    lines = []
    name = f"bench.stream.{uuid.uuid4().hex[:8]}"
    conn = Connection(url)
    conn.channel_open(1)
    declare_stream(conn, name)
    conn.close()
    try:
        seconds, error = publish(url, name, args.messages, args.size, args.window)
        rate = args.messages / seconds
        lines.append(f"{label:9s} publish+confirm  {args.messages:>9,} x {args.size} B  window {args.window}: "
                     f"{rate:>10,.0f} msg/s  {rate * args.size / 1e6:7.1f} MB/s{'  ERROR ' + error if error else ''}")
        with RssSampler(pid) as rss:
            seconds = read_from_first(url, name, args.messages, args.prefetch)
        rate = args.messages / seconds
        lines.append(f"{label:9s} read from first  {args.messages:>9,} x {args.size} B  prefetch {args.prefetch}: "
                     f"{rate:>10,.0f} msg/s  {rate * args.size / 1e6:7.1f} MB/s  peak RSS {rss.peak_mib:,.0f} MiB")
    finally:
        delete_stream(url, name)
    if args.big_mb:
        big = f"bench.stream.big.{uuid.uuid4().hex[:8]}"
        conn = Connection(url)
        conn.channel_open(1)
        declare_stream(conn, big)
        conn.close()
        count = args.big_mb * 1024 * 1024 // args.big_size
        try:
            seconds, error = publish(url, big, count, args.big_size, None)
            lines.append(f"{label:9s} fill big stream  {count:>9,} x {args.big_size} B = {args.big_mb:,} MB "
                         f"in {seconds:.1f} s{'  ERROR ' + error if error else ''}")
            before = (rss_kib(pid) or 0) / 1024
            with RssSampler(pid) as rss:
                seconds = read_from_first(url, big, count, args.prefetch)
            lines.append(f"{label:9s} read big from first: {count / seconds:,.0f} msg/s "
                         f"{count * args.big_size / seconds / 1e6:,.1f} MB/s; RSS before {before:,.0f} MiB, "
                         f"peak while reading {rss.peak_mib:,.0f} MiB")
        finally:
            delete_stream(url, big)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=100, help="body bytes (at least 16: the loadgen stamp)")
    parser.add_argument("--window", type=int, default=1000, help="unconfirmed publishes in flight")
    parser.add_argument("--prefetch", type=int, default=1000)
    parser.add_argument("--big-mb", type=int, default=0, help="also read a stream of this many MB from first")
    parser.add_argument("--big-size", type=int, default=64 * 1024, help="body bytes in the big stream")
    parser.add_argument("--no-rabbitmq", action="store_true")
    args = parser.parse_args(argv)
    print(f"# bench_stream  {time.strftime('%Y-%m-%d %H:%M:%S')}  loadavg {os.getloadavg()}", flush=True)
    data_dir = tempfile.mkdtemp(prefix="leveret-bench-stream-")
    proc, url = start_leveret(os.path.join(data_dir, "data"))
    try:
        for line in run_broker("leveret", url, proc.pid, args):
            print(line, flush=True)
    finally:
        stop(proc)
        shutil.rmtree(data_dir, ignore_errors=True)
    if not args.no_rabbitmq:
        if reachable():
            for line in run_broker("rabbitmq", RABBITMQ_URL, pid_listening_on(5672), args):
                print(line, flush=True)
        else:
            print("# RabbitMQ not reachable at 127.0.0.1:5672: skipped")
    print(f"# loadavg after {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
