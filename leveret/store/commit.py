"""Group commit: one fsync per dirty file covers every append made before the commit began.

The broker appends on the event-loop thread; the server fsyncs on one worker thread and confirms
publishes when that fsync returns. The work is split to keep the threads apart:

* ``GroupCommit.begin()`` runs on the appending thread. It writes every user-space buffer to the
  kernel, hands out *duplicated* descriptors of every dirty file (data first, then derived ack
  files) and numbers the commit. Everything appended before ``begin()`` belongs to this commit.
* ``CommitTicket.run()`` may run on any thread. It fdatasyncs the data descriptors, then the
  derived ones, closes them all and returns the commit number. Duplicated descriptors stay valid
  even if the appending thread meanwhile rolls, closes or deletes the files.

``sync_all()`` is both steps in a row, for callers without a worker thread.

Failures (see fsio.py, log.py). A data write that fails in ``begin()`` rolls the batch back in every
syncable of the commit and raises. A data fsync that fails in ``run()`` raises; the appending thread then
calls ``end(ticket)``, which rolls back that batch *and* the open one after it (their records follow in the
same files, which are no longer trusted). Either way ``on_abort`` listeners hear of it, so publishes waiting
for the next commit are nacked, not confirmed. Derived files (acks, tracked offsets) are different: a lost
ack only redelivers, so their write or fsync failure is logged and costs the commit nothing.

Crash seams: each ``Seam`` is a named point at which a kill test can stop the process (pass a
``seam`` hook that calls ``os._exit`` or raises). They mark the orderings that recovery must cope
with: data written but not durable, data durable but acks not, a fully acked segment half deleted,
a snapshot written but not renamed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from enum import StrEnum
from typing import Protocol

from leveret.store.fsio import REAL, FileIO, failures


class Seam(StrEnum):
    """Named points between the steps of a commit, a segment deletion and a snapshot."""

    AFTER_DATA_WRITE = "after_data_write"  # records handed to the kernel, no fsync yet
    AFTER_ACK_WRITE = "after_ack_write"  # ack records handed to the kernel, no fsync yet
    AFTER_DATA_FSYNC = "after_data_fsync"  # records durable, ack files not yet fsynced
    AFTER_ACK_FSYNC = "after_ack_fsync"  # the whole commit is durable
    BEFORE_SEGMENT_DELETE = "before_segment_delete"  # a segment is fully acked, still on disk
    AFTER_SEGMENT_DELETE = "after_segment_delete"  # the segment is gone, its ack file is not
    AFTER_TMP_WRITE = "after_tmp_write"  # a snapshot .tmp is fsynced, not yet renamed
    AFTER_DEFINITION_WRITE = "after_definition_write"  # a definition record written, not fsynced


SeamHook = Callable[[Seam], None]


def no_seam(seam: Seam) -> None:
    """The default hook: carry on."""


class Syncable(Protocol):
    """Something with files to fsync: a log, a queue store."""

    def dup_data_fds(self) -> list[int]:
        """Flush data buffers; descriptors (owned by the caller) to fdatasync, data first."""

    def dup_derived_fds(self) -> list[int]:
        """Flush derived buffers (ack files); descriptors (owned by the caller) to fdatasync after the data."""

    def commit_done(self) -> None:
        """The batch handed out by the last dup_data_fds is durable."""

    def rollback_open(self) -> None:
        """Drop what was appended since the last dup_data_fds (a write failed)."""

    def rollback_all(self) -> None:
        """Drop the batch in flight and the open one (an fsync failed)."""


class CommitTicket:
    """One prepared commit: descriptors to fsync, and the number that names it."""

    __slots__ = ("seq", "data_fds", "derived_fds", "_seam", "_io", "syncables", "error")

    def __init__(self, seq: int, data_fds: list[int], derived_fds: list[int], seam: SeamHook,
                 io: FileIO = REAL, syncables: list[Syncable] | None = None) -> None:
        self.seq = seq
        self.data_fds = data_fds
        self.derived_fds = derived_fds
        self._seam = seam
        self._io = io
        self.syncables = syncables or []
        self.error: OSError | None = None  # set when the data fsync failed

    def run(self) -> int:
        """fdatasync the data, then the derived files; close every descriptor; return `seq`.

        Raises (and keeps in `error`) the OSError of a failed data fsync; a failed derived fsync is only
        logged (see the module docstring)."""
        io = self._io
        try:
            try:
                for fd in self.data_fds:
                    io.fdatasync(fd)
            except OSError as exc:
                self.error = exc
                raise
            self._seam(Seam.AFTER_DATA_FSYNC)
            try:
                for fd in self.derived_fds:
                    io.fdatasync(fd)
            except OSError as exc:
                failures.note("fsync of ack files", exc)
            self._seam(Seam.AFTER_ACK_FSYNC)
        finally:
            for fd in self.data_fds + self.derived_fds:
                os.close(fd)
            self.data_fds = []
            self.derived_fds = []
        return self.seq


class GroupCommit:
    """Tracks dirty syncables and numbers commits; see the module docstring for the threading."""

    def __init__(self, seam: SeamHook = no_seam, io: FileIO = REAL) -> None:
        self._seam = seam
        self._io = io
        self._dirty: dict[int, Syncable] = {}
        self.seq = 0  # number of the last commit begun
        self.on_abort: list[Callable[[], None]] = []  # told whenever appended records were rolled back
        self.aborts = 0  # rollbacks so far (for tests and metrics)

    @property
    def pending(self) -> bool:
        """True if something was appended or acked since the last commit began."""
        return bool(self._dirty)

    def mark_dirty(self, syncable: Syncable) -> None:
        """Include `syncable` in the next commit (cheap; call on every write)."""
        self._dirty[id(syncable)] = syncable

    def forget(self, syncable: Syncable) -> None:
        """Leave a deleted syncable out of the next commit."""
        self._dirty.pop(id(syncable), None)

    def begin(self) -> CommitTicket:
        """Write all buffers and prepare the fsyncs; runs on the appending thread.

        At most one ticket may be in flight (begun, not yet passed to `end`)."""
        dirty = list(self._dirty.values())
        self._dirty.clear()
        self.seq += 1
        data: list[int] = []
        derived: list[int] = []
        try:
            for syncable in dirty:
                data.extend(syncable.dup_data_fds())
        except OSError as exc:
            for fd in data:
                os.close(fd)
            failures.note("write to the message store", exc)
            # Syncables already written hold this batch as their batch in flight; the rest as their open one.
            self._abort(dirty)
            raise
        except BaseException:
            for fd in data:
                os.close(fd)
            raise
        try:
            self._seam(Seam.AFTER_DATA_WRITE)
            for syncable in dirty:
                try:
                    derived.extend(syncable.dup_derived_fds())
                except OSError as exc:
                    # Kept buffered and written with the queue's next commit; a crash meanwhile redelivers.
                    failures.note("write of ack files", exc)
            self._seam(Seam.AFTER_ACK_WRITE)
        except BaseException:
            for fd in data + derived:
                os.close(fd)
            raise
        return CommitTicket(self.seq, data, derived, self._seam, self._io, dirty)

    def end(self, ticket: CommitTicket) -> None:
        """After `ticket.run()`, on the appending thread: settle the batch (durable, or rolled back)."""
        if ticket.error is None:
            for syncable in ticket.syncables:
                syncable.commit_done()
            return
        failures.note("fsync of the message store", ticket.error)
        self._abort(ticket.syncables)

    def abort_open(self, failed: Syncable | None = None) -> None:
        """A write failed while appending: drop the open batch everywhere (see the module docstring)."""
        syncables = list(self._dirty.values())
        self._dirty.clear()
        if failed is not None and all(s is not failed for s in syncables):
            syncables.append(failed)
        for syncable in syncables:
            syncable.rollback_open()
        self._aborted()

    def _abort(self, in_flight: list[Syncable]) -> None:
        for syncable in in_flight:
            syncable.rollback_all()
        open_batch = [s for s in self._dirty.values() if all(s is not f for f in in_flight)]
        self._dirty.clear()
        for syncable in open_batch:
            syncable.rollback_open()
        self._aborted()

    def _aborted(self) -> None:
        self.aborts += 1
        for listener in self.on_abort:
            listener()

    def sync_all(self) -> int:
        """Sync every dirty file once, here and now; everything appended before the call is durable."""
        ticket = self.begin()
        try:
            return ticket.run()
        finally:
            self.end(ticket)
