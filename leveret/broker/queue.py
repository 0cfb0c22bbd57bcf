"""A classic queue: ready messages in order, unacknowledged ones held by channels, and dispatch.

Every enqueued message gets a per-queue sequence number. The ready list is kept sorted by it, so a
requeued message goes back to its original place (RabbitMQ classic-queue semantics): the common case
(everything requeued is older than everything ready) is a prepend, the general case a merge.

Dispatch takes consumers from per-priority round-robin deques, highest priority first; a consumer
without credit leaves its deque and returns through `unblock`, so each delivery costs O(1) amortised.

Hooks for later work: TTL, dead-lettering, max-length and message priorities act on `enqueue`,
`requeue` and `discard`; a durable store appends in `enqueue` and records removals in `settle` and
`discard` (the only places a message leaves the queue for good).
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import TYPE_CHECKING, Any, Hashable, Iterable

from leveret.broker.errors import AccessRefused
from leveret.broker.message import Message

if TYPE_CHECKING:
    from leveret.broker.consumer import Consumer


class QueueEntry:
    """A message inside one queue: its sequence number and whether it was delivered before."""

    __slots__ = ("seq", "message", "redelivered")

    def __init__(self, seq: int, message: Message, redelivered: bool = False) -> None:
        self.seq = seq
        self.message = message
        self.redelivered = redelivered

    def __repr__(self) -> str:
        return f"<QueueEntry {self.seq}{' redelivered' if self.redelivered else ''}>"


def _seq(entry: QueueEntry) -> int:
    return entry.seq


class Queue:
    """One queue and its consumers."""

    def __init__(
        self,
        name: str,
        vhost_name: str = "/",
        *,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
        owner: Hashable | None = None,
    ) -> None:
        self.name = name
        self.vhost_name = vhost_name
        self.durable = durable
        self.exclusive = exclusive
        self.auto_delete = auto_delete
        self.arguments: dict[str, Any] = dict(arguments or {})
        self.owner = owner if exclusive else None
        self.ready: deque[QueueEntry] = deque()
        self.unacked_count = 0
        self.deleted = False
        # exchanges with at least one binding to this queue (so deletion drops them without a scan)
        self.sources: set[Any] = set()
        self._next_seq = 1
        self._consumers: dict[Consumer, None] = {}
        self._levels: dict[int, deque[Consumer]] = {}
        self._priorities: list[int] = []  # descending
        self._exclusive_consumer: Consumer | None = None
        self.had_consumers = False

    # -- facts ------------------------------------------------------------------------------
    def describe(self) -> str:
        return f"queue '{self.name}' in vhost '{self.vhost_name}'"

    @property
    def message_count(self) -> int:
        """Ready messages (what queue.declare-ok and basic.get-ok report)."""
        return len(self.ready)

    @property
    def consumer_count(self) -> int:
        return len(self._consumers)

    @property
    def consumers(self) -> list[Consumer]:
        return list(self._consumers)

    @property
    def unused_for_auto_delete(self) -> bool:
        """An auto-delete queue goes when its last consumer goes (never if it had none)."""
        return self.auto_delete and self.had_consumers and not self._consumers

    # -- messages in ------------------------------------------------------------------------
    def enqueue(self, message: Message) -> QueueEntry:
        entry = QueueEntry(self._next_seq, message)
        self._next_seq += 1
        self.ready.append(entry)
        if self._priorities:
            self.dispatch()
        return entry

    def requeue(self, entries: Iterable[QueueEntry]) -> None:
        """Return unacknowledged entries to their original positions, marked redelivered."""
        batch = sorted(entries, key=_seq)
        if not batch:
            return
        self.unacked_count -= len(batch)
        if self.deleted:
            return
        for entry in batch:
            entry.redelivered = True
        ready = self.ready
        if not ready or batch[-1].seq < ready[0].seq:
            ready.extendleft(reversed(batch))
        else:
            self.ready = deque(heapq.merge(ready, batch, key=_seq))
        self.dispatch()

    # -- messages out -----------------------------------------------------------------------
    def fetch(self, no_ack: bool) -> QueueEntry | None:
        """Take the head for basic.get; unless no_ack it stays owed by the caller."""
        if not self.ready:
            return None
        entry = self.ready.popleft()
        if no_ack:
            self.settle_removed(entry)
        else:
            self.unacked_count += 1
        return entry

    def settle(self, entries: Iterable[QueueEntry]) -> None:
        """Unacknowledged entries were acknowledged: they leave the queue for good."""
        for entry in entries:
            self.unacked_count -= 1
            self.settle_removed(entry)

    def discard(self, entries: Iterable[QueueEntry], reason: str) -> None:
        """Entries rejected without requeue (`reason` is x-death's: rejected, expired, maxlen).

        Dead-lettering will hook in here; for now they are simply settled.
        """
        self.settle(entries)

    def settle_removed(self, entry: QueueEntry) -> None:
        """A message left the queue for good (store ack record goes here)."""

    def purge(self) -> int:
        """Drop every ready message (unacknowledged ones stay with their channels)."""
        n = len(self.ready)
        for entry in self.ready:
            self.settle_removed(entry)
        self.ready.clear()
        return n

    # -- consumers --------------------------------------------------------------------------
    def add_consumer(self, consumer: Consumer) -> None:
        """Register a consumer (not yet receiving: see `unblock`). Checks exclusivity."""
        if self._exclusive_consumer is not None or (consumer.exclusive and self._consumers):
            raise AccessRefused(f"{self.describe()} in exclusive use")
        self._consumers[consumer] = None
        self.had_consumers = True
        if consumer.exclusive:
            self._exclusive_consumer = consumer
        consumer.blocked = True

    def remove_consumer(self, consumer: Consumer) -> None:
        if consumer not in self._consumers:
            return
        del self._consumers[consumer]
        if self._exclusive_consumer is consumer:
            self._exclusive_consumer = None
        level = self._levels.get(consumer.priority)
        if level is not None and not consumer.blocked:
            level.remove(consumer)
        consumer.blocked = True
        if not any(c.priority == consumer.priority for c in self._consumers):
            self._levels.pop(consumer.priority, None)
            self._priorities = sorted(self._levels, reverse=True)

    def unblock(self, consumer: Consumer) -> None:
        """Put a consumer (back) into rotation if it has credit, and dispatch to it."""
        if not consumer.blocked or consumer not in self._consumers or not consumer.has_credit():
            return
        consumer.blocked = False
        level = self._levels.get(consumer.priority)
        if level is None:
            level = self._levels[consumer.priority] = deque()
            self._priorities = sorted(self._levels, reverse=True)
        level.append(consumer)
        self.dispatch()

    def dispatch(self) -> int:
        """Deliver ready messages to consumers with credit; returns how many were delivered."""
        delivered = 0
        ready = self.ready
        while ready:
            consumer = self._next_consumer()
            if consumer is None:
                break
            entry = ready.popleft()
            if consumer.no_ack:
                self.settle_removed(entry)
            else:
                self.unacked_count += 1
            consumer.channel.send_delivery(consumer, self, entry)
            delivered += 1
        return delivered

    def _next_consumer(self) -> Consumer | None:
        for priority in self._priorities:
            level = self._levels[priority]
            while level:
                consumer = level[0]
                if consumer.has_credit():
                    level.rotate(-1)
                    return consumer
                level.popleft()
                consumer.blocked = True
        return None

    def detach_consumers(self) -> list[Consumer]:
        """Remove and return every consumer (the queue is being deleted)."""
        consumers = list(self._consumers)
        for consumer in consumers:
            consumer.blocked = True
        self._consumers.clear()
        self._levels.clear()
        self._priorities = []
        self._exclusive_consumer = None
        return consumers

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} ready={len(self.ready)} unacked={self.unacked_count}>"
