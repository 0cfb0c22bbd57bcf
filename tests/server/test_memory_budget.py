"""The broker-wide memory budget, end to end: a real client's transient backlogs spill once it is used up."""

from __future__ import annotations

import contextlib
import os

import pika

from leveret.embedded import EmbeddedBroker


@contextlib.contextmanager
def confirming_channel(memory_budget: int):
    """An embedded broker with this budget and a pika channel in confirm mode on it."""
    with EmbeddedBroker(memory_budget=memory_budget) as broker:
        conn = pika.BlockingConnection(pika.URLParameters(broker.url))
        try:
            ch = conn.channel()
            ch.confirm_delivery()
            yield broker, ch
        finally:
            conn.close()


def drain(ch, queue: str, count: int) -> list:
    """(properties, body) of `count` deliveries, consumed with auto-ack (fewer if the queue runs dry)."""
    got = []
    for method, props, body in ch.consume(queue, auto_ack=True, inactivity_timeout=5):
        if method is None:
            break
        got.append((props, body))
        if len(got) == count:
            break
    ch.cancel()
    return got


def test_transient_backlogs_past_the_memory_budget_spill_and_come_back_in_order() -> None:
    body = b"x" * 1000
    with confirming_channel(100_000) as (broker, ch):
        for name in ("first", "second"):
            ch.queue_declare(name)
            for i in range(3000):
                ch.basic_publish("", name, b"%05d" % i + body)
        vhost = broker.server.broker.vhost("/")
        budget = broker.server.memory_budget
        first, second = vhost.queues["first"], vhost.queues["second"]
        # Each queue keeps its small window (2,000 entries) in memory, the rest is on disk in its spill.
        assert first.ready.tail_length == 1000 and second.ready.tail_length == 1000
        assert budget.used == 2 * 2000 * len(b"00000" + body)
        spill_root = os.path.join(broker.settings.data_dir, "messages", "scratch")
        assert sum(len(files) for _, _, files in os.walk(spill_root)) >= 2

        for name in ("first", "second"):
            assert [received for _, received in drain(ch, name, 3000)] == [b"%05d" % i + body for i in range(3000)]
        assert budget.used == 0


def test_a_priority_queue_past_the_budget_pages_each_level_and_delivers_highest_first() -> None:
    body = b"y" * 500
    with confirming_channel(10_000) as (broker, ch):
        ch.queue_declare("prio", arguments={"x-max-priority": 3})
        sent = []
        for i in range(9000):
            priority = (i * 7) % 4
            ch.basic_publish("", "prio", b"%d-%05d" % (priority, i) + body, pika.BasicProperties(priority=priority))
            sent.append((priority, i))
        queue = broker.server.broker.vhost("/").queues["prio"]
        assert sum(level.tail_length for level in queue.ready.levels.values()) == 9000 - 4 * 2000

        got = [(props.priority, int(received[2:7])) for props, received in drain(ch, "prio", 9000)]
        assert got == sorted(sent, key=lambda item: (-item[0], item[1]))
