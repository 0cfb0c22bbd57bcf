"""A segmented append-only log in one directory: the engine under queues and streams.

Records get monotonic offsets. Segments roll when the next record would take the active segment
past `segment_size` (default 8 MiB) and are named by the zero-padded 20-digit offset of their
first record. Opening a log runs recovery over its directory (see recovery.py) and keeps the report
in ``Log.report``, unless the caller hands in `trusted` segments (a queue's clean-shutdown index,
checked against the files by cleanindex.py). Whole segments leave the log in two ways: a queue deletes one once all its
records are acked, a stream drops them from the head for retention.

Batches and rollback. Everything appended between two ``dup_data_fds`` calls is one batch (one group
commit). The log keeps a mark at the start of the open batch and, while that commit's fsync runs, at the
start of the batch in flight. A write failure rolls the open batch back (``rollback_open``); a failed
fsync rolls back the batch in flight and everything after it (``rollback_all``): segments created since
the mark are deleted, the segment at the mark is truncated to it and sealed (segment.py). Offsets are not
reused while the process runs, so an ack or a reader can never mistake a new record for a dropped one.
"""

from __future__ import annotations

import os
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from leveret.store.format import KIND_BATCH, KIND_RAW, Record, encode_record, encode_record_parts, payload_span
from leveret.store.fsio import REAL, FileIO, failures
from leveret.store.recovery import RecoveryReport, remove_stale_tmp, scan_segments
from leveret.store.segment import Checkpoint, Segment

DEFAULT_SEGMENT_SIZE = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What a sync covered: the segment files fsynced and every offset below `next_offset`."""

    segments: tuple[int, ...]
    next_offset: int


class Log:
    """A directory of segments with an append position; not thread-safe (see commit.py for fsyncs)."""

    def __init__(
        self,
        directory: str,
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        on_dirty: Callable[[], None] | None = None,
        trusted: list[Segment] | None = None,
        io: FileIO = REAL,
    ) -> None:
        self.directory = directory
        self.segment_size = segment_size
        self.io = io
        self._on_dirty = on_dirty
        created = not os.path.isdir(directory)
        os.makedirs(directory, exist_ok=True)
        if created:
            io.sync_directory(os.path.dirname(os.path.abspath(directory)))
        self.report = RecoveryReport()
        if trusted is None:
            self._segments: list[Segment] = scan_segments(directory, self.report)
        else:
            # A clean-shutdown index that matched the files (filestore.py): no scan, only counts.
            remove_stale_tmp(directory, self.report)
            self._segments = trusted
            self.report.segments += len(trusted)
            self.report.records += sum(s.count for s in trusted)
            self.report.bytes += sum(s.size for s in trusted)
        for segment in self._segments:
            segment.io = io
        self._bases: list[int] = [s.base for s in self._segments]
        self._next = 0
        for segment in reversed(self._segments):
            if segment.last_offset is not None:
                self._next = segment.last_offset + 1
                break
        if self._segments:
            self._next = max(self._next, self._segments[-1].base)
        self._dirty: list[Segment] = []
        self._dir_dirty = False
        # Where the open batch began, and the batch whose fsync is running (see the module docstring).
        self._open_mark = self._mark()
        self._flight_mark: tuple[int, Checkpoint | None] | None = None

    def _mark(self) -> tuple[int, Checkpoint | None]:
        """(base of the active segment or -1, its checkpoint): the append state now, buffers flushed."""
        if not self._segments:
            return -1, None
        active = self._segments[-1]
        return active.base, active.checkpoint()

    # -- shape --------------------------------------------------------------------------------------

    @property
    def next_offset(self) -> int:
        """The offset the next append will get."""
        return self._next

    @property
    def first_offset(self) -> int:
        """The lowest offset still in the log (== next_offset when empty)."""
        for segment in self._segments:
            if segment.first_offset is not None:
                return segment.first_offset
        return self._next

    @property
    def segments(self) -> list[Segment]:
        """The segments, oldest first (the last one is the active one)."""
        return self._segments

    @property
    def size_bytes(self) -> int:
        """Bytes of all segment files."""
        return sum(s.size for s in self._segments)

    def segment_for(self, offset: int) -> Segment | None:
        """The segment whose range covers `offset`, if any."""
        i = bisect_right(self._bases, offset) - 1
        return self._segments[i] if i >= 0 else None

    # -- writing ------------------------------------------------------------------------------------

    def append(
        self, payload: bytes | list[bytes], timestamp: int, kind: int = KIND_RAW, flags: int = 0, span: int = 1
    ) -> int:
        """Append a record; return its offset. Durable only after a sync that begins later.

        A payload given in pieces is written without joining them (a large batch). A record of `span` > 1 (a
        stream's KIND_BATCH, whose payload says the same span) takes the offsets from its own to `span - 1`
        past it."""
        offset = self._next
        if type(payload) is list:
            record: bytes | list[bytes] = encode_record_parts(kind, flags, offset, timestamp, payload)
            size = sum(map(len, record))
        else:
            record = encode_record(kind, flags, offset, timestamp, payload)
            size = len(record)
        active = self._segments[-1] if self._segments else None
        if active is None or active.sealed or (active.count and active.size + size > self.segment_size):
            active = self._roll(offset)
        try:
            active.append(record, offset, timestamp, span)
        except BaseException:
            if active.last_offset == offset + span - 1:
                self._next = offset + span  # counted in the segment: the rollback drops and reports it
            raise
        finally:
            # Even a failed append is in the batch: rollback_open must find its segment.
            if not self._dirty or self._dirty[-1] is not active:
                self._dirty.append(active)
        self._next = offset + span
        if self._on_dirty is not None:
            self._on_dirty()
        return offset

    def _roll(self, base: int) -> Segment:
        segment = Segment.create(self.directory, base, self.io)
        self._segments.append(segment)
        self._bases.append(base)
        self._dir_dirty = True
        return segment

    def dup_data_fds(self) -> list[int]:
        """Flush and duplicate the descriptors of every segment written since the last call.

        The batch written here becomes the batch in flight until `commit_done` or `rollback_all`; on a
        write failure nothing is handed out and the caller rolls the open batch back."""
        fds: list[int] = []
        active = self._segments[-1] if self._segments else None
        try:
            for segment in self._dirty:
                fd = segment.dup_for_sync()
                if fd is not None:
                    fds.append(fd)
                if segment is not active:
                    segment.close_writer()
            if self._dir_dirty:
                # New segment files must survive a crash as directory entries, not only as data.
                fds.append(self.io.open(self.directory, os.O_RDONLY))
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        self._dir_dirty = False
        self._dirty.clear()
        if self._flight_mark is None:
            self._flight_mark = self._open_mark
        self._open_mark = self._mark()
        return fds

    def commit_done(self) -> None:
        """The batch in flight is durable: nothing before the open batch can be rolled back any more."""
        self._flight_mark = None

    def rollback_open(self) -> list[int]:
        """Drop the open batch (a write failed); return the offsets dropped."""
        return self._rollback(self._open_mark)

    def rollback_all(self) -> list[int]:
        """Drop the batch in flight and the open one (their fsync failed); return the offsets dropped."""
        mark = self._flight_mark if self._flight_mark is not None else self._open_mark
        self._flight_mark = None
        return self._rollback(mark)

    def _rollback(self, mark: tuple[int, Checkpoint | None]) -> list[int]:
        base, checkpoint = mark
        dropped: list[int] = []
        while self._segments and self._segments[-1].base > base:
            # Created after the mark: nothing in it was ever durable.
            segment = self._segments.pop()
            self._bases.pop()
            dropped.extend(segment.rollback(None))
            try:
                segment.delete()
            except OSError as exc:
                failures.note("rollback unlink", exc, segment.path)
            self._dir_dirty = True
        if self._segments and self._segments[-1].base == base:
            dropped.extend(self._segments[-1].rollback(checkpoint))
        self._dirty.clear()
        self._open_mark = self._mark()
        return dropped

    def dup_derived_fds(self) -> list[int]:
        """A plain log has no derived files."""
        return []

    def sync(self) -> SyncResult:
        """fdatasync every segment written since the last sync; return what was covered."""
        covered = tuple(s.base for s in self._dirty)
        try:
            fds = self.dup_data_fds()
        except OSError:
            self.rollback_open()
            raise
        try:
            for fd in fds:
                self.io.fdatasync(fd)
        except OSError:
            self.rollback_all()
            raise
        finally:
            for fd in fds:
                os.close(fd)
        self.commit_done()
        return SyncResult(covered, self._next)

    # -- reading ------------------------------------------------------------------------------------

    def read(self, offset: int) -> Record:
        """The record at `offset`; KeyError if the log does not hold it."""
        segment = self.segment_for(offset)
        record = segment.read(offset) if segment is not None else None
        if record is None:
            raise KeyError(offset)
        return record

    def iterate(self, start: int | None = None) -> Iterator[Record]:
        """Records from offset `start` (default: the first) to the end, streamed with bounded memory.

        Records appended while iterating are included; segments deleted meanwhile are skipped.
        """
        offset = self.first_offset if start is None else start
        while True:
            segment = self.segment_for(offset)
            if segment is None:
                if not self._segments or offset >= self._next:
                    return
                segment = self._segments[0]
            entry = segment.index.floor_offset(offset)
            position = entry[1] if entry is not None else None
            for record in segment.iterate() if position is None else segment.iterate(position):
                # A batch that began before `offset` but reaches it is yielded whole: the reader picks.
                after = record.offset + (1 if record.kind != KIND_BATCH else payload_span(KIND_BATCH, record.payload))
                if after > offset:
                    offset = after
                    yield record
            if not self._segments or segment is not self._segments[-1]:
                # Iterating a long log must not leave a descriptor open per segment.
                segment.close_reader()
            nxt = bisect_right(self._bases, segment.base)
            if nxt >= len(self._bases):
                return
            offset = max(offset, self._bases[nxt])

    def seek_time(self, timestamp: int) -> int:
        """The offset of the first record with a timestamp at or after `timestamp` (next_offset if none)."""
        for segment in self._segments:
            if segment.count == 0 or segment.max_ts < timestamp:
                continue
            for record in segment.iterate(segment.position_for_time(timestamp)):
                if record.timestamp >= timestamp:
                    return record.offset
        return self._next

    # -- removing segments ----------------------------------------------------------------------------

    def delete_segment(self, base: int) -> None:
        """Delete the segment at `base` whole (the active segment stays: it holds the append position)."""
        i = self._bases.index(base)
        segment = self._segments[i]
        if segment is self._segments[-1]:
            raise ValueError("the active segment cannot be deleted")
        del self._segments[i]
        del self._bases[i]
        if segment in self._dirty:
            self._dirty.remove(segment)
        segment.delete()
        self._dir_dirty = True

    def drop_head_segments(
        self,
        *,
        max_bytes: int | None = None,
        max_segments: int | None = None,
        before_offset: int | None = None,
        before_timestamp: int | None = None,
    ) -> list[int]:
        """Drop segments from the head while any given limit is exceeded; return the dropped bases.

        `max_bytes` / `max_segments` bound what is kept; `before_offset` drops segments whose records
        all lie below it; `before_timestamp` drops segments whose newest record is older than it.
        The active segment is never dropped. This is a stream's retention (x-max-length-bytes,
        x-max-age).
        """
        dropped = []
        while len(self._segments) > 1:
            head = self._segments[0]
            total = self.size_bytes
            next_base = self._bases[1]
            if (
                (max_bytes is not None and total > max_bytes)
                or (max_segments is not None and len(self._segments) > max_segments)
                or (before_offset is not None and next_base <= before_offset)
                or (before_timestamp is not None and head.count and head.max_ts < before_timestamp)
                or (before_timestamp is not None and not head.count)
            ):
                self.delete_segment(head.base)
                dropped.append(head.base)
            else:
                break
        return dropped

    # -- lifetime -------------------------------------------------------------------------------------

    def close(self) -> None:
        """Flush and close every file (no fsync: call sync() first if it matters).

        Never raises: bytes that cannot be written now were never synced, so never confirmed; a partial
        record they leave is a torn tail that recovery cuts."""
        for segment in self._segments:
            try:
                segment.close()
            except OSError as exc:
                failures.note("write at close", exc, segment.path)
                segment.close_writer_quietly()
                segment.close_reader()
        self._dirty.clear()

    def delete(self) -> None:
        """Close and remove every segment file of the log (the directory stays)."""
        for segment in self._segments:
            segment.delete()
        self._segments.clear()
        self._bases.clear()
        self._dirty.clear()
