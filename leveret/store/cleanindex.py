"""A queue's clean-shutdown index: what lets the next start skip the recovery scan.

A clean close (``FileQueueStore.close``) fsyncs the queue's data and acks, then writes
``clean.idx`` (layout in format.py): each segment's size, modification time and record statistics,
each ack file's size and modification time, and (offset, body size, timestamp) of every unacked
record. The next open reads it and deletes it at once, whatever it holds, so a crash after that
start can only meet the full scan. It is trusted only if its checksum holds and the files on disk
are exactly the ones it lists, with the same sizes and modification times: segments and ack files
are only ever appended to or deleted whole outside recovery, so equal names, sizes and times mean
the bytes the index describes. Everything else (damage, a file grown, added, removed or touched) is
reported and answered with the full scan. Records stay verified when read: every read checks CRCs.

Why the unlink needs no directory fsync: if it is lost in a crash, the index only comes back if no
segment or ack file changed since, and then it still describes them exactly.
"""

from __future__ import annotations

import os
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from crc32c import crc32c

from leveret.store.format import (
    ACK_SUFFIX,
    CLEAN_ACK_FILE,
    CLEAN_HEADER,
    CLEAN_INDEX_NAME,
    CLEAN_MAGIC,
    CLEAN_RUN,
    CLEAN_SEGMENT,
    FORMAT_VERSION,
    MESSAGE_HEAD,
    MESSAGE_RECORD_HEAD,
    RECORD_TRAILER,
    SEGMENT_SUFFIX,
    ack_name,
    segment_name,
)
from leveret.store.recovery import Damage, list_bases, write_atomically
from leveret.store.segment import Segment

_LITTLE = sys.byteorder == "little"


@dataclass
class CleanIndex:
    """A clean index that matched the files: segment summaries and the unacked records' columns."""

    segments: list[tuple[int, int, int, int, int, int, int, int]]  # CLEAN_SEGMENT fields
    offsets: array  # "q", ascending
    sizes: array  # "I", body sizes
    timestamps: array  # "q"

    def build_segments(self, directory: str) -> list[Segment]:
        """Segment objects for a Log, from the summaries (no file is read)."""
        out = []
        for base, size, _mtime, count, first, last, min_ts, max_ts in self.segments:
            out.append(Segment.trusted(directory, base, size, count, None if first < 0 else first,
                                       None if last < 0 else last, min_ts, max_ts))
        return out


def _file_stats(directory: str, names: list[str]) -> list[tuple[int, int]] | None:
    stats = []
    for name in names:
        try:
            st = os.stat(os.path.join(directory, name))
        except FileNotFoundError:
            return None
        stats.append((st.st_size, st.st_mtime_ns))
    return stats


def _column(data: bytes, pos: int, typecode: str, count: int) -> tuple[array, int]:
    column = array(typecode)
    end = pos + count * column.itemsize
    column.frombytes(data[pos:end])
    if not _LITTLE:
        column.byteswap()
    return column, end


def take_clean_index(directory: str) -> tuple[CleanIndex | None, Damage | None]:
    """Read and delete ``clean.idx``: (the index, None) if it matches the files, else (None, why not).

    (None, None) when there is no clean index (first open, or the last stop was a crash)."""
    path = os.path.join(directory, CLEAN_INDEX_NAME)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None, None
    os.unlink(path)

    def rejected(reason: str) -> tuple[None, Damage]:
        return None, Damage(path, 0, len(data), reason)

    if len(data) < CLEAN_HEADER.size + RECORD_TRAILER.size:
        return rejected("incomplete clean index")
    (crc,) = RECORD_TRAILER.unpack_from(data, len(data) - RECORD_TRAILER.size)
    if crc32c(memoryview(data)[: len(data) - RECORD_TRAILER.size]) != crc:
        return rejected("clean index checksum mismatch")
    magic, version, _reserved, n_segments, n_acks, n_unacked, n_runs = CLEAN_HEADER.unpack_from(data, 0)
    if magic != CLEAN_MAGIC or version != FORMAT_VERSION:
        return rejected("not a clean index of this format")
    expected = (CLEAN_HEADER.size + n_segments * CLEAN_SEGMENT.size + n_acks * CLEAN_ACK_FILE.size
                + n_runs * CLEAN_RUN.size + n_unacked * 12 + RECORD_TRAILER.size)
    if expected != len(data):
        return rejected("clean index length mismatch")
    pos = CLEAN_HEADER.size
    segments = []
    for _ in range(n_segments):
        segments.append(CLEAN_SEGMENT.unpack_from(data, pos))
        pos += CLEAN_SEGMENT.size
    ack_files = []
    for _ in range(n_acks):
        ack_files.append(CLEAN_ACK_FILE.unpack_from(data, pos))
        pos += CLEAN_ACK_FILE.size
    if list_bases(directory, SEGMENT_SUFFIX) != [s[0] for s in segments] \
            or list_bases(directory, ACK_SUFFIX) != [a[0] for a in ack_files]:
        return rejected("segment or ack files differ from the clean index")
    on_disk = _file_stats(directory, [segment_name(s[0]) for s in segments] + [ack_name(a[0]) for a in ack_files])
    listed = [(s[1], s[2]) for s in segments] + [(a[1], a[2]) for a in ack_files]
    if on_disk != listed:
        return rejected("file sizes or modification times differ from the clean index")
    offsets = array("q")
    for _ in range(n_runs):
        first, length = CLEAN_RUN.unpack_from(data, pos)
        offsets.extend(range(first, first + length))
        pos += CLEAN_RUN.size
    if len(offsets) != n_unacked:
        return rejected("clean index runs disagree with its count")
    sizes, pos = _column(data, pos, "I", n_unacked)
    timestamps, pos = _column(data, pos, "q", n_unacked)
    return CleanIndex(segments, offsets, sizes, timestamps), None


def scan_unacked(segment: Segment, acked: set[int]) -> tuple[array, array, array]:
    """(offsets, body sizes, timestamps) of the segment's records not in `acked`, reading headers only."""
    offsets, sizes, timestamps = array("q"), array("I"), array("q")
    head = MESSAGE_HEAD.size
    for _pos, f in segment.scan_heads(MESSAGE_RECORD_HEAD):
        offset = f[5]
        if offset in acked:
            continue
        offsets.append(offset)
        sizes.append(f[4] - head - f[8] - f[9] - f[10])
        timestamps.append(f[6])
    return offsets, sizes, timestamps


def write_clean_index(
    directory: str, segments: list[Segment], acked: Callable[[int], set[int] | None],
    write: Callable[[str, bytes], None] = write_atomically,
) -> bool:
    """Write ``clean.idx`` for a closed queue whose data and acks are fsynced; False if it cannot vouch.

    Not written when recovery skipped damage in a segment (its holes would need recording too)."""
    if any(s.holes or s.missing for s in segments):
        return False
    empty: set[int] = set()
    ack_bases = list_bases(directory, ACK_SUFFIX)
    stats = _file_stats(directory, [segment_name(s.base) for s in segments] + [ack_name(b) for b in ack_bases])
    if stats is None:
        return False
    parts: list[bytes] = []
    runs = array("q")
    sizes, timestamps = array("I"), array("q")
    n_unacked = 0
    for segment, (size, mtime) in zip(segments, stats):
        if size != segment.size:
            return False
        parts.append(CLEAN_SEGMENT.pack(
            segment.base, size, mtime, segment.count,
            -1 if segment.first_offset is None else segment.first_offset,
            -1 if segment.last_offset is None else segment.last_offset,
            segment.min_ts, segment.max_ts,
        ))
        offs, szs, tss = scan_unacked(segment, acked(segment.base) or empty)
        segment.close_reader()
        sizes.extend(szs)
        timestamps.extend(tss)
        n_unacked += len(offs)
        if offs and offs[-1] - offs[0] + 1 == len(offs):
            # Consecutive offsets (no ack inside the segment): one run, no loop per record.
            if runs and runs[-2] + runs[-1] == offs[0]:
                runs[-1] += len(offs)
            else:
                runs.extend((offs[0], len(offs)))
            continue
        for offset in offs:
            if runs and runs[-2] + runs[-1] == offset:
                runs[-1] += 1
            else:
                runs.append(offset)
                runs.append(1)
    for base, (size, mtime) in zip(ack_bases, stats[len(segments):]):
        parts.append(CLEAN_ACK_FILE.pack(base, size, mtime))
    if not _LITTLE:
        for column in (runs, sizes, timestamps):
            column.byteswap()
    body = b"".join((
        CLEAN_HEADER.pack(CLEAN_MAGIC, FORMAT_VERSION, 0, len(segments), len(ack_bases), n_unacked, len(runs) // 2),
        *parts, runs.tobytes(), sizes.tobytes(), timestamps.tobytes(),
    ))
    write(os.path.join(directory, CLEAN_INDEX_NAME), body + RECORD_TRAILER.pack(crc32c(body)))
    return True
