"""Ack files: per segment of a queue, the offsets consumers have acknowledged.

An ack file ``<base>.ack`` sits beside its segment ``<base>.seg`` and holds fixed 12-byte records
(format.ACK_RECORD). Acks are buffered and written when a commit begins, after that commit's
data has been written; their fsync follows the data's fsync (commit.py). They are derived data: an
ack lost in a crash re-delivers a message (allowed by at-least-once), and an ack whose message was
lost is pruned by recovery. When every record of a segment is acked the queue deletes the segment
first and the ack file after; a crash in between leaves an orphaned ack file that recovery removes.

Each commit opens the dirty ack files, appends, and gives the descriptors to the commit ticket to
fsync and close; no descriptor stays open per segment, so a long backlog costs no file handles.

Acks follow the data's fate: if the batch they were written with is rolled back (a data write or
fsync failed, see log.py), its ack records are dropped too (buffered ones forgotten, written ones cut
off) and the offsets count as unacked again. An ack may stand for a move inside the broker (a message
dead-lettered or a delayed message released into a queue) whose new copy was just rolled back; keeping
the ack would lose that message. The message then stays where it was on disk, and the queue's store tells
its owner (``on_unacked``), which puts it back in memory too (to a consumer it is a redelivery, which
at-least-once allows).

A failed write (a full disk) cuts the file back to its length before the write, keeps the records
buffered for the next commit, and raises; if even the cut fails, the file is rewritten whole (write then
rename) by the next commit, so a partial record is never followed by good ones.
"""

from __future__ import annotations

import os

from leveret.store.format import ACK_RECORD, ack_name, decode_ack, encode_ack
from leveret.store.fsio import REAL, FileIO


class AckFiles:
    """The ack files of one queue directory and the acked offsets they hold, per segment base."""

    def __init__(self, directory: str, acked: dict[int, set[int]], io: FileIO = REAL) -> None:
        self.directory = directory
        self.io = io
        self._acked = acked
        self._pending: dict[int, bytearray] = {}
        self._new_files = False
        self._rewrite: set[int] = set()  # ack files whose tail could not be cut after a failed write
        # Ack records written with the commit in flight, per base: (file size before them, the records).
        self._flight: dict[int, tuple[int, bytearray]] = {}

    def path(self, base: int) -> str:
        """The ack file of the segment at `base`."""
        return os.path.join(self.directory, ack_name(base))

    def is_acked(self, base: int, offset: int) -> bool:
        """True if `offset` (in the segment at `base`) is acked."""
        acked = self._acked.get(base)
        return acked is not None and offset in acked

    def acked(self, base: int) -> set[int] | None:
        """The live set of acked offsets of the segment at `base` (None if none yet)."""
        return self._acked.get(base)

    def count(self, base: int) -> int:
        """How many offsets of the segment at `base` are acked."""
        acked = self._acked.get(base)
        return len(acked) if acked is not None else 0

    def total(self) -> int:
        """Acked offsets over all segments still present."""
        return sum(len(a) for a in self._acked.values())

    def add(self, base: int, offset: int) -> None:
        """Ack `offset` in the segment at `base` (the caller checked it is present and unacked)."""
        acked = self._acked.get(base)
        if acked is None:
            acked = self._acked[base] = set()
            self._new_files = True
        acked.add(offset)
        pending = self._pending.get(base)
        if pending is None:
            pending = self._pending[base] = bytearray()
        pending += encode_ack(offset)

    def dup_for_sync(self) -> list[int]:
        """Write pending acks; return descriptors (owned by the caller) to fdatasync and close."""
        io = self.io
        fds: list[int] = []
        try:
            for base in list(self._pending):
                if base in self._rewrite:
                    io.write_atomically(self.path(base), b"".join(encode_ack(o) for o in sorted(self._acked.get(base, ()))))
                    self._rewrite.discard(base)
                    del self._pending[base]
                    continue
                fd = io.open(self.path(base), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                fds.append(fd)
                before = os.fstat(fd).st_size
                try:
                    io.write_all(fd, self._pending[base])
                except OSError:
                    try:
                        io.ftruncate(fd, before)
                    except OSError:
                        self._rewrite.add(base)
                    raise
                written = self._pending.pop(base)
                flight = self._flight.get(base)
                if flight is None:
                    self._flight[base] = (before, written)
                else:
                    flight[1].extend(written)
            if self._new_files:
                fds.append(io.open(self.directory, os.O_RDONLY))
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        self._new_files = False
        return fds

    def commit_done(self) -> None:
        """The commit in flight is durable: its ack records stay."""
        self._flight.clear()

    def _unack(self, base: int, records: bytearray) -> set[int]:
        acked = self._acked.get(base)
        if not acked:
            return set()
        offsets = {decode_ack(records, pos) for pos in range(0, len(records), ACK_RECORD.size)}
        both = acked & offsets
        acked.difference_update(both)
        return both

    def rollback_open(self) -> set[int]:
        """Forget the buffered acks (their batch was rolled back); return the offsets unacked again."""
        unacked: set[int] = set()
        for base, records in self._pending.items():
            unacked |= self._unack(base, records)
        self._pending.clear()
        return unacked

    def rollback_all(self) -> set[int]:
        """Also cut off the acks written with the commit in flight (its fsync failed); see rollback_open."""
        unacked = self.rollback_open()
        for base, (before, records) in self._flight.items():
            unacked |= self._unack(base, records)
            try:
                self.io.truncate(self.path(base), before)
            except FileNotFoundError:
                pass
            except OSError:
                # Rewritten whole (from the acked set) with the next commit.
                self._rewrite.add(base)
                self._pending.setdefault(base, bytearray())
        self._flight.clear()
        return unacked

    def forget(self, lost: set[int], bases: set[int]) -> int:
        """Rolled-back records cannot stay acked; ack files of segments no longer in `bases` go.

        Returns how many of `lost` were acked. (Offsets are never reused while running, so an ack record
        already on disk for a lost offset is harmless: recovery prunes it.)"""
        acked_lost = 0
        for base in list(self._acked):
            if base not in bases:
                acked_lost += len(self._acked[base] & lost)
                try:
                    self.delete(base)
                except OSError:
                    pass  # an orphaned ack file: recovery removes it
                continue
            acked = self._acked[base]
            both = acked & lost
            if both:
                acked_lost += len(both)
                acked.difference_update(both)
        return acked_lost

    def delete(self, base: int) -> None:
        """Forget the acks of a deleted segment and unlink its ack file."""
        self._pending.pop(base, None)
        self._flight.pop(base, None)
        self._acked.pop(base, None)
        self._rewrite.discard(base)
        self.io.remove(self.path(base))
