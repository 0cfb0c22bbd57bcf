"""Events that ConnectionReader.receive_data produces from the client's bytes."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import AMQPChannelError
from .properties import BasicProperties
from .spec import Method


@dataclass(slots=True)
class MethodReceived:
    """A method without content (everything but basic.publish and friends)."""

    channel: int
    method: Method


@dataclass(slots=True)
class ContentReceived:
    """A content-bearing method with its header and whole body, assembled.

    `body` is an independent bytes object (never a view of a read buffer).
    """

    channel: int
    method: Method
    properties: BasicProperties
    body: bytes


@dataclass(slots=True)
class HeartbeatReceived:
    """A heartbeat frame on channel 0."""


@dataclass(slots=True)
class ChannelFailed:
    """A channel-level error found while reading; the connection goes on.

    Reply with channel.close(error.reply_code, error.reply_text, error.class_id,
    error.method_id) on `channel`. Today the only one: a content header declaring a body
    larger than max_body_size (406 PRECONDITION_FAILED); the reader swallows that body.
    """

    channel: int
    error: AMQPChannelError


Event = MethodReceived | ContentReceived | HeartbeatReceived | ChannelFailed
