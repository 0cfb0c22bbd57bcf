"""The storage of one stream queue: a segmented log that acks never shrink, and tracked offsets.

Layout of a stream's directory (under ``<data>/streams/<sha1 of vhost NUL name>/``)::

    stream.name                  {"vhost": ..., "name": ...}, written atomically (see filestore.py)
    <base>.seg                   the log (format.py); records are KIND_MESSAGE, or KIND_BATCH
                                 for a Kafka record batch kept whole (one record, many offsets)
    offsets.log                  tracked consumer offsets: KIND_RAW records, offset field = the
                                 acknowledged offset, payload = the consumer tag (UTF-8); with
                                 FLAG_FORGOTTEN the consumer's offset is dropped; with
                                 FLAG_METADATA the payload is OFFSET_NAME_LEN (the tag's length),
                                 the tag, then a metadata string (UTF-8: a Kafka commit's); a
                                 record without it has empty metadata, so files written before
                                 the flag existed read as they did

Chunks. RabbitMQ's x-stream-offset "last" starts at the newest *chunk*: the batch of messages its
writer made durable together. Leveret's equivalent is the group commit, so the first record a
stream appends after a commit began carries FLAG_CHUNK_START (the flags byte is the writer's).
The flag survives restarts; "last" after a restart finds it by scanning the newest segment.

Retention drops whole segments from the head, never the active one: x-max-length-bytes bounds
the bytes kept, x-max-age drops segments whose newest record is older than the age. It runs
when a segment rolls and whenever the owner calls ``apply_retention`` (the broker does so on a
timer). A reader positioned inside a dropped segment continues at the first kept record.

Tracked offsets are derived data, so they are fsynced after the segments by the same group
commit (``dup_derived_fds``); a lost update makes a consumer re-read a few messages, never skip.
The file is rewritten (tmp, fsync, rename) when it grows past OFFSETS_COMPACT_BYTES.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

from leveret.store.api import StoredBatch, StoredMessage
from leveret.store.commit import GroupCommit
from leveret.store.format import (
    BATCH_HEAD,
    KIND_BATCH,
    KIND_MESSAGE,
    KIND_RAW,
    MESSAGE_HEAD,
    RECORD_HEADER,
    RECORD_TRAILER,
    encode_batch_head,
    encode_message,
    encode_record,
)
from leveret.store.fsio import REAL, FileIO, failures
from leveret.store.log import DEFAULT_SEGMENT_SIZE, Log
from leveret.store.recovery import Damage, RecoveryReport, note_damage, truncate_torn_tail
from leveret.store.resync import BufferWindow, scan_records

# Set on the first record of each chunk (records made durable by one group commit).
FLAG_CHUNK_START = 0x02
# Set on an offsets.log record that drops the consumer's offset (an expired Kafka group's).
FLAG_FORGOTTEN = 0x01
# Set on an offsets.log record whose payload carries a metadata string after the name; only records with
# non-empty metadata carry it, so offsets without metadata (all of AMQP's) are written as before the flag.
FLAG_METADATA = 0x04
OFFSET_NAME_LEN = struct.Struct("<I")
OFFSETS_FILE = "offsets.log"
OFFSETS_COMPACT_BYTES = 1 << 20


def stored_message(offset: int, timestamp: int, flags: int, payload: bytes) -> StoredMessage:
    """A KIND_MESSAGE payload as a StoredMessage, sliced in place (no intermediate tuple)."""
    ex_len, rk_len, props_len = MESSAGE_HEAD.unpack_from(payload, 0)
    rk_at = MESSAGE_HEAD.size + ex_len
    props_at = rk_at + rk_len
    body_at = props_at + props_len
    return StoredMessage(
        offset,
        timestamp,
        flags,
        payload[MESSAGE_HEAD.size : rk_at].decode(),
        payload[rk_at:props_at].decode(),
        payload[props_at:body_at],
        payload[body_at:],
    )


def stored_batch(offset: int, timestamp: int, flags: int, payload: bytes | memoryview) -> StoredBatch:
    """A KIND_BATCH payload (a view of the read buffer: segment.py) as a StoredBatch, its batch not decoded."""
    span, batch_format, ex_len = BATCH_HEAD.unpack_from(payload, 0)
    at = BATCH_HEAD.size + ex_len
    return StoredBatch(offset, timestamp, flags, bytes(payload[BATCH_HEAD.size : at]).decode(), span, batch_format,
                       memoryview(payload)[at:])  # a view: a batch is up to megabytes, read only to be sent on


def encode_offset(name: str, offset: int, metadata: str) -> bytes:
    """One offsets.log record: `name`'s offset, with its metadata string when it has one."""
    if not metadata:
        return encode_record(KIND_RAW, 0, offset, 0, name.encode())
    raw = name.encode()
    return encode_record(KIND_RAW, FLAG_METADATA, offset, 0, OFFSET_NAME_LEN.pack(len(raw)) + raw + metadata.encode())


def decode_offset_payload(flags: int, raw: bytes) -> tuple[str, str]:
    """An offsets.log record's (name, metadata)."""
    if not flags & FLAG_METADATA:
        return raw.decode("utf-8", "replace"), ""
    (length,) = OFFSET_NAME_LEN.unpack_from(raw, 0)
    at = OFFSET_NAME_LEN.size + length
    return raw[OFFSET_NAME_LEN.size : at].decode("utf-8", "replace"), raw[at:].decode("utf-8", "replace")


class OffsetFile:
    """Consumer name -> last acknowledged offset (and its metadata string), kept as an append-only file of
    checksummed records."""

    def __init__(self, path: str, report: RecoveryReport | None = None, io: FileIO = REAL) -> None:
        self.path = path
        self.io = io
        self.offsets: dict[str, int] = {}
        self.metadata: dict[str, str] = {}  # only the names whose metadata is not empty
        self._pending = bytearray()
        size = self._load(report)
        self._size = size
        self._fd: int | None = None

    def _load(self, report: RecoveryReport | None) -> int:
        try:
            with open(self.path, "rb") as f:
                data = f.read()  # small: compacted past OFFSETS_COMPACT_BYTES
        except FileNotFoundError:
            return 0
        found = report if report is not None else RecoveryReport()

        def note(offset: int, _timestamp: int, position: int, size: int) -> None:
            if data[position + 2] != KIND_RAW:  # the record's kind byte
                return
            flags = data[position + 3]
            name, metadata = decode_offset_payload(
                flags, data[position + RECORD_HEADER.size : position + size - RECORD_TRAILER.size])
            if flags & FLAG_FORGOTTEN:
                self.offsets.pop(name, None)
                self.metadata.pop(name, None)
            else:
                self._remember(name, offset, metadata)

        def skip(position: int, length: int, reason: str) -> None:
            note_damage(found.corrupt_records, Damage(self.path, position, length, reason))

        # Offsets of different consumers are in no order, so the scan does not ask for increasing ones.
        end, torn = scan_records(BufferWindow(data), 0, note, skip, increasing=False)
        if torn is not None:
            # A torn tail: the offsets before it stand, a lost update makes a consumer re-read a few.
            truncate_torn_tail(self.path, end, found, "torn offsets record")
        return end

    def _remember(self, name: str, offset: int, metadata: str) -> None:
        self.offsets[name] = offset
        if metadata:
            self.metadata[name] = metadata
        else:
            self.metadata.pop(name, None)

    def set(self, name: str, offset: int, metadata: str = "") -> None:
        """Remember `offset` and `metadata` for `name` (written on the next sync)."""
        self._remember(name, offset, metadata)
        self._pending += encode_offset(name, offset, metadata)

    def forget(self, name: str) -> None:
        """Drop `name`'s offset (a record saying so is written on the next sync)."""
        self.metadata.pop(name, None)
        if self.offsets.pop(name, None) is not None:
            self._pending += encode_record(KIND_RAW, FLAG_FORGOTTEN, 0, 0, name.encode())

    def dup_for_sync(self) -> list[int]:
        """Write pending records (compacting a large file first); a descriptor to fdatasync, or none."""
        if not self._pending:
            return []
        if self._size + len(self._pending) > OFFSETS_COMPACT_BYTES:
            self._compact()
            return []
        if self._fd is None:
            self._fd = self.io.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self.io.write_all(self._fd, self._pending)
        except OSError:
            # Cut the partial record (kept buffered for the next commit); if that fails, compact next time.
            try:
                self.io.ftruncate(self._fd, self._size)
            except OSError:
                self._size = OFFSETS_COMPACT_BYTES
            raise
        self._size += len(self._pending)
        self._pending.clear()
        return [os.dup(self._fd)]

    def _compact(self) -> None:
        # Rewrite the live map; fsynced here because a rename must never expose an unsynced file.
        data = b"".join(encode_offset(name, off, self.metadata.get(name, "")) for name, off in self.offsets.items())
        self.close()
        self.io.write_atomically(self.path, data)
        self._size = len(data)
        self._pending.clear()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class FileStreamStore:
    """api.StreamStore on a Log; a commit.Syncable of the message store's group commit."""

    def __init__(
        self,
        directory: str,
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        max_age_ms: int | None = None,
        max_bytes: int | None = None,
        group: GroupCommit | None = None,
        io: FileIO = REAL,
    ) -> None:
        self.directory = directory
        self.max_age_ms = max_age_ms
        self.max_bytes = max_bytes
        self._group = group
        self.io = io
        self._log = Log(directory, segment_size=segment_size, on_dirty=self._mark_dirty, io=io)
        self.report: RecoveryReport = self._log.report
        self._offsets = OffsetFile(os.path.join(directory, OFFSETS_FILE), self.report, io)
        self._chunk_open = False
        self._last_chunk = self._find_last_chunk()
        self._deleted = False

    def _mark_dirty(self) -> None:
        if self._group is not None:
            self._group.mark_dirty(self)

    def _find_last_chunk(self) -> int:
        for segment in reversed(self._log.segments):
            if segment.count == 0:
                continue
            last = segment.first_offset
            for record in segment.iterate():
                if record.flags & FLAG_CHUNK_START:
                    last = record.offset
            segment.close_reader()
            assert last is not None
            return last
        return self._log.next_offset

    # -- api.StreamStore ------------------------------------------------------------------------
    @property
    def first_offset(self) -> int:
        return self._log.first_offset

    @property
    def next_offset(self) -> int:
        return self._log.next_offset

    @property
    def last_chunk_offset(self) -> int:
        return self._last_chunk

    @property
    def size_bytes(self) -> int:
        return self._log.size_bytes

    @property
    def segment_count(self) -> int:
        return len(self._log.segments)

    def append(self, exchange: str, routing_key: str, props_raw: bytes, body: bytes, timestamp: int) -> int:
        return self._append(encode_message(exchange, routing_key, props_raw, body), timestamp, KIND_MESSAGE, 1)

    def append_batch(self, exchange: str, span: int, batch_format: int, data: list[bytes], timestamp: int) -> int:
        return self._append([encode_batch_head(span, batch_format, exchange), *data], timestamp, KIND_BATCH, span)

    def _append(self, payload: bytes | list[bytes], timestamp: int, kind: int, span: int) -> int:
        log = self._log
        segments = log.segments
        before = len(segments)
        flags = 0 if self._chunk_open else FLAG_CHUNK_START
        try:
            offset = log.append(payload, timestamp, kind, flags, span)
        except OSError as exc:
            failures.note("write to a stream", exc)
            if self._group is not None:
                self._group.abort_open(self)
            else:
                self.rollback_open()
            raise
        if not self._chunk_open:
            self._chunk_open = True
            self._last_chunk = offset
        if len(segments) != before and (self.max_bytes is not None or self.max_age_ms is not None):
            self.apply_retention(timestamp)
        return offset

    def recent_offset(self, segments: int) -> int:
        kept = self._log.segments[-segments:]
        return max(kept[0].base, self.first_offset) if kept else self.next_offset

    def read_from(self, offset: int) -> Iterator[StoredMessage | StoredBatch]:
        message, batch = stored_message, stored_batch
        for record in self._log.iterate(max(offset, self._log.first_offset)):
            if record.kind == KIND_BATCH:
                yield batch(record.offset, record.timestamp, record.flags, record.payload)
            else:
                yield message(record.offset, record.timestamp, record.flags, record.payload)

    def seek_time(self, timestamp: int) -> int:
        return self._log.seek_time(timestamp)

    def apply_retention(self, now_ms: int) -> list[int]:
        if self.max_bytes is None and self.max_age_ms is None:
            return []
        before = None if self.max_age_ms is None else now_ms - self.max_age_ms
        return self._log.drop_head_segments(max_bytes=self.max_bytes, before_timestamp=before)

    def tracked_offset(self, consumer: str) -> int | None:
        return self._offsets.offsets.get(consumer)

    def tracked_metadata(self, consumer: str) -> str:
        return self._offsets.metadata.get(consumer, "")

    def track_offset(self, consumer: str, offset: int, metadata: str = "") -> None:
        if self._deleted or (self._offsets.offsets.get(consumer) == offset
                             and self._offsets.metadata.get(consumer, "") == metadata):
            return
        self._offsets.set(consumer, offset, metadata)
        self._mark_dirty()

    def forget_offset(self, consumer: str) -> None:
        if not self._deleted and consumer in self._offsets.offsets:
            self._offsets.forget(consumer)
            self._mark_dirty()

    def tracked_names(self) -> list[str]:
        return list(self._offsets.offsets)

    def delete(self) -> None:
        self._deleted = True
        if self._group is not None:
            self._group.forget(self)
        self._offsets.close()
        self._log.delete()

    # -- commit.Syncable ------------------------------------------------------------------------
    def dup_data_fds(self) -> list[int]:
        # A commit begins: whatever is appended from now on belongs to the next chunk.
        self._chunk_open = False
        return self._log.dup_data_fds()

    def dup_derived_fds(self) -> list[int]:
        return self._offsets.dup_for_sync()

    def commit_done(self) -> None:
        self._log.commit_done()

    def rollback_open(self) -> None:
        self._rolled_back(self._log.rollback_open())

    def rollback_all(self) -> None:
        self._rolled_back(self._log.rollback_all())

    def _rolled_back(self, offsets: list[int]) -> None:
        # The next append starts a new chunk; "last" must not name a record that is gone.
        self._chunk_open = False
        if offsets and self._last_chunk >= min(offsets):
            self._last_chunk = self._find_last_chunk()

    # -- the rest -------------------------------------------------------------------------------
    @property
    def log(self) -> Log:
        """The underlying log (for tests and inspection)."""
        return self._log

    def sync(self) -> None:
        """fsync data then offsets here and now (for callers without a group commit)."""
        try:
            fds = self.dup_data_fds()
        except OSError:
            self.rollback_open()
            raise
        fds += self.dup_derived_fds()
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

    def close(self) -> None:
        """Flush and close files (no fsync)."""
        try:
            for fd in self._offsets.dup_for_sync():
                os.close(fd)
        except OSError:
            pass  # tracked offsets are derived: a consumer re-reads a few messages
        self._offsets.close()
        self._log.close()
