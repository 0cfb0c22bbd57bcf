"""Method frames and content headers with field tables the fuzzer encoded itself.

pika's codec chooses the tags of the tables it encodes, so the methods that carry a table (declares,
binds, unbinds) and the content header are written here from typed values (see fieldvalues.py): the
broker receives exactly the tags the fuzzer generated. Layouts are the AMQP 0-9-1 spec's.
"""

from __future__ import annotations

import struct

from fieldvalues import decode_table, encode_table


def _short(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">B", len(raw)) + raw


def _bits(*flags: bool) -> bytes:
    return struct.pack(">B", sum(1 << i for i, flag in enumerate(flags) if flag))


def exchange_declare(name: str, kind: str, arguments=(), passive=False, durable=False, auto_delete=False,
                     internal=False) -> bytes:
    return (struct.pack(">HHH", 40, 10, 0) + _short(name) + _short(kind)
            + _bits(passive, durable, auto_delete, internal, False) + encode_table(arguments))


def queue_declare(name: str, arguments=(), passive=False, durable=False, exclusive=False,
                  auto_delete=False) -> bytes:
    return (struct.pack(">HHH", 50, 10, 0) + _short(name) + _bits(passive, durable, exclusive, auto_delete, False)
            + encode_table(arguments))


def queue_bind(queue: str, exchange: str, routing_key: str, arguments=()) -> bytes:
    return (struct.pack(">HHH", 50, 20, 0) + _short(queue) + _short(exchange) + _short(routing_key)
            + _bits(False) + encode_table(arguments))


def queue_unbind(queue: str, exchange: str, routing_key: str, arguments=()) -> bytes:
    return (struct.pack(">HHH", 50, 50, 0) + _short(queue) + _short(exchange) + _short(routing_key)
            + encode_table(arguments))


def exchange_bind(destination: str, source: str, routing_key: str, arguments=()) -> bytes:
    return (struct.pack(">HHH", 40, 30, 0) + _short(destination) + _short(source) + _short(routing_key)
            + _bits(False) + encode_table(arguments))


def exchange_unbind(destination: str, source: str, routing_key: str, arguments=()) -> bytes:
    return (struct.pack(">HHH", 40, 40, 0) + _short(destination) + _short(source) + _short(routing_key)
            + _bits(False) + encode_table(arguments))


def basic_consume(queue: str, consumer_tag: str, no_ack=False, exclusive=False, arguments=()) -> bytes:
    return (struct.pack(">HHH", 60, 20, 0) + _short(queue) + _short(consumer_tag)
            + _bits(False, no_ack, exclusive, False) + encode_table(arguments))


# Property flag bits, highest first, and how each property is encoded.
_PROPERTIES = [
    ("content_type", "s"), ("content_encoding", "s"), ("headers", "F"), ("delivery_mode", "B"),
    ("priority", "B"), ("correlation_id", "s"), ("reply_to", "s"), ("expiration", "s"), ("message_id", "s"),
    ("timestamp", "T"), ("type", "s"), ("user_id", "s"), ("app_id", "s"), ("cluster_id", "s"),
]


def content_header(body_size: int, properties: dict) -> bytes:
    """The content header payload for basic: `properties` by name; headers as [(key, typed), ...]."""
    flags = 0
    fields = b""
    for index, (name, kind) in enumerate(_PROPERTIES):
        if name not in properties:
            continue
        flags |= 1 << (15 - index)
        value = properties[name]
        if kind == "s":
            fields += _short(value)
        elif kind == "F":
            fields += encode_table(value)
        elif kind == "B":
            fields += struct.pack(">B", value)
        else:
            fields += struct.pack(">Q", value)
    return struct.pack(">HHQH", 60, 0, body_size, flags) + fields


def decode_content_header(raw: bytes) -> dict:
    """A content header payload read back: {"body_size": n, property name: value}, headers typed."""
    _class, _weight, body_size, flags = struct.unpack_from(">HHQH", raw)
    offset = 14
    decoded: dict = {"body_size": body_size}
    for index, (name, kind) in enumerate(_PROPERTIES):
        if not flags & (1 << (15 - index)):
            continue
        if kind == "s":
            length = raw[offset]
            decoded[name] = raw[offset + 1:offset + 1 + length].decode(errors="replace")
            offset += 1 + length
        elif kind == "F":
            decoded[name], offset = decode_table(raw, offset)
        elif kind == "B":
            decoded[name] = raw[offset]
            offset += 1
        else:
            (decoded[name],) = struct.unpack_from(">Q", raw, offset)
            offset += 8
    return decoded
