"""Stream queues through aio-pika: confirmed publishing, independent consumers, offsets, refusals.

Each test runs one coroutine with `asyncio.run`; every wait on the broker is bounded.
"""

from __future__ import annotations

import asyncio
import datetime
import time

import aio_pika
import aiormq.exceptions
import pytest

WAIT = 10.0
STREAM = {"x-queue-type": "stream"}


def run(coroutine, timeout: float = 60.0):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


async def collect(channel, name: str, n: int, offset, prefetch: int, tag: str | None = None, extra=None):
    """Consume `n` messages; acks free credit so exactly n arrive. Returns [(x-stream-offset, body)]."""
    prefetch = min(prefetch, n)
    await channel.set_qos(prefetch_count=prefetch)
    queue = await channel.get_queue(name, ensure=False)
    got: list = []
    done = asyncio.get_running_loop().create_future()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        got.append((message.headers["x-stream-offset"], message.body))
        if len(got) <= n - prefetch:
            await message.ack()
        if len(got) == n and not done.done():
            done.set_result(None)

    await queue.consume(on_message, arguments={"x-stream-offset": offset, **(extra or {})}, consumer_tag=tag)
    await asyncio.wait_for(done, WAIT * 3)
    return got


async def declare(channel, name: str, **arguments) -> None:
    await channel.declare_queue(name, durable=True, arguments={**STREAM, **arguments})


def test_ten_thousand_messages_read_back_in_order_by_an_aio_pika_and_a_pika_consumer(amqp_url, unique, cleanup):
    """One stream, two independent consumers on different clients, each sees all 10,000 in order."""
    import pika

    name = cleanup.queue(amqp_url, unique("stream"))
    bodies = [b"%05d" % i for i in range(10_000)]
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.queue_declare(name, durable=True, arguments=STREAM)
        for body in bodies:  # pika publishes faster than aio-pika; confirmed publishing: see the kill -9 test
            channel.basic_publish("", name, body)
        channel.queue_declare(name, passive=True)  # a round trip after the last publish
        channel.basic_qos(prefetch_count=1000)
        pika_got: list = []

        def on_message(ch, method, properties, body):
            pika_got.append((properties.headers["x-stream-offset"], body))
            if len(pika_got) <= 10_000 - 1000:
                ch.basic_ack(method.delivery_tag)

        channel.basic_consume(name, on_message, arguments={"x-stream-offset": 0})
        deadline = time.monotonic() + 60
        while len(pika_got) < 10_000:
            assert time.monotonic() < deadline, "pika consumer timed out"
            connection.process_data_events(time_limit=0.05)
    finally:
        connection.close()

    async def read_with_aio_pika():
        async with await aio_pika.connect(amqp_url) as connection:
            return await collect(await connection.channel(), name, 10_000, "first", prefetch=2500)

    aio_got = run(read_with_aio_pika(), timeout=90)
    for got in (aio_got, pika_got):
        assert [offset for offset, _ in got] == list(range(10_000))
        assert [body for _, body in got] == bodies


def test_offset_forms_and_header_type(amqp_url, unique, cleanup):
    name = cleanup.queue(amqp_url, unique("stream"))

    async def scenario():
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel(publisher_confirms=True)
            await declare(channel, name)
            for i in range(6):
                await channel.default_exchange.publish(aio_pika.Message(b"m%d" % i, headers={"n": i}), routing_key=name)
            first = await collect(await connection.channel(), name, 1, "first", 1)
            last = await collect(await connection.channel(), name, 1, "last", 1)
            numeric = await collect(await connection.channel(), name, 1, 2, 1)
            past = datetime.datetime(2000, 1, 1)
            by_time = await collect(await connection.channel(), name, 1, past, 1)
            by_interval = await collect(await connection.channel(), name, 1, "10m", 1)
            assert [first[0][0], last[0][0], numeric[0][0], by_time[0][0], by_interval[0][0]] == [0, 5, 2, 0, 0]
            assert isinstance(first[0][0], int)

    run(scenario())


def test_no_ack_consumer_is_refused_with_540(amqp_url, unique, cleanup):
    name = cleanup.queue(amqp_url, unique("stream"))

    async def scenario():
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel()
            await declare(channel, name)
            await channel.set_qos(prefetch_count=5)
            queue = await channel.get_queue(name, ensure=False)

            async def ignore(message) -> None:
                pass

            with pytest.raises(aiormq.exceptions.ConnectionClosed) as err:
                await asyncio.wait_for(queue.consume(ignore, no_ack=True), WAIT)
                await asyncio.wait_for(connection.channel(), WAIT)  # surfaces the close if consume raced it
            assert "540" in str(err.value) or "NOT_IMPLEMENTED" in str(err.value)

    run(scenario())


def test_tracked_consumer_resumes_after_reconnect(leveret_broker):
    """leveret only: server-side offset tracking is an extension."""
    amqp_url = leveret_broker.url
    name = "tracked-stream"
    tracking = {"x-stream-automatic-offset-tracking": True}

    async def scenario():
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel(publisher_confirms=True)
            await declare(channel, name)
            for i in range(10):
                await channel.default_exchange.publish(aio_pika.Message(b"m%d" % i), routing_key=name)
        async with await aio_pika.connect(amqp_url) as connection:
            got = await collect(await connection.channel(), name, 5, "first", 1, tag="orders", extra=tracking)
            assert [o for o, _ in got] == [0, 1, 2, 3, 4]  # 0..3 acked
        async with await aio_pika.connect(amqp_url) as connection:
            again = await collect(await connection.channel(), name, 2, "first", 1, tag="orders", extra=tracking)
            assert [o for o, _ in again] == [4, 5]

    run(scenario())
