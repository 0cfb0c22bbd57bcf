"""FrameParser: frames from a byte stream fed whole, byte by byte and with a partial tail."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leveret.amqp.errors import FRAME_ERROR, FrameError
from leveret.amqp.parser import FrameParser


def frame(frame_type: int, channel: int, payload: bytes, end: bytes = b"\xce") -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + end


FRAMES = [(1, 0, b"\x00\x0a\x00\x0b" + b"m" * 20), (2, 1, b"h" * 14), (3, 1, b""), (3, 65535, b"b" * 5000), (8, 0, b"")]
STREAM = b"".join(frame(*f) for f in FRAMES)


def as_tuples(frames):
    return [(t, c, bytes(p)) for t, c, p in frames]


def test_whole_stream_in_one_feed_gives_every_frame():
    parser = FrameParser()
    frames = parser.feed(STREAM)
    assert as_tuples(frames) == FRAMES
    # bodies are views of the immutable read (no copy), everything else small bytes
    assert [type(p) for _, _, p in frames] == [bytes, bytes, memoryview, memoryview, bytes]
    assert parser.buffered == 0


def test_one_byte_at_a_time_gives_every_frame_once():
    parser = FrameParser()
    frames = []
    for i in range(len(STREAM)):
        frames += as_tuples(parser.feed(STREAM[i : i + 1]))
    assert frames == FRAMES
    assert parser.buffered == 0


def test_trailing_partial_frame_stays_buffered_until_completed():
    parser = FrameParser()
    tail = frame(1, 7, b"\x00\x3c\x00\x50" + b"\x00" * 9)
    assert as_tuples(parser.feed(STREAM + tail[:10])) == FRAMES
    assert parser.buffered == 10
    assert parser.feed(tail[10:-1]) == []
    assert as_tuples(parser.feed(tail[-1:])) == [(1, 7, tail[7:-1])]
    assert parser.buffered == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, len(STREAM)), max_size=12))
def test_any_split_of_the_stream_gives_the_same_frames(cuts):
    parser = FrameParser()
    frames = []
    previous = 0
    for cut in sorted(set(cuts)) + [len(STREAM)]:
        frames += as_tuples(parser.feed(STREAM[previous:cut]))
        previous = cut
    assert frames == FRAMES


def test_payload_views_stay_valid_after_later_feeds():
    parser = FrameParser()
    first = parser.feed(frame(3, 1, b"first") + frame(3, 1, b"sec"))
    parser.feed(frame(3, 1, b"x" * 100)[:50])
    parser.feed(frame(3, 1, b"x" * 100)[50:])
    assert [bytes(p) for _, _, p in first] == [b"first", b"sec"]


def test_views_of_frames_that_straddled_reads_survive_later_feeds():
    parser = FrameParser()
    body = frame(3, 1, b"B" * 1000)
    other = frame(3, 2, b"C" * 1000)
    assert parser.feed(body[:300]) == []
    (first,) = parser.feed(body[300:] + other[:500])
    parser.feed(other[500:] + frame(3, 3, b"D" * 100)[:50])
    assert bytes(first[2]) == b"B" * 1000


def test_non_body_payloads_are_bytes_even_when_reassembled():
    parser = FrameParser()
    frames = []
    for i in range(len(STREAM)):
        frames += parser.feed(STREAM[i : i + 1])
    assert [type(p) for _, _, p in frames] == [bytes, bytes, memoryview, memoryview, bytes]


def test_bytearray_input_is_accepted():
    assert as_tuples(FrameParser().feed(bytearray(frame(8, 0, b"")))) == [(8, 0, b"")]


def test_frame_larger_than_frame_max_fails_before_its_payload_arrives():
    parser = FrameParser(frame_max=4096)
    with pytest.raises(FrameError) as info:
        parser.feed(struct.pack(">BHI", 3, 1, 4097))  # only the header sent
    assert info.value.reply_code == FRAME_ERROR
    # RabbitMQ's text prints frame_max - 8 although it compares against frame_max.
    assert info.value.reply_text == "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,4097,4088}"


def test_payload_of_exactly_frame_max_is_accepted_like_rabbitmq_does():
    parser = FrameParser(frame_max=4096)
    assert len(parser.feed(frame(3, 1, b"x" * 4096))) == 1


def test_frame_max_can_be_changed_after_tune():
    parser = FrameParser(frame_max=131072)
    parser.frame_max = 4096
    assert parser.frame_max == 4096
    with pytest.raises(FrameError):
        parser.feed(frame(3, 1, b"x" * 4097))


def test_frame_max_zero_means_no_limit():
    parser = FrameParser(frame_max=0)
    assert len(parser.feed(frame(3, 1, b"x" * 300000))) == 1


def test_bad_frame_end_octet_is_a_frame_error_with_rabbitmq_text():
    parser = FrameParser()
    with pytest.raises(FrameError) as info:
        parser.feed(frame(8, 0, b"") + frame(1, 1, b"\x00\x3c", end=b"\x00"))
    assert info.value.reply_text == (
        "FRAME_ERROR - type 1, all octets = <<0,60>>: {invalid_frame_end_marker,0}"
    )
    assert as_tuples(info.value.frames) == [(8, 0, b"")]
