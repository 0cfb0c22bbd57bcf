"""Field tables and arrays: every type tag, Python mapping, round trips, bad input."""

from __future__ import annotations

import datetime
import math
import struct
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec_strategies import field_values, tables
from leveret.amqp.errors import FRAME_ERROR, MalformedFrame
from leveret.amqp.table import (
    Float32, Int8, Int16, Long, LongBytes, Timestamp, UInt8, UInt16, UInt32, decode_array, decode_table, encode_array,
    encode_table,
)


def entry(key: bytes, tag: bytes, value: bytes) -> bytes:
    return bytes((len(key),)) + key + tag + value


def table_of(*entries: bytes) -> bytes:
    body = b"".join(entries)
    return struct.pack(">I", len(body)) + body


@pytest.mark.parametrize(
    ("tag", "raw", "expected"),
    [
        (b"t", b"\x01", True),
        (b"t", b"\x00", False),
        (b"b", b"\xff", Int8(-1)),
        (b"B", b"\xff", UInt8(255)),
        (b"s", b"\xff\xfe", Int16(-2)),  # RabbitMQ's int16, not the spec's shortstr
        (b"u", b"\xff\xfe", UInt16(65534)),
        (b"I", b"\xff\xff\xff\xff", -1),
        (b"i", b"\xff\xff\xff\xff", UInt32(2**32 - 1)),
        (b"l", b"\xff" * 8, Long(-1)),
        (b"f", struct.pack(">f", 1.5), Float32(1.5)),
        (b"d", struct.pack(">d", -2.25), -2.25),
        (b"D", b"\x02\x00\x00\x04\xd2", Decimal("12.34")),
        (b"T", struct.pack(">Q", 1700000000), Timestamp(1700000000)),
        (b"S", b"\x00\x00\x00\x03abc", "abc"),
        (b"S", b"\x00\x00\x00\x02\xff\xfe", LongBytes(b"\xff\xfe")),  # not UTF-8: bytes, still a longstr
        (b"x", b"\x00\x00\x00\x02\x00\x01", b"\x00\x01"),
        (b"A", b"\x00\x00\x00\x05I\x00\x00\x00\x07", [7]),
        (b"F", table_of(entry(b"k", b"t", b"\x01"), entry(b"n", b"V", b"")), {"k": True, "n": None}),
        (b"V", b"", None),
    ],
)
def test_each_type_tag_decodes_to_its_python_value(tag, raw, expected):
    payload = table_of(entry(b"key", tag, raw))
    decoded, end = decode_table(payload, 0)
    assert end == len(payload)
    assert decoded == {"key": expected}
    assert type(decoded["key"]) is type(expected)
    # Each value keeps its tag: the table re-encodes to the bytes it came from (RabbitMQ rewrites tables so).
    assert encode_table(decoded) == payload


def test_decoded_timestamp_re_encodes_as_timestamp():
    encoded = encode_table({"ts": Timestamp(5)})
    assert encoded == table_of(entry(b"ts", b"T", struct.pack(">Q", 5)))
    assert decode_table(encoded, 0)[0]["ts"] == 5


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        (True, b"t"), (1, b"I"), (-(2**31), b"I"), (2**31, b"l"), (1.5, b"d"),
        (Decimal("1.25"), b"D"), ("s", b"S"), (b"x", b"x"), (bytearray(b"x"), b"x"),
        (datetime.datetime(2024, 1, 1), b"T"), ({}, b"F"), ([], b"A"), ((1,), b"A"), (None, b"V"),
    ],
)
def test_python_values_encode_with_the_documented_tag(value, tag):
    encoded = encode_table({"k": value})
    assert encoded[6:7] == tag


def test_naive_datetime_is_taken_as_utc():
    encoded = encode_table({"k": datetime.datetime(1970, 1, 2)})
    assert decode_table(encoded, 0)[0]["k"] == 86400


def test_none_and_empty_table_encode_as_four_zero_octets():
    assert encode_table(None) == encode_table({}) == b"\x00\x00\x00\x00"


@settings(max_examples=100, deadline=None)
@given(tables)
def test_tables_round_trip(table):
    encoded = encode_table(table)
    decoded, end = decode_table(b"pre" + encoded, 3)
    assert end == len(encoded) + 3
    assert decoded == table


@settings(max_examples=100, deadline=None)
@given(field_values)
def test_arrays_round_trip(value):
    encoded = encode_array([value, value])
    assert decode_array(encoded, 0) == ([value, value], len(encoded))


def test_decoding_reads_from_bytearray():
    encoded = encode_table({"a": [1, "two", {"three": 3.0}], "b": b"\xff"})
    decoded = decode_table(bytearray(encoded), 0)[0]
    assert decoded == {"a": [1, "two", {"three": 3.0}], "b": b"\xff"}
    assert type(decoded["b"]) is bytes


def test_unknown_type_tag_is_malformed_frame_error():
    with pytest.raises(MalformedFrame) as info:
        decode_table(table_of(entry(b"ab", b"Z", b"")), 0)
    assert info.value.reply_code == FRAME_ERROR


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00\x00",  # size cut short
        b"\x00\x00\x00\x09\x01kI\x00\x00",  # declares more than present
        table_of(entry(b"k", b"I", b"\x00\x00")),  # value cut short inside the table
        table_of(entry(b"k", b"S", b"\x00\x00\x00\x09ab")),  # longstr overruns the table
        table_of(b"\x05ab"),  # key overruns the table
    ],
)
def test_truncated_tables_are_malformed(payload):
    with pytest.raises(MalformedFrame):
        decode_table(payload, 0)


def test_values_that_cannot_be_represented_are_rejected_on_encode():
    with pytest.raises(ValueError):
        encode_table({"k": 2**64})
    with pytest.raises(ValueError):
        encode_table({"k": Decimal("1e-300")})
    with pytest.raises(ValueError):
        encode_table({"k" * 256: 1})
    with pytest.raises(TypeError):
        encode_table({"k": object()})


def test_infinite_floats_round_trip():
    decoded = decode_table(encode_table({"k": -math.inf}), 0)[0]
    assert decoded == {"k": -math.inf}


# --- depth: tables and arrays nest as deep as a frame allows, with no recursion limit --------------

def nest(depth: int, leaf, kinds: str = "FA"):
    """A value `depth` containers deep around leaf, cycling through kinds (F: table, A: array); built iteratively."""
    value = leaf
    for level in range(depth):
        value = {"k": value} if kinds[level % len(kinds)] == "F" else [value]
    return value


def depth_of(value) -> int:
    depth = 0
    while isinstance(value, (dict, list)):
        value = value["k"] if isinstance(value, dict) else value[0]
        depth += 1
    return depth


@pytest.mark.parametrize("kinds", ["F", "A", "FA", "FFA"])
def test_tables_nested_beyond_the_recursion_limit_round_trip(kinds):
    depth = 25_000  # more than a 128 KiB frame can hold
    value = nest(depth, "leaf", kinds)
    encoded = encode_table({"root": value})
    decoded, end = decode_table(encoded, 0)
    assert end == len(encoded)
    assert depth_of(decoded["root"]) == depth
    innermost = decoded["root"]
    while isinstance(innermost, (dict, list)):
        innermost = innermost["k"] if isinstance(innermost, dict) else innermost[0]
    assert innermost == "leaf"
    assert encode_table(decoded) == encoded


def test_deep_wire_bytes_decode_and_re_encode_byte_for_byte():
    # Built on the wire, bottom up, as a hostile client would: {"a": {"a": ... {} }} 20,000 deep.
    raw = b"\x00\x00\x00\x00"
    for _ in range(20_000):
        raw = table_of(entry(b"a", b"F", raw))
    decoded, end = decode_table(raw, 0)
    assert end == len(raw)
    assert encode_table(decoded) == raw


def test_a_deep_table_with_a_bad_tag_at_the_bottom_is_malformed():
    raw = table_of(entry(b"bad", b"Z", b""))
    for _ in range(5_000):
        raw = table_of(entry(b"a", b"F", raw))
    with pytest.raises(MalformedFrame):
        decode_table(raw, 0)


def test_a_nested_table_overrunning_its_parent_is_malformed():
    inner = table_of(entry(b"k", b"I", b"\x00\x00\x00\x01"))
    # The parent claims fewer bytes than its child needs; the bytes after it would complete the child.
    parent = struct.pack(">I", 4) + b"\x01aF" + inner[:1]
    with pytest.raises(MalformedFrame):
        decode_table(parent + inner[1:], 0)


def test_siblings_after_a_nested_container_stay_in_their_container():
    value = {"a": {"b": [1, {"c": []}, 2], "d": {}}, "e": [[], [[3]]], "f": "g"}
    encoded = encode_table(value)
    assert decode_table(encoded, 0) == (value, len(encoded))
    assert decode_array(encode_array([value, [value]]), 0)[0] == [value, [value]]


@settings(max_examples=60, deadline=None)
@given(field_values, st.lists(st.sampled_from("FA"), min_size=1, max_size=40), st.integers(1, 3000))
def test_deeply_wrapped_values_round_trip(value, pattern, depth):
    wrapped = nest(depth, value, "".join(pattern))
    encoded = encode_table({"v": wrapped, "after": 1})
    decoded = decode_table(encoded, 0)[0]
    assert decoded["after"] == 1
    assert encode_table(decoded) == encoded
    # Unwrap back to the original value, which compares normally.
    inner = decoded["v"]
    for _ in range(depth):
        inner = inner["k"] if isinstance(inner, dict) else inner[0]
    assert inner == value
