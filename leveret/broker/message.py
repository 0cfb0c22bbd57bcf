"""The message as the broker sees it: routing facts, opaque properties and a body.

Properties stay an object owned by the codec (leveret.amqp.properties.BasicProperties); the broker
only reads a few attributes by duck typing (the `Properties` protocol below) and asks for a modified
copy when it must change one (BCC removal, direct reply-to rewriting).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol

from leveret.store.api import StoredBatch, StoredMessage


class Properties(Protocol):
    """What the broker needs from a content header's properties."""

    headers: dict[str, Any] | None
    delivery_mode: int | None
    priority: int | None
    expiration: str | None
    reply_to: str | None
    user_id: str | None

    @property
    def routing_plain(self) -> bool:
        """True when headers, reply_to, expiration and user_id are all absent."""

    @property
    def raw(self) -> bytes:
        """The encoded property bytes, re-sent unchanged on delivery."""

    def replace(self, **changes: Any) -> "Properties":
        """A copy with the given attributes changed (and `raw` re-encoded)."""


class Message:
    """One published message; immutable by convention (copies are made, never edits)."""

    __slots__ = ("exchange", "routing_key", "properties", "body")

    def __init__(self, exchange: str, routing_key: str, properties: Properties, body: bytes) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.properties = properties
        self.body = body

    @property
    def persistent(self) -> bool:
        return self.properties.delivery_mode == 2

    @property
    def body_size(self) -> int:
        return len(self.body)

    @property
    def headers(self) -> dict[str, Any] | None:
        return self.properties.headers

    def with_properties(self, **changes: Any) -> "Message":
        """A copy of this message whose properties have `changes` applied."""
        return Message(self.exchange, self.routing_key, self.properties.replace(**changes), self.body)

    def __repr__(self) -> str:
        return f"Message({self.exchange!r}, {self.routing_key!r}, {self.body_size} bytes)"


class RawProperties:
    """Properties known only as raw bytes: what an in-memory broker built without a codec revives."""

    __slots__ = ("raw",)
    headers = delivery_mode = priority = expiration = reply_to = user_id = None
    routing_plain = True

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def replace(self, **changes: Any) -> "RawProperties":
        raise TypeError("raw properties cannot be changed without the codec")


class PropertiesCodec(NamedTuple):
    """The codec's two ways from stored property bytes back to properties, given to the broker by whoever
    builds it (the broker never imports the codec): `from_raw` for messages read back from a store,
    `with_stream_offset` for a stream delivery (the stored bytes plus its x-stream-offset header), and
    `batch_messages` for the messages of a batch a stream keeps whole (a Kafka record batch: the Kafka side's
    reader, leveret/kafka/stored.py; without one, stream consumers skip such batches)."""

    from_raw: Callable[[bytes], Properties]
    with_stream_offset: Callable[[bytes, int], Properties]
    batch_messages: Callable[[StoredBatch], list[StoredMessage | None]] | None = None
