"""Kafka record batches (magic 2): decoding what producers send, encoding what consumers fetch.

A batch is a 61-byte header then its records (compressed as one block when the attributes say so)::

    base_offset int64 | batch_length int32 | partition_leader_epoch int32 | magic int8 (2) | crc uint32 |
    attributes int16 | last_offset_delta int32 | base_timestamp int64 | max_timestamp int64 |
    producer_id int64 | producer_epoch int16 | base_sequence int32 | record_count int32 | records...

The CRC-32C covers everything from `attributes` on, so a batch's base offset can be changed without a new
CRC. Each record is varint-framed: length, attributes int8, timestamp delta, offset delta, key, value, and
headers (each a key and a nullable value), lengths as zigzag varints with -1 for null.

Produce requests from Kafka 0.11 on carry magic 2 only (Produce v3+, all leveret accepts); older magic is
refused as a corrupt message, as a Kafka broker refuses it on those versions.
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

from crc32c import crc32c

from leveret.kafka.wire import KafkaDecodeError

BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")
BATCH_HEADER_SIZE = BATCH_HEADER.size  # 61
CRC_START = 21  # the attributes field: where the CRC's coverage begins
LENGTH_FIELD_END = 12  # base_offset and batch_length are not counted in batch_length

COMPRESSION_MASK = 0x07
NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4
TRANSACTIONAL = 0x10
CONTROL = 0x20


class UnsupportedCompression(Exception):
    """The batch uses a codec whose package is not installed (Kafka's UNSUPPORTED_COMPRESSION_TYPE)."""


class Record(NamedTuple):
    offset_delta: int
    timestamp: int  # ms
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]




def _decompress(codec: int, data: bytes) -> bytes:
    if codec == GZIP:
        return zlib.decompress(data, 47)  # gzip or zlib header, detected
    try:
        if codec == SNAPPY:
            import snappy  # type: ignore[import-not-found]

            if data.startswith(b"\x82SNAPPY\x00"):  # xerial framing (Java and kafka-python producers)
                out, pos = bytearray(), 16
                while pos < len(data):
                    (n,) = struct.unpack_from(">i", data, pos)
                    out += snappy.decompress(data[pos + 4 : pos + 4 + n])
                    pos += 4 + n
                return bytes(out)
            return snappy.decompress(data)
        if codec == LZ4:
            import lz4.frame  # type: ignore[import-not-found]

            return lz4.frame.decompress(data)
        if codec == ZSTD:
            import zstandard  # type: ignore[import-not-found]

            return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    except ImportError:
        raise UnsupportedCompression(codec) from None
    raise KafkaDecodeError(f"unknown compression codec {codec}")


class BatchView(NamedTuple):
    """A record batch's header fields and where it lies in the data it came in, its records not decoded."""

    start: int
    end: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    count: int


class Batch(NamedTuple):
    """A batch with its records decoded."""

    header: BatchView
    records: list[Record]


def scan_batches(data: bytes | memoryview) -> list[BatchView]:
    """The batches in a Produce request's records field, each header and CRC checked and its compression
    codec known to be available, the records left encoded (a produce keeps them as they are); KafkaDecodeError
    when a batch is malformed, UnsupportedCompression when its codec's package is not installed."""
    views = []
    pos = 0
    end = len(data)
    while pos < end:
        if end - pos < BATCH_HEADER_SIZE:
            raise KafkaDecodeError("truncated record batch")
        (_base, length, _epoch, magic, crc, attributes, last_delta, base_ts, max_ts, pid, pepoch, base_seq,
         count) = BATCH_HEADER.unpack_from(data, pos)
        if magic != 2:
            raise KafkaDecodeError(f"record batch magic {magic}")
        batch_end = pos + LENGTH_FIELD_END + length
        if length < BATCH_HEADER_SIZE - LENGTH_FIELD_END or batch_end > end:
            raise KafkaDecodeError("record batch length beyond the data")
        if crc32c(memoryview(data)[pos + CRC_START : batch_end]) != crc:
            raise KafkaDecodeError("record batch CRC mismatch")
        codec = attributes & COMPRESSION_MASK
        if codec and codec not in _available_codecs():
            if codec > ZSTD:
                raise KafkaDecodeError(f"unknown compression codec {codec}")
            raise UnsupportedCompression(codec)
        views.append(BatchView(pos, batch_end, attributes, last_delta, base_ts, max_ts, pid, pepoch, base_seq, count))
        pos = batch_end
    return views


_codecs: frozenset[int] | None = None


def _available_codecs() -> frozenset[int]:
    """The compression codecs whose packages import here (looked up once): gzip always."""
    global _codecs
    if _codecs is None:
        found = {GZIP}
        try:
            import snappy  # type: ignore[import-not-found]  # noqa: F401

            found.add(SNAPPY)
        except ImportError:
            pass
        try:
            import lz4.frame  # type: ignore[import-not-found]  # noqa: F401

            found.add(LZ4)
        except ImportError:
            pass
        try:
            import zstandard  # type: ignore[import-not-found]  # noqa: F401

            found.add(ZSTD)
        except ImportError:
            pass
        _codecs = frozenset(found)
    return _codecs


def batch_records(batch: bytes | memoryview) -> list[Record]:
    """The records of one whole batch (its header first), decompressed and decoded; KafkaDecodeError when
    they are malformed. The CRC is not checked here (scan_batches did, when the batch came in)."""
    if len(batch) < BATCH_HEADER_SIZE:
        raise KafkaDecodeError("truncated record batch")
    fields = BATCH_HEADER.unpack_from(batch, 0)
    attributes, base_ts, count = fields[5], fields[7], fields[12]
    body = bytes(batch[BATCH_HEADER_SIZE:])
    codec = attributes & COMPRESSION_MASK
    if codec:
        body = _decompress(codec, body)
    return _decode_records(body, count, base_ts)


def decode_batches(data: bytes) -> list[Batch]:
    """Every batch in a Produce request's records field, records decoded; KafkaDecodeError when any is
    malformed."""
    view = memoryview(data)
    return [Batch(b, batch_records(view[b.start : b.end])) for b in scan_batches(data)]


def _decode_records(body: bytes, count: int, base_ts: int) -> list[Record]:
    records = []
    pos = 0
    n = len(body)

    def varint() -> int:
        nonlocal pos
        shift = value = 0
        while True:
            if pos >= n or shift > 63:
                raise KafkaDecodeError("bad varint in a record")
            b = body[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return (value >> 1) ^ -(value & 1)
            shift += 7

    def blob() -> bytes | None:
        nonlocal pos
        size = varint()
        if size < 0:
            return None
        start = pos
        pos += size
        if pos > n:
            raise KafkaDecodeError("record field beyond the batch")
        return body[start:pos]

    for _ in range(count):
        size = varint()
        end = pos + size
        if size < 0 or end > n:
            raise KafkaDecodeError("record length beyond the batch")
        pos += 1  # attributes (unused)
        ts_delta = varint()
        offset_delta = varint()
        key = blob()
        value = blob()
        headers = []
        for _ in range(varint()):
            name = blob()
            if name is None:
                raise KafkaDecodeError("null header key")
            headers.append((name.decode("utf-8", "replace"), blob()))
        if pos != end:
            raise KafkaDecodeError("record length does not match its fields")
        records.append(Record(offset_delta, base_ts + ts_delta, key, value, headers))
    if pos != n:
        raise KafkaDecodeError("record count does not match the batch")
    return records


def _varint_of(value: int) -> bytes:
    """The zigzag varint of `value`, computed."""
    value = (value << 1) ^ (value >> 63)
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# The varints of small non-negative values, looked up rather than computed (the fetch path writes several per
# record: lengths, deltas).
_SMALL = 1 << 14
_ZIGZAG = [_varint_of(v) for v in range(_SMALL)]


def encode_record(out: bytearray, offset_delta: int, ts_delta: int, key: bytes | None, value: bytes | None,
                  headers: list[tuple[str, bytes | None]]) -> None:
    """Append one record (its length prefix included) to `out`. Varints inline: this runs per fetched record."""
    table, small = _ZIGZAG, _SMALL
    parts = [b"\x00",
             table[ts_delta] if 0 <= ts_delta < small else _varint_of(ts_delta),
             table[offset_delta] if 0 <= offset_delta < small else _varint_of(offset_delta)]
    for blob in (key, value):
        if blob is None:
            parts.append(b"\x01")  # zigzag(-1)
        else:
            n = len(blob)
            parts.append(table[n] if n < small else _varint_of(n))
            parts.append(blob)
    parts.append(table[len(headers)] if len(headers) < small else _varint_of(len(headers)))
    for name, hvalue in headers:
        raw = name.encode()
        parts.append(table[len(raw)] if len(raw) < small else _varint_of(len(raw)))
        parts.append(raw)
        if hvalue is None:
            parts.append(b"\x01")
        else:
            parts.append(table[len(hvalue)] if len(hvalue) < small else _varint_of(len(hvalue)))
            parts.append(hvalue)
    body = b"".join(parts)
    n = len(body)
    out += table[n] if n < small else _varint_of(n)
    out += body


def encode_batch(base_offset: int, base_timestamp: int, max_timestamp: int, count: int, last_offset_delta: int,
                 records: bytes | bytearray) -> bytes:
    """One uncompressed batch of `count` records already encoded with `encode_record` (no producer id)."""
    producer_id, producer_epoch, base_sequence = -1, -1, -1
    after_crc = struct.pack(">hiqqqhii", 0, last_offset_delta, base_timestamp, max_timestamp, producer_id, producer_epoch,
                            base_sequence, count) + records
    crc = crc32c(after_crc)
    length = len(after_crc) + 9  # partition_leader_epoch, magic, crc
    return struct.pack(">qiibI", base_offset, length, 0, 2, crc) + after_crc
