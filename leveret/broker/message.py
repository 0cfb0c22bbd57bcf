"""The message as the broker sees it: routing facts, opaque properties and a body.

Properties stay an object owned by the codec (leveret.amqp.properties.BasicProperties); the broker
only reads a few attributes by duck typing (the `Properties` protocol below) and asks for a modified
copy when it must change one (BCC removal, direct reply-to rewriting).
"""

from __future__ import annotations

from typing import Any, Protocol


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
