"""A queue's deadlines: message TTL (its heads' expiry), x-expires (the queue unused) and x-requeue-delay
(entries parked after a nack or reject), each one `Slot` on the broker's `Timers`, never one per message.

Queue TTL puts entries in expiry order, so the head is always the first to expire; a per-message
`expiration` is honoured when the entry reaches the head (RabbitMQ semantics). A part of `Queue`
(queue.py), which sets the attributes named below.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any, Protocol

from leveret.broker import deadletter
from leveret.broker.entry import QueueEntry, by_seq
from leveret.broker.message import Message
from leveret.broker.queue_arguments import QueueSettings, parse_expiration
from leveret.broker.ready import PriorityReady, ReadyList
from leveret.broker.timers import Slot

if TYPE_CHECKING:
    from leveret.broker.timers import Timers
    from leveret.clock import Clock


class QueueHost(Protocol):
    """What a queue needs from its vhost: time, timers, and somewhere to dead-letter and expire."""

    clock: "Clock"
    timers: "Timers"
    consumer_timeout: int | None  # the broker-wide consumer timeout (ms), unless the queue sets its own
    # Queues whose dispatch waits for the end of a run of publishes (VHost.dispatch_deferred); None: at once.
    dispatch_due: list[Any] | None

    def dead_letter(self, queue: Any, message: Message, reason: str) -> None:
        """Route the dead-lettered copy of `message` (the queue has a dead-letter exchange)."""

    def queue_expired(self, queue: Any) -> None:
        """x-expires elapsed with the queue unused: delete it."""


# After a dead-lettering on expiry the store refused, the next attempt (seconds).
EXPIRY_RETRY_S = 1.0
NO_OFFSETS: frozenset[int] = frozenset()


class QueueDeadlines:
    """TTL, x-expires and x-requeue-delay for one queue."""

    settings: QueueSettings
    host: QueueHost | None
    ready: ReadyList | PriorityReady
    deleted: bool
    _consumers: dict[Any, None]
    _may_expire: bool  # True once any entry may expire, so queues without TTLs never read the clock
    _rolled_back: frozenset[int] | set[int]  # offsets the store just rolled back (see Queue.forget_stored)
    _expiry: Slot
    _idle: Slot
    _retry: Slot
    _parked: list[tuple[float, int, QueueEntry]]
    _last_used: float
    # and Queue's `_dead_letter`, `_return_to_ready` and `dispatch`

    def _init_deadlines(self, timers: "Timers | None") -> None:
        # True once any entry may expire, so queues without TTLs never read the clock on dispatch
        self._may_expire = self.settings.message_ttl is not None
        self._expiry = Slot(timers, self._on_expiry_due)
        self._idle = Slot(timers, self._on_idle_due)
        self._retry = Slot(timers, self._on_retry_due)
        self._parked = []
        self._last_used = 0.0
        if self.settings.expires is not None:
            self.touch()

    @property
    def parked_count(self) -> int:
        """Messages waiting out their x-requeue-delay (neither ready nor unacked)."""
        return len(self._parked)

    def _now(self) -> float:
        host = self.host
        return host.clock.monotonic() if host is not None else 0.0

    def restored_entry(self, seq: int, offset: int, message: Message, redelivered: bool,
                       timestamp_ms: int) -> QueueEntry:
        """An entry for a message read back from the store (at recovery, or paged in from the disk tail).

        A TTL counts from the original publish (the stored timestamp), so time spent down counts too."""
        settings = self.settings
        priority = 0
        if settings.max_priority:
            priority = min(message.properties.priority or 0, settings.max_priority)
        entry = QueueEntry(seq, message, redelivered, priority)
        entry.offset = offset
        ttl = self._ttl_ms(message)
        if ttl is not None and self.host is not None:
            elapsed = max(0.0, self.host.clock.time() - timestamp_ms / 1000.0)
            entry.expires_at = self._now() + max(0.0, ttl / 1000.0 - elapsed)
            self._may_expire = True
        return entry

    def _ttl_ms(self, message: Message) -> int | None:
        """The message's time to live: the queue's x-message-ttl or its own expiration, whichever is shorter."""
        ttl = self.settings.message_ttl
        expiration = message.properties.expiration
        if expiration is not None:
            per_message = parse_expiration(expiration)
            if per_message is not None and (ttl is None or per_message < ttl):
                ttl = per_message
        return ttl

    def restarted(self) -> None:
        """Recovery put stored messages back: arm the deadlines they carry (TTL, x-expires)."""
        if self._may_expire:
            self._expire_heads()
        if self.settings.expires is not None:
            self.touch()

    # -- requeue delay (x-requeue-delay) ----------------------------------------------------
    def _park(self, entry: QueueEntry, delay_ms: int) -> None:
        due = self._now() + delay_ms / 1000.0
        heapq.heappush(self._parked, (due, entry.seq, entry))
        self._retry.arm(due)

    def _on_retry_due(self) -> None:
        if self.deleted:
            return
        now = self._now()
        parked = self._parked
        back: list[QueueEntry] = []
        while parked and parked[0][0] <= now:
            back.append(heapq.heappop(parked)[2])
        if parked:
            self._retry.arm(parked[0][0])
        if back:
            self._unpark(sorted(back, key=by_seq))

    def _unpark(self, entries: list[QueueEntry]) -> None:
        """Parked entries are visible again, where a plain requeue would have put them."""
        self._return_to_ready(entries)
        if self._may_expire:
            self._expire_heads()
        self.dispatch()

    # -- TTL --------------------------------------------------------------------------------
    def _expire_heads(self) -> None:
        """Dead-letter (reason expired) every head whose deadline has passed, then re-arm."""
        now = self._now()
        ready = self.ready
        while True:
            expired = [e for e in ready.heads() if e.expires_at is not None and e.expires_at <= now]
            if not expired:
                break
            for entry in expired:
                ready.pop_head_of(entry)
                try:
                    self._dead_letter(entry, deadletter.EXPIRED)
                except OSError:
                    # The store refused the dead-lettered copy (a full disk; it rolled it back and logged
                    # it): the message stays here, unacked on disk, and expires again shortly (unless the
                    # rollback took its own record too: a publish the publisher hears was nacked).
                    if entry.offset not in self._rolled_back:
                        ready.merge([entry])
                    self._rolled_back = NO_OFFSETS
                    self._expiry.arm(now + EXPIRY_RETRY_S)
                    return
        self._arm_expiry()

    def _arm_expiry(self) -> None:
        deadlines = [e.expires_at for e in self.ready.heads() if e.expires_at is not None]
        if deadlines:
            self._expiry.arm(min(deadlines))

    def _on_expiry_due(self) -> None:
        if not self.deleted:
            self._expire_heads()

    # -- x-expires --------------------------------------------------------------------------
    def touch(self) -> None:
        """The queue was used (declared, basic.get, lost its last consumer): restart x-expires."""
        expires = self.settings.expires
        if expires is None or self.host is None:
            return
        self._last_used = self._now()
        self._idle.arm(self._last_used + expires / 1000.0)

    def _on_idle_due(self) -> None:
        if self.deleted or self._consumers:
            return  # in use: removing the last consumer touches the queue again
        deadline = self._last_used + (self.settings.expires or 0) / 1000.0
        if self._now() < deadline:
            self._idle.arm(deadline)
            return
        if self.host is not None:
            self.host.queue_expired(self)
