"""The ready messages of a queue: in sequence order, one list per priority level when priorities are on.

Every enqueued message gets a per-queue sequence number and the ready list is kept sorted by it, so a
requeued message goes back to its original place (RabbitMQ classic-queue semantics): the common case
(everything requeued is older than everything ready) is a prepend, the general case a merge.

Body bytes are counted here, where entries come and go, so x-max-length-bytes costs nothing extra.
A priority queue (x-max-priority) is one `ReadyList` per level; the highest non-empty level is served
first, and a requeued entry returns to its place inside its own level, as in RabbitMQ.
"""

from __future__ import annotations

import heapq
from collections import deque
from itertools import islice
from typing import TYPE_CHECKING, Callable, Iterator

if TYPE_CHECKING:
    from leveret.broker.entry import QueueEntry


def _seq(entry: "QueueEntry") -> int:
    return entry.seq


class ReadyList:
    """Entries in sequence order with their total body size."""

    __slots__ = ("entries", "bytes")

    def __init__(self) -> None:
        self.entries: deque[QueueEntry] = deque()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __iter__(self) -> Iterator["QueueEntry"]:
        return iter(self.entries)

    def __getitem__(self, index: int) -> "QueueEntry":
        return self.entries[index]

    def append(self, entry: "QueueEntry") -> None:
        self.entries.append(entry)
        self.bytes += entry.size

    def popleft(self) -> "QueueEntry":
        entry = self.entries.popleft()
        self.bytes -= entry.size
        return entry

    def peek(self) -> "QueueEntry | None":
        return self.entries[0] if self.entries else None

    def peek_at(self, start: int, count: int) -> list["QueueEntry"]:
        """Up to `count` entries from position `start` (0: the head), left in place (a paged list reads its
        disk tail back for these)."""
        return list(islice(self.entries, start, start + count))

    def heads(self) -> list["QueueEntry"]:
        """The entries that are next in line (one per level); expiry only ever looks at these."""
        return [self.entries[0]] if self.entries else []

    def pop_head_of(self, entry: "QueueEntry") -> None:
        """Remove `entry`, which must be one of `heads()`."""
        self.popleft()

    def merge(self, batch: list["QueueEntry"]) -> None:
        """Put entries (sorted by seq, none of them present) back in sequence order."""
        if not batch:
            return
        entries = self.entries
        self.bytes += sum(e.size for e in batch)
        if not entries or batch[-1].seq < entries[0].seq:
            entries.extendleft(reversed(batch))
        else:
            self.entries = deque(heapq.merge(entries, batch, key=_seq))

    def clear(self) -> list["QueueEntry"]:
        out = list(self.entries)
        self.entries.clear()
        self.bytes = 0
        return out

    def drop_offsets(self, offsets: set[int]) -> list["QueueEntry"]:
        """Remove the entries whose stored record is one of `offsets` (rolled back by the store); return them."""
        gone = [e for e in self.entries if e.offset in offsets]
        if gone:
            self.entries = deque(e for e in self.entries if e.offset not in offsets)
            self.bytes -= sum(e.size for e in gone)
        return gone


class PriorityReady:
    """One `ReadyList` per priority level (0..max), highest served first."""

    __slots__ = ("levels", "_order", "max_priority", "level_factory")

    def __init__(self, max_priority: int, level_factory: Callable[[int], ReadyList] | None = None) -> None:
        self.max_priority = max_priority
        # Makes the list of one level (a PagedReadyList when the queue pages its backlog; see durable/ready.py).
        self.level_factory = level_factory
        self.levels: dict[int, ReadyList] = {}
        self._order: list[int] = []  # levels present, descending

    @property
    def bytes(self) -> int:
        return sum(level.bytes for level in self.levels.values())

    def __len__(self) -> int:
        return sum(len(level) for level in self.levels.values())

    def __bool__(self) -> bool:
        return any(self.levels.values())

    def __iter__(self) -> Iterator["QueueEntry"]:
        for priority in self._order:
            yield from self.levels[priority]

    def __getitem__(self, index: int) -> "QueueEntry":
        if index < 0:
            return list(self)[index]
        for priority in self._order:
            level = self.levels[priority]
            if index < len(level):
                return level[index]
            index -= len(level)
        raise IndexError("ready index out of range")

    def _level(self, priority: int) -> ReadyList:
        level = self.levels.get(priority)
        if level is None:
            factory = self.level_factory
            level = self.levels[priority] = ReadyList() if factory is None else factory(priority)
            self._order = sorted(self.levels, reverse=True)
        return level

    def append(self, entry: "QueueEntry") -> None:
        self._level(entry.priority).append(entry)

    def popleft(self) -> "QueueEntry":
        for priority in self._order:
            level = self.levels[priority]
            if level:
                return level.popleft()
        raise IndexError("pop from an empty ready list")

    def peek(self) -> "QueueEntry | None":
        for priority in self._order:
            level = self.levels[priority]
            if level:
                return level[0]
        return None

    def heads(self) -> list["QueueEntry"]:
        return [self.levels[p][0] for p in self._order if self.levels[p]]

    def peek_at(self, start: int, count: int) -> list["QueueEntry"]:
        """Up to `count` entries from position `start`, in delivery order (highest level first), left in place."""
        out: list["QueueEntry"] = []
        for priority in self._order:
            level = self.levels[priority]
            if start >= len(level):
                start -= len(level)
                continue
            out += level.peek_at(start, count - len(out))
            start = 0
            if len(out) >= count:
                break
        return out

    def pop_head_of(self, entry: "QueueEntry") -> None:
        self.levels[entry.priority].popleft()

    def merge(self, batch: list["QueueEntry"]) -> None:
        by_level: dict[int, list[QueueEntry]] = {}
        for entry in batch:
            by_level.setdefault(entry.priority, []).append(entry)
        for priority, entries in by_level.items():
            self._level(priority).merge(entries)

    def drop_offsets(self, offsets: set[int]) -> list["QueueEntry"]:
        """Remove the entries whose stored record is one of `offsets`, from every level."""
        gone: list["QueueEntry"] = []
        for level in self.levels.values():
            gone += level.drop_offsets(offsets)
        return gone

    def clear(self) -> list["QueueEntry"]:
        out = list(self)
        for level in self.levels.values():
            level.clear()
        return out
