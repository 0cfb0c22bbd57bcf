"""The sans-IO codec: schemas, record batches, framing, ApiVersions (no sockets)."""

from __future__ import annotations

import struct

import pytest
from crc32c import crc32c

from leveret.kafka import apis, errors, frames
from leveret.kafka.records import BATCH_HEADER, decode_batches, encode_batch, encode_record
from leveret.kafka.wire import INT16, INT32, KafkaDecodeError, Reader, decode, encode


def test_a_request_schema_round_trips_at_every_version() -> None:
    request = {"replica_id": -1, "max_wait_ms": 500, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 1,
               "session_id": 0, "session_epoch": -1, "rack_id": "r1",
               "topics": [{"topic": "t", "partitions": [{"partition": 3, "current_leader_epoch": -1,
                                                          "fetch_offset": 42, "log_start_offset": -1,
                                                          "partition_max_bytes": 1024}]}],
               "forgotten_topics": []}
    for version in range(4, 12):
        out: list[bytes] = []
        encode(apis.FETCH_REQUEST, version, request, out)
        back = decode(apis.FETCH_REQUEST, version, Reader(b"".join(out)))
        assert back["topics"][0]["partitions"][0]["fetch_offset"] == 42
        assert ("rack_id" in back) == (version >= 11)
        assert ("session_id" in back) == (version >= 7)


def test_truncated_input_and_lying_counts_are_decode_errors() -> None:
    out: list[bytes] = []
    encode(apis.METADATA_REQUEST, 1, {"topics": [{"name": "orders"}]}, out)
    data = b"".join(out)
    with pytest.raises(KafkaDecodeError):
        decode(apis.METADATA_REQUEST, 1, Reader(data[:-2]))
    with pytest.raises(KafkaDecodeError):
        decode(apis.METADATA_REQUEST, 1, Reader(INT32.pack(1_000_000)))


def test_a_batch_round_trips_and_its_crc_covers_from_the_attributes_on() -> None:
    body = bytearray()
    encode_record(body, 0, 0, b"k", b"v0", [("h", b"x"), ("n", None)])
    encode_record(body, 1, 5, None, None, [])
    data = encode_batch(100, 1_000, 1_005, 2, 1, body)
    (batch,) = decode_batches(data)
    assert [r.key for r in batch.records] == [b"k", None]
    assert [r.value for r in batch.records] == [b"v0", None]
    assert batch.records[0].headers == [("h", b"x"), ("n", None)]
    assert [r.timestamp for r in batch.records] == [1_000, 1_005]
    # The base offset is outside the CRC: patching it keeps the batch valid.
    patched = struct.pack(">q", 7) + data[8:]
    assert decode_batches(patched)[0].records[1].value is None
    crc = struct.unpack_from(">I", data, 17)[0]
    assert crc == crc32c(data[21:])
    corrupt = bytearray(data)
    corrupt[-1] ^= 0xFF
    with pytest.raises(KafkaDecodeError):
        decode_batches(bytes(corrupt))


def test_gzip_batches_are_read() -> None:
    import gzip

    body = bytearray()
    encode_record(body, 0, 0, None, b"compressed", [])
    plain = encode_batch(0, 0, 0, 1, 0, body)
    compressed = gzip.compress(bytes(body))
    fields = list(BATCH_HEADER.unpack_from(plain, 0))
    fields[5] = 1  # attributes: gzip
    after_crc = struct.pack(">hiqqqhii", *fields[5:]) + compressed
    data = struct.pack(">qiibI", 0, len(after_crc) + 9, 0, 2, crc32c(after_crc)) + after_crc
    assert decode_batches(data)[0].records[0].value == b"compressed"


def test_frames_are_split_whatever_the_reads() -> None:
    reader = frames.FrameReader()
    payloads = [b"a" * 10, b"b" * 20]
    stream = b"".join(INT32.pack(len(p)) + p for p in payloads)
    got = []
    for i in range(len(stream)):
        got += reader.feed(stream[i : i + 1])
    assert got == payloads
    with pytest.raises(KafkaDecodeError):
        frames.FrameReader().feed(INT32.pack(-5))


@pytest.mark.parametrize("read_size", [1, 1000, 65536, 300_000])
def test_large_frames_between_small_ones_are_split_whatever_the_reads(read_size: int) -> None:
    payloads = [b"s" * 9, bytes(range(256)) * 400, b"t" * 12, b"u" * frames.TAKE_WHOLE, b"v" * 200_000, b"w" * 8]
    stream = b"".join(INT32.pack(len(p)) + p for p in payloads)
    reader = frames.FrameReader()
    got: list = []
    for i in range(0, len(stream), read_size):
        got += reader.feed(stream[i : i + read_size])
    assert [bytes(g) for g in got] == payloads
    # The large ones are handed over in a buffer of their own, writable (a produce writes offsets into it).
    assert [type(g) for g in got] == [bytes, bytearray, bytes, bytearray, bytearray, bytes]


def test_a_large_request_buffer_is_reused_only_once_nothing_refers_to_it() -> None:
    reader = frames.FrameReader()

    def request(fill: bytes) -> bytearray:
        payload = fill * 100_000
        (got,) = reader.feed(INT32.pack(len(payload)) + payload[:10]) + reader.feed(payload[10:])
        assert got == payload
        return got

    first = request(b"a")
    kept = memoryview(first)[:4]  # a stored batch's view of it, as data.py keeps
    del first
    second = request(b"b")
    assert kept.obj is not second and bytes(kept) == b"aaaa"
    del second
    assert request(b"c") is not kept.obj
    assert bytes(kept) == b"aaaa"


def _versions_response(version: int) -> tuple[int, list[bytes]]:
    header = frames.RequestHeader(apis.API_VERSIONS, version, 9, "c")
    frame = b"".join(frames.api_versions(header))
    size, correlation = struct.unpack_from(">ii", frame)
    assert size == len(frame) - 4 and correlation == 9
    return INT16.unpack_from(frame, 8)[0], frame


def test_api_versions_too_new_gets_error_35_and_a_v0_body() -> None:
    code, frame = _versions_response(7)
    assert code == errors.UNSUPPORTED_VERSION
    body = decode(apis.API_VERSIONS_RESPONSE, 0, Reader(frame[8:]))
    assert {k["api_key"]: (k["min_version"], k["max_version"]) for k in body["api_keys"]} == apis.VERSIONS
    for version in (0, 1, 2, 3):
        assert _versions_response(version)[0] == errors.NONE


def test_the_advertised_ranges_are_the_issues() -> None:
    # Pinned: each range was checked against what librdkafka 2.x, kafka-python 3 and aiokafka send (docs/kafka.md).
    assert apis.VERSIONS == {0: (3, 8), 1: (4, 11), 2: (1, 5), 3: (0, 8), 8: (2, 7), 9: (1, 5), 10: (0, 2),
                             11: (0, 5), 12: (0, 3), 13: (0, 3), 14: (0, 3), 15: (0, 4), 16: (0, 2), 18: (0, 3),
                             19: (2, 4), 20: (1, 3), 22: (0, 1), 17: (1, 1), 36: (0, 1)}
