"""Outbound frames as lists of bytes, ready for transport.writelines.

Guarded by bench/bench_codec.py ("deliver", "ack").

The concatenation of a returned list is the exact wire bytes; one item is one frame,
except in the hot-path functions, where a body larger than _INLINE_BODY is returned as its
own item (frame prefix, body, frame end) so it is not copied here - writelines copies once.
Body frames carry at most frame_max - 8 octets; an empty body has no body frame;
frame_max 0 means no limit.
"""

from __future__ import annotations

from struct import Struct

from .spec import Method
from .wire import FRAME_HEADER, encode_shortstr

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
HEARTBEAT = b"\x08\x00\x00\x00\x00\x00\x00\xce"
FRAME_END_BYTES = b"\xce"

# Bodies up to this size are copied into the same bytes as their frames (one item is
# cheaper than three); larger ones stay separate items so they are not copied twice.
_INLINE_BODY = 4096

_pack_frame_header = FRAME_HEADER.pack
# frame header + content header (class 60, weight 0, body size), property bytes follow.
_CONTENT_FRAME_HEADER = Struct(">BHIHHQ")
_pack_content_header = _CONTENT_FRAME_HEADER.pack
# frame header + class/method ids: the fixed start of a method frame.
_METHOD_START = Struct(">BHIHH")
_pack_method_start = _METHOD_START.pack
_QB = Struct(">QB")
_ACK = Struct(">BHIHHQBB")  # whole basic.ack / basic.nack frame, frame end included
_I = Struct(">I")


def method_frame(channel: int, method: Method) -> bytes:
    """Return one method frame for method on channel."""
    payload = method.encode()
    return _pack_frame_header(1, channel, len(payload)) + payload + FRAME_END_BYTES


def content_frames(channel: int, method: Method, props_raw: bytes, body: bytes, frame_max: int) -> list[bytes]:
    """Return [method frame, header frame, body frames...] for a content-bearing method."""
    payload = method.encode()
    frames = [
        _pack_frame_header(1, channel, len(payload)) + payload + FRAME_END_BYTES,
        _pack_content_header(2, channel, 12 + len(props_raw), method.CLASS_ID, 0, len(body))
        + props_raw + FRAME_END_BYTES,
    ]
    size = len(body)
    chunk = frame_max - 8 if frame_max else size or 1
    view = memoryview(body)
    for start in range(0, size, chunk):
        piece = view[start : start + chunk]
        frames.append(_pack_frame_header(3, channel, len(piece)) + piece + FRAME_END_BYTES)
    return frames


def _content_tail(channel: int, props_raw: bytes, body: bytes, frame_max: int, head: bytes) -> list[bytes]:
    """Frames after a hot-path method frame (given as head): header and body."""
    size = len(body)
    header = _pack_content_header(2, channel, 12 + len(props_raw), 60, 0, size)
    if size == 0:
        return [head + header + props_raw + FRAME_END_BYTES]
    limit = frame_max - 8 if frame_max else size
    if size <= limit:
        if size <= _INLINE_BODY:
            return [
                b"".join((head, header, props_raw, FRAME_END_BYTES, _pack_frame_header(3, channel, size), body, FRAME_END_BYTES))
            ]
        return [
            b"".join((head, header, props_raw, FRAME_END_BYTES, _pack_frame_header(3, channel, size))),
            body,
            FRAME_END_BYTES,
        ]
    out = [head + header + props_raw + FRAME_END_BYTES]
    view = memoryview(body)
    for start in range(0, size, limit):
        piece = view[start : start + limit]
        out.append(_pack_frame_header(3, channel, len(piece)))
        out.append(piece)
        out.append(FRAME_END_BYTES)
    return out


def basic_deliver_frames(
    channel: int,
    consumer_tag: str,
    delivery_tag: int,
    redelivered: bool,
    exchange: str,
    routing_key: str,
    props_raw: bytes,
    body: bytes,
    frame_max: int,
) -> list[bytes]:
    """Return the frames of one basic.deliver with its content (the broker's hottest path)."""
    # surrogateescape: names decoded from non-UTF-8 bytes go back out unchanged (wire.py).
    ct = consumer_tag.encode("utf-8", "surrogateescape")
    ex = exchange.encode("utf-8", "surrogateescape")
    rk = routing_key.encode("utf-8", "surrogateescape")
    # payload: ids(4) + tag(1+n) + delivery_tag(8) + redelivered(1) + exchange + routing key
    size = 16 + len(ct) + len(ex) + len(rk)
    head = b"".join((
        _pack_method_start(1, channel, size, 60, 60),
        bytes((len(ct),)), ct,
        _QB.pack(delivery_tag, 1 if redelivered else 0),
        bytes((len(ex),)), ex,
        bytes((len(rk),)), rk,
        FRAME_END_BYTES,
    ))
    return _content_tail(channel, props_raw, body, frame_max, head)


def basic_get_ok_frames(
    channel: int,
    delivery_tag: int,
    redelivered: bool,
    exchange: str,
    routing_key: str,
    message_count: int,
    props_raw: bytes,
    body: bytes,
    frame_max: int,
) -> list[bytes]:
    """Return the frames of one basic.get-ok with its content."""
    ex = exchange.encode("utf-8", "surrogateescape")
    rk = routing_key.encode("utf-8", "surrogateescape")
    size = 19 + len(ex) + len(rk)
    head = b"".join((
        _pack_method_start(1, channel, size, 60, 71),
        _QB.pack(delivery_tag, 1 if redelivered else 0),
        bytes((len(ex),)), ex,
        bytes((len(rk),)), rk,
        _I.pack(message_count),
        FRAME_END_BYTES,
    ))
    return _content_tail(channel, props_raw, body, frame_max, head)


def basic_return_frames(
    channel: int,
    reply_code: int,
    reply_text: str,
    exchange: str,
    routing_key: str,
    props_raw: bytes,
    body: bytes,
    frame_max: int,
) -> list[bytes]:
    """Return the frames of one basic.return with its content."""
    args = b"".join((
        reply_code.to_bytes(2, "big"),
        encode_shortstr(reply_text),
        encode_shortstr(exchange),
        encode_shortstr(routing_key),
    ))
    head = _pack_method_start(1, channel, 4 + len(args), 60, 50) + args + FRAME_END_BYTES
    return _content_tail(channel, props_raw, body, frame_max, head)


def basic_ack_frame(channel: int, delivery_tag: int, multiple: bool) -> bytes:
    """Return one basic.ack frame (publisher confirms)."""
    return _ACK.pack(1, channel, 13, 60, 80, delivery_tag, 1 if multiple else 0, 0xCE)


def basic_nack_frame(channel: int, delivery_tag: int, multiple: bool, requeue: bool) -> bytes:
    """Return one basic.nack frame (publisher confirms)."""
    bits = (1 if multiple else 0) | (2 if requeue else 0)
    return _ACK.pack(1, channel, 13, 60, 120, delivery_tag, bits, 0xCE)
