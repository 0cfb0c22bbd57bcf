"""The first benchmark: publish then consume 1 KB messages through pika.

    python3 bench/throughput.py --url amqp://guest:guest@127.0.0.1:5672/ --count 20000

Publishes ``count`` transient 1 KB messages to a fresh queue (timed until a
passive declare shows them all enqueued, so the figure is the broker's
acceptance rate, not pika's buffer), then consumes them with prefetch 1000
and a multiple ack every 500, checking every sequence number arrives once.
Prints msgs/s for each phase; exits non-zero if any check fails.  This is
what a user with pika sees; ``python3 -m bench.loadgen`` measures the broker
with far less client overhead.
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
import uuid

import pika

SEQ = struct.Struct(">Q")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    args = ap.parse_args(argv)
    deadline = time.monotonic() + args.timeout
    params = pika.URLParameters(args.url)
    params.heartbeat = 0  # a bounded run; a busy client must not be dropped
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    queue = f"bench.throughput.{uuid.uuid4().hex[:8]}"
    ch.queue_declare(queue)
    pad = bytes(args.size - SEQ.size)
    problems = []
    try:
        t0 = time.monotonic()
        for i in range(args.count):
            ch.basic_publish("", queue, SEQ.pack(i) + pad)
        held = ch.queue_declare(queue, passive=True).method.message_count
        while held < args.count and time.monotonic() < deadline:
            time.sleep(0.01)
            held = ch.queue_declare(queue, passive=True).method.message_count
        publish_s = time.monotonic() - t0
        if held != args.count:
            problems.append(f"queue holds {held} of {args.count} published")
        print(f"publish: {args.count} x {args.size} B in {publish_s:.2f} s = {args.count / publish_s:,.0f} msgs/s")

        seen = bytearray(args.count)
        state = {"n": 0, "dups": 0}

        def on_message(channel, method, _props, body) -> None:
            (seq,) = SEQ.unpack_from(body, 0)
            if seq < args.count and not seen[seq]:
                seen[seq] = 1
            else:
                state["dups"] += 1
            state["n"] += 1
            if state["n"] % 500 == 0 or state["n"] == args.count:
                channel.basic_ack(method.delivery_tag, multiple=True)
            if state["n"] >= args.count:
                channel.stop_consuming()

        ch.basic_qos(prefetch_count=1000)
        ch.basic_consume(queue, on_message)
        t1 = time.monotonic()
        while state["n"] < args.count and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.2)
        consume_s = time.monotonic() - t1
        print(f"consume: {state['n']} in {consume_s:.2f} s = {state['n'] / consume_s:,.0f} msgs/s")
        missing = seen.count(0)
        if missing or state["dups"]:
            problems.append(f"{missing} missing, {state['dups']} duplicate or unknown")
        left = ch.queue_declare(queue, passive=True).method.message_count
        if left:
            problems.append(f"{left} messages left in the queue")
    finally:
        ch.queue_delete(queue)
        conn.close()
    for p in problems:
        print(f"FAILED: {p}")
    if not problems:
        print("honest: every message published once, consumed once, queue empty")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
