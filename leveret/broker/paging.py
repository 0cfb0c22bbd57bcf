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
paged too, once the (larger) scratch window is full: their tail item carries SPILLED instead of an
offset, and they go to a spill (`MessageStore.open_spill`: a FIFO of batches in files, never fsynced,
wiped at the next start, created only when a queue first overflows) SPILL_BATCH at a time. Spilled
items come back in the order they went out, so the tail needs no per-message address: the next SPILLED
item is the next message of the oldest spilled batch (or, past the written ones, of the batch still
being collected). A crash loses them, as it would lose any transient message.
An entry carrying state the store does not keep (a TTL deadline, a quorum return count) is pinned in a
side table at its place in the tail instead, so order still holds.
"""

from __future__ import annotations

import logging
from array import array
from collections import deque
from itertools import chain, islice
from typing import TYPE_CHECKING, Callable, Iterator

from leveret.broker.ready import ReadyList
from leveret.store.api import QueueStore, SpilledMessage, Spill, StoredMessage

if TYPE_CHECKING:
    from leveret.broker.entry import QueueEntry

WINDOW_COUNT = 2000
WINDOW_BYTES = 8 * 1024 * 1024
# Paging a message that has no durable copy costs a write to a scratch file, so a queue only starts
# doing so when its backlog is large: what a burst of publishes to a live queue leaves behind stays in
# memory (as in RabbitMQ), a backlog of millions does not (1,000,000 x 256 B: 61 MiB RSS instead of 687).
SCRATCH_WINDOW_COUNT = 200_000
SCRATCH_WINDOW_BYTES = 512 * 1024 * 1024
# Across every paged queue of a broker, bodies in memory past this make further transient messages
# spill even when their own queue's window has room: the windows bound one queue, this bounds them all.
MEMORY_BUDGET_BYTES = 1024 * 1024 * 1024
LOAD_BATCH = 1000
SPILL_BATCH = 1000
# ... or fewer, once their bodies reach this: a batch is one marshal blob and one write, which should stay
# small enough to come from the allocator's kept heap rather than a fresh mapping.
SPILL_BATCH_BYTES = 1024 * 1024
# The tail's offset for a message in the spill (stored offsets are >= 0, -1 means "no copy").
SPILLED = -2

log = logging.getLogger("leveret.paging")


class MemoryBudget:
    """The bytes of message bodies that every paged ready list of one broker holds in memory."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int = MEMORY_BUDGET_BYTES) -> None:
        self.limit = limit
        self.used = 0


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

    __slots__ = ("store", "make_entry", "revive", "window_count", "window_bytes", "memory_bytes", "budget",
                 "_seqs", "_offsets", "_sizes", "_flags", "_pos", "_pinned", "_open_spill", "_spill",
                 "_spill_pending", "_spill_pending_bytes", "_spill_loaded", "spill_batch",
                 "scratch_window_count", "scratch_window_bytes")

    def __init__(
        self,
        store: QueueStore | None,
        make_entry: Callable[[int, StoredMessage, bool], "QueueEntry"],
        *,
        revive: Callable[[int, SpilledMessage, bool], "QueueEntry"] | None = None,
        open_spill: Callable[[], Spill] | None = None,
        window_count: int = WINDOW_COUNT,
        window_bytes: int = WINDOW_BYTES,
        scratch_window_count: int = SCRATCH_WINDOW_COUNT,
        scratch_window_bytes: int = SCRATCH_WINDOW_BYTES,
        spill_batch: int = SPILL_BATCH,
        budget: MemoryBudget | None = None,
    ) -> None:
        super().__init__()
        self.budget = budget if budget is not None else MemoryBudget()
        self.scratch_window_count = scratch_window_count
        self.scratch_window_bytes = scratch_window_bytes
        self.spill_batch = spill_batch
        self.store = store
        self.make_entry = make_entry
        self.revive = revive
        self._open_spill = open_spill if revive is not None else None
        self._spill: Spill | None = None
        self._spill_pending: deque["QueueEntry"] = deque()  # spilled in the tail, not yet written
        self._spill_pending_bytes = 0
        self._spill_loaded: deque[SpilledMessage] = deque()  # read back, not yet in memory
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
        # An empty tail and room in the window is every publish of a queue that is not paging: decided
        # here without calling _window_full (whose first test this is).
        if len(self._seqs) > self._pos or (len(self.entries) >= self.window_count
                                           or self.memory_bytes >= self.window_bytes) \
                and self._window_full(entry.offset >= 0):
            offset = entry.offset
            if entry.returns or (offset < 0 and entry.expires_at is not None):
                # State the store does not keep (a quorum return count; a deadline for a message with no
                # stored publish time): kept whole at its place in the tail.
                self._pinned[entry.seq] = entry
            elif offset < 0:
                if self._open_spill is None:
                    self._pinned[entry.seq] = entry
                else:
                    offset = SPILLED
                    self._spill_pending.append(entry)
                    self._spill_pending_bytes += entry.size
                    if len(self._spill_pending) >= self.spill_batch or self._spill_pending_bytes >= SPILL_BATCH_BYTES:
                        self._write_spill()
            self._push_tail(entry.seq, offset, entry.size, entry.redelivered)
            self.bytes += entry.size
            return
        self.entries.append(entry)
        self.bytes += entry.size
        self.memory_bytes += entry.size
        self.budget.used += entry.size

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
        """Whether memory holds enough: the small window for stored messages, the large one otherwise.

        Once the broker-wide budget is used up, messages without a durable copy get the small window too."""
        if len(self.entries) < self.window_count and self.memory_bytes < self.window_bytes:
            return False
        if stored or self.budget.used >= self.budget.limit:
            return True
        return len(self.entries) >= self.scratch_window_count or self.memory_bytes >= self.scratch_window_bytes

    def _write_spill(self) -> None:
        """Write the collected spilled entries as one batch (kept whole in memory if the disk refuses)."""
        pending = self._spill_pending
        try:
            spill = self._spill
            if spill is None:
                spill = self._spill = self._open_spill()  # type: ignore[misc]
            # Equal property bytes become one object: marshal writes it once and reads it back as one object,
            # so the revived messages of a batch from one publisher share a single properties object too.
            same: dict[bytes, bytes] = {}
            batch = []
            for entry in pending:
                message = entry.message
                raw = message.properties.raw
                batch.append((message.exchange, message.routing_key, same.setdefault(raw, raw), message.body))
            spill.push(batch)
        except OSError as exc:
            log.error("cannot page %d transient messages out of memory, keeping them: %s", len(pending), exc)
            for entry in pending:
                self._pinned[entry.seq] = entry
        pending.clear()
        self._spill_pending_bytes = 0

    def _next_spilled(self, seq: int, redelivered: bool) -> "QueueEntry | None":
        """The entry of the next SPILLED tail item: from the oldest spilled batch, else the unwritten one."""
        loaded = self._spill_loaded
        if not loaded:
            spill = self._spill
            if spill is None or not len(spill):
                entry = self._spill_pending.popleft()
                self._spill_pending_bytes -= entry.size
                return entry
            loaded.extend(spill.pop())
        item = loaded.popleft()
        if item is None:  # its batch could not be read back (the spill logged it)
            return None
        return self.revive(seq, item, redelivered)  # type: ignore[misc]

    def _drop_spill(self) -> None:
        if self._spill is not None:
            self._spill.delete()
            self._spill = None
        self._spill_pending.clear()
        self._spill_pending_bytes = 0
        self._spill_loaded.clear()

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
        stored = self._read_stored([self._offsets[i] for i in range(self._pos, end)
                                    if self._offsets[i] >= 0 and self._seqs[i] not in pinned])
        entries = self.entries
        seqs, offsets, flags = self._seqs, self._offsets, self._flags
        loaded = self._spill_loaded
        revive = self.revive
        added = lost = 0
        for i in range(self._pos, end):
            seq = seqs[i]
            offset = offsets[i]
            if pinned and seq in pinned:
                entry = pinned.pop(seq)
            elif offset == SPILLED:
                if loaded:  # the common case, inline: the next message of the batch read last
                    item = loaded.popleft()
                    entry = revive(seq, item, flags[i] == 1) if item is not None else None  # type: ignore[misc]
                else:
                    entry = self._next_spilled(seq, flags[i] == 1)
                if entry is None:  # its batch could not be read back (the spill logged it)
                    lost += self._sizes[i]
                    continue
            else:
                message = stored.get(offset)
                if message is None:
                    # Gone from the store (damaged and skipped at recovery): it cannot be delivered.
                    lost += self._sizes[i]
                    continue
                entry = self.make_entry(seq, message, flags[i] == 1)
            entries.append(entry)
            added += entry.size
        self.memory_bytes += added
        self.budget.used += added
        self.bytes -= lost
        self._pos = end
        if self._pos == len(self._seqs):
            del self._seqs[:], self._offsets[:], self._sizes[:], self._flags[:]
            self._pos = 0
        elif self._pos > 65536 and self._pos * 2 > len(self._seqs):
            # Compact now and then so the arrays do not keep the drained front alive.
            del self._seqs[: self._pos], self._offsets[: self._pos], self._sizes[: self._pos], self._flags[: self._pos]
            self._pos = 0

    def _read_stored(self, to_read: list[int]) -> dict[int, StoredMessage]:
        """The store's records at these offsets (ascending), in one sequential pass where it can."""
        stored: dict[int, StoredMessage] = {}
        if to_read and self.store is not None:
            store = self.store
            for message in store.read_batch(min(to_read), len(to_read)):
                stored[message.offset] = message
            # The batch is the next unacked records from the first wanted one; a record that is not this
            # tail's (a pinned entry's own) can stand in between and push a wanted one out: read those exactly.
            for offset in to_read:
                if offset not in stored:
                    try:
                        stored[offset] = store.read(offset)
                    except KeyError:
                        pass  # gone from the store (damaged and skipped at recovery)
        return stored

    def peek_at(self, start: int, count: int) -> list["QueueEntry"]:
        """Up to `count` entries from position `start` (0: the head), taking nothing: a tail item comes back
        as a fresh entry read from the store or the spill, and the tail stays as it is."""
        out = list(islice(self.entries, start, start + count))
        first = self._pos + max(0, start - len(self.entries))
        end = min(len(self._seqs), first + count - len(out))
        if first >= end:
            return out
        seqs, offsets, flags, pinned = self._seqs, self._offsets, self._flags, self._pinned
        stored = self._read_stored([offsets[i] for i in range(first, end) if offsets[i] >= 0 and seqs[i] not in pinned])
        spilled = self._spilled_from(first)
        for i in range(first, end):
            seq, offset = seqs[i], offsets[i]
            entry: "QueueEntry | None" = pinned.get(seq)
            if entry is None and offset == SPILLED:
                item = next(spilled, None)
                entry = self.revive(seq, item, flags[i] == 1) if item is not None else None  # type: ignore[misc]
            elif entry is None and offset in stored:
                entry = self.make_entry(seq, stored[offset], flags[i] == 1)
            if entry is not None:  # None: lost like `_load` loses it (an unreadable batch, a damaged record)
                out.append(entry)
        return out

    def _spilled_from(self, first: int) -> Iterator["SpilledMessage | None"]:
        """The spilled messages of the tail from position `first` on, in order, read without taking them."""
        pinned = self._pinned
        if pinned:  # an entry pinned by a refused spill write keeps its SPILLED mark but is not in the spill
            skip = sum(1 for i in range(self._pos, first) if self._offsets[i] == SPILLED and self._seqs[i] not in pinned)
        else:
            skip = self._offsets[self._pos:first].count(SPILLED)
        spill = self._spill
        written = chain.from_iterable(spill.peek(b) for b in range(len(spill))) if spill is not None else ()
        unwritten = ((e.message.exchange, e.message.routing_key, e.message.properties.raw, e.message.body)
                     for e in self._spill_pending)
        return islice(chain(self._spill_loaded, written, unwritten), skip, None)

    def popleft(self) -> "QueueEntry":
        if not self.entries:
            self._load()
        entry = self.entries.popleft()
        self.bytes -= entry.size
        self.memory_bytes -= entry.size
        self.budget.used -= entry.size
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
        self.budget.used += self.bytes - before

    def drop_offsets(self, offsets: set[int]) -> list["QueueEntry"]:
        """The memory window's entries with these offsets go now; tail items with them vanish when loaded
        (the store no longer holds their records, see `_load`)."""
        gone = super().drop_offsets(offsets)
        dropped = sum(e.size for e in gone)
        self.memory_bytes -= dropped
        self.budget.used -= dropped
        return gone

    def clear(self) -> list["QueueEntry"]:
        out: list = list(self)
        for item in out:
            if item.offset == SPILLED:
                item.offset = -1  # a spilled copy, dropped with the spill below
        self._drop_spill()
        self.entries.clear()
        del self._seqs[:], self._offsets[:], self._sizes[:], self._flags[:]
        self._pos = 0
        self._pinned.clear()
        self.bytes = 0
        self.budget.used -= self.memory_bytes
        self.memory_bytes = 0
        return out
