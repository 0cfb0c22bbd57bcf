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


class CommitTicket:
    """One prepared commit: descriptors to fsync, and the number that names it."""

    __slots__ = ("seq", "data_fds", "derived_fds", "_seam")

    def __init__(self, seq: int, data_fds: list[int], derived_fds: list[int], seam: SeamHook) -> None:
        self.seq = seq
        self.data_fds = data_fds
        self.derived_fds = derived_fds
        self._seam = seam

    def run(self) -> int:
        """fdatasync the data, then the derived files; close every descriptor; return `seq`."""
        try:
            for fd in self.data_fds:
                os.fdatasync(fd)
            self._seam(Seam.AFTER_DATA_FSYNC)
            for fd in self.derived_fds:
                os.fdatasync(fd)
            self._seam(Seam.AFTER_ACK_FSYNC)
        finally:
            for fd in self.data_fds + self.derived_fds:
                os.close(fd)
            self.data_fds = []
            self.derived_fds = []
        return self.seq


class GroupCommit:
    """Tracks dirty syncables and numbers commits; see the module docstring for the threading."""

    def __init__(self, seam: SeamHook = no_seam) -> None:
        self._seam = seam
        self._dirty: dict[int, Syncable] = {}
        self.seq = 0  # number of the last commit begun

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
        """Write all buffers and prepare the fsyncs; runs on the appending thread."""
        dirty = list(self._dirty.values())
        self._dirty.clear()
        self.seq += 1
        data: list[int] = []
        derived: list[int] = []
        try:
            for syncable in dirty:
                data.extend(syncable.dup_data_fds())
            self._seam(Seam.AFTER_DATA_WRITE)
            for syncable in dirty:
                derived.extend(syncable.dup_derived_fds())
            self._seam(Seam.AFTER_ACK_WRITE)
        except BaseException:
            for fd in data + derived:
                os.close(fd)
            raise
        return CommitTicket(self.seq, data, derived, self._seam)

    def sync_all(self) -> int:
        """Sync every dirty file once, here and now; everything appended before the call is durable."""
        return self.begin().run()
