"""Shovel throughput, 1 KB persistent messages, on-confirm: leveret's shovel beside RabbitMQ's own.

    python -m bench.bench_shovel [--count 100000] [--scenarios ll,lr,rl,fr,rr]

Scenarios (each: COUNT messages preloaded into the source queue, untimed; then a shovel with
src-delete-after queue-length; timed from the parameter's PUT until the shovel deleted itself):
  ll  leveret -> leveret, the shovel in the source leveret (two `leveret serve` processes)
  lr  leveret -> RabbitMQ, the shovel in leveret
  rl  leveret -> RabbitMQ, RabbitMQ's shovel pulling from leveret (what `leveret migrate --to` does)
  fr  RabbitMQ -> leveret, the shovel in leveret pulling from RabbitMQ (what `leveret migrate --from` does)
  rr  RabbitMQ -> RabbitMQ, RabbitMQ's own shovel between two queues of one vhost
Every run checks the destination holds exactly COUNT messages (none lost, none twice) and the source none.
RabbitMQ is the shared one on 127.0.0.1:5672, in a vhost of the bench's own, deleted after.

Besides the wall time, each run with leveret's shovel prints the CPU time the shovel's leveret process
(user + system, from /proc) spent per message: on a machine shared with other work the wall time swings
with the load, the CPU a message costs much less.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

import pika

from tests.crash.broker_process import BrokerProcess
from tests.http.api_client import call

RABBIT_API = "http://127.0.0.1:15672"
BODY = b"x" * 1024


def preload(url: str, queue: str, count: int) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(queue, durable=True)
    properties = pika.BasicProperties(delivery_mode=2)
    for _ in range(count):
        channel.basic_publish("", queue, BODY, properties)
    channel.queue_declare(queue, passive=True)  # answered after every publish before it was handled
    connection.close()


def ready(url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_shovel(api: str, vhost: str, value: dict, timeout: float = 3600) -> float:
    """Seconds from the PUT until the shovel deleted its own parameter."""
    path = f"/api/parameters/shovel/{vhost}/bench"
    start = time.monotonic()
    answer = call(api, "PUT", path, {"value": {**value, "src-delete-after": "queue-length"}})
    assert answer.status == 201, answer
    while call(api, "GET", path).status != 404:
        if time.monotonic() - start > timeout:
            raise TimeoutError("the shovel did not finish")
        time.sleep(0.05)  # polling another process's API; resolution well under the runs' seconds
    return time.monotonic() - start


def run(scenario: str, count: int, rabbit_vhost: str) -> tuple[float, float | None]:
    """Seconds the shovel took, and CPU seconds of the leveret process running it (None: RabbitMQ's shovel)."""
    rabbit = f"amqp://guest:guest@127.0.0.1:5672/{rabbit_vhost}"
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b, \
            BrokerProcess(a, settings={"http_port": 0}) as source, BrokerProcess(b) as other:
        local_api = f"http://127.0.0.1:{source.http_port}"
        queue, dest = f"src-{scenario}", f"dst-{scenario}"
        cpu_before = 0.0
        if scenario == "fr":
            preload(rabbit, queue, count)
            cpu_before = cpu_seconds(source.proc.pid)
            seconds = timed_shovel(local_api, "%2F", {"src-uri": rabbit, "src-queue": queue, "dest-uri": "amqp://",
                                                      "dest-queue": dest})
            src_url, dest_url = rabbit, source.url
        elif scenario == "rr":
            preload(rabbit, queue, count)
            seconds = timed_shovel(RABBIT_API, rabbit_vhost, {"src-uri": f"amqp:///{rabbit_vhost}", "src-queue": queue,
                                                               "dest-uri": f"amqp:///{rabbit_vhost}", "dest-queue": dest})
            src_url, dest_url = rabbit, rabbit
        else:
            preload(source.url, queue, count)
            cpu_before = cpu_seconds(source.proc.pid)
            src_url = source.url
            if scenario == "ll":
                dest_url = other.url
                seconds = timed_shovel(local_api, "%2F", {"src-uri": "amqp://", "src-queue": queue,
                                                          "dest-uri": other.url, "dest-queue": dest})
            elif scenario == "lr":
                dest_url = rabbit
                seconds = timed_shovel(local_api, "%2F", {"src-uri": "amqp://", "src-queue": queue,
                                                          "dest-uri": rabbit, "dest-queue": dest})
            else:
                dest_url = rabbit
                seconds = timed_shovel(RABBIT_API, rabbit_vhost, {"src-uri": source.url, "src-queue": queue,
                                                                  "dest-uri": f"amqp:///{rabbit_vhost}",
                                                                  "dest-queue": dest})
        cpu = cpu_seconds(source.proc.pid) - cpu_before if scenario in ("ll", "lr", "fr") else None
        moved, left = ready(dest_url, dest), ready(src_url, queue)
        assert (moved, left) == (count, 0), f"{scenario}: destination {moved}, source {left}, expected {count}, 0"
        source.stop()
        other.stop()
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--scenarios", default="ll,lr,rl,fr,rr")
    args = parser.parse_args()
    vhost = f"bench-shovel-{uuid.uuid4().hex[:8]}"
    call(RABBIT_API, "PUT", f"/api/vhosts/{vhost}", {})
    call(RABBIT_API, "PUT", f"/api/permissions/{vhost}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
    try:
        for scenario in args.scenarios.split(","):
            seconds, cpu = run(scenario, args.count, vhost)
            load = " ".join(open("/proc/loadavg").read().split()[:3])
            per_message = f", leveret CPU {cpu * 1e6 / args.count:,.0f} us/msg" if cpu is not None else ""
            print(f"{scenario}: {args.count} msgs in {seconds:.2f} s = {args.count / seconds:,.0f} msg/s"
                  f"{per_message} (loadavg {load})", flush=True)
    finally:
        call(RABBIT_API, "DELETE", f"/api/vhosts/{vhost}")


if __name__ == "__main__":
    main()
