"""Recovery: make a directory of segments and ack files consistent again, and say what was done.

Total: it never raises on bad data (only on the operating system failing, e.g. permissions). It
distrusts every relation between files:

* a torn tail (an incomplete or damaged record with no intact record after it) is copied aside to
  ``<segment>.torn-<unix ms>`` and the segment is truncated before it;
* a damaged record with intact records after it is skipped and reported (file, position, length);
  the scan resynchronises on the next record magic whose header CRC checks out;
* a segment whose file header is not ours is renamed aside the same way, whole;
* ack files without a segment, ack records for offsets the segment does not hold (including
  offsets past the recovered end, which new appends would reuse), torn ack tails and ack records
  with a bad CRC are removed, the ack file rewritten atomically;
* stale ``*.tmp`` files are deleted.

The scan streams every segment once in READ_CHUNK pieces, verifies every CRC and rebuilds the
sparse index as it goes, so memory stays bounded and no saved index needs trusting.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field

from crc32c import crc32c

from leveret.store.format import (
    ACK_RECORD,
    FORMAT_VERSION,
    KINDS,
    RECORD_HEADER,
    RECORD_HEADER_CRC_SPAN,
    RECORD_TRAILER,
    ACK_SUFFIX,
    RECORD_MAGIC,
    RECORD_OVERHEAD,
    SEGMENT_HEADER,
    SEGMENT_SUFFIX,
    TMP_SUFFIX,
    TORN_INFIX,
    decode_ack,
    decode_header,
    decode_segment_header,
    encode_ack,
    encode_segment_header,
    parse_base,
    verify_payload,
)
from leveret.store.segment import Segment

SCAN_CHUNK = 1024 * 1024
_MAGIC = bytes((RECORD_MAGIC,))


@dataclass(frozen=True, slots=True)
class Damage:
    """A region of a file recovery did not accept: where it was, how long, and why."""

    file: str
    position: int
    length: int
    reason: str


@dataclass
class RecoveryReport:
    """Everything recovery counted, repaired and removed in one directory (or several, merged)."""

    segments: int = 0
    records: int = 0
    bytes: int = 0
    torn_tails: list[Damage] = field(default_factory=list)
    torn_copies: list[str] = field(default_factory=list)
    corrupt_records: list[Damage] = field(default_factory=list)
    unreadable_segments: list[str] = field(default_factory=list)
    ack_records: int = 0
    torn_ack_bytes: int = 0
    corrupt_acks: int = 0
    orphaned_acks: int = 0
    orphaned_ack_files: list[str] = field(default_factory=list)
    stale_tmp_files: list[str] = field(default_factory=list)
    deleted_acked_segments: list[str] = field(default_factory=list)
    # Queues opened from a clean-shutdown index (no scan), and clean indexes ignored (then scanned).
    trusted_clean_indexes: int = 0
    rejected_clean_indexes: list[Damage] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        """True if recovery found nothing to repair."""
        return not (
            self.torn_tails
            or self.corrupt_records
            or self.unreadable_segments
            or self.torn_ack_bytes
            or self.corrupt_acks
            or self.orphaned_acks
            or self.orphaned_ack_files
            or self.stale_tmp_files
        )

    def merge(self, other: RecoveryReport) -> None:
        """Add another report's counts and findings to this one."""
        for name, value in vars(other).items():
            mine = getattr(self, name)
            if isinstance(mine, list):
                mine.extend(value)
            else:
                setattr(self, name, mine + value)


class _Window:
    """Positional reads through one cached chunk, so scanning never holds more than a chunk or a record."""

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


def _valid_record_at(window: _Window, position: int, base: int, last: int | None):
    """The header of an intact record at `position` that fits the log's order, else None."""
    got = window.get(position, RECORD_OVERHEAD)
    if got is None:
        return None
    header = decode_header(got[0], got[1])
    if header is None or header.offset < base or (last is not None and header.offset <= last):
        return None
    got = window.get(position, header.size)
    if got is None or not verify_payload(got[0], got[1], header):
        return None
    return header


def _resync(window: _Window, position: int, base: int, last: int | None) -> int | None:
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
        if _valid_record_at(window, probe, base, last) is not None:
            return probe
        probe += 1
    return None


def _now_ms() -> int:
    return int(time.time() * 1000)


def copy_aside_and_truncate(path: str, position: int, report: RecoveryReport, reason: str) -> None:
    """Copy the bytes from `position` to the end into ``<path>.torn-<ms>``, then truncate there."""
    size = os.path.getsize(path)
    torn_path = f"{path}{TORN_INFIX}{_now_ms()}"
    with open(path, "rb") as src, open(torn_path, "wb") as dst:
        src.seek(position)
        shutil.copyfileobj(src, dst)
        dst.flush()
        os.fsync(dst.fileno())
    with open(path, "r+b") as f:
        f.truncate(position)
        f.flush()
        os.fsync(f.fileno())
    report.torn_tails.append(Damage(path, position, size - position, reason))
    report.torn_copies.append(torn_path)


def scan_segment(directory: str, base: int, report: RecoveryReport) -> Segment | None:
    """Verify one segment file, repair it in place, and return it with its index rebuilt.

    Returns None if the file's header is not a segment header (the file is renamed aside).
    """
    segment = Segment(directory, base, 0)
    path = segment.path
    size = os.path.getsize(path)
    if size < SEGMENT_HEADER.size:
        # A segment created just before a crash: rewrite its header, keep what was there aside.
        if size:
            copy_aside_and_truncate(path, 0, report, "incomplete segment header")
        with open(path, "wb") as f:
            f.write(encode_segment_header(base))
            f.flush()
            os.fsync(f.fileno())
        segment.size = SEGMENT_HEADER.size
        report.segments += 1
        return segment
    fd = os.open(path, os.O_RDONLY)
    try:
        header_base = decode_segment_header(os.pread(fd, SEGMENT_HEADER.size, 0))
        if header_base != base:
            os.close(fd)
            fd = -1
            aside = f"{path}{TORN_INFIX}{_now_ms()}"
            os.replace(path, aside)
            report.unreadable_segments.append(path)
            report.torn_copies.append(aside)
            return None
        window = _Window(fd, size)
        position = SEGMENT_HEADER.size
        last: int | None = None
        torn_at: int | None = None
        torn_reason = ""
        note = segment.note_record
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
                        or offset < base
                        or (last is not None and offset <= last)
                        or crc32c(view[i : i + RECORD_HEADER_CRC_SPAN]) != header_crc
                        or crc32c(view[i + RECORD_HEADER.size : end], header_crc) != unpack_trailer(buf, end)[0]
                    ):
                        break
                    note(offset, timestamp, chunk_start + i, end + RECORD_TRAILER.size - i)
                    last = offset
                    i = end + RECORD_TRAILER.size
                view.release()
                if chunk_start + i != position:
                    position = chunk_start + i
                    continue
            # Slow path: one record that crosses the chunk end, or damage.
            # Fast path: the whole record is inside the cached chunk.
            got = window.get(position, RECORD_OVERHEAD)
            header = None
            if got is not None:
                header = decode_header(got[0], got[1])
                if header is not None and (header.offset < base or (last is not None and header.offset <= last)):
                    header = None
            if header is not None:
                got = window.get(position, header.size)
                if got is not None and verify_payload(got[0], got[1], header):
                    note(header.offset, header.timestamp, position, header.size)
                    last = header.offset
                    position += header.size
                    continue
                reason = "incomplete record" if got is None else "payload checksum mismatch"
            else:
                reason = "incomplete header" if got is None else "bad record header"
            following = _resync(window, position, base, last)
            if following is None:
                torn_at, torn_reason = position, reason
                break
            report.corrupt_records.append(Damage(path, position, following - position, reason))
            segment.holes[position] = following - position
            position = following
        segment.size = position
    finally:
        if fd >= 0:
            os.close(fd)
    if torn_at is not None:
        copy_aside_and_truncate(path, torn_at, report, torn_reason)
    report.segments += 1
    report.records += segment.count
    report.bytes += segment.size
    return segment


def remove_stale_tmp(directory: str, report: RecoveryReport) -> None:
    """Delete ``*.tmp`` files: a write-then-rename that never reached its rename."""
    for name in os.listdir(directory):
        if name.endswith(TMP_SUFFIX):
            path = os.path.join(directory, name)
            os.unlink(path)
            report.stale_tmp_files.append(path)


def list_bases(directory: str, suffix: str) -> list[int]:
    """Sorted base offsets of the files in `directory` ending in `suffix`."""
    bases = (parse_base(name, suffix) for name in os.listdir(directory))
    return sorted(b for b in bases if b is not None)


def scan_segments(directory: str, report: RecoveryReport) -> list[Segment]:
    """Recover every segment in `directory` (after removing stale tmp files), oldest first."""
    started = time.perf_counter()
    remove_stale_tmp(directory, report)
    segments = []
    for base in list_bases(directory, SEGMENT_SUFFIX):
        segment = scan_segment(directory, base, report)
        if segment is not None:
            segments.append(segment)
    report.seconds += time.perf_counter() - started
    return segments


def recover_acks(directory: str, segments: dict[int, Segment], report: RecoveryReport) -> dict[int, set[int]]:
    """Acked offsets per segment base, after pruning everything that does not match the data."""
    started = time.perf_counter()
    acked: dict[int, set[int]] = {}
    for base in list_bases(directory, ACK_SUFFIX):
        path = os.path.join(directory, f"{base:020d}{ACK_SUFFIX}")
        segment = segments.get(base)
        if segment is None:
            os.unlink(path)
            report.orphaned_ack_files.append(path)
            continue
        with open(path, "rb") as f:
            data = f.read()
        whole = len(data) - len(data) % ACK_RECORD.size
        dirty = whole != len(data)
        report.torn_ack_bytes += len(data) - whole
        offsets: set[int] = set()
        for pos in range(0, whole, ACK_RECORD.size):
            offset = decode_ack(data, pos)
            if offset is None:
                report.corrupt_acks += 1
                dirty = True
            elif not segment.contains(offset):
                report.orphaned_acks += 1
                dirty = True
            elif offset in offsets:
                dirty = True  # a duplicate is harmless; the rewrite drops it
            else:
                offsets.add(offset)
        report.ack_records += len(offsets)
        if dirty:
            write_atomically(path, b"".join(encode_ack(o) for o in sorted(offsets)))
        acked[base] = offsets
    report.seconds += time.perf_counter() - started
    return acked


def write_atomically(path: str, data: bytes) -> None:
    """Write ``<path>.tmp``, fsync it, rename it over `path`, fsync the directory."""
    tmp = path + TMP_SUFFIX
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    sync_directory(os.path.dirname(path) or ".")


def sync_directory(directory: str) -> None:
    """fsync a directory so that creations, renames and unlinks in it are durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

