"""One segment file of a log: appends buffered in memory, reads streamed from the file.

Appends go into a small user-space buffer that is written with one ``os.write`` when it passes
WRITE_BUFFER bytes, when a reader needs the bytes, or when a sync is prepared. That is safe because
nothing is promised before the fsync: a confirm waits for the sync that covers the record, and the
sync writes the buffer first. Reads use ``os.pread`` on a separate read-only descriptor, in chunks,
so neither reading one record nor iterating a segment ever loads the segment into memory.

Failures (fsio.py does every write): a write that fails, in part or whole, and a sync that fails make the
log roll back to a checkpoint (``rollback``): the file is truncated to the end of the last whole record
the checkpoint covered and the segment is *sealed* (no more appends: the next one starts a new segment),
so a log never holds a torn record followed by good ones. After a failed fsync the page cache may have
dropped the dirty pages while the file still looks whole, so a segment is never trusted for appends again
once a sync of it failed.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

from crc32c import crc32c

from leveret.store.format import (
    FORMAT_VERSION,
    KIND_BATCH,
    MAX_PAYLOAD,
    RECORD_HEADER,
    RECORD_HEADER_CRC_SPAN,
    RECORD_MAGIC,
    RECORD_OVERHEAD,
    RECORD_TRAILER,
    SEGMENT_HEADER,
    TORN_INFIX,
    Record,
    encode_segment_header,
    segment_name,
)
from leveret.store.fsio import APPEND_FLAGS, REAL, FileIO, failures
from leveret.store.index import INDEX_INTERVAL, NO_MIN_TIMESTAMP, NO_TIMESTAMP, SparseIndex

WRITE_BUFFER = 64 * 1024
READ_CHUNK = 256 * 1024


class Checkpoint(tuple):
    """A segment's append state at one moment: (size, count, first, last offset, min/max timestamp,
    index length, last indexed position, missing offsets count). ``Segment.rollback`` returns to it."""

    __slots__ = ()


class Segment:
    """A segment of a log, named by its base offset, with its sparse index and record statistics."""

    def __init__(self, directory: str, base: int, size: int) -> None:
        self.directory = directory
        self.base = base
        self.path = os.path.join(directory, segment_name(base))
        self.size = size  # bytes including the unflushed buffer
        self.count = 0
        self.first_offset: int | None = None
        self.last_offset: int | None = None
        self.max_ts = NO_TIMESTAMP
        self.min_ts = NO_MIN_TIMESTAMP
        self._index = SparseIndex()
        # File end of a region whose index entries are still to be built (0: none). A segment opened
        # from a trusted clean index skips the recovery scan; its index is built on first use.
        self._unindexed = 0
        # Offsets inside [first_offset, last_offset] that are absent (skipped as corrupt by recovery).
        self.missing: set[int] = set()
        # Damaged regions recovery skipped over: file position -> length, so reads skip them too.
        self.holes: dict[int, int] = {}
        self._last_indexed = -INDEX_INTERVAL
        self._pending = bytearray()
        self._write_fd: int | None = None
        self._read_fd: int | None = None
        self.deleted = False
        # True once bytes were written that no fsync has covered yet.
        self.unsynced = False
        # True once a write or sync failed here: appends go to a new segment (see the module docstring).
        self.sealed = False
        self._torn = False  # a failed write left bytes that could not be cut off: no more writes
        self.io: FileIO = REAL

    @classmethod
    def trusted(
        cls, directory: str, base: int, size: int, count: int, first: int | None, last: int | None,
        min_ts: int, max_ts: int,
    ) -> Segment:
        """A segment described by a clean-shutdown index instead of a scan; its sparse index is lazy."""
        segment = cls(directory, base, size)
        segment.count = count
        segment.first_offset = first
        segment.last_offset = last
        segment.min_ts = min_ts
        segment.max_ts = max_ts
        if count:
            segment._unindexed = size
        return segment

    @property
    def index(self) -> SparseIndex:
        """The sparse index (built here, on first use, for the part a clean index let recovery skip)."""
        if self._unindexed:
            self._build_index()
        return self._index

    def _build_index(self) -> None:
        built = SparseIndex()
        last_indexed = -INDEX_INTERVAL
        max_ts = NO_TIMESTAMP
        for position, fields in self.scan_heads(RECORD_HEADER, end=self._unindexed):
            if position - last_indexed >= INDEX_INTERVAL:
                built.add(fields[5], position, max_ts)
                last_indexed = position
            if fields[6] > max_ts:
                max_ts = fields[6]
        # Entries added by appends since the open come after every one of these.
        for name in ("offsets", "positions", "max_ts_before"):
            getattr(built, name).extend(getattr(self._index, name))
        self._index = built
        self._unindexed = 0

    def scan_heads(
        self, head: struct.Struct, position: int = SEGMENT_HEADER.size, end: int | None = None
    ) -> Iterator[tuple[int, tuple]]:
        """(file position, `head` unpacked there) for each record, hopping by length, CRCs NOT checked.

        For data already verified (by the recovery scan, or a clean index that matched the files):
        `head` is RECORD_HEADER, optionally followed by the payload's first fields. Regions recovery
        skipped as damaged are skipped; anything else that is not a record header ends the hop.
        """
        unpack = head.unpack_from
        need = head.size
        stop = self.size if end is None else end
        holes = self.holes
        buf = b""
        buf_pos = position
        pos = 0
        while buf_pos + pos < stop:
            if len(buf) - pos < need:
                buf_pos += pos
                buf = self._pread(READ_CHUNK, buf_pos)
                pos = 0
                if len(buf) < need:
                    return
            fields = unpack(buf, pos)
            if fields[0] != RECORD_MAGIC:
                hole = holes.get(buf_pos + pos)
                if hole is None:
                    return
                pos += hole
                continue
            yield buf_pos + pos, fields
            pos += RECORD_OVERHEAD + fields[4]

    @classmethod
    def create(cls, directory: str, base: int, io: FileIO = REAL) -> Segment:
        """A new, empty segment file; its header is buffered like any append.

        A file already at this name is one the log does not hold: left by a creation whose header
        write failed (a full disk), or a rolled-back segment whose unlink failed. It holds nothing
        anyone was promised, so it is truncated and reused instead of failing every later attempt."""
        segment = cls(directory, base, 0)
        segment.io = io
        segment._write_fd = io.open(segment.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        segment._pending += encode_segment_header(base)
        segment.size = SEGMENT_HEADER.size
        segment.unsynced = True
        return segment

    # -- bookkeeping shared by appends and the recovery scan --------------------------------------

    def note_record(self, offset: int, timestamp: int, position: int, size: int, span: int = 1) -> None:
        """Account for a record of `size` bytes at `position` taking offsets `offset` .. `offset + span - 1`
        (index, counts, timestamps)."""
        if position - self._last_indexed >= INDEX_INTERVAL:
            self._index.add(offset, position, self.max_ts)
            self._last_indexed = position
        if self.last_offset is not None and offset > self.last_offset + 1:
            self.missing.update(range(self.last_offset + 1, offset))
        if self.first_offset is None:
            self.first_offset = offset
        self.last_offset = offset + span - 1
        self.count += 1
        if timestamp > self.max_ts:
            self.max_ts = timestamp
        if timestamp < self.min_ts:
            self.min_ts = timestamp

    def contains(self, offset: int) -> bool:
        """True if the segment holds a record with this offset."""
        return (
            self.first_offset is not None
            and self.first_offset <= offset <= self.last_offset  # type: ignore[operator]
            and offset not in self.missing
        )

    # -- writing ----------------------------------------------------------------------------------

    def append(self, record: bytes | list[bytes], offset: int, timestamp: int, span: int = 1) -> None:
        """Append an encoded record (see format.encode_record, or the pieces of format.encode_record_parts)
        taking `span` offsets from `offset`."""
        if self._write_fd is None:
            self._write_fd = self.io.open(self.path, APPEND_FLAGS)
        if type(record) is list:
            self._append_large(record, offset, timestamp, span)
            return
        self.note_record(offset, timestamp, self.size, len(record), span)
        self._pending += record
        self.size += len(record)
        self.unsynced = True
        if len(self._pending) >= WRITE_BUFFER:
            self.flush()

    def _append_large(self, parts: list[bytes], offset: int, timestamp: int, span: int) -> None:
        """A record in pieces (a Kafka batch of a megabyte): written straight to the file after the buffer,
        as copying it into the buffer would cost about what the write does. A failed write is cut off as
        `flush` cuts a failed buffer."""
        size = sum(map(len, parts))
        start = self.size
        self.note_record(offset, timestamp, start, size, span)
        self.size += size
        self.unsynced = True
        if len(self._pending) + size < WRITE_BUFFER:
            for part in parts:
                self._pending += part
            return
        self.flush()
        if self._torn:
            raise OSError(28, "segment sealed after a failed write", self.path)
        assert self._write_fd is not None
        try:
            for part in parts:
                self.io.write_all(self._write_fd, part)
        except OSError:
            try:
                self.io.ftruncate(self._write_fd, start)
            except OSError:
                self._torn = True
                self.sealed = True
            raise

    def flush(self) -> None:
        """Hand buffered bytes to the kernel (no fsync)."""
        if self._pending:
            assert self._write_fd is not None
            if self._torn:
                raise OSError(28, "segment sealed after a failed write", self.path)
            try:
                self.io.write_all(self._write_fd, self._pending)
            except OSError:
                # Part of the buffer may be in the file: cut it off now, so the file ends where our
                # positions say it does and a retry (a reader, the next commit) cannot write the same
                # records again behind a torn copy. If the cut fails, never write here again.
                try:
                    self.io.ftruncate(self._write_fd, self.size - len(self._pending))
                except OSError:
                    self._torn = True
                    self.sealed = True
                raise
            self._pending.clear()

    def checkpoint(self) -> Checkpoint:
        """The append state now, to roll back to if a later write or sync fails.

        Taken when the pending buffer is empty (after a flush), so `size` is all on disk."""
        return Checkpoint((self.size, self.count, self.first_offset, self.last_offset, self.min_ts, self.max_ts,
                           len(self._index), self._last_indexed, len(self.missing)))

    def rollback(self, checkpoint: Checkpoint | None) -> list[int]:
        """Forget every record appended after `checkpoint` (None: all of them), cut them from the file,
        and seal the segment; return their offsets.

        The truncation is best effort: if it fails too, the in-memory size still ends at the checkpoint
        (reads never look past it) and, the segment being sealed, nothing is ever appended behind the
        unwanted bytes; recovery cuts or skips them at the next start."""
        size, count, first, last, min_ts, max_ts, index_len, last_indexed, _missing = (
            checkpoint if checkpoint is not None
            else (SEGMENT_HEADER.size, 0, None, None, NO_MIN_TIMESTAMP, NO_TIMESTAMP, 0, -INDEX_INTERVAL, 0))
        dropped: list[int] = []
        if self.last_offset is not None:
            start = self.first_offset if last is None else last + 1
            dropped = [o for o in range(start, self.last_offset + 1) if o not in self.missing]  # type: ignore[arg-type]
            self.missing = {o for o in self.missing if last is not None and o <= last}
        self._pending.clear()
        self.sealed = True
        self.unsynced = False
        if self.size > size:
            self.io_truncate(size)
        self.size = size
        self.count = count
        self.first_offset = first
        self.last_offset = last
        self.min_ts = min_ts
        self.max_ts = max_ts
        if self._unindexed > size:
            self._unindexed = size
        index = self._index
        if len(index) > index_len:
            del index.offsets[index_len:], index.positions[index_len:], index.max_ts_before[index_len:]
        self._last_indexed = last_indexed
        self.close_writer_quietly()
        return dropped

    def io_truncate(self, size: int) -> bool:
        """Cut the file to `size` bytes; False (logged) if even that fails."""
        try:
            if self._write_fd is not None:
                self.io.ftruncate(self._write_fd, size)
            else:
                self.io.truncate(self.path, size)
        except OSError as exc:
            failures.note("rollback truncate", exc, self.path)
            return False
        return True

    def close_writer_quietly(self) -> None:
        """Drop unwritten bytes and release the write descriptor (after a failure)."""
        self._pending.clear()
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None

    def dup_for_sync(self) -> int | None:
        """Flush, then a duplicate descriptor for a syncer to fdatasync and close (None if clean).

        A duplicate, because the syncer may run on another thread while this segment rolls, closes
        or is deleted; the duplicate keeps the file open until its fsync is done.
        """
        if not self.unsynced:
            return None
        self.flush()
        self.unsynced = False
        assert self._write_fd is not None
        return os.dup(self._write_fd)

    def close_writer(self) -> None:
        """Flush and release the write descriptor (a rolled segment is never written again)."""
        self.flush()
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None

    def close_reader(self) -> None:
        """Release the read descriptor (reopened on the next read)."""
        if self._read_fd is not None:
            os.close(self._read_fd)
            self._read_fd = None

    def close(self) -> None:
        """Flush and release every descriptor."""
        self.close_writer()
        self.close_reader()

    def delete(self) -> None:
        """Close and unlink the segment file, and the copies recovery kept of its torn tails (``.torn-*``:
        they are bytes of this file only, kept for inspection while it lives)."""
        self._pending.clear()
        self.deleted = True
        self.close()
        self.io.remove(self.path)
        prefix = os.path.basename(self.path) + TORN_INFIX
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return
        for name in names:
            if name.startswith(prefix):
                self.io.remove(os.path.join(self.directory, name))

    # -- reading ----------------------------------------------------------------------------------

    def _pread(self, length: int, position: int) -> bytes:
        if self._pending:
            self.flush()
        if self._read_fd is None:
            self._read_fd = os.open(self.path, os.O_RDONLY)
        return os.pread(self._read_fd, length, position)

    def _start_position(self, offset: int) -> int:
        entry = self.index.floor_offset(offset)
        return entry[1] if entry is not None else SEGMENT_HEADER.size

    def read(self, offset: int) -> Record | None:
        """The record with this offset, or None if absent or damaged."""
        if not self.contains(offset):
            return None
        for record in self.iterate(self._start_position(offset)):
            if record.offset == offset:
                return record
            if record.offset > offset:
                break
        return None

    def iterate(self, position: int = SEGMENT_HEADER.size, chunk: int = READ_CHUNK) -> Iterator[Record]:
        """Verified records from `position` to the current end, reading `chunk` bytes at a time.

        Memory is bounded by the chunk plus the largest record. A damaged record (one that went bad
        after recovery checked it) is skipped by its length if its header is intact; otherwise the
        rest of the segment is not trusted and iteration stops.
        """
        # One tight loop with the header fields unpacked inline: this is the recovery and
        # redelivery hot path (about 1 us a record; decode_header/verify_payload calls cost 2x).
        unpack = RECORD_HEADER.unpack_from
        unpack_trailer = RECORD_TRAILER.unpack_from
        buf = b""
        view = memoryview(buf)
        buf_pos = position  # file position of buf[0]
        pos = 0
        while not self.deleted and buf_pos + pos < self.size:
            if len(buf) - pos < RECORD_OVERHEAD:
                buf_pos += pos
                buf = self._pread(chunk, buf_pos)
                view = memoryview(buf)
                pos = 0
                if len(buf) < RECORD_OVERHEAD:
                    return
            magic, version, kind, flags, length, offset, timestamp, header_crc = unpack(buf, pos)
            if (
                magic != RECORD_MAGIC
                or version != FORMAT_VERSION
                or length > MAX_PAYLOAD
                or crc32c(view[pos : pos + RECORD_HEADER_CRC_SPAN]) != header_crc
            ):
                hole = self.holes.get(buf_pos + pos)
                if hole is None:
                    return
                pos += hole
                continue
            start = pos + RECORD_HEADER.size
            end = start + length
            if end + RECORD_TRAILER.size > len(buf):
                buf_pos += pos
                buf = self._pread(max(chunk, RECORD_OVERHEAD + length), buf_pos)
                view = memoryview(buf)
                pos = 0
                if len(buf) < RECORD_OVERHEAD + length:
                    return
                continue
            if crc32c(view[start:end], header_crc) == unpack_trailer(buf, end)[0]:
                # A batch (megabytes, read to be sent on) is a view of the read buffer, not a copy.
                yield Record(offset, timestamp, kind, flags, view[start:end] if kind == KIND_BATCH else buf[start:end])
                pos = end + RECORD_TRAILER.size
            else:
                # Damaged payload: skip what recovery skipped (the hole may run past this record).
                hole = self.holes.get(buf_pos + pos)
                pos = pos + hole if hole is not None and hole > end + RECORD_TRAILER.size - pos \
                    else end + RECORD_TRAILER.size

    def position_for_time(self, timestamp: int) -> int:
        """A file position from which every earlier record is older than `timestamp`."""
        entry = self.index.floor_time(timestamp)
        return entry[1] if entry is not None else SEGMENT_HEADER.size
