"""A durable queue's ready list whose backlog lives on disk, not in RAM.

The first `window_count` entries (or `window_bytes` of bodies) are ordinary in-memory entries (for
messages without a durable copy, the larger `scratch_window_*`). Past that, a stored message is kept only as four numbers in compact arrays - sequence number, store offset,
body size and a redelivered flag, about 25 bytes each - and its body is dropped. When the in-memory part
runs empty the next batch is read back from the queue's store in one sequential pass
(`QueueStore.read_batch`) and turned into entries again. A million-message backlog therefore costs
tens of megabytes, and draining it streams the segment files front to back.

Order is safe because everything on the disk tail is newer than everything in memory: entries only move
from the tail's front to memory, and a requeued entry (which was delivered, so came from memory) always
has a smaller sequence number than the tail.

Messages that are not in a durable store (transient ones, and everything in a non-durable queue) are
paged too, once the window is full: they are written to a scratch store (`MessageStore.open_scratch`:
never fsynced, wiped at the next start, created only when a queue first overflows) and their tail
item carries the scratch offset encoded as `-2 - offset`. When such a message is read back into
memory its scratch record is acked at once; a crash loses it, as it would lose any transient message.
An entry carrying state the store does not keep (a TTL deadline, a quorum return count) is pinned in a
side table at its place in the tail instead, so order still holds.
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
# Paging a message that has no durable copy costs a write to a scratch file, so a queue only starts
# doing so when its backlog is large: what a burst of publishes to a live queue leaves behind stays in
# memory (as in RabbitMQ), a backlog of millions does not (1,000,000 x 256 B: 61 MiB RSS instead of 687).
SCRATCH_WINDOW_COUNT = 200_000
SCRATCH_WINDOW_BYTES = 512 * 1024 * 1024
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
                 "_seqs", "_offsets", "_sizes", "_flags", "_pos", "_pinned", "_open_scratch", "_scratch",
                 "scratch_window_count", "scratch_window_bytes")

    def __init__(
        self,
        store: QueueStore | None,
        make_entry: Callable[[int, StoredMessage, bool], "QueueEntry"],
        *,
        open_scratch: Callable[[], QueueStore] | None = None,
        window_count: int = WINDOW_COUNT,
        window_bytes: int = WINDOW_BYTES,
        scratch_window_count: int = SCRATCH_WINDOW_COUNT,
        scratch_window_bytes: int = SCRATCH_WINDOW_BYTES,
    ) -> None:
        super().__init__()
        self.scratch_window_count = scratch_window_count
        self.scratch_window_bytes = scratch_window_bytes
        self.store = store
        self.make_entry = make_entry
        self._open_scratch = open_scratch
        self._scratch: QueueStore | None = None
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

    def close(self) -> None:
        """The queue is gone: remove its scratch files."""
        self._drop_scratch()

    def __getitem__(self, index: int) -> "QueueEntry":
        if index == 0:
            head = self.peek()
            if head is None:
                raise IndexError("ready index out of range")
            return head
        raise IndexError("a paged ready list only indexes its head")

    # -- in ---------------------------------------------------------------------------------------
    def append(self, entry: "QueueEntry") -> None:
        if len(self._seqs) > self._pos or self._window_full(entry.offset >= 0):
            offset = entry.offset
            if entry.returns or (offset < 0 and entry.expires_at is not None):
                # State the store does not keep (a quorum return count; a deadline for a message with no
                # stored publish time): kept whole at its place in the tail.
                self._pinned[entry.seq] = entry
            elif offset < 0:
                offset = self._to_scratch(entry)
                if offset == -1:
                    self._pinned[entry.seq] = entry
            self._push_tail(entry.seq, offset, entry.size, entry.redelivered)
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

    def _window_full(self, stored: bool) -> bool:
        """Whether memory holds enough: the small window for stored messages, the large one otherwise."""
        if stored:
            return len(self.entries) >= self.window_count or self.memory_bytes >= self.window_bytes
        return len(self.entries) >= self.scratch_window_count or self.memory_bytes >= self.scratch_window_bytes

    def _to_scratch(self, entry: "QueueEntry") -> int:
        """Write a message that has no durable copy to the scratch store; its encoded offset, or -1."""
        scratch = self._scratch
        if scratch is None:
            if self._open_scratch is None:
                return -1
            scratch = self._scratch = self._open_scratch()
        message = entry.message
        return -2 - scratch.append(message.exchange, message.routing_key, message.properties.raw, message.body, 0)

    def _drop_scratch(self) -> None:
        if self._scratch is not None:
            self._scratch.delete()
            self._scratch = None

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
        from_scratch = [-2 - self._offsets[i] for i in range(self._pos, end)
                        if self._offsets[i] <= -2 and self._seqs[i] not in pinned]
        stored: dict[int, StoredMessage] = {}
        if to_read and self.store is not None:
            for message in self.store.read_batch(min(to_read), len(to_read)):
                stored[message.offset] = message
        scratched: dict[int, StoredMessage] = {}
        if from_scratch and self._scratch is not None:
            scratch = self._scratch
            for message in scratch.read_batch(min(from_scratch), len(from_scratch)):
                scratched[-2 - message.offset] = message
            for offset in from_scratch:
                scratch.ack(offset)  # in memory from now on: the scratch copy has done its job
        entries = self.entries
        for i in range(self._pos, end):
            seq, offset, size = self._seqs[i], self._offsets[i], self._sizes[i]
            pinned = self._pinned.pop(seq, None)
            if pinned is not None:
                entry = pinned
            else:
                message = stored.get(offset) if offset >= 0 else scratched.get(offset)
                if message is None:
                    # Gone from the store (damaged and skipped at recovery): it cannot be delivered.
                    self.bytes -= size
                    continue
                entry = self.make_entry(seq, message, bool(self._flags[i]))
                if offset < 0:
                    entry.offset = -1  # not a durable copy: nothing to ack in the queue's store
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
        for item in out:
            if item.offset <= -2:
                item.offset = -1  # a scratch copy, dropped with the scratch store below
        self._drop_scratch()
        self.entries.clear()
        del self._seqs[:], self._offsets[:], self._sizes[:], self._flags[:]
        self._pos = 0
        self._pinned.clear()
        self.bytes = 0
        self.memory_bytes = 0
        return out
