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
_pack_content_header = Struct(">BHIHHQ").pack  # frame header + class, weight, body size
# The hot paths pack each method's fixed fields together with the neighbouring frame
# header, shortstr length octet or previous frame's end octet, to make few, larger pieces.
_pack_deliver_start = Struct(">BHIHHB").pack  # frame header, 60, 60, len(consumer_tag)
_pack_tag_redelivered_len = Struct(">QBB").pack  # delivery_tag, redelivered, len(exchange)
_pack_tag_redelivered = Struct(">QB").pack  # delivery_tag, redelivered
_pack_method_start = Struct(">BHIHH").pack  # frame header, class id, method id
_pack_end_content_header = Struct(">BBHIHHQ").pack  # 0xCE, then a content-header frame start
_pack_end_body_header = Struct(">BBHI").pack  # 0xCE, then a body frame header
_pack_ack = Struct(">BHIHHQBB").pack  # whole basic.ack / basic.nack frame, frame end included
_pack_uint32 = Struct(">I").pack
_LENGTH_OCTET = tuple(bytes((n,)) for n in range(256))  # shortstr length prefixes


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


def _finish_content(parts: list, channel: int, props_raw: bytes, body: bytes, frame_max: int) -> list[bytes]:
    """Append header and body frames to the pieces of a method frame (its end octet not yet
    written) and return the list for writelines."""
    size = len(body)
    parts.append(_pack_end_content_header(0xCE, 2, channel, 12 + len(props_raw), 60, 0, size))
    parts.append(props_raw)
    if size == 0:
        parts.append(FRAME_END_BYTES)
        return [b"".join(parts)]
    limit = frame_max - 8 if frame_max else size
    if size <= limit:
        parts.append(_pack_end_body_header(0xCE, 3, channel, size))
        if size <= _INLINE_BODY:
            parts.append(body)
            parts.append(FRAME_END_BYTES)
            return [b"".join(parts)]
        return [b"".join(parts), body, FRAME_END_BYTES]
    parts.append(FRAME_END_BYTES)
    out = [b"".join(parts)]
    _append_body_frames(out, channel, body, limit)
    return out


def _append_body_frames(out: list, channel: int, body: bytes, limit: int) -> None:
    """Append the frames of a body larger than one frame: views into it, not copies."""
    view = memoryview(body)
    for start in range(0, len(body), limit):
        piece = view[start : start + limit]
        out.append(_pack_frame_header(3, channel, len(piece)))
        out.append(piece)
        out.append(FRAME_END_BYTES)


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
    """Return the frames of one basic.deliver with its content (the broker's hottest path).

    Names are plain-UTF-8 encoded: method shortstrs are always valid UTF-8 (RabbitMQ and
    our decoder refuse others). A name over 255 bytes raises (struct.error / IndexError).
    """
    ct = consumer_tag.encode()
    ex = exchange.encode()
    rk = routing_key.encode()
    # payload: ids(4) + tag(1+n) + delivery_tag(8) + redelivered(1) + exchange + routing key
    parts = [
        _pack_deliver_start(1, channel, 16 + len(ct) + len(ex) + len(rk), 60, 60, len(ct)),
        ct,
        _pack_tag_redelivered_len(delivery_tag, 1 if redelivered else 0, len(ex)),
        ex,
        _LENGTH_OCTET[len(rk)],
        rk,
    ]
    return _finish_content(parts, channel, props_raw, body, frame_max)


def basic_deliver_batch(
    channel: int, consumer_tag: str, deliveries: list, frame_max: int, out: list,
) -> None:
    """Append to `out` the frames of several basic.deliver methods of one consumer, each with its content;
    `deliveries` holds (delivery_tag, redelivered, message) in delivery order. The same bytes as one
    `basic_deliver_frames` per delivery, made with fewer objects (the dispatch of a run of messages to one
    consumer): the consumer tag is encoded once, the exchange and routing key once per change (a queue's
    messages mostly share them), and small deliveries are joined into one item, so `writelines` gets one
    piece per run of small messages rather than one per message."""
    ct = consumer_tag.encode()
    parts: list = []
    append = parts.append
    limit = frame_max - 8 if frame_max else 0
    names: tuple = (None, None)
    start = middle = b""
    for delivery_tag, redelivered, message in deliveries:
        if names[0] != message.exchange or names[1] != message.routing_key:
            names = (message.exchange, message.routing_key)
            ex = names[0].encode()
            rk = names[1].encode()
            # The frame up to the delivery tag, and from the exchange to the end of the method frame.
            start = _pack_deliver_start(1, channel, 16 + len(ct) + len(ex) + len(rk), 60, 60, len(ct)) + ct
            middle = _LENGTH_OCTET[len(ex)] + ex + _LENGTH_OCTET[len(rk)] + rk
        props_raw = message.properties.raw
        body = message.body
        size = len(body)
        append(start)
        append(_pack_tag_redelivered(delivery_tag, 1 if redelivered else 0))
        append(middle)
        append(_pack_end_content_header(0xCE, 2, channel, 12 + len(props_raw), 60, 0, size))
        append(props_raw)
        if size == 0:
            append(FRAME_END_BYTES)
        elif not limit or size <= limit:
            append(_pack_end_body_header(0xCE, 3, channel, size))
            if size <= _INLINE_BODY:
                append(body)
            else:
                # A large body stays its own item, not copied here (writelines copies it once).
                out.append(b"".join(parts))
                out.append(body)
                parts.clear()
            append(FRAME_END_BYTES)
        else:
            append(FRAME_END_BYTES)
            out.append(b"".join(parts))
            parts.clear()
            _append_body_frames(out, channel, body, limit)
    if parts:
        out.append(b"".join(parts))


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
    ex = exchange.encode()
    rk = routing_key.encode()
    parts = [
        _pack_method_start(1, channel, 19 + len(ex) + len(rk), 60, 71),
        _pack_tag_redelivered_len(delivery_tag, 1 if redelivered else 0, len(ex)),
        ex,
        _LENGTH_OCTET[len(rk)],
        rk,
        _pack_uint32(message_count),
    ]
    return _finish_content(parts, channel, props_raw, body, frame_max)


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
    parts = [_pack_method_start(1, channel, 4 + len(args), 60, 50), args]
    return _finish_content(parts, channel, props_raw, body, frame_max)


def basic_ack_frame(channel: int, delivery_tag: int, multiple: bool) -> bytes:
    """Return one basic.ack frame (publisher confirms)."""
    return _pack_ack(1, channel, 13, 60, 80, delivery_tag, 1 if multiple else 0, 0xCE)


def basic_nack_frame(channel: int, delivery_tag: int, multiple: bool, requeue: bool) -> bytes:
    """Return one basic.nack frame (publisher confirms)."""
    bits = (1 if multiple else 0) | (2 if requeue else 0)
    return _pack_ack(1, channel, 13, 60, 120, delivery_tag, bits, 0xCE)
