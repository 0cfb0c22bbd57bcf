"""The record, message and ack layouts of format.py."""

from __future__ import annotations

import pytest

from leveret.store import format as fmt


def test_struct_sizes_match_the_documented_layout():
    assert fmt.SEGMENT_HEADER.size == 16
    assert fmt.RECORD_HEADER.size == 28
    assert fmt.RECORD_OVERHEAD == 32
    assert fmt.ACK_RECORD.size == 12


def test_record_round_trips_with_every_field():
    raw = fmt.encode_record(fmt.KIND_MESSAGE, fmt.FLAG_PERSISTENT, 42, 1_700_000_000_123, b"payload")
    assert len(raw) == fmt.RECORD_OVERHEAD + 7
    assert fmt.decode_record(raw) == fmt.Record(42, 1_700_000_000_123, fmt.KIND_MESSAGE, fmt.FLAG_PERSISTENT, b"payload")


def test_decode_record_at_a_position_inside_a_buffer():
    raw = b"junk" + fmt.encode_record(fmt.KIND_RAW, 0, 7, -5, b"") + b"trailing"
    record = fmt.decode_record(raw, 4)
    assert record is not None and record.offset == 7 and record.timestamp == -5 and record.payload == b""


@pytest.mark.parametrize("index", range(0, 40))
def test_any_flipped_byte_makes_the_record_fail_verification(index):
    raw = bytearray(fmt.encode_record(fmt.KIND_RAW, 1, 3, 9, b"12345678"))
    raw[index] ^= 0x10
    assert fmt.decode_record(raw) is None


def test_flipped_payload_byte_leaves_the_header_usable_for_skipping():
    raw = bytearray(fmt.encode_record(fmt.KIND_RAW, 0, 3, 9, b"12345678"))
    raw[30] ^= 0xFF
    header = fmt.decode_header(raw, 0)
    assert header is not None and header.size == len(raw)
    assert not fmt.verify_payload(raw, 0, header)


def test_truncated_record_does_not_decode():
    raw = fmt.encode_record(fmt.KIND_RAW, 0, 3, 9, b"12345678")
    assert fmt.decode_record(raw[:-1]) is None
    assert fmt.decode_record(raw[:10]) is None


def test_message_payload_round_trips_unicode_names_and_raw_properties():
    payload = fmt.encode_message("ex-é", "a.b.ü", b"\x90\x00\x02", b"\x00body\xff")
    assert fmt.decode_message(payload) == ("ex-é", "a.b.ü", b"\x90\x00\x02", b"\x00body\xff")


def test_message_names_longer_than_a_shortstr_are_refused():
    with pytest.raises(ValueError):
        fmt.encode_message("x" * 256, "", b"", b"")


def test_ack_record_round_trips_and_detects_damage():
    raw = bytearray(fmt.encode_ack(123456789))
    assert fmt.decode_ack(raw, 0) == 123456789
    raw[0] ^= 1
    assert fmt.decode_ack(raw, 0) is None


def test_file_names_carry_the_base_offset_in_twenty_digits():
    assert fmt.segment_name(42) == "00000000000000000042.seg"
    assert fmt.ack_name(42) == "00000000000000000042.ack"
    assert fmt.parse_base("00000000000000000042.seg", ".seg") == 42
    assert fmt.parse_base("42.seg", ".seg") is None
    assert fmt.parse_base("00000000000000000042.seg.torn-1", ".seg") is None


def test_segment_header_rejects_foreign_files():
    assert fmt.decode_segment_header(fmt.encode_segment_header(99)) == 99
    assert fmt.decode_segment_header(b"NOTASEGMENTHEADER") is None
