"""Scenarios through kombu (over py-amqp), the messaging layer under Celery.

kombu declares its entities itself, with its own defaults (durable exchanges and queues, topic
and direct types, `auto_delete` on request), so these tests check that the broker accepts kombu's
way of declaring, binding and consuming, not just that bytes go round.
"""

from __future__ import annotations

import kombu
import pytest

WAIT = 5.0


@pytest.fixture
def connection(amqp_url):
    # Confirmed publishes: a queue's message count is exact only for messages the broker confirmed.
    with kombu.Connection(amqp_url, connect_timeout=WAIT, transport_options={"confirm_publish": True}) as conn:
        conn.ensure_connection(max_retries=1)
        yield conn


def drain_until(connection, done, timeout: float = WAIT) -> None:
    """Process events until `done()`; drain_events raises socket.timeout if the broker falls silent."""
    while not done():
        connection.drain_events(timeout=timeout)


def test_simple_queue_put_get_ack_and_empty(connection, amqp_url, unique, cleanup):
    name = cleanup.queue(amqp_url, unique("simple"))
    cleanup.exchange(amqp_url, name)  # SimpleQueue declares a direct exchange named like the queue
    with connection.SimpleQueue(name) as queue:
        queue.put({"hello": "world", "n": [1, 2]})
        queue.put("second")
        first = queue.get(timeout=WAIT)
        assert first.payload == {"hello": "world", "n": [1, 2]}
        assert first.content_type == "application/json"
        first.ack()
        second = queue.get(timeout=WAIT)
        assert second.payload == "second"
        second.ack()
        with pytest.raises(queue.Empty):
            queue.get(block=False)
        assert queue.qsize() == 0


def test_simple_queue_requeued_message_comes_back_redelivered(connection, amqp_url, unique, cleanup):
    name = cleanup.queue(amqp_url, unique("requeue"))
    cleanup.exchange(amqp_url, name)
    with connection.SimpleQueue(name) as queue:
        queue.put("again")
        message = queue.get(timeout=WAIT)
        assert not message.delivery_info["redelivered"]
        message.requeue()
        message = queue.get(timeout=WAIT)
        assert message.payload == "again" and message.delivery_info["redelivered"]
        message.ack()


def test_producer_and_consumer_over_a_topic_exchange(connection, amqp_url, unique, cleanup):
    exchange = kombu.Exchange(cleanup.exchange(amqp_url, unique("events")), type="topic", durable=False)
    orders = kombu.Queue(cleanup.queue(amqp_url, unique("orders")), exchange, routing_key="order.*",
                         durable=False, auto_delete=False)
    audit = kombu.Queue(cleanup.queue(amqp_url, unique("audit")), exchange, routing_key="#",
                        durable=False, auto_delete=False)
    received: dict[str, list] = {"orders": [], "audit": []}

    def on_orders(body, message):
        received["orders"].append(body)
        message.ack()

    def on_audit(body, message):
        received["audit"].append((message.delivery_info["routing_key"], body))
        message.ack()

    with connection.channel() as channel:
        producer = kombu.Producer(channel, exchange=exchange)
        with kombu.Consumer(channel, [orders], callbacks=[on_orders]), \
                kombu.Consumer(channel, [audit], callbacks=[on_audit]):
            # The consumers declared and bound the queues: now every publish has a destination.
            producer.publish({"id": 1}, routing_key="order.created", declare=[exchange])
            producer.publish({"id": 2}, routing_key="user.created")
            producer.publish({"id": 3}, routing_key="order.paid", headers={"trace": "t-1"})
            drain_until(connection, lambda: len(received["orders"]) == 2 and len(received["audit"]) == 3)
    assert received["orders"] == [{"id": 1}, {"id": 3}]
    assert received["audit"] == [("order.created", {"id": 1}), ("user.created", {"id": 2}),
                                 ("order.paid", {"id": 3})]


def test_consumer_prefetch_limits_deliveries_until_ack(connection, amqp_url, unique, cleanup):
    queue = kombu.Queue(cleanup.queue(amqp_url, unique("qos")), durable=False)
    held: list = []
    with connection.channel() as channel:
        bound = queue(channel)
        bound.declare()
        producer = kombu.Producer(channel)
        for i in range(5):
            producer.publish(i, routing_key=queue.name)
        with kombu.Consumer(channel, [queue], callbacks=[lambda body, msg: held.append(msg)], prefetch_count=2):
            drain_until(connection, lambda: len(held) == 2)
            # Two deliveries unacked: the broker must hold the other three back as ready messages.
            _name, ready, _consumers = bound.queue_declare(passive=True)
            assert ready == 3
            assert len(held) == 2
            held[0].ack()
            drain_until(connection, lambda: len(held) == 3)
            assert [m.payload for m in held] == [0, 1, 2]
            # Acking frees credit, so more deliveries may arrive while the consumer is cancelled.
            for message in held[1:3]:
                message.ack()


def test_fanout_broadcast_reaches_every_bound_queue(connection, amqp_url, unique, cleanup):
    exchange = kombu.Exchange(cleanup.exchange(amqp_url, unique("bcast")), type="fanout", durable=False)
    queues = [kombu.Queue(cleanup.queue(amqp_url, unique(f"b{i}")), exchange, durable=False) for i in range(3)]
    with connection.channel() as channel:
        for queue in queues:
            queue(channel).declare()
        kombu.Producer(channel, exchange=exchange).publish("to all", routing_key="x")
        for queue in queues:
            message = queue(channel).get(no_ack=True)
            assert message is not None and message.payload == "to all"
