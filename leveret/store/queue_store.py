"""One durable queue's store: its segmented log and ack files (api.QueueStore over files).

Appends go to the log (log.py), acks to per-segment ack files (acks.py); both are made durable by the
message store's group commit (commit.py), and rolled back together when a commit fails (store/api.py's
contract: ``on_lost`` and ``on_unacked`` tell the owner). A segment is deleted whole once every record in
it is acked and those acks are durable. A clean close leaves the clean-shutdown index (cleanindex.py)
that lets the next open skip the scan.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator

from leveret.store.acks import AckFiles
from leveret.store.cleanindex import scan_unacked, take_clean_index, write_clean_index
from leveret.store.api import StoredMessage
from leveret.store.commit import GroupCommit, Seam, SeamHook, no_seam
from leveret.store.format import KIND_MESSAGE, MESSAGE_HEAD, decode_message, encode_message
from leveret.store.fsio import REAL, FileIO, failures
from leveret.store.log import DEFAULT_SEGMENT_SIZE, Log
from leveret.store.recovery import Damage, RecoveryReport, recover_acks


def _message(record) -> StoredMessage:
    exchange, routing_key, props_raw, body = decode_message(record.payload)
    return StoredMessage(record.offset, record.timestamp, record.flags, exchange, routing_key, props_raw, body)


class FileQueueStore:
    """One queue's log plus ack files; segments are deleted whole once every record in them is acked."""

    def __init__(
        self,
        directory: str,
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        group: GroupCommit | None = None,
        seam: SeamHook = no_seam,
        io: FileIO = REAL,
    ) -> None:
        self.directory = directory
        self._group = group
        self._seam = seam
        self.io = io
        # Told the offsets of records a failed write or fsync rolled back (the broker drops those messages).
        self.on_lost: Callable[[list[int]], None] | None = None
        self.on_unacked: Callable[[list[int]], None] | None = None
        # Fully acked segments, deleted once the acks that emptied them are durable: first those whose acks
        # are not written yet, then (from the commit that writes them) those whose acks ride that commit.
        # A commit that completes deletes only its own: a segment emptied by acks of the batch still open
        # must wait for that batch, whose dead-lettered copies may yet be rolled back.
        self._deletable: set[int] = set()
        self._deletable_in_flight: set[int] = set()
        started = time.perf_counter()
        # A clean close left an index that spares the scan (cleanindex.py); a crash left none.
        clean, rejected = take_clean_index(directory)
        self._log = Log(directory, segment_size=segment_size, on_dirty=self._mark_dirty,
                        trusted=clean.build_segments(directory) if clean is not None else None, io=io)
        self.report: RecoveryReport = self._log.report
        by_base = {s.base: s for s in self._log.segments}
        self._acks = AckFiles(directory, recover_acks(directory, by_base, self.report), io)
        self._count = sum(s.count for s in self._log.segments) - self._acks.total()
        if rejected is not None:
            self.report.rejected_clean_indexes.append(rejected)
        if clean is not None:
            self.report.trusted_clean_indexes += 1
            self.report.seconds += time.perf_counter() - started
            if len(clean.offsets) != self._count:  # cannot happen unless a file lied: read headers instead
                self.report.rejected_clean_indexes.append(Damage(directory, 0, 0, "unacked index disagrees with acks"))
                clean = None
        # Valid while nothing was appended or acked since the open (recover_index checks).
        self._clean = (clean, self._log.next_offset) if clean is not None else None
        # A crash between the last ack and the deletion leaves fully acked segments behind.
        for segment in list(self._log.segments[:-1]):
            if segment.count == self._acks.count(segment.base):
                self.report.deleted_acked_segments.append(segment.path)
                self._delete_segment(segment.base)

    def _mark_dirty(self) -> None:
        if self._group is not None:
            self._group.mark_dirty(self)

    # -- api.QueueStore ---------------------------------------------------------------------------

    @property
    def next_offset(self) -> int:
        return self._log.next_offset

    def __len__(self) -> int:
        return self._count

    def append(
        self, exchange: str, routing_key: str, props_raw: bytes, body: bytes, timestamp: int, flags: int = 0
    ) -> int:
        segments = self._log.segments
        previous = segments[-1] if segments else None
        before = self._log.next_offset
        try:
            offset = self._log.append(encode_message(exchange, routing_key, props_raw, body), timestamp,
                                      KIND_MESSAGE, flags)
        except OSError as exc:
            # A full buffer's write (or a new segment's creation) failed: the whole open batch goes, in
            # every queue, so no queue keeps a message whose publish is about to be nacked.
            failures.note("write to the message store", exc)
            self._count += self._log.next_offset - before  # the failed record, if the log took it
            if self._group is not None:
                self._group.abort_open(self)
            else:
                self.rollback_open()
            raise
        self._count += 1
        if previous is not None and previous is not segments[-1] and previous.count == self._acks.count(previous.base):
            # The segment just rolled away from was already fully acked while it was active.
            self._deletable.add(previous.base)
            self._mark_dirty()
        return offset

    def read_batch(self, start: int, limit: int) -> list[StoredMessage]:
        out: list[StoredMessage] = []
        if limit <= 0:
            return out
        is_acked = self._acks.is_acked
        for record in self._log.iterate(start):
            segment = self._log.segment_for(record.offset)
            if segment is not None and is_acked(segment.base, record.offset):
                continue
            out.append(_message(record))
            if len(out) >= limit:
                break
        return out

    def ack(self, offset: int) -> bool:
        segment = self._log.segment_for(offset)
        if segment is None or not segment.contains(offset) or self._acks.is_acked(segment.base, offset):
            return False
        self._acks.add(segment.base, offset)
        self._count -= 1
        self._mark_dirty()
        if segment is not self._log.segments[-1] and segment.count == self._acks.count(segment.base):
            self._deletable.add(segment.base)  # deleted once this ack is durable (commit_done)
        return True

    def read(self, offset: int) -> StoredMessage:
        segment = self._log.segment_for(offset)
        if segment is None or self._acks.is_acked(segment.base, offset):
            raise KeyError(offset)
        return _message(self._log.read(offset))

    def recover(self) -> Iterator[tuple[int, StoredMessage]]:
        # Segment by segment with that segment's acked set in hand: no per-record segment lookup.
        unpack = MESSAGE_HEAD.unpack_from
        head = MESSAGE_HEAD.size
        empty: set[int] = set()
        for segment in list(self._log.segments):
            acked = self._acks.acked(segment.base) or empty
            for offset, timestamp, _kind, flags, payload in segment.iterate():
                if offset in acked:
                    continue
                ex_len, rk_len, props_len = unpack(payload, 0)
                rk_at = head + ex_len
                props_at = rk_at + rk_len
                body_at = props_at + props_len
                yield offset, StoredMessage(
                    offset,
                    timestamp,
                    flags,
                    payload[head:rk_at].decode(),
                    payload[rk_at:props_at].decode(),
                    payload[props_at:body_at],
                    payload[body_at:],
                )
            segments = self._log.segments
            if not segments or segment is not segments[-1]:
                segment.close_reader()  # a long backlog must not hold a descriptor per segment

    def recover_index(self) -> Iterator[tuple[int, int, int]]:
        # From the clean-shutdown index if nothing changed since the open; else by hopping over
        # record headers (recovery verified them), never reading or checking a body.
        clean, self._clean = self._clean, None  # once: its columns are released after this
        if clean is not None and clean[1] == self._log.next_offset and len(clean[0].offsets) == self._count:
            yield from zip(clean[0].offsets, clean[0].sizes, clean[0].timestamps)
            return
        empty: set[int] = set()
        for segment in list(self._log.segments):
            yield from zip(*scan_unacked(segment, self._acks.acked(segment.base) or empty))
            segments = self._log.segments
            if not segments or segment is not segments[-1]:
                segment.close_reader()

    def delete(self) -> None:
        if self._group is not None:
            self._group.forget(self)
        self._log.delete()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- commit.Syncable --------------------------------------------------------------------------

    def dup_data_fds(self) -> list[int]:
        return self._log.dup_data_fds()

    def dup_derived_fds(self) -> list[int]:
        fds = self._acks.dup_for_sync()
        # Every ack so far is written now (a failed write raised above, keeping them for the next commit).
        self._deletable_in_flight |= self._deletable
        self._deletable = set()
        return fds

    def commit_done(self) -> None:
        self._log.commit_done()
        self._acks.commit_done()
        if self._deletable_in_flight:
            # Segments fully acked by acks now durable (not before: a rolled-back ack must find its record).
            bases, self._deletable_in_flight = self._deletable_in_flight, set()
            segments = self._log.segments
            for segment in list(segments[:-1]):
                if segment.base in bases and segment.count == self._acks.count(segment.base):
                    self._delete_segment(segment.base)

    def rollback_open(self) -> None:
        self._rolled_back(self._acks.rollback_open(), self._log.rollback_open())

    def rollback_all(self) -> None:
        # The acks that emptied these segments may be cut off now; ack() finds them again if they are redone.
        self._deletable |= self._deletable_in_flight
        self._deletable_in_flight = set()
        self._rolled_back(self._acks.rollback_all(), self._log.rollback_all())

    def _rolled_back(self, unacked: set[int], lost: list[int]) -> None:
        """Records `lost` are gone; the acks of `unacked` are, so those messages are in the queue again."""
        self._count += len(unacked)
        if lost:
            acked = self._acks.forget(set(lost), {s.base for s in self._log.segments})
            self._count -= len(lost) - acked
            if self.on_lost is not None:
                self.on_lost(lost)
            unacked.difference_update(lost)
        if unacked and self.on_unacked is not None:
            self.on_unacked(sorted(unacked))

    # -- the rest ---------------------------------------------------------------------------------

    @property
    def log(self) -> Log:
        """The underlying log (for tests and inspection)."""
        return self._log

    def _delete_segment(self, base: int) -> None:
        # Data before derived: with the segment gone first, a crash leaves at worst an orphaned ack
        # file (pruned by recovery); the other order would resurrect every acked message.
        self._seam(Seam.BEFORE_SEGMENT_DELETE)
        self._log.delete_segment(base)
        self._seam(Seam.AFTER_SEGMENT_DELETE)
        self._acks.delete(base)

    def close(self) -> None:
        """Make everything durable, close the files, and leave the clean-shutdown index for the next open."""
        trusted = True
        try:
            fds = self._log.dup_data_fds()  # data before acks, as a commit
        except OSError:
            self.rollback_all()  # nothing of it was confirmed: the publishers were nacked
            fds, trusted = [], False
        try:
            fds += self._acks.dup_for_sync()
        except OSError:
            trusted = False  # acks are derived: the next open scans and redelivers what they named
        try:
            for fd in fds:
                self.io.fsync(fd)  # usually none: the server synced everything before closing
        except OSError:
            # Not trusted: no clean index, so the next open scans (and cuts whatever is torn).
            self.rollback_all()
            trusted = False
        finally:
            for fd in fds:
                os.close(fd)
        if trusted:
            self._log.commit_done()
        self._log.close()
        if not trusted:
            return
        try:
            write_clean_index(self.directory, self._log.segments, self._acks.acked, self.io.write_atomically)
        except OSError:
            pass  # e.g. disk full: the next open runs the full scan, nothing else is lost
