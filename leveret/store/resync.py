"""The resynchronising reader every log file is read with: intact records out, damaged regions skipped.

A record is intact when its header CRC, payload CRC and (for logs whose offsets increase) its offset all
check out. Damage (a bad header, a bad CRC, an impossible length) is not the end of the file: the scan
looks for the next position whose header AND checksum verify and carries on from there, so valid records
after damage are kept; only damage that runs to the end of the file is a torn tail. recovery.py decides
what to do with what this finds (cut, copy aside, report); this module only reads.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from crc32c import crc32c

from leveret.store.format import (
    ACK_RECORD,
    FORMAT_VERSION,
    KIND_BATCH,
    KINDS,
    RECORD_HEADER,
    RECORD_HEADER_CRC_SPAN,
    RECORD_MAGIC,
    RECORD_OVERHEAD,
    RECORD_TRAILER,
    decode_ack,
    decode_header,
    payload_span,
    verify_payload,
)

SCAN_CHUNK = 1024 * 1024
_MAGIC = bytes((RECORD_MAGIC,))


class FileWindow:
    """Positional reads of a file through one cached chunk, so scanning never holds more than a chunk or a record."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self.start = 0
        self.buf = b""

    def get(self, position: int, length: int) -> tuple[bytes, int] | None:
        """(buffer, index of `position` in it) with `length` bytes available, or None past the end."""
        if position + length > self.size:
            return None
        if not (self.start <= position and position + length <= self.start + len(self.buf)):
            self.start = position
            self.buf = os.pread(self.fd, max(length, SCAN_CHUNK), position)
            if len(self.buf) < length:
                return None
        return self.buf, position - self.start


class BufferWindow:
    """The same reads over bytes already in memory (small files: definitions, tracked offsets)."""

    start = 0

    def __init__(self, data: bytes) -> None:
        self.buf = data
        self.size = len(data)

    def get(self, position: int, length: int) -> tuple[bytes, int] | None:
        return (self.buf, position) if position + length <= self.size else None


Window = FileWindow | BufferWindow
# note(offset, timestamp, file position, record size): called for every intact record, in file order.
NoteRecord = Callable[[int, int, int, int], None]
# skip(file position, length, reason): called for every damaged region with an intact record after it.
SkipRegion = Callable[[int, int, str], None]


def _fits(offset: int, min_offset: int, last: int | None, increasing: bool) -> bool:
    return offset >= min_offset and (not increasing or last is None or offset > last)


def _valid_record_at(window: Window, position: int, min_offset: int, last: int | None, increasing: bool):
    """The header of an intact record at `position` that fits the log's order, else None."""
    got = window.get(position, RECORD_OVERHEAD)
    if got is None:
        return None
    header = decode_header(got[0], got[1])
    if header is None or not _fits(header.offset, min_offset, last, increasing):
        return None
    got = window.get(position, header.size)
    if got is None or not verify_payload(got[0], got[1], header):
        return None
    return header


def _resync(window: Window, position: int, min_offset: int, last: int | None, increasing: bool) -> int | None:
    """The position of the next intact record after damage at `position`, or None if there is none."""
    probe = position + 1
    while probe + RECORD_OVERHEAD <= window.size:
        got = window.get(probe, RECORD_OVERHEAD)
        if got is None:
            return None
        buf, i = got
        found = buf.find(_MAGIC, i)
        if found < 0:
            probe = window.start + len(buf)
            continue
        probe = window.start + found
        if _valid_record_at(window, probe, min_offset, last, increasing) is not None:
            return probe
        probe += 1
    return None


def scan_records(
    window: Window,
    position: int,
    note: NoteRecord,
    skip: SkipRegion,
    *,
    min_offset: int = 0,
    increasing: bool = True,
    spans: bool = False,
) -> tuple[int, str | None]:
    """Walk the records of one log file from `position`: the one scanner every log reader uses.

    A KIND_BATCH record takes `span` offsets (format.py), so the next record's offset must pass its last
    one; with `spans` its span goes to `note` as a fifth argument when it is not 1.

    Every intact record (header CRC, payload CRC, and with `increasing` an offset above the last
    one accepted and at least `min_offset`) goes to `note`. A damaged region (bad header, bad CRC,
    impossible length) is resynchronised over: the scan looks for the next position whose header
    AND checksum verify, hands the region in between to `skip`, and carries on, so valid records
    after damage are kept. Returns (end, reason): the position where intact data ends (the file size
    when reason is None) and, if damage runs to the end of the file, why (a torn tail to cut off).
    """
    size = window.size
    last: int | None = None
    unpack = RECORD_HEADER.unpack_from
    unpack_trailer = RECORD_TRAILER.unpack_from
    while position < size:
        # Fast path: every intact record inside the cached chunk, fields unpacked inline.
        got = window.get(position, RECORD_OVERHEAD)
        if got is not None:
            buf, i = got
            view = memoryview(buf)
            limit = len(buf) - RECORD_TRAILER.size
            chunk_start = window.start
            while i + RECORD_OVERHEAD <= len(buf):
                magic, version, kind, _flags, length, offset, timestamp, header_crc = unpack(buf, i)
                end = i + RECORD_HEADER.size + length
                if (
                    end > limit
                    or magic != RECORD_MAGIC
                    or version != FORMAT_VERSION
                    or kind not in KINDS
                    or offset < min_offset
                    or (increasing and last is not None and offset <= last)
                    or crc32c(view[i : i + RECORD_HEADER_CRC_SPAN]) != header_crc
                    or crc32c(view[i + RECORD_HEADER.size : end], header_crc) != unpack_trailer(buf, end)[0]
                ):
                    break
                if kind == KIND_BATCH:
                    span = payload_span(kind, buf, i + RECORD_HEADER.size)
                    if spans:
                        note(offset, timestamp, chunk_start + i, end + RECORD_TRAILER.size - i, span)
                    else:
                        note(offset, timestamp, chunk_start + i, end + RECORD_TRAILER.size - i)
                    last = offset + span - 1
                else:
                    note(offset, timestamp, chunk_start + i, end + RECORD_TRAILER.size - i)
                    last = offset
                i = end + RECORD_TRAILER.size
            view.release()
            if chunk_start + i != position:
                position = chunk_start + i
                continue
        # Slow path: one record that crosses the chunk end, or damage.
        header = None
        if got is not None:
            header = decode_header(got[0], got[1])
            if header is not None and not _fits(header.offset, min_offset, last, increasing):
                header = None
        if header is not None:
            got = window.get(position, header.size)
            if got is not None and verify_payload(got[0], got[1], header):
                span = payload_span(header.kind, got[0], got[1] + RECORD_HEADER.size)
                if spans and span != 1:
                    note(header.offset, header.timestamp, position, header.size, span)
                else:
                    note(header.offset, header.timestamp, position, header.size)
                last = header.offset + span - 1
                position += header.size
                continue
            reason = "incomplete record" if got is None else "payload checksum mismatch"
        else:
            reason = "incomplete header" if got is None else "bad record header"
        following = _resync(window, position, min_offset, last, increasing)
        if following is None:
            return position, reason
        skip(position, following - position, reason)
        position = following
    return position, None


def scan_acks(data: bytes, skip: SkipRegion) -> tuple[list[int], int]:
    """(acked offsets in file order, end of intact data) of an ack file's bytes, resynchronising over damage.

    Ack records are 12 bytes with a CRC of their offset; a region that does not verify (a torn
    write in the middle, flipped bits) is skipped up to the next position holding a record that
    verifies. Damage reaching the end of the data is a torn tail: the returned end is where it starts.
    """
    offsets: list[int] = []
    size = len(data)
    step = ACK_RECORD.size
    position = 0
    while position + step <= size:
        offset = decode_ack(data, position)
        if offset is not None:
            offsets.append(offset)
            position += step
            continue
        probe = position + 1
        while probe + step <= size and decode_ack(data, probe) is None:
            probe += 1
        if probe + step > size:
            return offsets, position
        skip(position, probe - position, "ack checksum mismatch")
        position = probe
    return offsets, position
