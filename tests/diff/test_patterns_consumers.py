"""Differential tests of quorum delivery limits, single active consumer and the consistent-hash exchange.

The consistent-hash ring itself differs on purpose (leveret's is stable across restarts, RabbitMQ's is
built in binding order), so those scenarios compare only what does not depend on the ring: one queue
per key, totals, and errors. RabbitMQ needs `rabbitmq-plugins enable rabbitmq_consistent_hash_exchange`.
"""

from __future__ import annotations

import time

import pika
import pika.exceptions
import pytest

from differential import WAIT, connection_for, get_within, hide_times


def test_quorum_delivery_limit_and_delivery_count_match(differential):
    def scenario(url, names):
        with connection_for(url) as connection:
            ch = connection.channel()
            work, dlq = names("work"), names("dlq")
            ch.queue_declare(dlq, exclusive=True)
            ok = ch.queue_declare(
                work,
                durable=True,
                arguments={
                    "x-queue-type": "quorum",
                    "x-delivery-limit": 2,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": dlq,
                },
            ).method
            try:
                ch.confirm_delivery()
                ch.basic_publish("", work, b"by-get", pika.BasicProperties(headers={"n": 1}))
                trail = []
                for _ in range(3):
                    method, properties, _ = get_within(ch, work, ack=False)
                    trail.append(("get", method.redelivered, properties.headers))
                    ch.basic_nack(method.delivery_tag, requeue=True)
                ch.basic_publish("", work, b"by-consume")
                for method, properties, body in ch.consume(work, inactivity_timeout=1.0):
                    if method is None:
                        break
                    trail.append(("deliver", body, method.redelivered, properties.headers))
                    ch.basic_reject(method.delivery_tag, requeue=True)
                ch.cancel()
                dead = []
                for _ in range(2):
                    method, properties, body = get_within(ch, dlq)
                    dead.append((body, method.routing_key, hide_times(properties.headers)))
                return {"declare": (ok.message_count, ok.consumer_count), "trail": trail, "dead": sorted(dead)}
            finally:
                ch.queue_delete(work)

    differential(scenario)


def test_single_active_consumer_replies_and_handover_match(differential):
    def scenario(url, names):
        connections = [connection_for(url) for _ in range(3)]
        try:
            channels = [c.channel() for c in connections]
            queue = names("sac")
            channels[0].queue_declare(queue, arguments={"x-single-active-consumer": True})
            got: dict[str, list[bytes]] = {"A": [], "B": [], "C": []}
            for ch, tag in zip(channels, "ABC"):
                ch.basic_consume(queue, lambda c, m, p, b, tag=tag: got[tag].append(b), auto_ack=True, consumer_tag=tag)
            ok = channels[0].queue_declare(queue, passive=True).method
            publisher = connections[0].channel()
            publisher.confirm_delivery()

            def publish_and_settle(bodies, expect):
                for body in bodies:
                    publisher.basic_publish("", queue, body)
                deadline = time.monotonic() + WAIT
                while sum(len(v) for v in got.values()) < expect and time.monotonic() < deadline:
                    for c in connections:
                        if c.is_open:
                            c.process_data_events(time_limit=0.01)

            publish_and_settle([b"1", b"2"], 2)
            channels[0].basic_cancel("A")
            publish_and_settle([b"3"], 3)
            connections[1].close()
            publish_and_settle([b"4"], 4)
            try:
                channels[2].basic_consume(queue, lambda *a: None, exclusive=True)
                exclusive = "ok"
            except pika.exceptions.ChannelClosedByBroker as e:
                exclusive = (e.reply_code, e.reply_text)
            publisher.queue_delete(queue)
            return {"declare": (ok.message_count, ok.consumer_count), "got": got, "exclusive": exclusive}
        finally:
            for c in connections:
                if c.is_open:
                    c.close()

    differential(scenario)


@pytest.fixture
def rabbitmq_with_consistent_hash(rabbitmq_url):
    """Skip unless the reference RabbitMQ has rabbitmq_consistent_hash_exchange enabled (a fresh one has not)."""
    with connection_for(rabbitmq_url) as connection:
        ch = connection.channel()
        try:
            ch.exchange_declare("diff.probe.consistent-hash", "x-consistent-hash", auto_delete=True)
            ch.exchange_delete("diff.probe.consistent-hash")
        except pika.exceptions.AMQPError as e:
            pytest.skip(f"RabbitMQ has no x-consistent-hash exchange (enable rabbitmq_consistent_hash_exchange): {e}")


@pytest.mark.usefixtures("rabbitmq_with_consistent_hash")
def test_consistent_hash_observables_match(differential):
    def scenario(url, names):
        with connection_for(url) as connection:
            ch = connection.channel()
            out = {}
            exchange = names("hash")
            ch.exchange_declare(exchange, "x-consistent-hash", auto_delete=True)
            queues = [names(f"p{i}") for i in range(3)]
            for q in queues:
                ch.queue_declare(q, exclusive=True)
            errors = []
            for key in ("abc", "0", "-2"):
                try:
                    ch.queue_bind(queues[0], exchange, key)
                    errors.append("ok")
                except pika.exceptions.ChannelClosedByBroker as e:
                    errors.append((e.reply_code, e.reply_text))
                    ch = connection.channel()
            out["bind_errors"] = errors
            for q in queues:
                ch.queue_bind(q, exchange, "20")
            ch.confirm_delivery()
            for rep in range(2):
                for key in range(40):
                    ch.basic_publish(exchange, f"key-{key}", str(key).encode())
            owners: dict[bytes, set[int]] = {}
            for i, q in enumerate(queues):
                while True:
                    method, _, body = ch.basic_get(q, auto_ack=True)
                    if method is None:
                        break
                    owners.setdefault(body, set()).add(i)
            out["keys"] = len(owners)
            out["one_queue_each"] = all(len(v) == 1 for v in owners.values())
            out["messages"] = sum(2 for _ in owners)
            declare_errors = []
            for arguments in ({"hash-header": "h", "hash-property": "message_id"}, {"hash-property": "nope"}):
                try:
                    ch.exchange_declare(names("bad"), "x-consistent-hash", auto_delete=True, arguments=arguments)
                    declare_errors.append("ok")
                except pika.exceptions.ChannelClosedByBroker as e:
                    declare_errors.append((e.reply_code, e.reply_text))
                    ch = connection.channel()
            out["declare_errors"] = declare_errors
            by_header = names("byheader")
            ch.exchange_declare(by_header, "x-consistent-hash", auto_delete=True, arguments={"hash-header": "user"})
            ch.queue_bind(queues[0], by_header, "1")
            ch.confirm_delivery()
            ch.basic_publish(by_header, "", b"with", pika.BasicProperties(headers={"user": "u1"}))
            ch.basic_publish(by_header, "", b"without")
            out["by_header"] = ch.queue_declare(queues[0], passive=True).method.message_count
            return out

    differential(scenario)


def test_return_order_of_classic_and_quorum_queues_matches(differential):
    def scenario(url, names):
        out = {}
        with connection_for(url) as connection:
            ch = connection.channel()
            ch.confirm_delivery()
            for kind in ("classic", "quorum"):
                queue = names(kind)
                ch.queue_declare(queue, durable=True, arguments={"x-queue-type": kind})
                try:
                    for body in (b"a", b"b", b"c"):
                        ch.basic_publish("", queue, body)
                    first = get_within(ch, queue, ack=False)[0]
                    second = get_within(ch, queue, ack=False)[0]
                    ch.basic_nack(second.delivery_tag, requeue=True)
                    ch.basic_nack(first.delivery_tag, requeue=True)
                    order = []
                    for _ in range(3):
                        method, properties, body = get_within(ch, queue)
                        order.append((body, method.redelivered, (properties.headers or {}).get("x-delivery-count")))
                    out[kind] = order
                finally:
                    ch.queue_delete(queue)
        return out

    differential(scenario)
