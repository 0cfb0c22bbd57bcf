"""Ack files: per segment of a queue, the offsets consumers have acknowledged.

An ack file ``<base>.ack`` sits beside its segment ``<base>.seg`` and holds fixed 12-byte records
(format.ACK_RECORD). Acks are buffered and written when a commit begins, after that commit's
data has been written; their fsync follows the data's fsync (commit.py). They are derived data: an
ack lost in a crash re-delivers a message (allowed by at-least-once), and an ack whose message was
lost is pruned by recovery. When every record of a segment is acked the queue deletes the segment
first and the ack file after; a crash in between leaves an orphaned ack file that recovery removes.

Each commit opens the dirty ack files, appends, and gives the descriptors to the commit ticket to
fsync and close; no descriptor stays open per segment, so a long backlog costs no file handles.
"""

from __future__ import annotations

import os

from leveret.store.format import ack_name, encode_ack


class AckFiles:
    """The ack files of one queue directory and the acked offsets they hold, per segment base."""

    def __init__(self, directory: str, acked: dict[int, set[int]]) -> None:
        self.directory = directory
        self._acked = acked
        self._pending: dict[int, bytearray] = {}
        self._new_files = False

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
        fds = []
        try:
            for base, pending in self._pending.items():
                fd = os.open(self.path(base), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                fds.append(fd)
                os.write(fd, pending)
            if self._new_files:
                fds.append(os.open(self.directory, os.O_RDONLY))
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        self._pending.clear()
        self._new_files = False
        return fds

    def delete(self, base: int) -> None:
        """Forget the acks of a deleted segment and unlink its ack file."""
        self._pending.pop(base, None)
        self._acked.pop(base, None)
        try:
            os.unlink(self.path(base))
        except FileNotFoundError:
            pass
