"""A stream's newest messages kept in memory, so consumers that keep up never read the disk (stream.py)."""

from __future__ import annotations

from leveret.store.api import StoredMessage

# The in-memory tail of recent messages that keeps live consumers off the disk.
TAIL_BYTES = 4 * 1024 * 1024


class Tail:
    """The newest messages of a stream, in memory up to a byte budget: live consumers read them here.

    Lists with a moving head rather than a deque: lookup by offset is an index (a deque's middle
    is O(n)), and the dropped front is cut off in one `del` once it is half the list. Sizes are
    kept beside the messages so trimming never recomputes them (this runs on every publish).
    """

    __slots__ = ("items", "sizes", "head", "bytes", "limit", "next")

    def __init__(self, limit: int) -> None:
        self.items: list[StoredMessage] = []
        self.sizes: list[int] = []
        self.head = 0
        self.bytes = 0
        self.limit = limit
        self.next = -1

    def append(self, stored: StoredMessage, size: int) -> None:
        """Add the message just appended at `stored.offset`, counting `size` bytes against the budget."""
        if stored.offset != self.next:
            self.clear()  # offsets must stay contiguous for index lookup
        self.next = stored.offset + 1
        self.items.append(stored)
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
            head += 1
        if head > 1024 and head * 2 > len(items):
            del items[:head]
            del sizes[:head]
            head = 0
        self.head = head
        self.bytes = total

    def get(self, offset: int) -> StoredMessage | None:
        items = self.items
        head = self.head
        if len(items) <= head:
            return None
        i = head + offset - items[head].offset
        return items[i] if head <= i < len(items) else None

    def clear(self) -> None:
        self.items = []
        self.sizes = []
        self.head = 0
        self.bytes = 0
