"""The request framer: whatever pieces the socket's reads cut the stream into, the same requests come out
whole and in order, large ones in buffers of their own (writable, reused once let go), and a size no broker
would read is refused."""

from __future__ import annotations

import random
import struct

import pytest

from leveret.kafka.frames import OWN_BUFFER, TAKE_WHOLE, FrameReader
from leveret.kafka.wire import KafkaDecodeError


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def payloads(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    sizes = [8, 9, 100, TAKE_WHOLE - 1, TAKE_WHOLE, TAKE_WHOLE + 1, OWN_BUFFER - 4, OWN_BUFFER, 3 * OWN_BUFFER + 7,
             1 << 20, 12, 8]
    rng.shuffle(sizes)
    return [bytes([i % 251]) * size for i, size in enumerate(sizes)]


def read_in_pieces(reader: FrameReader, stream: bytes, rng: random.Random, biggest: int) -> list[bytes]:
    """As the transport does: read at most what get_buffer offers, in pieces of random sizes."""
    out = []
    at = 0
    while at < len(stream):
        into = reader.get_buffer()
        assert len(into) > 0
        take = min(len(into), len(stream) - at, rng.randint(1, biggest))
        into[:take] = stream[at : at + take]
        at += take
        out += [bytes(p) for p in reader.filled(take)]
    return out


@pytest.mark.parametrize("biggest", [1, 3, 4096, 70_000, 1 << 21])
def test_requests_come_out_whole_and_in_order_whatever_the_reads(biggest: int) -> None:
    if biggest <= 3:  # byte by byte (or nearly): fewer and smaller requests, one of them large
        wanted = [b"x" * 8, b"y" * 100, b"z" * (TAKE_WHOLE + 1), b"w" * 9]
    else:
        wanted = payloads(biggest) * 2
    stream = b"".join(frame(p) for p in wanted)
    assert read_in_pieces(FrameReader(), stream, random.Random(biggest), biggest) == wanted


def test_feed_splits_what_it_is_handed() -> None:
    reader = FrameReader()
    stream = b"".join(frame(p) for p in payloads(7))
    got = []
    for at in range(0, len(stream), 50_000):
        got += [bytes(p) for p in reader.feed(stream[at : at + 50_000])]
    assert got == payloads(7)


def test_large_requests_are_writable_buffers_reused_once_let_go() -> None:
    reader = FrameReader()
    (first,) = reader.feed(frame(b"a" * (1 << 20)))
    assert isinstance(first, bytearray)
    address = id(first)
    del first  # nothing refers to it any more: the next large request may take it
    (second,) = reader.feed(frame(b"b" * (1 << 20)))
    assert id(second) == address and second == b"b" * (1 << 20)
    (third,) = reader.feed(frame(b"c" * (1 << 20)))  # the second is still held: a new buffer
    assert third is not second and second == b"b" * (1 << 20)


@pytest.mark.parametrize("size", [7, -1, 100 * 1024 * 1024 + 1])
def test_a_size_no_broker_would_read_is_refused(size: int) -> None:
    with pytest.raises(KafkaDecodeError):
        FrameReader().feed(struct.pack(">i", size) + b"x" * 16)
