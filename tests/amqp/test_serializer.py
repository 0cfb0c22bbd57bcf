"""Outbound frames: generic method/content frames and the hand-tuned hot-path builders."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec_strategies import shortstrs
from leveret.amqp import spec
from leveret.amqp.parser import FrameParser
from leveret.amqp.properties import BasicProperties
from leveret.broker.message import Message
from leveret.amqp.serializer import (
    HEARTBEAT, PROTOCOL_HEADER, basic_ack_frame, basic_deliver_batch, basic_deliver_frames, basic_get_ok_frames,
    basic_nack_frame, basic_return_frames, content_frames, method_frame,
)

PROPS = BasicProperties(delivery_mode=2, headers={"x-death": [{"count": 1}]}).raw
BODIES = [b"", b"small", b"m" * 4088, b"m" * 4089, b"L" * 10000, b"x" * 200000]


def test_constants_are_the_wire_bytes():
    assert PROTOCOL_HEADER == b"AMQP\x00\x00\x09\x01"
    assert HEARTBEAT == b"\x08\x00\x00\x00\x00\x00\x00\xce"


def test_method_frame_wraps_the_encoded_method():
    method = spec.ChannelOpenOk()
    assert method_frame(7, method) == b"\x01\x00\x07\x00\x00\x00\x08\x00\x14\x00\x0b\x00\x00\x00\x00\xce"


def test_content_frames_split_bodies_at_frame_max_minus_eight():
    frames = content_frames(1, spec.BasicPublish(), PROPS, b"b" * 10000, 4096)
    parsed = FrameParser(4096).feed(b"".join(frames))
    assert len(frames) == len(parsed) == 5
    assert [len(p) for t, _, p in parsed if t == 3] == [4088, 4088, 1824]


def test_empty_body_has_no_body_frame():
    frames = content_frames(1, spec.BasicPublish(), PROPS, b"", 4096)
    assert [t for t, _, _ in FrameParser().feed(b"".join(frames))] == [1, 2]


def generic(channel, method, body, frame_max):
    return b"".join(content_frames(channel, method, PROPS, body, frame_max))


@pytest.mark.parametrize("body", BODIES, ids=len)
@pytest.mark.parametrize("frame_max", [4096, 131072, 0])
def test_hot_path_builders_equal_the_generic_encoding(body, frame_max):
    deliver = spec.BasicDeliver(consumer_tag="ctag", delivery_tag=42, redelivered=True, exchange="ex", routing_key="rk")
    assert b"".join(basic_deliver_frames(3, "ctag", 42, True, "ex", "rk", PROPS, body, frame_max)) == generic(3, deliver, body, frame_max)
    get_ok = spec.BasicGetOk(delivery_tag=1, redelivered=False, exchange="", routing_key="q", message_count=5)
    assert b"".join(basic_get_ok_frames(3, 1, False, "", "q", 5, PROPS, body, frame_max)) == generic(3, get_ok, body, frame_max)
    ret = spec.BasicReturn(reply_code=312, reply_text="NO_ROUTE", exchange="ex", routing_key="rk")
    assert b"".join(basic_return_frames(3, 312, "NO_ROUTE", "ex", "rk", PROPS, body, frame_max)) == generic(3, ret, body, frame_max)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 65535), shortstrs, st.integers(0, 2**64 - 1), st.booleans(), shortstrs, shortstrs,
    st.binary(max_size=9000),
)
def test_deliver_frames_equal_generic_for_any_arguments(channel, tag, delivery_tag, redelivered, exchange, rk, body):
    method = spec.BasicDeliver(consumer_tag=tag, delivery_tag=delivery_tag, redelivered=redelivered, exchange=exchange, routing_key=rk)
    frames = basic_deliver_frames(channel, tag, delivery_tag, redelivered, exchange, rk, PROPS, body, 4096)
    assert b"".join(frames) == generic(channel, method, body, 4096)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 65535), shortstrs, st.sampled_from([0, 4096, 131072]),
    st.lists(st.tuples(st.integers(0, 2**64 - 1), st.booleans(), st.sampled_from(["", "ex"]),
                       st.sampled_from(["q", "k"]), st.sampled_from(BODIES)), min_size=1, max_size=5),
)
def test_a_batch_of_deliveries_equals_one_deliver_each(channel, tag, frame_max, deliveries):
    items = [(delivery_tag, redelivered, Message(exchange, rk, BasicProperties.from_raw(PROPS), body))
             for delivery_tag, redelivered, exchange, rk, body in deliveries]
    out: list = []
    basic_deliver_batch(channel, tag, items, frame_max, out)
    one_each = [b"".join(basic_deliver_frames(channel, tag, delivery_tag, redelivered, m.exchange, m.routing_key,
                                              PROPS, m.body, frame_max)) for delivery_tag, redelivered, m in items]
    assert b"".join(out) == b"".join(one_each)
    # Large bodies stay their own items, as in basic_deliver_frames.
    assert all(any(item is m.body for item in out) for _, _, m in items if 4096 < len(m.body) <= (frame_max or 10**9) - 8)


def test_large_bodies_are_separate_items_not_copied():
    body = b"x" * 100000
    frames = basic_deliver_frames(1, "c", 1, False, "", "q", PROPS, body, 131072)
    assert any(item is body for item in frames)


def test_ack_and_nack_frames_equal_the_generic_encoding():
    assert basic_ack_frame(2, 2**63, True) == method_frame(2, spec.BasicAck(delivery_tag=2**63, multiple=True))
    for multiple in (False, True):
        for requeue in (False, True):
            expected = method_frame(2, spec.BasicNack(delivery_tag=9, multiple=multiple, requeue=requeue))
            assert basic_nack_frame(2, 9, multiple, requeue) == expected
