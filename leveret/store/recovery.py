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

import logging
import os
import shutil
import time
from collections.abc import Callable
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
from leveret.store.fsio import REAL
from leveret.store.segment import Segment

log = logging.getLogger("leveret.recovery")

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

    def summary(self) -> str:
        """One line of counts (each damaged region was already logged on its own when found)."""
        counts = {
            "torn tails": len(self.torn_tails),
            "damaged regions skipped": len(self.corrupt_records),
            "unreadable segments": len(self.unreadable_segments),
            "torn ack bytes": self.torn_ack_bytes,
            "corrupt acks": self.corrupt_acks,
            "orphaned acks": self.orphaned_acks,
            "orphaned ack files": len(self.orphaned_ack_files),
            "stale tmp files": len(self.stale_tmp_files),
        }
        return ", ".join(f"{name}: {n}" for name, n in counts.items() if n)

    def merge(self, other: RecoveryReport) -> None:
        """Add another report's counts and findings to this one."""
        for name, value in vars(other).items():
            mine = getattr(self, name)
            if isinstance(mine, list):
                mine.extend(value)
            else:
                setattr(self, name, mine + value)


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
) -> tuple[int, str | None]:
    """Walk the records of one log file from `position`: the one scanner every log reader uses.

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
                note(header.offset, header.timestamp, position, header.size)
                last = header.offset
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


def _now_ms() -> int:
    return int(time.time() * 1000)


def note_damage(found: list[Damage], damage: Damage) -> None:
    """Record a damaged region in a report list and log it: one line per region, naming the bytes dropped."""
    found.append(damage)
    log.warning(
        "recovery dropped bytes %d-%d of %s (%d bytes: %s)",
        damage.position, damage.position + damage.length, damage.file, damage.length, damage.reason,
    )


def _copy_aside(path: str, position: int) -> str | None:
    """Best effort: keep the bytes from `position` on in ``<path>.torn-<ms>``; None if there is no room."""
    torn_path = f"{path}{TORN_INFIX}{_now_ms()}"
    try:
        with open(path, "rb") as src, open(torn_path, "wb") as dst:
            src.seek(position)
            shutil.copyfileobj(src, dst)
            dst.flush()
            REAL.fsync(dst.fileno())
    except OSError as exc:
        # A full disk must not stop a start: the copy is for inspection, the truncation is what matters.
        log.warning("could not keep a copy of the torn tail of %s: %s", path, exc)
        try:
            os.unlink(torn_path)
        except OSError:
            pass
        return None
    return torn_path


def truncate_torn_tail(path: str, position: int, report: RecoveryReport, reason: str) -> None:
    """Cut `path` at `position`, in place (needs no free space); a copy of the tail is kept if there is room."""
    size = os.path.getsize(path)
    torn_path = _copy_aside(path, position)
    fd = os.open(path, os.O_WRONLY)
    try:
        REAL.ftruncate(fd, position)
        REAL.fsync(fd)
    finally:
        os.close(fd)
    note_damage(report.torn_tails, Damage(path, position, size - position, reason))
    if torn_path is not None:
        report.torn_copies.append(torn_path)



def rewrite_in_place(path: str, data: bytes) -> None:
    """Overwrite `path` with `data` from its start and cut it there: needs no free space.

    Only for files of self-checking records where `data` is a subset of the records already in the
    file (ack files): a crash half-way leaves new records followed by old ones, every one of which
    was valid before, and the next recovery prunes again.
    """
    fd = os.open(path, os.O_WRONLY)
    try:
        REAL.pwrite_all(fd, data, 0)
        REAL.ftruncate(fd, len(data))
        REAL.fsync(fd)
    finally:
        os.close(fd)


def _rewrite_segment_header(path: str, base: int) -> bool:
    """Give a segment whose header a crash cut short a whole header; False if even that cannot be written."""
    fd = os.open(path, os.O_WRONLY)
    try:
        REAL.ftruncate(fd, 0)
        REAL.pwrite_all(fd, encode_segment_header(base), 0)
        REAL.fsync(fd)
        return True
    except OSError as exc:
        log.warning("could not rewrite the header of %s: %s", path, exc)
        return False
    finally:
        os.close(fd)


def scan_segment(directory: str, base: int, report: RecoveryReport) -> Segment | None:
    """Verify one segment file, repair it in place, and return it with its index rebuilt.

    Returns None if the file's header is not a segment header (the file is renamed aside), or if a
    header cut short cannot be rewritten (then the file, which holds no record, is removed).
    """
    segment = Segment(directory, base, 0)
    path = segment.path
    size = os.path.getsize(path)
    if size < SEGMENT_HEADER.size:
        # A segment created just before a crash: rewrite its header, keep what was there aside.
        if size:
            truncate_torn_tail(path, 0, report, "incomplete segment header")
        if not _rewrite_segment_header(path, base):
            os.unlink(path)
            return None
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
            REAL.rename(path, aside)
            report.unreadable_segments.append(path)
            report.torn_copies.append(aside)
            log.warning("recovery moved %s aside to %s: its file header is not a segment header", path, aside)
            return None

        def skip(position: int, length: int, reason: str) -> None:
            note_damage(report.corrupt_records, Damage(path, position, length, reason))
            segment.holes[position] = length

        end, torn_reason = scan_records(FileWindow(fd, size), SEGMENT_HEADER.size, segment.note_record, skip,
                                        min_offset=base)
        segment.size = end
    finally:
        if fd >= 0:
            os.close(fd)
    if torn_reason is not None:
        truncate_torn_tail(path, end, report, torn_reason)
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

        def skip(position: int, length: int, reason: str, path: str = path) -> None:
            note_damage(damaged, Damage(path, position, length, reason))

        damaged: list[Damage] = []
        found, end = scan_acks(data, skip)
        dirty = end != len(data) or bool(damaged)
        if end != len(data):
            # Whole records that do not verify count as corrupt, the partial one after them as torn.
            tail = len(data) - end
            report.corrupt_acks += tail // ACK_RECORD.size
            report.torn_ack_bytes += tail % ACK_RECORD.size
            note_damage([], Damage(path, end, tail, "torn or damaged ack records at the end"))
        report.corrupt_acks += sum(-(-d.length // ACK_RECORD.size) for d in damaged)
        offsets: set[int] = set()
        for offset in found:
            if not segment.contains(offset):
                report.orphaned_acks += 1
                dirty = True
            elif offset in offsets:
                dirty = True  # a duplicate is harmless; the rewrite drops it
            else:
                offsets.add(offset)
        report.ack_records += len(offsets)
        if dirty:
            # In place, not tmp-and-rename: a start on a full disk must still be able to prune.
            rewrite_in_place(path, b"".join(encode_ack(o) for o in sorted(offsets)))
        acked[base] = offsets
    report.seconds += time.perf_counter() - started
    return acked


def write_atomically(path: str, data: bytes) -> None:
    """Write ``<path>.tmp``, fsync it, rename it over `path`, fsync the directory (fsio.py does it)."""
    REAL.write_atomically(path, data)


def sync_directory(directory: str) -> None:
    """fsync a directory so that creations, renames and unlinks in it are durable (fsio.py does it)."""
    REAL.sync_directory(directory)

