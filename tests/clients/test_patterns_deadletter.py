"""Dead letters, TTLs and length limits through pika, as an application uses them.

Each test also runs against RabbitMQ 3.10 (`--amqp-url amqp://guest:guest@127.0.0.1:5672/%2F`), which
is how the expectations were validated. Waits are bounded: a broker that never delivers fails the
test within seconds.
"""

from __future__ import annotations

import time

import pika
import pika.exceptions
import pytest

WAIT = 5.0


def get_within(channel, queue: str, timeout: float = WAIT):
    """basic.get until a message arrives or `timeout` passes: (method, properties, body) or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is not None:
            return method, properties, body
        channel.connection.process_data_events(time_limit=0.01)
    return None


def declare_dlq(channel, cleanup, url, unique):
    dlq = cleanup.queue(url, unique("dlq"))
    channel.queue_declare(dlq)
    return dlq


def test_poison_message_ends_in_the_dlq_after_exactly_n_deliveries(amqp_url, connect, cleanup, unique):
    n = 4
    channel = connect(amqp_url).channel()
    dlq = declare_dlq(channel, cleanup, amqp_url, unique)
    work = cleanup.queue(amqp_url, unique("work"))
    channel.queue_declare(
        work,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": n - 1,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dlq,
        },
    )
    channel.confirm_delivery()
    channel.basic_publish("", work, b"poison", pika.BasicProperties(headers={"job": 7}))
    deliveries = []
    for method, properties, _body in channel.consume(work, inactivity_timeout=1.0):
        if method is None:
            break
        deliveries.append((method.redelivered, (properties.headers or {}).get("x-delivery-count")))
        channel.basic_reject(method.delivery_tag, requeue=True)
    channel.cancel()
    # RabbitMQ 3.10 adds x-delivery-count to a basic.deliver only after the first return
    assert deliveries == [(False, None), (True, 1), (True, 2), (True, 3)]
    got = get_within(channel, dlq)
    assert got is not None
    _, properties, body = got
    assert body == b"poison"
    headers = properties.headers
    (death,) = headers["x-death"]
    assert {k: v for k, v in death.items() if k != "time"} == {
        "count": 1,
        "reason": "delivery_limit",
        "queue": work,
        "exchange": "",
        "routing-keys": [work],
    }
    assert headers["job"] == 7 and "x-delivery-count" not in headers
    assert (headers["x-first-death-queue"], headers["x-first-death-reason"]) == (work, "delivery_limit")


def test_reject_without_requeue_dead_letters_with_reason_rejected(amqp_url, connect, cleanup, unique):
    channel = connect(amqp_url).channel()
    dlx = cleanup.exchange(amqp_url, unique("dlx"))
    channel.exchange_declare(dlx, "fanout")
    dlq = declare_dlq(channel, cleanup, amqp_url, unique)
    channel.queue_bind(dlq, dlx)
    work = cleanup.queue(amqp_url, unique("work"))
    channel.queue_declare(work, arguments={"x-dead-letter-exchange": dlx})
    channel.basic_publish("", work, b"m", pika.BasicProperties(expiration="60000", headers={"CC": ["cc-key"]}))
    method, _, _ = get_within_unacked(channel, work)
    channel.basic_reject(method.delivery_tag, requeue=False)
    got = get_within(channel, dlq)
    assert got is not None
    method, properties, _ = got
    assert (method.exchange, method.routing_key) == (dlx, work)
    assert properties.expiration is None
    (death,) = properties.headers["x-death"]
    assert death["reason"] == "rejected" and death["original-expiration"] == "60000"
    assert death["routing-keys"] == [work, "cc-key"]


def get_within_unacked(channel, queue: str):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        method, properties, body = channel.basic_get(queue)
        if method is not None:
            return method, properties, body
        channel.connection.process_data_events(time_limit=0.01)
    raise AssertionError(f"nothing arrived in {queue}")


def test_queue_ttl_dead_letters_expired_messages(amqp_url, connect, cleanup, unique):
    channel = connect(amqp_url).channel()
    dlq = declare_dlq(channel, cleanup, amqp_url, unique)
    work = cleanup.queue(amqp_url, unique("work"))
    channel.queue_declare(
        work, arguments={"x-message-ttl": 50, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}
    )
    started = time.monotonic()
    channel.basic_publish("", work, b"stale")
    got = get_within(channel, dlq)
    assert got is not None and time.monotonic() - started >= 0.05
    death = got[1].headers["x-death"][0]
    assert (death["reason"], death["queue"], death["count"]) == ("expired", work, 1)


def test_ttl_zero_expires_unless_a_consumer_takes_it_now(amqp_url, connect, cleanup, unique):
    channel = connect(amqp_url).channel()
    dlq = declare_dlq(channel, cleanup, amqp_url, unique)
    work = cleanup.queue(amqp_url, unique("work"))
    channel.queue_declare(
        work, arguments={"x-message-ttl": 0, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}
    )
    channel.basic_publish("", work, b"nobody-waiting")
    got = get_within(channel, dlq)
    assert got is not None and got[2] == b"nobody-waiting"
    assert channel.queue_declare(work, passive=True).method.message_count == 0


def test_drop_head_keeps_the_newest_and_dead_letters_the_oldest(amqp_url, connect, cleanup, unique):
    channel = connect(amqp_url).channel()
    dlq = declare_dlq(channel, cleanup, amqp_url, unique)
    work = cleanup.queue(amqp_url, unique("work"))
    channel.queue_declare(
        work, arguments={"x-max-length": 2, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}
    )
    channel.confirm_delivery()
    for body in (b"1", b"2", b"3"):
        channel.basic_publish("", work, body)
    assert [get_within(channel, work)[2] for _ in range(2)] == [b"2", b"3"]
    got = get_within(channel, dlq)
    assert got[2] == b"1" and got[1].headers["x-death"][0]["reason"] == "maxlen"


def test_reject_publish_nacks_the_publisher_confirm(amqp_url, connect, cleanup, unique):
    channel = connect(amqp_url).channel()
    work = cleanup.queue(amqp_url, unique("work"))
    channel.queue_declare(work, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    channel.confirm_delivery()
    channel.basic_publish("", work, b"fits")
    with pytest.raises(pika.exceptions.NackError):
        channel.basic_publish("", work, b"refused")
    assert channel.queue_declare(work, passive=True).method.message_count == 1


def test_x_expires_deletes_an_unused_queue(amqp_url, connect, cleanup, unique):
    connection = connect(amqp_url)
    channel = connection.channel()
    work = cleanup.queue(amqp_url, unique("work"))
    channel.queue_declare(work, arguments={"x-expires": 200})
    # a passive declare renews the lease, so each probe waits longer than the expiry first
    deadline = time.monotonic() + WAIT
    while True:
        connection.process_data_events(time_limit=0.3)
        try:
            channel.queue_declare(work, passive=True)
        except pika.exceptions.ChannelClosedByBroker as e:
            assert e.reply_code == 404
            break
        assert time.monotonic() < deadline, "queue never expired"


def test_priority_queue_delivers_higher_priorities_first(amqp_url, connect, cleanup, unique):
    channel = connect(amqp_url).channel()
    work = cleanup.queue(amqp_url, unique("work"))
    channel.queue_declare(work, arguments={"x-max-priority": 10})
    channel.confirm_delivery()
    for body, priority in ((b"low", 1), (b"none", None), (b"top", 50), (b"mid", 5)):
        channel.basic_publish("", work, body, pika.BasicProperties(priority=priority))
    assert [get_within(channel, work)[2] for _ in range(4)] == [b"top", b"mid", b"low", b"none"]


@pytest.mark.parametrize(
    "arguments, detail",
    [
        ({"x-message-ttl": -1}, "{value_negative,-1}"),
        ({"x-overflow": "sideways"}, "invalid_overflow"),
        ({"x-max-priority": 300}, "{max_value_exceeded,300}"),
        ({"x-expires": "soon"}, '"expected integer, got longstr"'),
    ],
)
def test_bad_arguments_close_the_channel_with_406_and_create_nothing(amqp_url, connect, unique, arguments, detail):
    connection = connect(amqp_url)
    channel = connection.channel()
    name = unique("bad")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        channel.queue_declare(name, arguments=arguments)
    key = next(iter(arguments))
    assert e.value.reply_code == 406
    assert e.value.reply_text == f"PRECONDITION_FAILED - invalid arg '{key}' for queue '{name}' in vhost '/': {detail}"
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as e:
        connection.channel().queue_declare(name, passive=True)
    assert e.value.reply_code == 404
