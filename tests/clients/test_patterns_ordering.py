"""Single active consumer and the consistent-hash exchange through aio-pika: per-key ordering with parallelism.

The pattern: an x-consistent-hash exchange spreads keys over N queues, each declared with
x-single-active-consumer, each with several competing consumers. Every key lands in one queue, one
consumer of that queue processes it at a time, the others stand by and take over in order. Validated
against RabbitMQ 3.10 with the rabbitmq_consistent_hash_exchange plugin enabled.
"""

from __future__ import annotations

import asyncio

import aio_pika
import aio_pika.exceptions
import pytest

WAIT = 5.0


def run(coroutine, timeout: float = 90.0):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


async def cleanup_async(url: str, queues: list[str], exchanges: list[str]) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        for name in queues:
            await channel.queue_delete(name)
        for name in exchanges:
            await channel.exchange_delete(name)


def test_single_active_consumer_delivers_to_one_and_hands_over_in_order(amqp_url, unique):
    name = unique("sac")

    async def scenario():
        connections = [await aio_pika.connect(amqp_url) for _ in range(3)]
        try:
            channels = [await c.channel() for c in connections]
            queue = await channels[0].declare_queue(name, arguments={"x-single-active-consumer": True})
            queues = [await ch.get_queue(name, ensure=False) for ch in channels]
            inboxes = [asyncio.Queue() for _ in range(3)]
            tags = []
            for q, inbox in zip(queues, inboxes):
                tags.append(await q.consume(inbox.put, no_ack=True))
            declared = await channels[0].declare_queue(name, passive=True)
            assert declared.declaration_result.consumer_count == 3
            for i in range(3):
                await channels[0].default_exchange.publish(aio_pika.Message(f"a{i}".encode()), routing_key=name)
            first = [(await asyncio.wait_for(inboxes[0].get(), WAIT)).body for _ in range(3)]
            await queues[0].cancel(tags[0])
            for i in range(2):
                await channels[0].default_exchange.publish(aio_pika.Message(f"b{i}".encode()), routing_key=name)
            second = [(await asyncio.wait_for(inboxes[1].get(), WAIT)).body for _ in range(2)]
            await connections[1].close()  # the next in registration order takes over
            await channels[0].default_exchange.publish(aio_pika.Message(b"c0"), routing_key=name)
            third = (await asyncio.wait_for(inboxes[2].get(), WAIT)).body
            assert inboxes[1].empty() and inboxes[0].empty()
            await queue.delete(if_unused=False, if_empty=False)
            return first, second, third
        finally:
            for connection in connections:
                await connection.close()

    assert run(scenario()) == ([b"a0", b"a1", b"a2"], [b"b0", b"b1"], b"c0")


def test_consistent_hash_routes_each_key_to_exactly_one_queue(amqp_url, unique):
    exchange_name = unique("hash")
    queue_names = [unique(f"part{i}") for i in range(3)]

    async def scenario():
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(exchange_name, "x-consistent-hash")
            queues = [await channel.declare_queue(n) for n in queue_names]
            for q in queues:
                await q.bind(exchange, routing_key="10")
            for rep in range(3):
                for key in range(30):
                    await exchange.publish(aio_pika.Message(f"{key}".encode()), routing_key=f"key-{key}")
            owners: dict[bytes, set[int]] = {}
            total = 0
            for i, q in enumerate(queues):
                while (message := await q.get(no_ack=True, fail=False, timeout=WAIT)) is not None:
                    owners.setdefault(message.body, set()).add(i)
                    total += 1
            return total, owners

    try:
        total, owners = run(scenario())
    finally:
        run(cleanup_async(amqp_url, queue_names, [exchange_name]))
    assert total == 90
    assert all(len(where) == 1 for where in owners.values()) and len(owners) == 30
    assert len({next(iter(w)) for w in owners.values()}) > 1  # spread over more than one queue


def test_per_key_order_holds_across_sac_partitions_with_competing_consumers(amqp_url, unique):
    """20 keys x 500 messages, 4 SAC partitions, 2 consumers each; the first of each hands over midway."""
    keys, per_key, partitions = 20, 500, 4
    exchange_name = unique("orders")
    queue_names = [unique(f"orders{i}") for i in range(partitions)]

    async def consume(url: str, queue_name: str, log: list, stop_after: int | None, started: asyncio.Event,
                      settled: asyncio.Event):
        connection = await aio_pika.connect(url)
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=50)
            queue = await channel.get_queue(queue_name, ensure=False)
            handled = 0
            # No `async with`: leaving it would basic.cancel first, and RabbitMQ activates the next
            # consumer at the cancel while this channel still holds unacked messages, which come back
            # only when the channel closes - behind newer ones. Closing the connection directly
            # requeues them and hands over in one step, so order holds.
            messages = queue.iterator()
            await messages.consume()
            started.set()
            async for message in messages:
                # ack before recording: a message handled twice (handover) is recorded once
                await message.ack()
                key, seq = message.body.decode().split(":")
                log.append((key, int(seq), queue_name))
                if len(log) >= keys * per_key:
                    settled.set()
                handled += 1
                if stop_after is not None and handled >= stop_after:
                    break
        except Exception:
            settled.set()  # wake the scenario, which reports this task's exception
            raise
        finally:
            await connection.close()

    async def scenario():
        log: list[tuple[str, int, str]] = []
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel(publisher_confirms=False)
            exchange = await channel.declare_exchange(exchange_name, "x-consistent-hash")
            for name in queue_names:
                queue = await channel.declare_queue(name, arguments={"x-single-active-consumer": True})
                await queue.bind(exchange, routing_key="10")
            tasks = []
            settled = asyncio.Event()  # every message logged, or a consumer failed
            # registration order decides who is active: the stopping consumers register first
            for stop_after in (300, None):
                for name in queue_names:
                    started = asyncio.Event()
                    tasks.append(asyncio.create_task(consume(amqp_url, name, log, stop_after, started, settled)))
                    await asyncio.wait_for(started.wait(), WAIT)
            for seq in range(per_key):
                for key in range(keys):
                    await exchange.publish(aio_pika.Message(f"k{key}:{seq}".encode()), routing_key=f"k{key}")
            await settled.wait()  # the overall run() timeout bounds it
            assert not any(t.done() and t.exception() for t in tasks), [t.exception() for t in tasks if t.done()]
            assert len(log) >= keys * per_key
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return log

    try:
        log = run(scenario(), timeout=120)
    finally:
        run(cleanup_async(amqp_url, queue_names, [exchange_name]))
    by_key: dict[str, list[int]] = {}
    queue_of: dict[str, set[str]] = {}
    for key, seq, queue_name in log:
        by_key.setdefault(key, []).append(seq)
        queue_of.setdefault(key, set()).add(queue_name)
    assert len(by_key) == keys
    for key, seqs in by_key.items():
        assert seqs == list(range(per_key)), f"{key} out of order"
        assert len(queue_of[key]) == 1
    assert len({q for qs in queue_of.values() for q in qs}) > 1


def test_consistent_hash_binding_key_must_be_an_integer(amqp_url, unique):
    exchange_name = unique("hash")
    queue_name = unique("q")

    async def scenario():
        async with await aio_pika.connect(amqp_url) as connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(exchange_name, "x-consistent-hash")
            queue = await channel.declare_queue(queue_name)
            with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed) as e:
                await queue.bind(exchange, routing_key="heavy")
            return str(e.value)

    try:
        text = run(scenario())
    finally:
        run(cleanup_async(amqp_url, [queue_name], [exchange_name]))
    assert 'The binding key must be an integer: <<\\"heavy\\">>' in text or 'The binding key must be an integer: <<"heavy">>' in text
