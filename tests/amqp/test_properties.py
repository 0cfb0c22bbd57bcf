"""BasicProperties: lazy decoding, raw bytes kept, round trips of all 14 properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from codec_strategies import property_fields
from leveret.amqp.errors import INTERNAL_ERROR, MalformedFrame, MalformedProperties
from leveret.amqp.properties import (
    FIELDS, BasicProperties, decode_content_header, encode_content_header,
)


def test_there_are_fourteen_properties_in_spec_order():
    assert FIELDS[0] == "content_type" and FIELDS[-1] == "cluster_id" and len(FIELDS) == 14


@settings(max_examples=100, deadline=None)
@given(property_fields)
def test_properties_round_trip_through_raw_bytes(fields):
    built = BasicProperties(**fields)
    parsed = BasicProperties.from_raw(built.raw)
    assert parsed.as_dict() == fields
    assert parsed == built
    assert parsed.raw == built.raw
    for name in FIELDS:
        assert getattr(parsed, name) == fields.get(name)


@settings(max_examples=100, deadline=None)
@given(property_fields)
def test_fast_delivery_mode_agrees_with_full_decode(fields):
    raw = BasicProperties(**fields).raw
    assert BasicProperties.from_raw(raw).delivery_mode == fields.get("delivery_mode")


def test_from_raw_keeps_the_exact_input_bytes_even_when_not_canonical():
    # headers with a uint8 'B' value re-encode as 'I'; raw must still be the original.
    raw = b"\x20\x00" + b"\x00\x00\x00\x04\x01kB\x07"
    props = BasicProperties.from_raw(raw)
    assert props.headers == {"k": 7}
    assert props.raw is raw


def test_nothing_is_decoded_until_a_field_is_read():
    props = BasicProperties.from_raw(b"\x20\x00\x00\x00\x00\x03\x01kZ")  # bad tag inside headers
    assert props.raw == b"\x20\x00\x00\x00\x00\x03\x01kZ"
    with pytest.raises(MalformedProperties):
        props.headers


def test_delivery_mode_is_read_without_decoding_the_headers():
    raw = BasicProperties(content_type="text/plain", headers={"a": [1, 2]}, delivery_mode=2).raw
    props = BasicProperties.from_raw(raw)
    assert props.delivery_mode == 2
    assert props._values is None  # the cheap path did not decode


def test_replace_returns_a_changed_copy_and_leaves_the_original():
    original = BasicProperties.from_raw(BasicProperties(delivery_mode=1, priority=3).raw)
    changed = original.replace(delivery_mode=2, expiration="1000")
    assert (changed.delivery_mode, changed.priority, changed.expiration) == (2, 3, "1000")
    assert original.delivery_mode == 1 and original.expiration is None
    assert original.replace(priority=None).priority is None
    with pytest.raises(TypeError):
        original.replace(colour="red")


def test_empty_properties_are_two_zero_octets():
    assert BasicProperties().raw == b"\x00\x00"
    assert BasicProperties.from_raw(b"\x00\x00").as_dict() == {}


@pytest.mark.parametrize(
    "raw",
    [
        b"\x80\x00\x05ab",  # content_type overruns
        b"\x00\x00\x00",  # trailing octet after no properties
        b"\x80\x00\x01ab",  # trailing octet after content_type
        b"\x00\x01\x00\x00",  # flag continuation (RabbitMQ: 541)
        b"\x00",  # flags cut short
    ],
)
def test_malformed_raw_properties_raise_on_first_access(raw):
    # RabbitMQ's answer to undecodable properties is 541 INTERNAL_ERROR, with no detail on the wire.
    with pytest.raises(MalformedProperties) as info:
        BasicProperties.from_raw(raw).as_dict()
    assert (info.value.reply_code, info.value.reply_text) == (INTERNAL_ERROR, "INTERNAL_ERROR")
    assert info.value.detail.startswith("cannot decode content properties")


def test_content_header_round_trip():
    props = BasicProperties(content_type="application/json", delivery_mode=2)
    payload = encode_content_header(60, 1234, props.raw)
    class_id, body_size, decoded = decode_content_header(memoryview(payload))
    assert (class_id, body_size) == (60, 1234)
    assert decoded == props and type(decoded.raw) is bytes


def test_short_content_header_is_malformed():
    with pytest.raises(MalformedFrame):
        decode_content_header(b"\x00\x3c\x00\x00")
    with pytest.raises(MalformedFrame):
        decode_content_header(b"\x00\x3c\x00\x00" + b"\x00" * 8)


def test_properties_match_pika_encoding():
    pika_spec = pytest.importorskip("pika.spec")
    theirs = pika_spec.BasicProperties(
        content_type="text/plain", headers={"a": 1, "b": "x"}, delivery_mode=2, priority=5,
        correlation_id="c", reply_to="r", expiration="60000", message_id="m", timestamp=1700000000,
        type="t", user_id="guest", app_id="app", cluster_id="cl",
    )
    ours = BasicProperties(
        content_type="text/plain", headers={"a": 1, "b": "x"}, delivery_mode=2, priority=5,
        correlation_id="c", reply_to="r", expiration="60000", message_id="m", timestamp=1700000000,
        type="t", user_id="guest", app_id="app", cluster_id="cl",
    )
    pika_payload = b"".join(theirs.encode())
    assert ours.raw == pika_payload


@pytest.mark.parametrize("field", ["headers", "reply_to", "expiration", "user_id", None])
def test_routing_plain_is_false_exactly_when_a_routing_property_is_set(field):
    values = {"content_type": "text/plain", "delivery_mode": 2, "priority": 3, "correlation_id": "c",
              "message_id": "m", "timestamp": 7, "type": "t", "app_id": "a", "cluster_id": "x"}
    if field is not None:
        values[field] = {"k": 1} if field == "headers" else "v"
    built = BasicProperties(**values)
    from_wire = BasicProperties.from_raw(built.raw)
    assert built.routing_plain is from_wire.routing_plain is (field is None)
    from_wire.as_dict()  # decoded: the answer comes from the values now
    assert from_wire.routing_plain is (field is None)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x80\x00\x05ab",  # content_type overruns
        b"\x00\x00\x00",  # trailing octet after no properties
        b"\x80\x00\x01ab",  # trailing octet after content_type
        b"\x20\x00\x00\x00\x00\x09\x01k",  # headers table overruns
        b"\x00",  # flags cut short
        b"\x10\x00",  # delivery_mode flagged, absent
        b"\x10\x00\x02\x00",  # delivery_mode, then a stray octet
        b"\x90\x00\x02ab",  # content_type, delivery_mode absent
        b"\x90\x00\x01a\x02\x00",  # content_type, delivery_mode, then a stray octet
    ],
)
def test_check_walks_the_raw_properties_and_refuses_what_does_not_decode(raw):
    with pytest.raises(MalformedProperties):
        BasicProperties.from_raw(raw).check()


def test_check_accepts_every_well_formed_property_list_without_decoding_it():
    full = BasicProperties(
        content_type="a", content_encoding="b", headers={"h": [1, {"x": None}]}, delivery_mode=2, priority=3,
        correlation_id="c", reply_to="r", expiration="10", message_id="m", timestamp=7, type="t",
        user_id="u", app_id="p", cluster_id="cl",
    ).raw
    common = BasicProperties(content_type="application/json", delivery_mode=2).raw
    for raw in (full, b"\x00\x00", BasicProperties(delivery_mode=1).raw, common, b"\x00\x01"):
        props = BasicProperties.from_raw(raw)
        props.check()
        assert props._values is None  # nothing was decoded
    assert BasicProperties.from_raw(b"\x00\x01").as_dict() == {}  # the continuation bit is ignored
