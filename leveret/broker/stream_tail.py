"""A stream's newest entries kept in memory, so consumers that keep up never read the disk (stream.py)."""

from __future__ import annotations

from bisect import bisect_right

from leveret.store.api import StoredBatch, StoredMessage

# The in-memory tail of recent messages that keeps live consumers off the disk.
TAIL_BYTES = 4 * 1024 * 1024


class Tail:
    """The newest entries of a stream (messages, and batches that span many offsets), in memory up to a byte
    budget: live consumers read them here.

    Lists with a moving head rather than a deque: lookup by offset bisects the entries' first offsets (a
    deque's middle is O(n)), and the dropped front is cut off in one `del` once it is half the list. Sizes
    are kept beside the entries so trimming never recomputes them (this runs on every publish).
    """

    __slots__ = ("items", "starts", "sizes", "head", "bytes", "limit", "next")

    def __init__(self, limit: int) -> None:
        self.items: list[StoredMessage | StoredBatch | None] = []  # None: trimmed, before head
        self.starts: list[int] = []
        self.sizes: list[int] = []
        self.head = 0
        self.bytes = 0
        self.limit = limit
        self.next = -1

    def append(self, stored: StoredMessage | StoredBatch, size: int, span: int = 1) -> None:
        """Add the entry just appended at `stored.offset` (taking `span` offsets), counting `size` bytes."""
        if stored.offset != self.next:
            self.clear()  # offsets must stay contiguous: a miss below the end means "not here"
        self.next = stored.offset + span
        self.items.append(stored)
        self.starts.append(stored.offset)
        self.sizes.append(size)
        self.bytes += size
        if self.bytes > self.limit:
            self._trim()

    def _trim(self) -> None:
        items, sizes = self.items, self.sizes
        head = self.head
        last = len(items) - 1
        total = self.bytes
        while total > self.limit and head < last:
            total -= sizes[head]
            items[head] = None  # let go now (the list is cut later): a batch may be a megabyte
            head += 1
        if head > 1024 and head * 2 > len(items):
            del items[:head]
            del sizes[:head]
            del self.starts[:head]
            head = 0
        self.head = head
        self.bytes = total

    def get(self, offset: int) -> StoredMessage | StoredBatch | None:
        """The entry holding `offset` (a batch spanning it comes whole), or None if the tail does not."""
        items: list = self.items
        head = self.head
        if len(items) <= head or offset >= self.next:
            return None
        i = head + offset - items[head].offset
        if head <= i < len(items) and items[i].offset == offset:
            return items[i]  # no batch between head and here: offsets are indexes
        i = bisect_right(self.starts, offset, head) - 1
        return items[i] if i >= head else None

    def clear(self) -> None:
        self.items = []
        self.starts = []
        self.sizes = []
        self.head = 0
        self.bytes = 0
