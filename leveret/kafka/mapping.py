"""One record, two protocols: a Kafka record as a stream message (exchange, routing key, AMQP properties, body)
and back. docs/kafka.md has the table; in short:

- value <-> body (a null value is stored as an empty body and reads back as empty: streams have no tombstones);
- key <-> routing key when the key is non-empty UTF-8 of at most 255 bytes; any other key is kept exactly in
  the header `x-kafka-key` (the routing key is then empty). An empty routing key reads back as a null key;
- timestamp (ms) <-> the AMQP `timestamp` property (seconds) plus the header `timestamp_in_ms` (RabbitMQ's own
  name for the exact time); a message without either gets the time it was appended;
- Kafka headers <-> AMQP headers, values as long strings (a null value is a void field); an AMQP header of
  another type reads as its text (numbers, booleans) and does not come back as that type;
- AMQP properties other than headers and timestamp <-> Kafka headers named `amqp.<property>` (text values),
  so a record produced with `amqp.content_type: text/plain` has that content type over AMQP.

The exchange stored with a produced record is the topic's name, as if the record had been published to the
topic's exchange.
"""

from __future__ import annotations

import struct
from typing import Any

from leveret.amqp.properties import FIELDS, BasicProperties
from leveret.kafka.records import Record

KEY_HEADER = "x-kafka-key"
TIMESTAMP_HEADER = "timestamp_in_ms"
PROPERTY_PREFIX = "amqp."
_SPECIAL = frozenset((KEY_HEADER, TIMESTAMP_HEADER))
_PROPERTY_NAMES = tuple(name for name in FIELDS if name not in ("headers", "timestamp"))
_INT_PROPERTIES = frozenset(("delivery_mode", "priority"))


def routing_key_for(key: bytes | None) -> tuple[str, bytes | None]:
    """The routing key a record's key is stored under, and the key bytes that need the header (or None)."""
    if not key:
        return "", None  # null and empty keys alike: an empty routing key reads back as a null key
    if len(key) <= 255:
        try:
            return key.decode("utf-8"), None
        except UnicodeDecodeError:
            pass
    return "", key


# The properties of a record without headers, written directly (most records; the general path below encodes
# through BasicProperties): flags (headers, timestamp), a one-entry table {timestamp_in_ms: long}, timestamp.
_PLAIN_PREFIX = bytes.fromhex("2040" "00000019" "0f") + TIMESTAMP_HEADER.encode() + b"l"
_PLAIN_VALUES = struct.Struct(">qQ")


def properties_for(record: Record) -> tuple[str, bytes]:
    """(routing key, raw AMQP properties) for a produced record."""
    routing_key, key_bytes = routing_key_for(record.key)
    if not record.headers and key_bytes is None and record.timestamp >= 0:
        timestamp = record.timestamp
        return routing_key, _PLAIN_PREFIX + _PLAIN_VALUES.pack(timestamp, timestamp // 1000)
    headers: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    for name, value in record.headers:
        if name.startswith(PROPERTY_PREFIX) and name[len(PROPERTY_PREFIX):] in _PROPERTY_NAMES and value is not None:
            prop = name[len(PROPERTY_PREFIX):]
            text = value.decode("utf-8", "replace")
            if prop in _INT_PROPERTIES:
                if text.isdigit() and int(text) < 256:
                    properties[prop] = int(text)
                    continue
            elif len(value) <= 255:
                properties[prop] = text
                continue
        headers[name] = _header_value(value)
    if key_bytes is not None:
        headers[KEY_HEADER] = key_bytes
    timestamp = record.timestamp
    headers[TIMESTAMP_HEADER] = timestamp
    return routing_key, BasicProperties(headers=headers, timestamp=max(timestamp, 0) // 1000, **properties).raw


def _header_value(value: bytes | None) -> str | bytes | None:
    """A long string (field type S) when the bytes are UTF-8, as AMQP clients expect; else a byte array."""
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value


def _header_bytes(value: Any) -> bytes | None:
    if value is None or type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return str(value).encode()


class RecordView:
    """Stored property bytes read as a Kafka record's key, timestamp and headers; remembers recent answers
    (records produced together often share their property bytes)."""

    def __init__(self, limit: int = 4096) -> None:
        self._cache: dict[bytes, tuple[bytes | None, int | None, list[tuple[str, bytes | None]]]] = {}
        self._limit = limit

    def read(self, props_raw: bytes) -> tuple[bytes | None, int | None, list[tuple[str, bytes | None]]]:
        """(key from the header or None, timestamp in ms or None, Kafka headers) of these property bytes."""
        hit = self._cache.get(props_raw)
        if hit is not None:
            return hit
        props = BasicProperties.from_raw(props_raw)
        key = None
        timestamp = None
        out: list[tuple[str, bytes | None]] = []
        amqp_headers = props.headers
        if amqp_headers:
            for name, value in amqp_headers.items():
                if name in _SPECIAL:
                    if name == KEY_HEADER:
                        key = _header_bytes(value)
                    elif isinstance(value, int):
                        timestamp = int(value)
                    continue
                out.append((name, _header_bytes(value)))
        if timestamp is None and props.timestamp is not None:
            timestamp = int(props.timestamp) * 1000
        for name in _PROPERTY_NAMES:
            value = getattr(props, name)
            if value is not None:
                out.append((PROPERTY_PREFIX + name, str(value).encode()))
        answer = (key, timestamp, out)
        if len(self._cache) >= self._limit:
            self._cache.clear()
        self._cache[props_raw] = answer
        return answer
