"""The sparse index of one segment: every few KiB, an (offset, file position, timestamp) entry.

Seeking by offset or by time bisects these entries and then scans at most one index interval of
records, instead of reading the segment from its start. The index lives in memory and is derived:
it is rebuilt by the recovery scan and extended by appends, so it can never disagree with the data.

Timestamps written by publishers need not be ordered, so each entry keeps the largest timestamp of
all records *before* it in the segment. That column never decreases, which makes it bisectable:
every record before the entry found has a timestamp below the one sought.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right

# Bytes of records between index entries: a seek reads at most about this much extra.
INDEX_INTERVAL = 4096
NO_TIMESTAMP = -(1 << 63)
# The minimum timestamp of a segment without records: the largest i64, so it fits clean.idx's fields.
NO_MIN_TIMESTAMP = (1 << 63) - 1


class SparseIndex:
    """Three parallel typed arrays (24 bytes an entry): offsets, file positions, max prior timestamp."""

    __slots__ = ("offsets", "positions", "max_ts_before")

    def __init__(self) -> None:
        self.offsets = array("q")
        self.positions = array("q")
        self.max_ts_before = array("q")

    def __len__(self) -> int:
        return len(self.offsets)

    def add(self, offset: int, position: int, max_ts_before: int) -> None:
        """Record that the record `offset` starts at `position`; offsets must be added in order."""
        self.offsets.append(offset)
        self.positions.append(position)
        self.max_ts_before.append(max_ts_before)

    def floor_offset(self, offset: int) -> tuple[int, int] | None:
        """(offset, position) of the last entry at or before `offset`, or None if there is none."""
        i = bisect_right(self.offsets, offset) - 1
        if i < 0:
            return None
        return self.offsets[i], self.positions[i]

    def floor_time(self, timestamp: int) -> tuple[int, int] | None:
        """(offset, position) of the last entry all of whose earlier records are older than `timestamp`."""
        i = bisect_left(self.max_ts_before, timestamp) - 1
        if i < 0:
            return None
        return self.offsets[i], self.positions[i]
