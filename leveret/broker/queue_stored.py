"""A queue's persistent messages on its store (durable queues only; `store` is None otherwise).

Where messages meet the store: `_admit` appends a persistent message as it enters; `settle_removed` writes
the ack record when one leaves for good (acked, delivered no-ack, purged, expired, dropped by a limit,
dead-lettered after its copy was routed, queue deleted). When a write or fsync fails, the store calls back:
`forget_stored` for records it rolled back (their publishes were nacked), `put_back` for records whose
ack it rolled back (store/api.py `on_lost`, `on_unacked`). A part of `Queue` (queue.py), which sets the
attributes named below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from leveret.broker.entry import QueueEntry
from leveret.broker.message import Message
from leveret.broker.queue_deadlines import EXPIRY_RETRY_S
from leveret.broker.ready import PriorityReady, ReadyList
from leveret.store.api import QueueStore, StoredMessage

if TYPE_CHECKING:
    from leveret.broker.queue_deadlines import QueueHost


class StoredMessages:
    """The store side of one queue."""

    store: QueueStore | None
    host: "QueueHost | None"
    ready: ReadyList | PriorityReady
    deleted: bool
    _revive: Callable[[StoredMessage], Message] | None  # a stored message back (from the durable layer)
    _rolled_back: frozenset[int] | set[int]
    # and Queue's `next_seq`, QueueDeadlines' `restored_entry` and `_park`

    def _admit(self, entry: QueueEntry) -> None:
        """A message entered this queue: a persistent one in a durable queue is appended to the store."""
        store = self.store
        if store is not None and entry.message.persistent:
            message = entry.message
            host = self.host
            stamp = int(host.clock.time() * 1000) if host is not None else 0
            entry.offset = store.append(message.exchange, message.routing_key, message.properties.raw, message.body,
                                        stamp)

    def settle_removed(self, entry: QueueEntry) -> None:
        """A message left the queue for good: a stored one gets its ack record."""
        if entry.offset >= 0 and self.store is not None:
            self.store.ack(entry.offset)

    def forget_stored(self, offsets: list[int]) -> None:
        """The store rolled back these records (a write or fsync failed; their publishes were nacked): the
        messages leave the queue without an ack record or dead-lettering, as if never published. Deliveries
        already made stay with their consumers (their ack finds no record, which is harmless)."""
        lost = set(offsets)
        self.ready.drop_offsets(lost)
        # An entry out of the ready list while this happened (being dead-lettered) must not come back.
        self._rolled_back = lost

    def put_back(self, offsets: list[int]) -> None:
        """Stored messages whose ack records a failed commit took (store/api.py `on_unacked`: a consumer's
        ack, or a dead-lettering whose copy went with the batch) are in this queue on disk again, so here
        too: at the tail, flagged redelivered, a second from now (as a refused dead-lettering is retried).
        Not at once: the store calls this from inside a failed write, which may be in the middle of this
        very queue dead-lettering its heads, and on a disk that stays full the retries would spin."""
        store, revive = self.store, self._revive
        if self.deleted or store is None or revive is None:
            return  # without revive (no codec), the next start brings them back from the store
        for offset in offsets:
            try:
                stored = store.read(offset)
            except (KeyError, OSError):
                continue  # unreadable now: unacked on disk, so the next start brings it back
            entry = self.restored_entry(self.next_seq(), offset, revive(stored), True, stored.timestamp)
            self._park(entry, int(EXPIRY_RETRY_S * 1000))
