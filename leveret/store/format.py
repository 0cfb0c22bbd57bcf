"""The on-disk format of leveret's store: every byte layout, written down here and nowhere else.

All integers are little-endian. CRC32C is the Castagnoli polynomial (the `crc32c` package).

Segment file ``<base offset, 20 digits>.seg``
---------------------------------------------
A 16-byte file header, then records back to back::

    SEGMENT_HEADER  "<4sHHQ"  magic b"LVSG", format version (1), reserved (0), base offset

Record (28-byte header + payload + 4-byte trailer)::

    RECORD_HEADER   "<BBBBIQqI"
        magic        u8   0xA7, lets recovery find the next record after damage
        version      u8   1
        kind         u8   KIND_MESSAGE, KIND_RAW or KIND_DEFINITION
        flags        u8   meaning chosen by the writer (FLAG_PERSISTENT for messages)
        length       u32  payload length in bytes
        offset       u64  the record's offset in its log (monotonic, one per record)
        timestamp    i64  milliseconds since the epoch
        header_crc   u32  CRC32C of the 24 bytes before it
    payload         `length` bytes
    RECORD_TRAILER  "<I"  CRC32C of header (first 24 bytes) and payload, computed by continuing
                          from header_crc, so each byte is hashed once

Why a separate header CRC: a record whose payload is damaged but whose header checks out can be
skipped by its length; a record whose header is damaged is skipped by scanning for the next magic
byte followed by a header that checks out. Without it a flipped bit in `length` would swallow the
rest of the file.

Message payload (KIND_MESSAGE) carries everything a queue needs to rebuild itself in one read::

    MESSAGE_HEAD    "<BBI"  exchange length, routing key length, property bytes length
    exchange        UTF-8, at most 255 bytes (an AMQP shortstr)
    routing key     UTF-8, at most 255 bytes
    properties      the raw AMQP content-header property bytes, kept as received
    body            the rest of the payload, opaque

Batch payload (KIND_BATCH, streams only): one record holding many messages, which take the offsets
from the record's offset (the base) to base + span - 1, so the log's next offset moves by `span`::

    BATCH_HEAD      "<IBB"  span (u32, at least 1), batch format, exchange length
    exchange        UTF-8, at most 255 bytes: the exchange every message of the batch was published to
    batch           the messages in the batch format's own encoding, opaque to the store
                    (api.BATCH_FORMAT_KAFKA: one Kafka record batch, magic 2, its base offset the record's)

Ack file ``<base offset, 20 digits>.ack`` (one per segment of a queue)
----------------------------------------------------------------------
Fixed 12-byte records, no file header::

    ACK_RECORD      "<QI"   acked offset, CRC32C of the 8 offset bytes

A trailing partial record is a torn write and is cut off by recovery. An ack file is derived
data: losing it re-delivers messages (at-least-once), never loses them.

Definitions log ``definitions.log`` and snapshot ``definitions.snap``
----------------------------------------------------------------------
Both are a SEGMENT_HEADER (base offset 0) followed by KIND_DEFINITION records whose payload is
UTF-8 JSON. The snapshot is written to ``definitions.snap.tmp``, fsynced and renamed.

Clean-shutdown index ``clean.idx`` (one per queue directory, written by a clean close)
------------------------------------------------------------------------------------
Written by write-then-rename after the queue's data and acks are fsynced; deleted by the next open
whatever it holds, so only the first open after a clean close can use it::

    CLEAN_HEADER    "<4sHHIIQQ"  magic b"LVCI", version (1), reserved (0), segment count,
                                 ack file count, unacked record count, run count
    CLEAN_SEGMENT   "<QQqQqqqq"  per segment: base offset, file size, mtime (ns), record count,
                                 first offset (-1: none), last offset (-1: none), min and max timestamp
    CLEAN_ACK_FILE  "<QQq"       per ack file: base offset, file size, mtime (ns)
    runs            run count x "<qq": (first offset, length) of consecutive unacked offsets
    body sizes      unacked count x u32, in offset order
    timestamps      unacked count x i64, in offset order
    trailer         "<I" CRC32C of everything before it

The open trusts it only if its checksum holds and the segment and ack files on disk are exactly
those listed (names, sizes, modification times); otherwise it scans as after a crash.

Temporary files end in ``.tmp`` and are deleted by recovery; torn tails are copied aside to
``<file>.torn-<unix ms>`` before the file is truncated.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from crc32c import crc32c

FORMAT_VERSION = 1

SEGMENT_MAGIC = b"LVSG"
SEGMENT_HEADER = struct.Struct("<4sHHQ")
assert SEGMENT_HEADER.size == 16

RECORD_MAGIC = 0xA7
RECORD_HEADER = struct.Struct("<BBBBIQqI")
assert RECORD_HEADER.size == 28
# The header bytes covered by header_crc (everything before it).
RECORD_HEADER_CRC_SPAN = 24
RECORD_TRAILER = struct.Struct("<I")
assert RECORD_TRAILER.size == 4
RECORD_OVERHEAD = RECORD_HEADER.size + RECORD_TRAILER.size
# A length above this is treated as damage, not as a record to allocate memory for.
MAX_PAYLOAD = 1 << 30

KIND_MESSAGE = 1
KIND_RAW = 2
KIND_DEFINITION = 3
KIND_BATCH = 4
KINDS = frozenset((KIND_MESSAGE, KIND_RAW, KIND_DEFINITION, KIND_BATCH))

FLAG_PERSISTENT = 0x01

MESSAGE_HEAD = struct.Struct("<BBI")
assert MESSAGE_HEAD.size == 6

BATCH_HEAD = struct.Struct("<IBB")
assert BATCH_HEAD.size == 6
_BATCH_SPAN = struct.Struct("<I")

ACK_RECORD = struct.Struct("<QI")
assert ACK_RECORD.size == 12

CLEAN_INDEX_NAME = "clean.idx"
CLEAN_MAGIC = b"LVCI"
CLEAN_HEADER = struct.Struct("<4sHHIIQQ")
assert CLEAN_HEADER.size == 32
CLEAN_SEGMENT = struct.Struct("<QQqQqqqq")
assert CLEAN_SEGMENT.size == 64
CLEAN_ACK_FILE = struct.Struct("<QQq")
assert CLEAN_ACK_FILE.size == 24
CLEAN_RUN = struct.Struct("<qq")
assert CLEAN_RUN.size == 16
# A record header followed by a message payload's MESSAGE_HEAD: what an index hop unpacks.
MESSAGE_RECORD_HEAD = struct.Struct("<BBBBIQqIBBI")
assert MESSAGE_RECORD_HEAD.size == RECORD_HEADER.size + MESSAGE_HEAD.size

SEGMENT_SUFFIX = ".seg"
ACK_SUFFIX = ".ack"
TMP_SUFFIX = ".tmp"
TORN_INFIX = ".torn-"
NAME_DIGITS = 20

_u64 = struct.Struct("<Q")


class RecordHeader(NamedTuple):
    """A decoded record header; `size` is the whole record including header and trailer."""

    kind: int
    flags: int
    length: int
    offset: int
    timestamp: int

    @property
    def size(self) -> int:
        return RECORD_OVERHEAD + self.length


class Record(NamedTuple):
    """One verified record of a log."""

    offset: int
    timestamp: int
    kind: int
    flags: int
    payload: bytes


def segment_name(base_offset: int) -> str:
    """The file name of the segment starting at `base_offset`."""
    return f"{base_offset:0{NAME_DIGITS}d}{SEGMENT_SUFFIX}"


def ack_name(base_offset: int) -> str:
    """The file name of the ack file belonging to the segment at `base_offset`."""
    return f"{base_offset:0{NAME_DIGITS}d}{ACK_SUFFIX}"


def parse_base(name: str, suffix: str) -> int | None:
    """The base offset in a file name like ``00000000000000000042.seg``, or None if it is not one."""
    if not name.endswith(suffix):
        return None
    stem = name[: -len(suffix)]
    if len(stem) != NAME_DIGITS or not stem.isdigit():
        return None
    return int(stem)


def encode_segment_header(base_offset: int) -> bytes:
    """The 16 bytes that start every segment file."""
    return SEGMENT_HEADER.pack(SEGMENT_MAGIC, FORMAT_VERSION, 0, base_offset)


def decode_segment_header(data: bytes) -> int | None:
    """The base offset stored in a segment header, or None if the header is not ours."""
    if len(data) < SEGMENT_HEADER.size:
        return None
    magic, version, _reserved, base = SEGMENT_HEADER.unpack_from(data, 0)
    if magic != SEGMENT_MAGIC or version != FORMAT_VERSION:
        return None
    return base


def encode_record(kind: int, flags: int, offset: int, timestamp: int, payload: bytes) -> bytes:
    """A complete record: header, payload, trailer."""
    header = bytearray(RECORD_HEADER.size)
    RECORD_HEADER.pack_into(header, 0, RECORD_MAGIC, FORMAT_VERSION, kind, flags, len(payload), offset, timestamp, 0)
    header_crc = crc32c(memoryview(header)[:RECORD_HEADER_CRC_SPAN])
    struct.pack_into("<I", header, RECORD_HEADER_CRC_SPAN, header_crc)
    return b"".join((header, payload, RECORD_TRAILER.pack(crc32c(payload, header_crc))))


def encode_record_parts(kind: int, flags: int, offset: int, timestamp: int, parts: list[bytes]) -> list[bytes]:
    """The same record as `encode_record` of the parts joined, left in pieces (header, the parts, trailer), so
    a large payload is written as it is rather than copied into one buffer first."""
    header = bytearray(RECORD_HEADER.size)
    RECORD_HEADER.pack_into(header, 0, RECORD_MAGIC, FORMAT_VERSION, kind, flags, sum(map(len, parts)), offset,
                            timestamp, 0)
    crc = crc32c(memoryview(header)[:RECORD_HEADER_CRC_SPAN])
    struct.pack_into("<I", header, RECORD_HEADER_CRC_SPAN, crc)
    for part in parts:
        crc = crc32c(part, crc)
    return [bytes(header), *parts, RECORD_TRAILER.pack(crc)]


def decode_header(buf: bytes | bytearray | memoryview, pos: int) -> RecordHeader | None:
    """The header at `pos` if its magic, version, kind, length and header CRC check out, else None.

    The caller must ensure RECORD_HEADER.size bytes are available at `pos`.
    """
    magic, version, kind, flags, length, offset, timestamp, header_crc = RECORD_HEADER.unpack_from(buf, pos)
    if magic != RECORD_MAGIC or version != FORMAT_VERSION or kind not in KINDS or length > MAX_PAYLOAD:
        return None
    if crc32c(memoryview(buf)[pos : pos + RECORD_HEADER_CRC_SPAN]) != header_crc:
        return None
    return RecordHeader(kind, flags, length, offset, timestamp)


def verify_payload(buf: bytes | bytearray | memoryview, pos: int, header: RecordHeader) -> bool:
    """True if the record at `pos` (whose header is `header`) has an intact payload and trailer."""
    view = memoryview(buf)
    header_crc = struct.unpack_from("<I", view, pos + RECORD_HEADER_CRC_SPAN)[0]
    start = pos + RECORD_HEADER.size
    end = start + header.length
    (trailer,) = RECORD_TRAILER.unpack_from(view, end)
    return crc32c(view[start:end], header_crc) == trailer


def decode_record(buf: bytes | bytearray | memoryview, pos: int = 0) -> Record | None:
    """The verified record at `pos`, or None if it is incomplete or damaged."""
    if len(buf) - pos < RECORD_OVERHEAD:
        return None
    header = decode_header(buf, pos)
    if header is None or len(buf) - pos < header.size or not verify_payload(buf, pos, header):
        return None
    start = pos + RECORD_HEADER.size
    return Record(header.offset, header.timestamp, header.kind, header.flags, bytes(buf[start : start + header.length]))


def encode_message(exchange: str, routing_key: str, props_raw: bytes, body: bytes) -> bytes:
    """The payload of a KIND_MESSAGE record."""
    ex = exchange.encode()
    rk = routing_key.encode()
    if len(ex) > 255 or len(rk) > 255:
        raise ValueError("exchange and routing key are AMQP shortstrs (at most 255 bytes)")
    return b"".join((MESSAGE_HEAD.pack(len(ex), len(rk), len(props_raw)), ex, rk, props_raw, body))


def decode_message(payload: bytes) -> tuple[str, str, bytes, bytes]:
    """(exchange, routing key, raw property bytes, body) from a KIND_MESSAGE payload."""
    ex_len, rk_len, props_len = MESSAGE_HEAD.unpack_from(payload, 0)
    pos = MESSAGE_HEAD.size
    exchange = payload[pos : pos + ex_len].decode()
    pos += ex_len
    routing_key = payload[pos : pos + rk_len].decode()
    pos += rk_len
    props_raw = payload[pos : pos + props_len]
    body = payload[pos + props_len :]
    return exchange, routing_key, props_raw, body


def encode_batch_head(span: int, batch_format: int, exchange: str) -> bytes:
    """The start of a KIND_BATCH payload, up to the batch's own bytes."""
    ex = exchange.encode()
    if len(ex) > 255 or span < 1:
        raise ValueError("a batch spans at least one offset; its exchange is an AMQP shortstr")
    return BATCH_HEAD.pack(span, batch_format, len(ex)) + ex


def payload_span(kind: int, buf: bytes | bytearray | memoryview, pos: int = 0) -> int:
    """How many offsets the record whose payload starts at `pos` takes: a batch's span, 1 for any other."""
    if kind != KIND_BATCH or len(buf) - pos < _BATCH_SPAN.size:
        return 1
    return _BATCH_SPAN.unpack_from(buf, pos)[0] or 1


def encode_ack(offset: int) -> bytes:
    """One ack record."""
    raw = _u64.pack(offset)
    return ACK_RECORD.pack(offset, crc32c(raw))


def decode_ack(buf: bytes | bytearray | memoryview, pos: int) -> int | None:
    """The acked offset at `pos`, or None if the record's CRC does not match."""
    offset, crc = ACK_RECORD.unpack_from(buf, pos)
    return offset if crc32c(_u64.pack(offset)) == crc else None
