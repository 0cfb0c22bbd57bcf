"""Dead-lettered and delayed persistent messages across a restart of an embedded leveret (file store).

Leveret-only by nature (it restarts the broker it runs), so it uses EmbeddedBroker directly rather
than `amqp_url`.
"""

from __future__ import annotations

import time

import pika

from leveret.embedded import EmbeddedBroker

PERSISTENT = pika.BasicProperties(delivery_mode=2)


def _channel(broker: EmbeddedBroker):
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    return connection, connection.channel()


def test_dead_lettered_persistent_message_survives_a_restart(tmp_path):
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        connection, ch = _channel(broker)
        ch.queue_declare("dlq", durable=True)
        ch.queue_declare("work", durable=True, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"})
        ch.confirm_delivery()
        ch.basic_publish("", "work", b"poison", PERSISTENT)
        method, _, _ = ch.basic_get("work")
        ch.basic_reject(method.delivery_tag, requeue=False)
        assert ch.queue_declare("dlq", durable=True, passive=True).method.message_count == 1
        connection.close()
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        connection, ch = _channel(broker)
        assert ch.queue_declare("work", passive=True).method.message_count == 0
        method, properties, body = ch.basic_get("dlq", auto_ack=True)
        assert body == b"poison" and properties.delivery_mode == 2
        death = properties.headers["x-death"][0]
        assert (death["reason"], death["queue"], death["count"]) == ("rejected", "work", 1)
        connection.close()


def test_delayed_persistent_message_survives_a_restart_and_keeps_its_due_time(tmp_path):
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        connection, ch = _channel(broker)
        ch.exchange_declare("later", "x-delayed-message", durable=True, arguments={"x-delayed-type": "direct"})
        ch.queue_declare("due", durable=True)
        ch.queue_bind("due", "later", "k")
        ch.confirm_delivery()
        sent = time.monotonic()
        ch.basic_publish(
            "later", "k", b"wake-up", pika.BasicProperties(delivery_mode=2, headers={"x-delay": 700})
        )
        connection.close()
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        connection, ch = _channel(broker)
        got = None
        for method, _properties, body in ch.consume("due", auto_ack=True, inactivity_timeout=3.0):
            got = (body, time.monotonic() - sent) if method is not None else None
            break
        connection.close()
    assert got is not None and got[0] == b"wake-up" and got[1] >= 0.7
