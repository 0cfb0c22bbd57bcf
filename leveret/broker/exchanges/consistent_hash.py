"""Consistent-hash exchanges (`x-consistent-hash`, as RabbitMQ's bundled plugin).

The binding key is a weight (a positive integer string). A message is hashed on its routing key, or on
the header named by the exchange argument `hash-header`, or on the property named by `hash-property`
(message_id, correlation_id or timestamp); it goes to exactly one destination, the owner of the first
ring point at or after that hash.

Beyond RabbitMQ, whose ring is rebuilt in binding order at boot (so a key can move after a restart):
every ring point is derived only from the binding itself (destination kind and name, binding key,
point index) through BLAKE2b, never Python's salted `hash()`, so the key-to-destination mapping is the
same in every process while the bindings are the same. A destination owns `POINTS_PER_WEIGHT * weight`
points, which keeps each share within a few percent of its weight's proportion.

A message whose hash header or property is missing is hashed as the empty string (RabbitMQ routes it
too, on an undefined value).

Errors, as RabbitMQ 3.10 sends them (406): "hash-header and hash-property are mutually exclusive",
"Unsupported property: foo", "The binding key must be an integer: <<\"abc\">>", "The binding key must be
greater than 0".
"""

from __future__ import annotations

import bisect
import hashlib
import re
from typing import Any, Iterable, Mapping

from leveret.broker.arguments import as_text, erlang_binary, field_type_name, value_text
from leveret.broker.errors import PreconditionFailed
from leveret.broker.exchanges.base import Arguments, Exchange

POINTS_PER_WEIGHT = 64
HASH_PROPERTIES = ("message_id", "correlation_id", "timestamp")


def stable_hash(text: str) -> int:
    """A 64-bit hash that is the same in every process and on every machine."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "big")


def _destination_id(destination: Any) -> str:
    kind = "exchange" if isinstance(destination, Exchange) else "queue"
    return f"{kind}:{destination.name}"


# The plugin reads a weight with list_to_integer: an optional sign and ASCII digits, nothing around them.
_WEIGHT = re.compile(r"[+-]?[0-9]+")


def _weight(routing_key: str) -> int:
    if not _WEIGHT.fullmatch(routing_key):
        raise PreconditionFailed(f"The binding key must be an integer: {erlang_binary(routing_key)}")
    weight = int(routing_key)
    if weight <= 0:
        raise PreconditionFailed("The binding key must be greater than 0")
    return weight


_ABSENT = object()


def header_key(value: Any) -> str:
    """The text a hash-header value is hashed on: its type and its value, as the plugin hashes the
    {Type, Value} pair rabbit_misc:table_lookup returns (I 5 and l 5, S "a" and x "a" are different keys);
    an absent header is its own key (the plugin hashes `undefined`)."""
    if value is _ABSENT:
        return ""
    return f"{field_type_name(value)}\x00{value_text(as_text(value))}"


class ConsistentHashExchange(Exchange):
    """Routes each message to one destination picked by a hash ring weighted by binding keys."""

    type_name = "x-consistent-hash"
    needs_message = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._points: list[int] = []
        self._owners: list[Any] = []
        header = self.arguments.get("hash-header")
        prop = self.arguments.get("hash-property")
        self.hash_header: str | None = as_text(header) if header is not None else None
        self.hash_property: str | None = as_text(prop) if prop is not None else None

    @classmethod
    def validate_arguments(cls, arguments: Arguments) -> None:
        if "hash-header" in arguments and "hash-property" in arguments:
            raise PreconditionFailed("hash-header and hash-property are mutually exclusive")
        if "hash-property" in arguments:
            prop = as_text(arguments["hash-property"])
            if prop not in HASH_PROPERTIES:
                raise PreconditionFailed(f"Unsupported property: {prop}")

    def validate_binding(self, routing_key: str, arguments: Arguments) -> None:
        _weight(routing_key)

    def _rebuild(self) -> None:
        ring: list[tuple[int, str, Any]] = []
        for destination, routing_key, _ in self.bindings():
            ident = _destination_id(destination)
            for index in range(_weight(routing_key) * POINTS_PER_WEIGHT):
                # ties (astronomically rare) are broken by identity text, never by bind order
                ring.append((stable_hash(f"{ident}\x00{routing_key}\x00{index}"), ident, destination))
        ring.sort(key=lambda point: (point[0], point[1]))
        self._points = [point[0] for point in ring]
        self._owners = [point[2] for point in ring]

    def _add(self, destination: Any, routing_key: str, arguments: Arguments) -> None:
        self._rebuild()

    def _remove(self, destination: Any, routing_key: str, arguments: Arguments) -> None:
        self._rebuild()

    def hash_key(self, routing_key: str, properties: Any) -> str:
        """The text a message is hashed on (routing key, header or property)."""
        if self.hash_header is not None:
            return header_key((properties.headers or {}).get(self.hash_header, _ABSENT))
        if self.hash_property is not None:
            value = getattr(properties, self.hash_property, None)
            return "" if value is None else value_text(as_text(value))
        return routing_key

    def destination_for(self, key: str) -> Any | None:
        """The destination owning `key` on the ring (None without bindings)."""
        points = self._points
        if not points:
            return None
        index = bisect.bisect_left(points, stable_hash(key))
        return self._owners[index if index < len(points) else 0]

    def route_message(self, routing_keys: list[str], message: Any) -> Iterable[Any]:
        # One destination per message, CC and BCC keys or not: the plugin hashes the list of routing keys
        # (value_to_hash(undefined, ...) in rabbit_exchange_type_consistent_hash.erl).
        destination = self.destination_for(self.hash_key("\x00".join(routing_keys), message.properties))
        return () if destination is None else (destination,)

    def route(self, routing_key: str, headers: Mapping[str, Any] | None) -> Iterable[Any]:
        # only reached without a message at hand: hash the routing key or the header
        if self.hash_header is not None:
            routing_key = header_key((headers or {}).get(self.hash_header, _ABSENT))
        destination = self.destination_for(routing_key)
        return () if destination is None else (destination,)
