"""Recovery: make a directory of segments and ack files consistent again, and say what was done.

Total: it never raises on bad data (only on the operating system failing, e.g. permissions). It
distrusts every relation between files:

* a torn tail (an incomplete or damaged record with no intact record after it) is copied aside to
  ``<segment>.torn-<unix ms>`` and the segment is truncated before it;
* a damaged record with intact records after it is skipped and reported (file, position, length);
  the scan (resync.py) resynchronises on the next record whose header and checksum verify;
* a segment whose file header is not ours is renamed aside the same way, whole;
* ack files without a segment, ack records for offsets the segment does not hold (including
  offsets past the recovered end, which new appends would reuse), torn ack tails and ack records
  with a bad CRC are removed, the ack file rewritten atomically;
* stale ``*.tmp`` files are deleted;
* of the torn copies in a directory only the newest TORN_COPIES_KEPT stay (the older are deleted, one log
  line each), and a segment's copies go with it when the segment is deleted (segment.py).

The scan streams every segment once in READ_CHUNK pieces, verifies every CRC and rebuilds the
sparse index as it goes, so memory stays bounded and no saved index needs trusting.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field

from leveret.store.format import (
    ACK_RECORD,
    ACK_SUFFIX,
    SEGMENT_HEADER,
    SEGMENT_SUFFIX,
    TMP_SUFFIX,
    TORN_INFIX,
    decode_segment_header,
    encode_ack,
    encode_segment_header,
    parse_base,
)
from leveret.store.fsio import REAL
from leveret.store.resync import FileWindow, scan_acks, scan_records
from leveret.store.segment import Segment

log = logging.getLogger("leveret.recovery")

# Torn copies kept per directory: enough to inspect the last few crashes, few enough that a long-lived queue
# that crashed a thousand times does not hold a thousand of them.
TORN_COPIES_KEPT = 8


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
    removed_torn_copies: list[str] = field(default_factory=list)  # beyond TORN_COPIES_KEPT, the oldest
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
            "old torn copies removed": len(self.removed_torn_copies),
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
                                        min_offset=base, spans=True)
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


def _copied_at(name: str) -> int:
    """The unix ms a torn copy's name ends in (0, the oldest, for a name that does not parse)."""
    stamp = name.rpartition(TORN_INFIX)[2]
    return int(stamp) if stamp.isdigit() else 0


def prune_torn_copies(directory: str, report: RecoveryReport, keep: int = TORN_COPIES_KEPT) -> None:
    """Delete all but the newest `keep` torn copies in `directory`, one log line each."""
    copies = sorted((name for name in os.listdir(directory) if TORN_INFIX in name), key=lambda n: (_copied_at(n), n))
    for name in copies[:max(0, len(copies) - keep)]:
        path = os.path.join(directory, name)
        REAL.remove(path)
        report.removed_torn_copies.append(path)
        log.info("recovery removed %s: a directory keeps its %d newest torn copies", path, keep)


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
    prune_torn_copies(directory, report)  # after the scan: its own new copies count among the newest
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

