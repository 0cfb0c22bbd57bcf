"""Dead-letter replay at scale (issue 12): 100,000 dead letters moved back by server-side move tasks.

Publishes N persistent messages (bodies are their ids) with an x-death header naming their original queue
into a durable dead-letter queue, then replays them in four tasks and checks the result:

1. a quarter at a rate limit (`--rate`): the rate achieved against the limit;
2. the next part at the same limit, cancelled after `--cancel-after` seconds: how long the cancel took;
3. half the rest without a limit, killed with SIGKILL a third of the way in: the restart's recovery time,
   what was where afterwards, and the task resumed by the restart (same id) until it finished;
4. what is left, without a limit: the unlimited move rate.

Then it consumes the original queue and checks the multiset of ids: every id there, none left in the
dead-letter queue, and every id seen n times flagged redelivered at least n - 1 times. With `--rabbitmq`
it also times RabbitMQ's way of doing the same (a dynamic shovel from the dead-letter queue to the work
queue, ack-mode on-confirm, as the management UI's "Move messages" creates one) in a vhost of its own on
the local RabbitMQ, for the ratio.

    python3 bench/dlq_move.py                      # 100,000 messages, --rate 20000
    python3 bench/dlq_move.py --count 20000 --rate 5000 --rabbitmq
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pika  # noqa: E402

from bench.bench_delayed import Broker, Client  # noqa: E402
from leveret.amqp import spec  # noqa: E402

DEATH = {"count": 1, "reason": "rejected", "queue": "work", "exchange": "", "routing-keys": ["work"]}


def api(port: int, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api{path}", method=method, data=data)
    request.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        raw = response.read()
    return json.loads(raw) if raw.strip() else None


def wait_for(port: int, task_id: str, until: Any, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = api(port, "GET", f"/move-tasks/{task_id}")
        if until(task) or time.monotonic() > deadline:
            return task
        time.sleep(0.01)


def ready(port: int, queue: str, vhost: str = "%2F") -> int:
    return api(port, "GET", f"/queues/{vhost}/{queue}")["messages_ready"]


def fill(amqp_port: int, count: int, vhost: str = "/") -> float:
    client = Client(amqp_port, vhost)
    for queue in ("work", "dlq"):
        client.send(1, spec.QueueDeclare(queue=queue, durable=True))
        client.expect(spec.QueueDeclareOk)
    elapsed = client.publish_confirmed("", "dlq", count, {"x-death": [DEATH]}, lambda i: str(i).encode())
    client.close()
    return elapsed


def consume_ids(amqp_port: int, queue: str, count: int) -> list[tuple[int, bool]]:
    """Every message of `queue` (at least `count` expected), consumed with auto-ack."""
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", amqp_port))
    channel = conn.channel()
    channel.basic_qos(prefetch_count=2000)
    out: list[tuple[int, bool]] = []
    for method, _props, body in channel.consume(queue, auto_ack=True, inactivity_timeout=2):
        if method is None:
            break
        out.append((int(body), method.redelivered))
    conn.close()
    return out


def leveret_run(args: argparse.Namespace, out: dict[str, Any]) -> bool:
    data_dir = tempfile.mkdtemp(prefix="leveret-bench-dlq-")
    broker = Broker(data_dir)
    n = args.count
    try:
        broker.start()
        out["publish_s"] = round(fill(broker.port, n), 2)
        http = broker.http_port
        # 1: a quarter at the rate limit
        started = time.monotonic()
        first = api(http, "POST", "/move-tasks", {"source": "dlq", "count": n // 4, "max_rate": args.rate})
        first = wait_for(http, first["id"], lambda t: t["state"] != "running")
        took = time.monotonic() - started
        out["1_rate_limited"] = f"{first['moved']} moved in {took:.2f} s: {first['moved'] / took:,.0f}/s (limit {args.rate:,.0f}/s)"
        # 2: cancelled mid-way
        second = api(http, "POST", "/move-tasks", {"source": "dlq", "count": n // 4, "max_rate": args.rate})
        time.sleep(args.cancel_after)  # a benchmark's timed pause: the cancel should land mid-task
        asked = time.monotonic()
        api(http, "DELETE", f"/move-tasks/{second['id']}")
        second = wait_for(http, second["id"], lambda t: t["state"] != "running")
        out["2_cancelled"] = (f"{second['state']} after {second['moved']} of {second['total']}, "
                              f"{(time.monotonic() - asked) * 1000:.0f} ms after the DELETE")
        # 3: half the rest, no limit, killed a third of the way in; the restart resumes it
        half = ready(http, "dlq") // 2
        third = api(http, "POST", "/move-tasks", {"source": "dlq", "count": half})
        third = wait_for(http, third["id"], lambda t: t["moved"] >= half // 3 or t["state"] != "running")
        broker.kill()
        out["3_killed"] = f"at {third['moved']} of {third['total']} moved (as last seen)"
        out["3_restart_after_kill_s"] = round(broker.start(), 2)
        http = broker.http_port
        left, moved = ready(http, "dlq"), ready(http, "work")
        out["3_after_restart"] = f"dlq {left}, work {moved}, sum {left + moved} (>= {n})"
        resumed = wait_for(http, third["id"], lambda t: t["state"] != "running")
        out["3_resumed"] = (f"task {resumed['id']} (same id: {resumed['id'] == third['id']}) resumed "
                            f"{resumed['resumed']}x, {resumed['state']}: {resumed['moved']} of {resumed['total']} "
                            f"moved as counted (from its saved progress)")
        # 4: the rest, no limit
        started = time.monotonic()
        fourth = api(http, "POST", "/move-tasks", {"source": "dlq"})
        fourth = wait_for(http, fourth["id"], lambda t: t["state"] != "running")
        took = time.monotonic() - started
        out["4_unlimited"] = f"{fourth['moved']} moved in {took:.2f} s: {fourth['moved'] / max(took, 1e-9):,.0f}/s"
        ids = consume_ids(broker.port, "work", n)
        out["dlq_left"] = ready(http, "dlq")
        broker.stop()
    finally:
        broker.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
    seen = Counter(i for i, _ in ids)
    flagged = Counter(i for i, redelivered in ids if redelivered)
    duplicates = sum(c - 1 for c in seen.values())
    out["ids_check"] = (f"{len(seen)} distinct of {n}, {duplicates} duplicates, "
                        f"{sum(1 for i, c in seen.items() if flagged[i] < c - 1)} duplicates unflagged")
    return (set(seen) == set(range(n)) and out["dlq_left"] == 0
            and all(flagged[i] >= c - 1 for i, c in seen.items()))


def rabbitmq_run(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """The same move on the local RabbitMQ with a dynamic shovel, in a vhost of its own (deleted after)."""
    vhost = f"bench-dlq-{os.getpid()}"
    port = 15672
    api(port, "PUT", f"/vhosts/{vhost}")
    try:
        api(port, "PUT", f"/permissions/{vhost}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
        fill(5672, args.count, vhost)
        started = time.monotonic()
        api(port, "PUT", f"/parameters/shovel/{vhost}/move", {"value": {
            "src-protocol": "amqp091", "src-uri": f"amqp:///{vhost}", "src-queue": "dlq",
            "src-delete-after": "queue-length", "dest-protocol": "amqp091", "dest-uri": f"amqp:///{vhost}",
            "dest-queue": "work", "ack-mode": "on-confirm"}})
        deadline = time.monotonic() + 600
        while ready(port, "work", vhost) < args.count and time.monotonic() < deadline:
            time.sleep(0.05)
        took = time.monotonic() - started
        out["rabbitmq_shovel_move"] = f"{args.count} moved in {took:.2f} s: {args.count / took:,.0f}/s"
    finally:
        api(port, "DELETE", f"/vhosts/{vhost}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=20_000, help="messages/s for tasks 1 and 2")
    parser.add_argument("--cancel-after", type=float, default=0.5, help="seconds before task 2 is cancelled")
    parser.add_argument("--rabbitmq", action="store_true", help="also time a shovel move on the local RabbitMQ")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {"count": args.count}
    with open("/proc/loadavg") as f:
        out["loadavg_before"] = f.read().split()[:3]
    ok = leveret_run(args, out)
    if args.rabbitmq:
        try:
            rabbitmq_run(args, out)
        except (urllib.error.URLError, OSError) as exc:
            out["rabbitmq_shovel_move"] = f"not measured: {exc}"
    with open("/proc/loadavg") as f:
        out["loadavg_after"] = f.read().split()[:3]
    for key, value in out.items():
        print(f"{key:24s} {value}")
    print("honest" if ok else "FAILED: ids lost, left behind, or duplicated unflagged")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
