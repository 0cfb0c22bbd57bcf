"""Scenarios through aio-pika (over aiormq), the asyncio client most Python services use.

Tests are synchronous functions that run one coroutine with `asyncio.run`; every await that
depends on the broker is wrapped in `asyncio.wait_for`, so a silent broker fails fast.
"""

from __future__ import annotations

import asyncio

import aio_pika
import aiormq.exceptions
import pytest

WAIT = 5.0


def run(coroutine, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


async def take(iterator, n: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """The next `n` messages from a queue iterator, each within WAIT seconds."""
    return [await asyncio.wait_for(iterator.__anext__(), WAIT) for _ in range(n)]


async def drain(queue) -> list[bytes]:
    bodies = []
    while (message := await queue.get(no_ack=True, fail=False, timeout=WAIT)) is not None:
        bodies.append(message.body)
    return bodies


def test_rpc_over_direct_reply_to(amqp_url, unique):
    async def scenario():
        async with await aio_pika.connect(amqp_url) as server_conn, await aio_pika.connect(amqp_url) as client_conn:
            server = await server_conn.channel()
            requests = await server.declare_queue(unique("rpc"), auto_delete=True)

            async def serve(message: aio_pika.abc.AbstractIncomingMessage):
                async with message.process():
                    await server.default_exchange.publish(
                        aio_pika.Message(message.body[::-1], correlation_id=message.correlation_id),
                        routing_key=message.reply_to,
                    )

            await requests.consume(serve)
            client = await client_conn.channel()
            # The pseudo-queue exists for passive declares; consuming from it must be no-ack.
            replies = await client.declare_queue("amq.rabbitmq.reply-to", passive=True)
            answers: asyncio.Queue = asyncio.Queue()
            await replies.consume(answers.put, no_ack=True)
            for i in range(3):
                await client.default_exchange.publish(
                    aio_pika.Message(f"req{i}".encode(), reply_to="amq.rabbitmq.reply-to", correlation_id=str(i)),
                    routing_key=requests.name,
                )
            got = [await asyncio.wait_for(answers.get(), WAIT) for _ in range(3)]
            return [(m.correlation_id, m.body) for m in got]

    assert run(scenario()) == [("0", b"0qer"), ("1", b"1qer"), ("2", b"2qer")]


def test_topic_routing_with_star_and_hash(amqp_url, unique):
    async def scenario():
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel()  # publisher confirms on: publish returns once routed
            exchange = await channel.declare_exchange(unique("logs"), aio_pika.ExchangeType.TOPIC, auto_delete=True)
            errors = await channel.declare_queue(exclusive=True)
            kernel = await channel.declare_queue(exclusive=True)
            await errors.bind(exchange, "*.error")
            await kernel.bind(exchange, "kern.#")
            for key in ("kern.error", "app.error", "kern", "kern.disk.warn", "app.disk.error", "error"):
                await exchange.publish(aio_pika.Message(key.encode()), routing_key=key)
            return await drain(errors), await drain(kernel)

    errors, kernel = run(scenario())
    assert errors == [b"kern.error", b"app.error"]
    assert kernel == [b"kern.error", b"kern", b"kern.disk.warn"]


def test_fanout_and_message_properties_survive_the_trip(amqp_url, unique):
    async def scenario():
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(unique("fan"), aio_pika.ExchangeType.FANOUT, auto_delete=True)
            queues = [await channel.declare_queue(exclusive=True) for _ in range(3)]
            for queue in queues:
                await queue.bind(exchange)
            await exchange.publish(
                aio_pika.Message(
                    b"{}", content_type="application/json", content_encoding="utf-8", headers={"n": 1, "s": "x"},
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT, priority=5, correlation_id="c", reply_to="r",
                    expiration=60, message_id="m", type="t", user_id="guest", app_id="a",
                ),
                routing_key="",
            )
            out = []
            for queue in queues:
                message = await queue.get(no_ack=True, timeout=WAIT)
                out.append((message.body, message.content_type, message.content_encoding, message.headers,
                            message.delivery_mode, message.priority, message.correlation_id, message.reply_to,
                            message.expiration, message.message_id, message.type, message.user_id, message.app_id))
            return out

    out = run(scenario())
    expected = (b"{}", "application/json", "utf-8", {"n": 1, "s": "x"}, aio_pika.DeliveryMode.PERSISTENT, 5,
                "c", "r", 60, "m", "t", "guest", "a")
    assert out == [expected] * 3


def test_unacked_messages_go_back_in_order_with_redelivered_set_when_a_consumer_dies(amqp_url, unique, cleanup):
    name = cleanup.queue(amqp_url, unique("crash"))

    async def scenario():
        async with await aio_pika.connect(amqp_url) as survivor:
            channel = await survivor.channel()
            queue = await channel.declare_queue(name)
            for i in range(4):
                await channel.default_exchange.publish(aio_pika.Message(f"m{i}".encode()), routing_key=name)
            doomed = await aio_pika.connect(amqp_url)
            doomed_queue = await (await doomed.channel()).get_queue(name)
            async with doomed_queue.iterator() as it:
                first = await take(it, 4)
            await doomed.close()  # closes without acking: all four must be requeued
            async with queue.iterator() as it:
                second = await take(it, 4)
                for message in second:
                    await message.ack()
            return [(m.body, m.redelivered) for m in first], [(m.body, m.redelivered) for m in second]

    first, second = run(scenario())
    assert first == [(f"m{i}".encode(), False) for i in range(4)]
    assert second == [(f"m{i}".encode(), True) for i in range(4)]


def test_transaction_commit_publishes_and_rollback_discards(amqp_url):
    async def scenario():
        async with await aio_pika.connect(amqp_url) as connection:
            observer = await connection.channel()
            queue = await observer.declare_queue(exclusive=True)
            channel = await connection.channel(publisher_confirms=False)
            tx = channel.transaction()
            await tx.select()
            await channel.default_exchange.publish(aio_pika.Message(b"kept"), routing_key=queue.name)
            before = (await observer.declare_queue(queue.name, passive=True)).declaration_result.message_count
            await tx.commit()
            await channel.default_exchange.publish(aio_pika.Message(b"gone"), routing_key=queue.name)
            await tx.rollback()
            return before, await drain(queue)

    assert run(scenario()) == (0, [b"kept"])


def test_reject_and_nack_with_and_without_requeue(amqp_url):
    async def scenario():
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(exclusive=True)
            for body in (b"a", b"b"):
                await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue.name)
            seen = []
            message = await queue.get(timeout=WAIT)
            await message.reject(requeue=True)
            message = await queue.get(timeout=WAIT)
            seen.append((message.body, message.redelivered))
            await message.nack(requeue=False)
            message = await queue.get(timeout=WAIT)
            seen.append((message.body, message.redelivered))
            await message.reject(requeue=False)
            seen.append(await queue.get(fail=False, timeout=WAIT))
            return seen

    assert run(scenario()) == [(b"a", True), (b"b", False), None]


def test_exclusive_queue_is_locked_for_another_connection(amqp_url):
    async def scenario():
        async with await aio_pika.connect(amqp_url) as owner, await aio_pika.connect(amqp_url) as other:
            queue = await (await owner.channel()).declare_queue(exclusive=True)
            with pytest.raises(aiormq.exceptions.ChannelLockedResource) as info:
                await (await other.channel()).declare_queue(queue.name, passive=True)
            # Only the channel died: the connection still opens channels and declares.
            await (await other.channel()).declare_queue(exclusive=True)
            return queue.name, info.value.args[0]

    name, text = run(scenario())
    assert text.startswith(f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}' in vhost '/'")


def test_passive_declare_of_a_missing_exchange_raises_not_found(amqp_url, unique):
    name = unique("nope")

    async def scenario():
        async with await aio_pika.connect(amqp_url) as connection:
            with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity) as info:
                await (await connection.channel()).declare_exchange(name, passive=True)
            assert not connection.is_closed
            return info.value.args[0]

    assert run(scenario()) == f"NOT_FOUND - no exchange '{name}' in vhost '/'"


def test_wrong_password_is_refused(amqp_url):
    async def scenario():
        with pytest.raises(aiormq.exceptions.ProbableAuthenticationError) as info:
            await aio_pika.connect(amqp_url.replace("guest:guest@", "guest:nope@"))
        return info.value.args[0]

    assert run(scenario()) == (
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.")


def test_qos_prefetch_caps_in_flight_messages_per_consumer(amqp_url):
    async def scenario():
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=3)
            queue = await channel.declare_queue(exclusive=True)
            for i in range(10):
                await channel.default_exchange.publish(aio_pika.Message(bytes([i])), routing_key=queue.name)
            async with queue.iterator() as it:
                held = await take(it, 3)
                ready = (await channel.declare_queue(queue.name, passive=True)).declaration_result.message_count
                await held[-1].ack(multiple=True)
                more = await take(it, 3)
                ready_after = (await channel.declare_queue(queue.name, passive=True)).declaration_result.message_count
                for message in more:
                    await message.ack()
            return ready, ready_after, [m.body[0] for m in held + more]

    assert run(scenario()) == (7, 4, [0, 1, 2, 3, 4, 5])
