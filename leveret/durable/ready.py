"""The ready lists of queues that page their backlog out of memory (broker/paging.py), as the factory
`broker/storage.py` names: a durable queue pages to its own store, a transient one to a spill, and a queue
with priorities pages each level on its own. One `MemoryBudget` is shared by all of them.
"""

from __future__ import annotations

from typing import Callable

from leveret.broker.entry import QueueEntry
from leveret.broker.message import Properties
from leveret.broker.paging import (
    MEMORY_BUDGET_BYTES, SCRATCH_WINDOW_COUNT, SPILL_BATCH, WINDOW_BYTES, WINDOW_COUNT, MemoryBudget, PagedReadyList,
)
from leveret.broker.queue import Queue
from leveret.durable.messages import message_from_stored, spill_reviver
from leveret.store.api import MessageStore, StoredMessage


class PagedReadyFactory:
    """Makes paged ready lists; the sizes say how much of each queue's backlog stays in memory."""

    def __init__(
        self,
        messages: MessageStore,
        from_raw: Callable[[bytes], Properties],
        *,
        window_count: int = WINDOW_COUNT,
        window_bytes: int = WINDOW_BYTES,
        scratch_window_count: int = SCRATCH_WINDOW_COUNT,
        spill_batch: int = SPILL_BATCH,
        memory_budget: int = MEMORY_BUDGET_BYTES,
    ) -> None:
        self.messages = messages
        self.from_raw = from_raw
        self.window_count = window_count
        self.window_bytes = window_bytes
        self.scratch_window_count = scratch_window_count
        self.spill_batch = spill_batch
        # Shared by every paged queue: transient backlogs together stay under it (see broker/paging.py).
        self.memory_budget = MemoryBudget(memory_budget)

    def __call__(self, queue: Queue, priority: int) -> PagedReadyList:
        """The paged ready list of `queue` (of one of its priority levels): to the queue's store, or to a spill
        for a queue without one (a transient queue)."""
        store = queue.store
        from_raw = self.from_raw

        def make_entry(seq: int, stored: StoredMessage, redelivered: bool) -> QueueEntry:
            return queue.restored_entry(seq, stored.offset, message_from_stored(stored, from_raw), redelivered,
                                        stored.timestamp)

        return PagedReadyList(store, make_entry, revive=spill_reviver(from_raw, priority),
                              open_spill=self.messages.open_spill, window_count=self.window_count,
                              window_bytes=self.window_bytes, scratch_window_count=self.scratch_window_count,
                              spill_batch=self.spill_batch, budget=self.memory_budget)
