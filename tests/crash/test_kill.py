"""kill -9 at random moments while a confirming publisher and an acking consumer run.

After every restart, each confirmed message must still be in its queue or have been delivered and acked;
nothing may appear that was never published; a message seen twice must carry redelivered=true the
second time (at-least-once). LEVERET_KILL_ROUNDS makes the run longer (bench/ uses it); the default
keeps the suite well under a minute.
"""

from __future__ import annotations

import os
import random
import threading
import time

import pika
import pytest

from tests.crash.broker_process import BrokerProcess

QUEUE = "crash-test"
ROUNDS = int(os.environ.get("LEVERET_KILL_ROUNDS", "20"))


class Ledger:
    """What the clients saw, shared by the publisher and consumer threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.next_id = 0
        self.attempted: set[int] = set()
        self.confirmed: set[int] = set()
        self.acked: set[int] = set()
        self.deliveries: list[tuple[int, bool]] = []


def _publisher(url: str, ledger: Ledger, stop: threading.Event) -> None:
    try:
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        ch.queue_declare(QUEUE, durable=True)
        ch.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=2)
        while not stop.is_set():
            with ledger.lock:
                ident = ledger.next_id
                ledger.next_id += 1
                ledger.attempted.add(ident)
            ch.basic_publish("", QUEUE, str(ident).encode(), props)
            with ledger.lock:
                ledger.confirmed.add(ident)
    except Exception:
        return  # the broker was killed under us


def _consumer(url: str, ledger: Ledger, stop: threading.Event) -> None:
    try:
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        ch.queue_declare(QUEUE, durable=True)
        ch.basic_qos(prefetch_count=50)
        for method, _props, body in ch.consume(QUEUE, inactivity_timeout=0.05):
            if stop.is_set():
                break
            if method is None:
                continue
            ident = int(body)
            with ledger.lock:
                ledger.deliveries.append((ident, method.redelivered))
            ch.basic_ack(method.delivery_tag)
            with ledger.lock:
                ledger.acked.add(ident)
    except Exception:
        return


def _drain(url: str, ledger: Ledger) -> list[int]:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare(QUEUE, durable=True)
    remaining = []
    while True:
        method, _props, body = ch.basic_get(QUEUE, auto_ack=True)
        if method is None:
            break
        ident = int(body)
        ledger.deliveries.append((ident, method.redelivered))
        remaining.append(ident)
    conn.close()
    return remaining


def test_no_confirmed_message_is_lost_across_kill_9(tmp_path) -> None:
    rng = random.Random(1234)
    ledger = Ledger()
    data_dir = str(tmp_path / "data")
    for _round in range(ROUNDS):
        with BrokerProcess(data_dir) as broker:
            stop = threading.Event()
            threads = [
                threading.Thread(target=_publisher, args=(broker.url, ledger, stop), daemon=True),
                threading.Thread(target=_consumer, args=(broker.url, ledger, stop), daemon=True),
            ]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.2, 0.9))  # the kill point: a random moment of live traffic
            broker.kill()
            stop.set()
            for t in threads:
                t.join(10)
                assert not t.is_alive()
    with BrokerProcess(data_dir) as broker:
        remaining = _drain(broker.url, ledger)
        broker.stop()

    print(f"confirmed={len(ledger.confirmed)} acked={len(ledger.acked)} remaining={len(remaining)} "
          f"deliveries={len(ledger.deliveries)}")
    assert len(ledger.confirmed) > 10 * ROUNDS, "the publisher hardly got going"
    present = set(remaining) | ledger.acked
    lost = ledger.confirmed - present
    assert not lost, f"{len(lost)} confirmed messages lost, e.g. {sorted(lost)[:10]}"
    phantoms = {ident for ident, _ in ledger.deliveries} - ledger.attempted
    assert not phantoms, f"messages that were never published: {sorted(phantoms)[:10]}"
    seen: set[int] = set()
    for ident, redelivered in ledger.deliveries:
        if ident in seen:
            assert redelivered, f"message {ident} delivered twice without redelivered=true"
        seen.add(ident)


@pytest.mark.parametrize("damage", ["truncated_tail", "flipped_byte"])
def test_a_damaged_segment_still_starts_serves_and_reports(tmp_path, damage) -> None:
    data_dir = str(tmp_path / "data")
    with BrokerProcess(data_dir) as broker:
        conn = pika.BlockingConnection(pika.URLParameters(broker.url))
        ch = conn.channel()
        ch.queue_declare(QUEUE, durable=True)
        ch.confirm_delivery()
        for i in range(100):
            ch.basic_publish("", QUEUE, b"%06d" % i + b"x" * 200, pika.BasicProperties(delivery_mode=2))
        conn.close()
        assert broker.stop() == 0
    segments = [
        os.path.join(root, name)
        for root, _dirs, files in os.walk(os.path.join(data_dir, "messages"))
        for name in files
        if name.endswith(".seg")
    ]
    assert len(segments) == 1
    segment = segments[0]
    size = os.path.getsize(segment)
    if damage == "truncated_tail":
        os.truncate(segment, size - 50)
        expect = 99
    else:
        with open(segment, "r+b") as f:
            f.seek(size // 2)
            byte = f.read(1)
            f.seek(size // 2)
            f.write(bytes([byte[0] ^ 0xFF]))
        expect = 99
    with BrokerProcess(data_dir) as broker:
        conn = pika.BlockingConnection(pika.URLParameters(broker.url))
        ch = conn.channel()
        count = ch.queue_declare(QUEUE, durable=True).method.message_count
        assert count == expect
        # still serving: a new message goes in and comes out
        ch.basic_publish("", "fresh", b"x") if False else None
        ch.queue_declare("fresh")
        ch.basic_publish("", "fresh", b"still-serving")
        assert ch.basic_get("fresh", auto_ack=True)[2] == b"still-serving"
        conn.close()
        broker.stop()
    log = "".join(broker.log)
    assert "repaired damage" in log and os.path.basename(segment) in log


def _due_order_broken(got: list[int], window: dict[int, tuple[float, float]]) -> list[tuple[int, int]]:
    """Pairs of delays that came out in the wrong order: `a` before `b` although `b`'s due time window ends
    before `a`'s begins. A message's due time is its routing time plus its delay, and the client only knows
    that routing happened between the publish call and its confirm; under load one confirm can take longer
    than the gap between two delays, so two windows may overlap, and then either order is due order."""
    return [(a, b) for i, a in enumerate(got) for b in got[i + 1:] if window[b][1] < window[a][0]]


# A lag after each confirm stands for a loaded machine's slow fsync: 0.35 s moves the due times of 1500 (published
# first) and 1200 (published last) past each other, so the due order is not the order of the delays.
@pytest.mark.parametrize("lag", [0.0, 0.35])
def test_confirmed_delayed_messages_survive_kill_9_and_come_out_in_due_order(tmp_path, lag) -> None:
    data_dir = str(tmp_path / "data")
    delays = [1500, 500, 1000, 200, 1200]
    window: dict[int, tuple[float, float]] = {}  # delay -> (earliest, latest) wall-clock due time, s
    with BrokerProcess(data_dir) as broker:
        conn = pika.BlockingConnection(pika.URLParameters(broker.url))
        ch = conn.channel()
        ch.exchange_declare("later", "x-delayed-message", durable=True, arguments={"x-delayed-type": "direct"})
        ch.queue_declare("due", durable=True)
        ch.queue_bind("due", "later", "k")
        ch.confirm_delivery()
        for delay in delays:
            before = time.time()
            ch.basic_publish("later", "k", str(delay).encode(),
                             pika.BasicProperties(delivery_mode=2, headers={"x-delay": delay}))
            # the broker rounds the due time up to a whole millisecond
            window[delay] = (before + delay / 1000, time.time() + delay / 1000 + 0.001)
            time.sleep(lag)
        broker.kill()  # every publish above was confirmed, so all of them must come out
    with BrokerProcess(data_dir) as broker:
        conn = pika.BlockingConnection(pika.URLParameters(broker.url))
        ch = conn.channel()
        got = []
        # A bound, not a pace: the loop ends at the fifth message; only a lost one waits the whole timeout.
        for method, _props, body in ch.consume("due", auto_ack=True, inactivity_timeout=30.0):
            if method is None:
                break
            got.append((int(body), time.time()))
            if len(got) == len(delays):
                break
        conn.close()
        broker.stop()
    assert sorted(delay for delay, _ in got) == sorted(delays)
    assert not _due_order_broken([delay for delay, _ in got], window), (got, window)
    assert all(arrived >= window[delay][0] for delay, arrived in got), (got, window)
