"""Kafka clients against leveret and against the reference broker (librdkafka's mock cluster), same run.

    python3 -m bench.kafka_bench                       # 100,000 records of 1 KB per scenario
    python3 -m bench.kafka_bench --records 300000 --rounds 3
    python3 -m bench.kafka_bench --rounds 9 --scenarios ck-produce-acks1 --baseline /work/main

leveret runs as `leveret serve` in its own process (fresh data directory, Kafka on a free port); the
reference is the mock cluster inside confluent-kafka's bundled librdkafka, in this process (its own C
threads). Scenarios, all to one partition of a fresh topic, 1 KB values:

- ck-produce-acks1 / ck-produce-all: confluent-kafka, linger.ms 5 (batching on), until flush() returns;
- ck-consume: confluent-kafka from the first kept offset of the acks=1 topic until every kept record arrived
  (the mock keeps only about its newest 5 MB per partition, so it is timed over fewer records);
- raw-produce-acks1 / raw-produce-all: pre-encoded Produce v7 requests (one 1,000-record batch each,
  encoded before the clock starts), 8 in flight on one socket;
- raw-fetch: Fetch v11 requests (4 MB each) one after another from the first kept offset, records counted
  from the batch headers.

Figures are records/s (median over rounds); the ratio is leveret / reference. The issue's targets are
printed beside them (produce 300,000/s acks=1 and 150,000/s acks=all, consume 500,000/s). `--scenarios`
runs some of them; `--baseline DIR` also runs a second leveret from the checkout at DIR (a before/after in
the same run: each round runs the scenarios on leveret, the baseline, then the reference).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import confluent_kafka  # noqa: E402

from leveret.kafka import apis  # noqa: E402
from leveret.kafka.records import encode_batch, encode_record  # noqa: E402
from leveret.kafka.wire import INT16, INT32, encode  # noqa: E402

TARGETS = {"ck-produce-acks1": 300_000, "ck-produce-all": 150_000, "ck-consume": 500_000,
           "raw-produce-acks1": 300_000, "raw-produce-all": 150_000, "raw-fetch": 500_000}
BATCH = 1000
IN_FLIGHT = 8


class Leveret:
    """`leveret serve` in its own process; Kafka on a free port, AMQP on another, no HTTP."""

    def __init__(self, checkout: str | None = None) -> None:
        self.tmp = tempfile.mkdtemp(prefix="bench-kafka-")
        env = dict(os.environ, LEVERET_HTTP_PORT="-1", LEVERET_KAFKA_PORT="0")
        if checkout is not None:
            # `-m` puts the working directory first on sys.path: the checkout's leveret package, not this one's.
            checkout = os.path.abspath(checkout)
            env["PYTHONPATH"] = checkout
        self.proc = subprocess.Popen([sys.executable, "-m", "leveret", "serve", "--port", "0", "--data-dir", self.tmp],
                                     stderr=subprocess.PIPE, text=True, env=env, cwd=checkout)
        deadline = time.monotonic() + 30
        self.bootstrap = ""
        assert self.proc.stderr is not None
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            match = re.search(r"Kafka clients on ([^:\s]+):(\d+)", line)
            if match:
                self.bootstrap = f"{match.group(1)}:{match.group(2)}"
                break
        if not self.bootstrap:
            self.stop()
            raise RuntimeError("leveret did not start")
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for _line in self.proc.stderr:
            pass

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Reference:
    """librdkafka's mock cluster, alive as long as the client holding it."""

    def __init__(self) -> None:
        self.holder = confluent_kafka.Producer({"test.mock.num.brokers": 1, "bootstrap.servers": "", "log_level": 3})
        broker = next(iter(self.holder.list_topics(timeout=10).brokers.values()))
        self.bootstrap = f"{broker.host}:{broker.port}"

    def stop(self) -> None:
        self.holder.flush(5)


def ck_produce(bootstrap: str, topic: str, n: int, value: bytes, acks: str) -> float:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5,
                                         "queue.buffering.max.messages": 1_000_000, "log_level": 3})
    producer.list_topics(topic, timeout=10)  # the topic exists (auto-created) before the clock starts
    failures = []

    def report(err, _msg) -> None:
        if err is not None:
            failures.append(err)

    started = time.perf_counter()
    for _ in range(n):
        while True:
            try:
                producer.produce(topic, value, partition=0, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush(120)
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} failed deliveries, first {failures[0]}")
    return n / elapsed


def ck_consume(bootstrap: str, topic: str, n: int) -> float:
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{time.time()}",
                                         "enable.auto.commit": False, "log_level": 3,
                                         "fetch.max.bytes": 16 * 1024 * 1024})
    # The mock keeps only its newest ~5 MB per partition: read what it kept, from its first offset.
    low, high = consumer.get_watermark_offsets(confluent_kafka.TopicPartition(topic, 0), timeout=10)
    n = min(n, high - low)
    consumer.assign([confluent_kafka.TopicPartition(topic, 0, low)])
    got = 0
    started = time.perf_counter()
    deadline = started + 120
    while got < n and time.perf_counter() < deadline:
        got += sum(1 for m in consumer.consume(10_000, 0.5) if m.error() is None)
    elapsed = time.perf_counter() - started
    consumer.close()
    return got / elapsed


def _request(api_key: int, version: int, correlation: int, body: dict) -> bytes:
    out = [INT16.pack(api_key), INT16.pack(version), INT32.pack(correlation), INT16.pack(5), b"bench"]
    encode(apis.SCHEMAS[api_key][0], version, body, out)
    payload = b"".join(out)
    return INT32.pack(len(payload)) + payload


class RawSocket:
    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray(1 << 20)  # reused: a fresh buffer per response costs its page faults each time

    def _read_into(self, view: memoryview) -> None:
        while len(view):
            n = self.sock.recv_into(view)
            if not n:
                raise ConnectionError("closed")
            view = view[n:]

    def response(self) -> memoryview:
        """The next response's payload: a view of the client's buffer, good until the next call."""
        self._read_into(memoryview(self.buffer)[:4])
        (size,) = struct.unpack_from(">i", self.buffer)
        if size > len(self.buffer):
            self.buffer = bytearray(size)
        view = memoryview(self.buffer)[:size]
        self._read_into(view)
        return view


def raw_produce(bootstrap: str, topic: str, n: int, value: bytes, acks: int) -> float:
    body = bytearray()
    for i in range(BATCH):
        encode_record(body, i, 0, None, value, [])
    records = encode_batch(0, int(time.time() * 1000), int(time.time() * 1000), BATCH, BATCH - 1, body)
    requests = [_request(apis.PRODUCE, 7, i, {"acks": acks, "timeout_ms": 30000, "transactional_id": None,
                                              "topics": [{"name": topic, "partitions": [{"index": 0, "records": records}]}]})
                for i in range(n // BATCH)]
    client = RawSocket(bootstrap)
    client.sock.sendall(_request(apis.METADATA, 1, 0, {"topics": [{"name": topic}]}))
    client.response()
    started = time.perf_counter()
    sent = answered = 0
    while answered < len(requests):
        while sent < len(requests) and sent - answered < IN_FLIGHT:
            client.sock.sendall(requests[sent])
            sent += 1
        client.response()
        answered += 1
    elapsed = time.perf_counter() - started
    client.sock.close()
    return len(requests) * BATCH / elapsed


def _count_records(payload: bytes) -> tuple[int, int]:
    """(records, next offset) in a Fetch v11 response for one partition; batch headers only."""
    pos = 4 + 2 + 4 + 4  # correlation, throttle, error, session
    pos += 4
    (name_len,) = struct.unpack_from(">h", payload, pos)
    pos += 2 + name_len + 4
    pos += 4 + 2 + 8 + 8 + 8 + 4 + 4  # partition head through preferred replica (aborted: null -> 4 bytes)
    (size,) = struct.unpack_from(">i", payload, pos)
    pos += 4
    end = pos + max(size, 0)
    count = 0
    next_offset = -1
    while pos + 61 <= end:
        base, length = struct.unpack_from(">qi", payload, pos)
        if pos + 12 + length > end:
            break
        (last_delta,) = struct.unpack_from(">i", payload, pos + 23)
        (records,) = struct.unpack_from(">i", payload, pos + 57)
        count += records
        next_offset = base + last_delta + 1
        pos += 12 + length
    return count, next_offset


def raw_fetch(bootstrap: str, topic: str, n: int) -> float:
    client = RawSocket(bootstrap)
    client.sock.sendall(_request(apis.LIST_OFFSETS, 1, 0, {"replica_id": -1, "topics": [
        {"name": topic, "partitions": [{"partition_index": 0, "timestamp": -2}]}]}))
    listed = client.response()
    offset = struct.unpack_from(">q", listed, len(listed) - 8)[0]  # the earliest kept offset (the mock drops old ones)
    got = 0
    started = time.perf_counter()
    while got < n:
        body = {"replica_id": -1, "max_wait_ms": 500, "min_bytes": 1, "max_bytes": 4 << 20, "isolation_level": 0,
                "session_id": 0, "session_epoch": -1, "rack_id": "", "forgotten_topics": [],
                "topics": [{"topic": topic, "partitions": [{"partition": 0, "current_leader_epoch": -1,
                                                             "fetch_offset": offset, "log_start_offset": -1,
                                                             "partition_max_bytes": 4 << 20}]}]}
        client.sock.sendall(_request(apis.FETCH, 11, 1, body))
        count, next_offset = _count_records(client.response())
        if count == 0:
            break
        got += count
        offset = next_offset
    elapsed = time.perf_counter() - started
    client.sock.close()
    return got / elapsed


def run_round(bootstrap: str, tag: str, n: int, value: bytes, scenarios: list[str]) -> dict[str, float]:
    """The scenarios named, in TARGETS' order (ck-consume reads ck-produce-acks1's topic, raw-fetch
    raw-produce-acks1's: without them it produces its records first, untimed)."""
    out = {}
    if "ck-produce-acks1" in scenarios or "ck-consume" in scenarios:
        rate = ck_produce(bootstrap, f"ck1-{tag}", n, value, "1")
        if "ck-produce-acks1" in scenarios:
            out["ck-produce-acks1"] = rate
    if "ck-produce-all" in scenarios:
        out["ck-produce-all"] = ck_produce(bootstrap, f"ckall-{tag}", n, value, "all")
    if "ck-consume" in scenarios:
        out["ck-consume"] = ck_consume(bootstrap, f"ck1-{tag}", n)
    if "raw-produce-acks1" in scenarios or "raw-fetch" in scenarios:
        rate = raw_produce(bootstrap, f"raw1-{tag}", n, value, 1)
        if "raw-produce-acks1" in scenarios:
            out["raw-produce-acks1"] = rate
    if "raw-produce-all" in scenarios:
        out["raw-produce-all"] = raw_produce(bootstrap, f"rawall-{tag}", n, value, -1)
    if "raw-fetch" in scenarios:
        out["raw-fetch"] = raw_fetch(bootstrap, f"raw1-{tag}", n)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--scenarios", default=",".join(TARGETS), help="comma-separated, of: " + ", ".join(TARGETS))
    parser.add_argument("--baseline", metavar="DIR", help="also run leveret from this checkout, interleaved")
    args = parser.parse_args()
    scenarios = [name for name in TARGETS if name in args.scenarios.split(",")]
    value = b"x" * args.size
    print("loadavg before:", open("/proc/loadavg").read().strip())
    brokers: dict[str, Leveret | Reference] = {"leveret": Leveret()}
    try:
        if args.baseline:
            brokers["baseline"] = Leveret(args.baseline)
        brokers["reference"] = Reference()
        results: dict[str, dict[str, list[float]]] = {label: {} for label in brokers}
        for round_ in range(args.rounds):
            for label, broker in brokers.items():
                for name, rate in run_round(broker.bootstrap, f"{label}{round_}", args.records, value,
                                            scenarios).items():
                    results[label].setdefault(name, []).append(rate)
    finally:
        for broker in brokers.values():
            broker.stop()
    print("loadavg after: ", open("/proc/loadavg").read().strip())
    print(f"{args.records} records of {args.size} B, {args.rounds} round(s), medians in records/s")
    columns = [label for label in brokers if label != "reference"]
    print(f"{'scenario':20} " + " ".join(f"{label:>10} {'ratio':>6}" for label in columns)
          + f" {'reference':>10} {'target':>9}")
    for name in scenarios:
        theirs = statistics.median(results["reference"][name])
        cells = []
        for label in columns:
            ours = statistics.median(results[label][name])
            cells.append(f"{ours:10,.0f} {ours / theirs:6.2f}")
        print(f"{name:20} " + " ".join(cells) + f" {theirs:10,.0f} {TARGETS[name]:9,}")


if __name__ == "__main__":
    main()
