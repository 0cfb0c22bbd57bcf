"""Helpers for the shovel tests: run a call on an embedded broker's loop, publish a batch, read a queue dry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pika

from leveret.embedded import EmbeddedBroker
from tests.conftest import pika_parameters
from tests.http.api_client import Answer, call

RABBITMQ_API = "http://127.0.0.1:15672"


def rabbit_api(method: str, path: str, body: Any = None) -> Answer:
    """One request to the shared RabbitMQ's management API as guest."""
    return call(RABBITMQ_API, method, path, body)


def on_loop(broker: EmbeddedBroker, fn: Callable[..., Any], *args: Any, timeout: float = 10.0) -> Any:
    """Call `fn(*args)` on the broker's own event loop (where its shovels live) and return its result."""

    async def call() -> Any:
        result = fn(*args)
        return await result if asyncio.iscoroutine(result) else result

    return asyncio.run_coroutine_threadsafe(call(), broker._loop).result(timeout)


def shovel_state(broker: EmbeddedBroker, vhost: str, name: str) -> dict | None:
    rows = on_loop(broker, broker.server.shovels.status, vhost)
    return next((row for row in rows if row["name"] == name), None)


def settled(broker: EmbeddedBroker, moved: int, timeout: float = 20.0) -> None:
    """Wait until the broker's shovels counted `moved` messages. A destination delivers a message to its
    consumers before the fsync that confirms it (as RabbitMQ does), and a shovel counts a message only once
    confirmed (on-confirm), so a consumer at the destination can see every message before the count does."""
    wait_for(lambda: on_loop(broker, broker.server.shovels.totals)["moved"] >= moved, timeout,
             f"the shovels to count {moved} messages confirmed")


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll an observation that has no event to await (a shovel's state in another broker), bounded."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def publish(url: str, queue: str, count: int, *, body: Callable[[int], bytes] = lambda i: str(i).encode(),
            declare: bool = True, headers: dict | None = None) -> None:
    """`count` persistent messages to a LEVERET `queue` (declared durable first), all routed when this returns
    (leveret answers a passive declare after the publishes before it on the same channel). Not for RabbitMQ:
    its queue process answers a declare's count before publishes still in its mailbox; use
    `publish_confirmed` there."""
    connection = pika.BlockingConnection(pika_parameters(url))
    try:
        channel = connection.channel()
        if declare:
            channel.queue_declare(queue, durable=True)
        for i in range(count):
            channel.basic_publish("", queue, body(i), pika.BasicProperties(delivery_mode=2, headers=headers))
        if queue:
            channel.queue_declare(queue, passive=True)
    finally:
        connection.close()


def publish_confirmed(url: str, queue: str, bodies: list[bytes], **arguments: Any) -> None:
    """Persistent messages to a durable `queue` (declared with `arguments`) with publisher confirms: each is
    in the queue when its confirm arrives. On RabbitMQ a passive declare after unconfirmed publishes can
    count fewer (its queue process answers the count ahead of deliveries still in its mailbox)."""
    connection = pika.BlockingConnection(pika_parameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare(queue, durable=True, arguments=arguments or None)
        for body in bodies:
            channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))
    finally:
        connection.close()


def drain(url: str, queue: str, expected: int, timeout: float = 30.0) -> list[tuple[pika.BasicProperties, bytes]]:
    """Consume `expected` messages from `queue` (acking them), then whatever else arrives within 0.2 s."""
    connection = pika.BlockingConnection(pika_parameters(url))
    got: list[tuple[pika.BasicProperties, bytes]] = []
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1000)
        deadline = time.monotonic() + timeout
        for method, properties, body in channel.consume(queue, inactivity_timeout=0.2):
            if method is None:
                if len(got) >= expected or time.monotonic() > deadline:
                    break
                continue
            got.append((properties, body))
            channel.basic_ack(method.delivery_tag)
        channel.cancel()
    finally:
        connection.close()
    return got


def queue_length(url: str, queue: str, missing: int | None = None) -> int:
    """The queue's ready messages; `missing` when there is no such queue (None: the 404 is raised)."""
    connection = pika.BlockingConnection(pika_parameters(url))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    except pika.exceptions.ChannelClosedByBroker as exc:
        if missing is None or exc.reply_code != 404:
            raise
        return missing
    finally:
        connection.close()
