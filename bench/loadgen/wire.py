"""Minimal AMQP 0-9-1 encoder/decoder for the load generator.

Deliberately independent of ``leveret.amqp``: a benchmark that shares the
codec of the broker under test could hide a bug in both.  Only the methods the
generator needs are here, written with precompiled ``struct.Struct`` objects so
that the hot paths (publish templates, delivery parsing) cost one
``pack_into``/``unpack_from`` per field they touch.
"""

from __future__ import annotations

import struct

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = 0xCE
FRAME_END_BYTE = b"\xce"

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8

# type, channel, payload size: 7 bytes before every payload; 1 frame-end after.
FRAME_HDR = struct.Struct(">BHI")
METHOD_ID = struct.Struct(">HH")
U8 = struct.Struct(">B")
U16 = struct.Struct(">H")
U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")
I64 = struct.Struct(">q")
CONTENT_HDR = struct.Struct(">HHQH")  # class, weight, body size, property flags

# The first 16 bytes of every generated body: sequence number (with the
# publisher id in its top 24 bits) and a CLOCK_MONOTONIC timestamp in ns.
# CLOCK_MONOTONIC is system wide on Linux, so a consumer in another process
# can subtract it.  16 bytes is also the smallest body size scenario (a) uses.
BODY_STAMP = struct.Struct(">Qq")
STAMP_SIZE = BODY_STAMP.size
PUBLISHER_SHIFT = 40
SEQ_MASK = (1 << PUBLISHER_SHIFT) - 1

# (class id, method id) pairs the generator sends or expects.
CONNECTION_START = (10, 10)
CONNECTION_START_OK = (10, 11)
CONNECTION_TUNE = (10, 30)
CONNECTION_TUNE_OK = (10, 31)
CONNECTION_OPEN = (10, 40)
CONNECTION_OPEN_OK = (10, 41)
CONNECTION_CLOSE = (10, 50)
CONNECTION_CLOSE_OK = (10, 51)
CONNECTION_BLOCKED = (10, 60)
CONNECTION_UNBLOCKED = (10, 61)
CHANNEL_OPEN = (20, 10)
CHANNEL_OPEN_OK = (20, 11)
CHANNEL_CLOSE = (20, 40)
CHANNEL_CLOSE_OK = (20, 41)
EXCHANGE_DECLARE = (40, 10)
EXCHANGE_DECLARE_OK = (40, 11)
EXCHANGE_DELETE = (40, 20)
EXCHANGE_DELETE_OK = (40, 21)
QUEUE_DECLARE = (50, 10)
QUEUE_DECLARE_OK = (50, 11)
QUEUE_BIND = (50, 20)
QUEUE_BIND_OK = (50, 21)
QUEUE_PURGE = (50, 30)
QUEUE_PURGE_OK = (50, 31)
QUEUE_DELETE = (50, 40)
QUEUE_DELETE_OK = (50, 41)
BASIC_QOS = (60, 10)
BASIC_QOS_OK = (60, 11)
BASIC_CONSUME = (60, 20)
BASIC_CONSUME_OK = (60, 21)
BASIC_CANCEL = (60, 30)
BASIC_CANCEL_OK = (60, 31)
BASIC_PUBLISH = (60, 40)
BASIC_RETURN = (60, 50)
BASIC_DELIVER = (60, 60)
BASIC_ACK = (60, 80)
BASIC_NACK = (60, 120)
CONFIRM_SELECT = (85, 10)
CONFIRM_SELECT_OK = (85, 11)

# Integer form of (class, method) so the receive loop compares one int.
def method_key(pair: tuple[int, int]) -> int:
    """Pack a (class id, method id) pair into the 32-bit key read off the wire."""
    return (pair[0] << 16) | pair[1]


KEY_DELIVER = method_key(BASIC_DELIVER)
KEY_ACK = method_key(BASIC_ACK)
KEY_NACK = method_key(BASIC_NACK)
KEY_PUBLISH = method_key(BASIC_PUBLISH)


def shortstr(value: str | bytes) -> bytes:
    """Encode an AMQP short string (length octet + bytes)."""
    raw = value.encode() if isinstance(value, str) else value
    if len(raw) > 255:
        raise ValueError("shortstr longer than 255 bytes")
    return U8.pack(len(raw)) + raw


def longstr(value: str | bytes) -> bytes:
    """Encode an AMQP long string (32-bit length + bytes)."""
    raw = value.encode() if isinstance(value, str) else value
    return U32.pack(len(raw)) + raw


def _field_value(value: object) -> bytes:
    # Only the types the generator puts in tables (client properties, x-args).
    if isinstance(value, bool):
        return b"t" + U8.pack(1 if value else 0)
    if isinstance(value, int):
        return b"l" + I64.pack(value)
    if isinstance(value, (str, bytes)):
        return b"S" + longstr(value)
    if isinstance(value, dict):
        return b"F" + table(value)
    raise TypeError(f"unsupported field value {value!r}")


def table(fields: dict | None) -> bytes:
    """Encode a field table from a dict of str -> bool/int/str/dict."""
    if not fields:
        return U32.pack(0)
    body = b"".join(shortstr(k) + _field_value(v) for k, v in fields.items())
    return U32.pack(len(body)) + body


def bits(*flags: bool) -> bytes:
    """Pack consecutive bit arguments into one octet, first flag lowest."""
    value = 0
    for i, flag in enumerate(flags):
        if flag:
            value |= 1 << i
    return U8.pack(value)


def frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    """Wrap a payload in a frame."""
    return FRAME_HDR.pack(frame_type, channel, len(payload)) + payload + FRAME_END_BYTE


def method_frame(channel: int, pair: tuple[int, int], args: bytes = b"") -> bytes:
    """Encode one method frame."""
    return frame(FRAME_METHOD, channel, METHOD_ID.pack(*pair) + args)


def content_header(channel: int, body_size: int, persistent: bool) -> bytes:
    """Encode a basic content header; only delivery-mode is ever set."""
    if persistent:
        payload = CONTENT_HDR.pack(60, 0, body_size, 0x1000) + U8.pack(2)
    else:
        payload = CONTENT_HDR.pack(60, 0, body_size, 0)
    return frame(FRAME_HEADER, channel, payload)


def body_frames(channel: int, body: bytes, frame_max: int) -> list[bytes]:
    """Split a body into frames no larger than frame_max."""
    chunk = frame_max - 8
    return [frame(FRAME_BODY, channel, body[i:i + chunk]) for i in range(0, len(body), chunk)] or []


class ShortReader:
    """Sequential reader over a method payload, for the cold (RPC) paths only."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    def u8(self) -> int:
        v = self.buf[self.pos]
        self.pos += 1
        return v

    def u16(self) -> int:
        (v,) = U16.unpack_from(self.buf, self.pos)
        self.pos += 2
        return v

    def u32(self) -> int:
        (v,) = U32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return v

    def u64(self) -> int:
        (v,) = U64.unpack_from(self.buf, self.pos)
        self.pos += 8
        return v

    def shortstr(self) -> str:
        n = self.buf[self.pos]
        v = bytes(self.buf[self.pos + 1:self.pos + 1 + n]).decode(errors="replace")
        self.pos += 1 + n
        return v

    def longstr(self) -> bytes:
        n = self.u32()
        v = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return v

    def skip_table(self) -> None:
        self.pos += 4 + U32.unpack_from(self.buf, self.pos)[0]


class FrameSplitter:
    """Incremental frame parser for the cold paths (handshake, RPC replies).

    It hands out one frame at a time so that whatever follows the reply an RPC
    waited for (deliveries right after consume-ok, say) stays raw in ``buf``
    for the hot receive loops in ``client.py``, which inline the same parsing
    to avoid a call per frame.
    """

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self.buf += data

    def next_frame(self) -> tuple[int, int, bytes] | None:
        """Remove and return the first complete (type, channel, payload), or None."""
        buf = self.buf
        if len(buf) < 8:
            return None
        ftype, channel, size = FRAME_HDR.unpack_from(buf, 0)
        end = 7 + size
        if end >= len(buf):
            return None
        if buf[end] != FRAME_END:
            raise ProtocolViolation(f"bad frame end after a {size}-byte payload")
        payload = bytes(buf[7:end])
        del buf[:end + 1]
        return ftype, channel, payload

    def take(self) -> bytes:
        """Hand the unparsed bytes to a hot loop and forget them."""
        data = bytes(self.buf)
        self.buf.clear()
        return data


class ProtocolViolation(Exception):
    """The peer sent bytes that are not valid AMQP framing."""


class AMQPClosed(Exception):
    """The broker closed the channel or the connection."""

    def __init__(self, scope: str, code: int, text: str, class_id: int = 0, method_id: int = 0) -> None:
        super().__init__(f"{scope} closed by broker: {code} {text} (class {class_id}, method {method_id})")
        self.scope = scope
        self.code = code
        self.text = text
