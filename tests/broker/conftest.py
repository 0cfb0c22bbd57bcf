"""Fixtures for broker tests: messages with the codec's real properties and a recording delivery target.

The target fakes the server (what the broker talks to), never the broker itself.
"""

from __future__ import annotations

from typing import Any

import pytest

from leveret.amqp.properties import BasicProperties
from leveret.amqp.stream_offset import delivery_properties
from leveret.broker import Broker, Channel, Message, VHost
from leveret.broker.message import PropertiesCodec
from leveret.clock import ManualClock

# The codec's ways back from stored property bytes, as the server hands them to the broker.
CODEC = PropertiesCodec(BasicProperties.from_raw, delivery_properties)


def make_message(body: bytes | str = b"", routing_key: str = "", exchange: str = "", **props: Any) -> Message:
    """A message as the server hands it to the broker: the codec's properties, still raw until first read."""
    if isinstance(body, str):
        body = body.encode()
    return Message(exchange, routing_key, BasicProperties.from_raw(BasicProperties(**props).raw), body)


class RecordingTarget:
    """Records what the broker asked the server to send."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, int, bool, Message]] = []
        self.cancelled: list[str] = []

    def deliver(self, consumer_tag: str, delivery_tag: int, redelivered: bool, message: Message) -> None:
        self.deliveries.append((consumer_tag, delivery_tag, redelivered, message))

    def deliver_batch(self, consumer_tag: str, deliveries: list) -> None:
        for delivery_tag, redelivered, message in deliveries:
            self.deliver(consumer_tag, delivery_tag, redelivered, message)

    def consumer_cancelled(self, consumer_tag: str) -> None:
        self.cancelled.append(consumer_tag)

    @property
    def bodies(self) -> list[bytes]:
        return [d[3].body for d in self.deliveries]

    @property
    def tags(self) -> list[int]:
        return [d[1] for d in self.deliveries]

    def take(self) -> list[tuple[str, int, bool, Message]]:
        out, self.deliveries = self.deliveries, []
        return out


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def broker(clock: ManualClock) -> Broker:
    return Broker(clock)


@pytest.fixture
def vhost(broker: Broker) -> VHost:
    vh = broker.vhost("/")
    assert vh is not None
    return vh


class Session:
    """One channel plus its recording target, with publish helpers."""

    def __init__(self, vhost: VHost, owner: object = "conn-1") -> None:
        self.vhost = vhost
        self.target = RecordingTarget()
        self.channel = Channel(vhost, self.target, owner)

    def publish(self, routing_key: str, body: bytes | str = b"", exchange: str = "", **props: Any) -> Any:
        return self.channel.publish(exchange, routing_key, make_message(body, routing_key, exchange, **props))

    def consume(self, queue: str, tag: str = "", **kwargs: Any) -> str:
        tag = self.channel.consume(queue, tag, **kwargs)
        self.channel.start_consumer(tag)
        return tag


@pytest.fixture
def session(vhost: VHost) -> Session:
    return Session(vhost)


@pytest.fixture
def make_session(vhost: VHost):
    def make(owner: object = "conn-1") -> Session:
        return Session(vhost, owner)

    return make


@pytest.fixture
def tick(clock: ManualClock, broker: Broker):
    """`tick(seconds)`: move the manual clock and fire every broker timer that became due."""

    def advance(seconds: float) -> None:
        clock.advance(seconds)
        broker.timers.run_due()

    return advance
