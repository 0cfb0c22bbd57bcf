"""Retry with backoff (x-requeue-delay, a leveret extension) and the consumer timeout, through pika.

x-requeue-delay and x-consumer-timeout are leveret behaviours (RabbitMQ 3.10 accepts the latter and
ignores it, and ignores the former), so these tests skip against RabbitMQ.
"""

from __future__ import annotations

import time

import pika
import pika.exceptions
import pytest

WAIT = 5.0


@pytest.fixture
def leveret_url(amqp_url, connect):
    connection = connect(amqp_url)
    product = connection._impl.server_properties.get("product")
    if isinstance(product, bytes):
        product = product.decode()
    if product != "leveret":
        pytest.skip(f"leveret extension; the broker is {product}")
    return amqp_url


def test_retry_with_backoff_then_dead_letter_in_two_arguments(leveret_url, connect, cleanup, unique):
    channel = connect(leveret_url).channel()
    dlq = cleanup.queue(leveret_url, unique("dlq"))
    channel.queue_declare(dlq)
    work = cleanup.queue(leveret_url, unique("work"))
    channel.queue_declare(
        work,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-requeue-delay": [100, 200],
            "x-delivery-limit": 2,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dlq,
        },
    )
    channel.basic_publish("", work, b"flaky")
    seen = []
    for method, _properties, _body in channel.consume(work, inactivity_timeout=1.0):
        if method is None:
            break
        seen.append(time.monotonic())
        channel.basic_nack(method.delivery_tag, requeue=True)
    channel.cancel()
    assert len(seen) == 3
    gaps = [b - a for a, b in zip(seen, seen[1:])]
    assert 0.1 <= gaps[0] < 0.3 and 0.2 <= gaps[1] < 0.4, gaps
    method, properties, body = channel.basic_get(dlq, auto_ack=True)
    assert body == b"flaky" and properties.headers["x-death"][0]["reason"] == "delivery_limit"


def test_a_delivery_not_acked_within_the_consumer_timeout_closes_the_channel(leveret_url, connect, cleanup, unique):
    connection = connect(leveret_url)
    channel = connection.channel()
    work = cleanup.queue(leveret_url, unique("work"))
    channel.queue_declare(work, arguments={"x-consumer-timeout": 200})
    channel.basic_publish("", work, b"slow")
    deadline = time.monotonic() + WAIT
    received = []
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        for method, _properties, _body in channel.consume(work, inactivity_timeout=0.05):
            if method is not None:
                received.append(method.delivery_tag)  # and never acked
            assert time.monotonic() < deadline, "the channel was never closed"
    assert received == [1]
    assert e.value.reply_code == 406
    assert e.value.reply_text.startswith("PRECONDITION_FAILED - delivery acknowledgement on channel ")
    assert "timed out. Timeout value used: 200 ms." in e.value.reply_text
    other = connection.channel()
    method, _, body = other.basic_get(work, auto_ack=True)
    assert body == b"slow" and method.redelivered
