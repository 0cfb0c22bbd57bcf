"""A durable queue's ready list whose backlog lives on disk, not in RAM.

The first `window_count` entries (or `window_bytes` of bodies) are ordinary in-memory entries. Past
that, a stored message is kept only as four numbers in compact arrays - sequence number, store offset,
body size and a redelivered flag, about 25 bytes each - and its body is dropped. When the in-memory part
runs empty the next batch is read back from the queue's store in one sequential pass
(`QueueStore.read_batch`) and turned into entries again. A million-message backlog therefore costs
tens of megabytes, and draining it streams the segment files front to back.

Order is safe because everything on the disk tail is newer than everything in memory: entries only move
from the tail's front to memory, and a requeued entry (which was delivered, so came from memory) always
has a smaller sequence number than the tail. A message that is not stored (transient) arriving while
the tail is non-empty is pinned in a side table at its place in the tail, so order still holds.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Callable, Iterator

from leveret.broker.ready import ReadyList
from leveret.store.api import QueueStore, StoredMessage

if TYPE_CHECKING:
    from leveret.broker.queue import QueueEntry

WINDOW_COUNT = 2000
WINDOW_BYTES = 8 * 1024 * 1024
LOAD_BATCH = 1000


class TailStub:
    """A tail entry as seen by `clear()` and iteration: where it is stored, never its body."""

    __slots__ = ("seq", "offset", "size", "redelivered", "message")

    def __init__(self, seq: int, offset: int, size: int, redelivered: bool) -> None:
        self.seq = seq
        self.offset = offset
        self.size = size
        self.redelivered = redelivered
        self.message = None


class PagedReadyList(ReadyList):
    """A ReadyList that keeps only a window of entries in memory and the rest as store offsets."""

    __slots__ = ("store", "make_entry", "window_count", "window_bytes", "memory_bytes",
                 "_seqs", "_offsets", "_sizes", "_flags", "_pos", "_pinned")

    def __init__(
        self,
        store: QueueStore,
        make_entry: Callable[[int, StoredMessage, bool], "QueueEntry"],
        *,
        window_count: int = WINDOW_COUNT,
        window_bytes: int = WINDOW_BYTES,
    ) -> None:
        super().__init__()
        self.store = store
        self.make_entry = make_entry
        self.window_count = window_count
        self.window_bytes = window_bytes
        self.memory_bytes = 0
        self._seqs = array("q")
        self._offsets = array("q")
        self._sizes = array("q")
        self._flags = bytearray()
        self._pos = 0  # index of the tail's first live item
        self._pinned: dict[int, "QueueEntry"] = {}

    # -- sizes --------------------------------------------------------------------------------
    @property
    def tail_length(self) -> int:
        return len(self._seqs) - self._pos

    def __len__(self) -> int:
        return len(self.entries) + len(self._seqs) - self._pos

    def __bool__(self) -> bool:
        return bool(self.entries) or len(self._seqs) > self._pos

    def __iter__(self) -> Iterator["QueueEntry"]:
        """Memory entries, then the tail as stubs (offset and flags, no message)."""
        yield from self.entries
        for i in range(self._pos, len(self._seqs)):
            pinned = self._pinned.get(self._seqs[i])
            yield pinned if pinned is not None else TailStub(  # type: ignore[misc]
                self._seqs[i], self._offsets[i], self._sizes[i], bool(self._flags[i]))

    def __getitem__(self, index: int) -> "QueueEntry":
        if index == 0:
            head = self.peek()
            if head is None:
                raise IndexError("ready index out of range")
            return head
        raise IndexError("a paged ready list only indexes its head")

    # -- in ---------------------------------------------------------------------------------------
    def append(self, entry: "QueueEntry") -> None:
        if len(self._seqs) > self._pos or (
            entry.offset >= 0
            and (len(self.entries) >= self.window_count or self.memory_bytes >= self.window_bytes)
        ):
            self._push_tail(entry.seq, entry.offset, entry.size, entry.redelivered)
            if entry.offset < 0 or entry.returns:
                # Not stored, or carrying state the store does not keep (a quorum queue's return count,
                # appended at the back on requeue): kept whole at its place in the tail.
                self._pinned[entry.seq] = entry
            self.bytes += entry.size
            return
        self.entries.append(entry)
        self.bytes += entry.size
        self.memory_bytes += entry.size

    def append_stored(self, seq: int, offset: int, size: int, redelivered: bool) -> bool:
        """Recovery's shortcut: put a stored message straight on the tail when the window is full.

        False when it belongs in memory (the caller then builds the entry and calls `append`)."""
        if len(self._seqs) == self._pos and len(self.entries) < self.window_count \
                and self.memory_bytes < self.window_bytes:
            return False
        self._push_tail(seq, offset, size, redelivered)
        self.bytes += size
        return True

    def _push_tail(self, seq: int, offset: int, size: int, redelivered: bool) -> None:
        self._seqs.append(seq)
        self._offsets.append(offset)
        self._sizes.append(size)
        self._flags.append(1 if redelivered else 0)

    # -- out --------------------------------------------------------------------------------------
    def _load(self) -> None:
        """Move the next batch of the tail into memory, reading stored bodies in one sequential pass."""
        end = min(len(self._seqs), self._pos + LOAD_BATCH)
        pinned = self._pinned
        to_read = [self._offsets[i] for i in range(self._pos, end)
                   if self._offsets[i] >= 0 and self._seqs[i] not in pinned]
        stored: dict[int, StoredMessage] = {}
        if to_read:
            first_stored, wanted = min(to_read), len(to_read)
            for message in self.store.read_batch(first_stored, wanted):
                stored[message.offset] = message
        entries = self.entries
        for i in range(self._pos, end):
            seq, offset, size = self._seqs[i], self._offsets[i], self._sizes[i]
            pinned = self._pinned.pop(seq, None)
            if pinned is not None:
                entry = pinned
            else:
                message = stored.get(offset)
                if message is None:
                    # Gone from the store (damaged and skipped at recovery): it cannot be delivered.
                    self.bytes -= size
                    continue
                entry = self.make_entry(seq, message, bool(self._flags[i]))
            entries.append(entry)
            self.memory_bytes += entry.size
        self._pos = end
        if self._pos == len(self._seqs):
            del self._seqs[:], self._offsets[:], self._sizes[:], self._flags[:]
            self._pos = 0
        elif self._pos > 65536 and self._pos * 2 > len(self._seqs):
            # Compact now and then so the arrays do not keep the drained front alive.
            del self._seqs[: self._pos], self._offsets[: self._pos], self._sizes[: self._pos], self._flags[: self._pos]
            self._pos = 0

    def popleft(self) -> "QueueEntry":
        if not self.entries:
            self._load()
        entry = self.entries.popleft()
        self.bytes -= entry.size
        self.memory_bytes -= entry.size
        return entry

    def peek(self) -> "QueueEntry | None":
        if not self.entries and len(self._seqs) > self._pos:
            self._load()
        return self.entries[0] if self.entries else None

    def heads(self) -> list["QueueEntry"]:
        head = self.peek()
        return [head] if head is not None else []

    def merge(self, batch: list["QueueEntry"]) -> None:
        before = self.bytes
        super().merge(batch)
        self.memory_bytes += self.bytes - before

    def clear(self) -> list["QueueEntry"]:
        out: list = list(self)
        self.entries.clear()
        del self._seqs[:], self._offsets[:], self._sizes[:], self._flags[:]
        self._pos = 0
        self._pinned.clear()
        self.bytes = 0
        self.memory_bytes = 0
        return out
