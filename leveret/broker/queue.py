"""A queue: ready messages in order, unacknowledged ones held by channels, dispatch, and the
behaviour its arguments ask for (TTL, x-expires, length limits, dead-lettering, priorities, single
active consumer, quorum delivery limits, requeue delays).

Dispatch takes consumers from per-priority round-robin deques, highest priority first; a consumer
without credit leaves its deque and returns through `unblock`, so each delivery costs O(1) amortised.
With x-single-active-consumer only the first registered consumer is ever put into rotation; when it
goes the next one in registration order takes over.

Timers: a queue holds at most three deadlines on the broker's `Timers` (its heads' expiry, x-expires,
its earliest parked retry), never one per message. Queue TTL puts entries in expiry order, so the head
is always the first to expire; a per-message `expiration` is honoured when the entry reaches the head
(RabbitMQ semantics).

Where messages enter and leave (the hooks the durable store will use):
- `_admit(entry)`: a published message entered (from `enqueue` only);
- `settle_removed(entry)`: a message left for good - acked, delivered no-ack, purged, expired, dropped
  by a length limit or delivery limit, dead-lettered (after its copy was routed), queue deleted;
- `_park` / `_unpark`: an entry waits out its x-requeue-delay (it stays in the queue meanwhile).
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import TYPE_CHECKING, Any, Hashable, Iterable, Protocol

from leveret.broker import deadletter
from leveret.broker.entry import QueueEntry
from leveret.broker.errors import AccessRefused
from leveret.broker.message import Message
from leveret.broker.queue_arguments import QueueSettings, parse_expiration, parse_queue_arguments
from leveret.broker.ready import PriorityReady, ReadyList
from leveret.broker.storage import IN_MEMORY, QueueStorage
from leveret.broker.timers import Slot
from leveret.store.api import QueueStore

if TYPE_CHECKING:
    from leveret.broker.consumer import Consumer
    from leveret.broker.timers import Timers
    from leveret.clock import Clock


class QueueHost(Protocol):
    """What a queue needs from its vhost: time, timers, and somewhere to dead-letter and expire."""

    clock: "Clock"
    timers: "Timers"

    def dead_letter(self, queue: "Queue", message: Message, reason: str) -> None:
        """Route the dead-lettered copy of `message` (the queue has a dead-letter exchange)."""

    def queue_expired(self, queue: "Queue") -> None:
        """x-expires elapsed with the queue unused: delete it."""


# After a dead-lettering on expiry the store refused, the next attempt (seconds).
EXPIRY_RETRY_S = 1.0
_NOTHING: frozenset[int] = frozenset()


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
        settings: QueueSettings | None = None,
        host: QueueHost | None = None,
        storage: QueueStorage = IN_MEMORY,
    ) -> None:
        self.name = name
        self.vhost_name = vhost_name
        self.durable = durable
        self.exclusive = exclusive
        self.auto_delete = auto_delete
        self.arguments: dict[str, Any] = dict(arguments or {})
        self.owner = owner if exclusive else None
        if settings is None:
            settings = parse_queue_arguments(
                name, vhost_name, self.arguments, durable=durable, exclusive=exclusive, auto_delete=auto_delete
            )
        self.settings = settings
        self.host = host
        self.ready: ReadyList | PriorityReady
        make_ready = storage.ready
        if make_ready is None:
            self.ready = PriorityReady(settings.max_priority) if settings.max_priority else ReadyList()
        elif settings.max_priority:
            self.ready = PriorityReady(settings.max_priority, level_factory=lambda level: make_ready(self, level))
        else:
            self.ready = make_ready(self, 0)
        self.unacked_count = 0
        self.deleted = False
        # Durable storage of persistent messages (leveret.store.api.QueueStore), for durable queues only.
        self.store: QueueStore | None = storage.store
        if storage.store is not None:
            # Records the store rolls back (a failed write or fsync) leave the queue (see forget_stored).
            storage.store.on_lost = self.forget_stored
        # exchanges with at least one binding to this queue (so deletion drops them without a scan)
        self.sources: set[Any] = set()
        self._next_seq = 1
        self._consumers: dict[Consumer, None] = {}
        self._levels: dict[int, deque[Consumer]] = {}
        self._priorities: list[int] = []  # descending
        self._exclusive_consumer: Consumer | None = None
        self._active: Consumer | None = None  # single active consumer
        self.had_consumers = False
        self._limited = settings.max_length is not None or settings.max_length_bytes is not None
        # no length limit, priorities or queue TTL: enqueue takes its hot path (per-message TTL aside)
        self._plain = not self._limited and not settings.max_priority and settings.message_ttl is None
        # consumer timeout (ms) for deliveries from this queue: x-consumer-timeout, else the broker's
        self.ack_timeout: int | None = settings.consumer_timeout or getattr(host, "consumer_timeout", None)
        # quorum queues rewrite headers on delivery (x-delivery-count); read per delivery by channels
        self.adds_delivery_count = settings.quorum
        # True once any entry may expire, so queues without TTLs never read the clock on dispatch
        self._may_expire = settings.message_ttl is not None
        timers = host.timers if host is not None else None
        self._expiry = Slot(timers, self._on_expiry_due)
        self._rolled_back = _NOTHING  # offsets the store just rolled back (see forget_stored)
        self._idle = Slot(timers, self._on_idle_due)
        self._retry = Slot(timers, self._on_retry_due)
        self._parked: list[tuple[float, int, QueueEntry]] = []
        self._last_used = 0.0
        if settings.expires is not None:
            self.touch()

    # -- facts ------------------------------------------------------------------------------
    def describe(self) -> str:
        return f"queue '{self.name}' in vhost '{self.vhost_name}'"

    @property
    def message_count(self) -> int:
        """Ready messages (what queue.declare-ok and basic.get-ok report)."""
        return len(self.ready)

    @property
    def ready_bytes(self) -> int:
        return self.ready.bytes

    @property
    def parked_count(self) -> int:
        """Messages waiting out their x-requeue-delay (neither ready nor unacked)."""
        return len(self._parked)

    @property
    def consumer_count(self) -> int:
        return len(self._consumers)

    @property
    def consumers(self) -> list[Consumer]:
        return list(self._consumers)

    @property
    def active_consumer(self) -> Consumer | None:
        """With x-single-active-consumer, the consumer receiving messages."""
        return self._active

    @property
    def quorum(self) -> bool:
        return self.settings.quorum

    @property
    def unused_for_auto_delete(self) -> bool:
        """An auto-delete queue goes when its last consumer goes (never if it had none)."""
        return self.auto_delete and self.had_consumers and not self._consumers

    def _now(self) -> float:
        host = self.host
        return host.clock.monotonic() if host is not None else 0.0

    # -- messages in ------------------------------------------------------------------------
    def enqueue(self, message: Message) -> QueueEntry | None:
        """Accept a routed message; None when x-overflow reject-publish(-dlx) refused it."""
        if self._plain and message.properties.expiration is None:
            # hot path: no limits, priorities or TTLs to consider
            entry = QueueEntry(self._next_seq, message)
            self._next_seq += 1
            if self.store is not None:
                self._admit(entry)
            self.ready.append(entry)
            if self._priorities:
                self.dispatch()
            return entry
        settings = self.settings
        if self._limited and settings.overflow != "drop-head" and self._would_overflow(len(message.body)):
            if settings.overflow == "reject-publish-dlx":
                self._dead_letter_message(message, deadletter.MAXLEN)
            return None
        priority = 0
        if settings.max_priority:
            priority = message.properties.priority or 0
            if priority > settings.max_priority:
                priority = settings.max_priority
        entry = QueueEntry(self._next_seq, message, priority=priority)
        self._next_seq += 1
        ttl = self._ttl_ms(message)
        if ttl is not None and self.host is not None:
            entry.expires_at = self._now() + ttl / 1000.0
            self._may_expire = True
        self._admit(entry)
        self.ready.append(entry)
        if self._priorities:
            self.dispatch()
        if entry.expires_at is not None:
            # TTL 0: what no consumer took just now expires now (RabbitMQ semantics)
            self._expire_heads()
        if self._limited:
            self._drop_over_limit()
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

    def _admit(self, entry: QueueEntry) -> None:
        """A message entered this queue: a persistent one in a durable queue is appended to the store."""
        store = self.store
        if store is not None and entry.message.persistent:
            message = entry.message
            host = self.host
            stamp = int(host.clock.time() * 1000) if host is not None else 0
            entry.offset = store.append(message.exchange, message.routing_key, message.properties.raw, message.body,
                                        stamp)

    def next_seq(self) -> int:
        """Take the next sequence number (recovery and paging place entries themselves)."""
        seq = self._next_seq
        self._next_seq = seq + 1
        return seq

    def restarted(self) -> None:
        """Recovery put stored messages back: arm the deadlines they carry (TTL, x-expires)."""
        if self._may_expire:
            self._expire_heads()
        if self.settings.expires is not None:
            self.touch()

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

    def _would_overflow(self, size: int) -> bool:
        settings = self.settings
        if settings.max_length is not None and len(self.ready) + 1 > settings.max_length:
            return True
        return settings.max_length_bytes is not None and self.ready.bytes + size > settings.max_length_bytes

    def _drop_over_limit(self) -> None:
        """x-overflow drop-head: drop (dead-letter, reason maxlen) from the head until within limits."""
        settings = self.settings
        ready = self.ready
        max_length = settings.max_length
        max_bytes = settings.max_length_bytes
        while ready and (
            (max_length is not None and len(ready) > max_length)
            or (max_bytes is not None and ready.bytes > max_bytes)
        ):
            self._dead_letter(ready.popleft(), deadletter.MAXLEN)

    def requeue(self, entries: Iterable[QueueEntry], *, delay: bool = False) -> None:
        """Return unacknowledged entries to their original positions, marked redelivered.

        Each return counts towards a quorum queue's x-delivery-limit. With `delay` (nack/reject, not a
        channel closing) and x-requeue-delay set, entries are parked and come back after their delay.
        """
        batch = sorted(entries, key=_seq)
        if not batch:
            return
        self.unacked_count -= len(batch)
        if self.deleted:
            for entry in batch:
                self.settle_removed(entry)
            return
        settings = self.settings
        limit = settings.delivery_limit
        delays = settings.requeue_delays if delay else ()
        back: list[QueueEntry] = []
        for entry in batch:
            entry.redelivered = True
            entry.returns += 1
            if limit is not None and entry.returns > limit:
                self._dead_letter(entry, deadletter.DELIVERY_LIMIT)
            elif delays:
                self._park(entry, settings.requeue_delay(entry.returns))
            else:
                back.append(entry)
        if back:
            self._return_to_ready(back)
            if self._may_expire:
                self._expire_heads()
            self.dispatch()

    def _return_to_ready(self, entries: list[QueueEntry]) -> None:
        """Make returned entries (sorted by seq) ready again where the queue type puts them.

        Classic queues put them back at their original positions. RabbitMQ 3.10 quorum queues put
        them at the back, in the order returned (checked against a live broker); they get new
        sequence numbers so the ready list stays in sequence order.
        """
        if self.settings.quorum:
            ready = self.ready
            for entry in entries:
                entry.seq = self.next_seq()
                ready.append(entry)
        else:
            self.ready.merge(entries)

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
            self._unpark(sorted(back, key=_seq))

    def _unpark(self, entries: list[QueueEntry]) -> None:
        """Parked entries are visible again, where a plain requeue would have put them."""
        self._return_to_ready(entries)
        if self._may_expire:
            self._expire_heads()
        self.dispatch()

    # -- messages out -----------------------------------------------------------------------
    def _pop_ready(self) -> QueueEntry | None:
        """The next deliverable entry; expired heads met on the way are dead-lettered."""
        ready = self.ready
        if not self._may_expire:
            return ready.popleft() if ready else None
        now = self._now()
        while ready:
            entry = ready.popleft()
            # strictly past: a message due this very instant may still go to a waiting consumer
            # (TTL 0 is "deliver now or never"); the expiry sweep uses <= and takes it otherwise
            if entry.expires_at is not None and entry.expires_at < now:
                self._dead_letter(entry, deadletter.EXPIRED)
                continue
            return entry
        return None

    def message_for_delivery(self, entry: QueueEntry, get: bool = False) -> Message:
        """The message as sent to a client: quorum queues add x-delivery-count (returns so far).

        RabbitMQ 3.10 adds it to every basic.get-ok but to a basic.deliver only once the message was
        returned at least once (checked against a live broker).
        """
        if not self.settings.quorum or not (entry.returns or get):
            return entry.message
        message = entry.message
        headers = dict(message.headers or {})
        headers["x-delivery-count"] = entry.returns
        return message.with_properties(headers=headers)

    def fetch(self, no_ack: bool) -> QueueEntry | None:
        """Take the head for basic.get; unless no_ack it stays owed by the caller."""
        if self.settings.expires is not None:
            self.touch()
        entry = self._pop_ready()
        if entry is None:
            return None
        if no_ack:
            self.settle_removed(entry)
        else:
            self.unacked_count += 1
        if self._may_expire:
            self._arm_expiry()
        return entry

    def settle(self, entries: Iterable[QueueEntry]) -> None:
        """Unacknowledged entries were acknowledged: they leave the queue for good."""
        for entry in entries:
            self.unacked_count -= 1
            self.settle_removed(entry)

    def discard(self, entries: Iterable[QueueEntry], reason: str = deadletter.REJECTED) -> None:
        """Unacknowledged entries rejected without requeue: dead-lettered with `reason`, or dropped."""
        entries = list(entries)
        for i, entry in enumerate(entries):
            self.unacked_count -= 1
            try:
                self._dead_letter(entry, reason)
            except OSError:
                # The store refused the dead-lettered copy: these messages go back to the queue (still
                # unacked on disk) instead of vanishing; the caller hears the error.
                back = sorted((e for e in entries[i:] if e.offset not in self._rolled_back), key=_seq)
                self._rolled_back = _NOTHING
                for item in back:
                    item.redelivered = True
                self.ready.merge(back)
                self.unacked_count -= len(entries) - i - 1
                raise

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

    def purge(self) -> int:
        """Drop every ready message (unacknowledged and parked ones stay)."""
        entries = self.ready.clear()
        for entry in entries:
            self.settle_removed(entry)
        return len(entries)

    # -- dead-lettering ---------------------------------------------------------------------
    def _dead_letter(self, entry: QueueEntry, reason: str) -> None:
        """`entry` leaves the queue: its copy goes to the dead-letter exchange if there is one."""
        self._dead_letter_message(entry.message, reason)
        self.settle_removed(entry)

    def _dead_letter_message(self, message: Message, reason: str) -> None:
        if self.settings.dead_letter_exchange is not None and self.host is not None:
            self.host.dead_letter(self, message, reason)

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
                    self._rolled_back = _NOTHING
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

    # -- consumers --------------------------------------------------------------------------
    def add_consumer(self, consumer: Consumer) -> None:
        """Register a consumer (not yet receiving: see `unblock`). Checks exclusivity."""
        if self._exclusive_consumer is not None or (consumer.exclusive and self._consumers):
            raise AccessRefused(f"{self.describe()} in exclusive use")
        self._consumers[consumer] = None
        self.had_consumers = True
        if consumer.exclusive:
            self._exclusive_consumer = consumer
        if self.settings.single_active_consumer and self._active is None:
            self._active = consumer
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
        if self._active is consumer:
            # the next consumer in registration order takes over
            self._active = next(iter(self._consumers), None)
            if self._active is not None:
                self.unblock(self._active)
        if not self._consumers and self.settings.expires is not None:
            self.touch()

    def unblock(self, consumer: Consumer) -> None:
        """Put a consumer (back) into rotation if it has credit, and dispatch to it."""
        if not consumer.blocked or consumer not in self._consumers or not consumer.has_credit():
            return
        if self._active is not None and consumer is not self._active:
            return  # single active consumer: the others wait their turn
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
            # inline fast path: without TTLs there is nothing to skip at the head
            entry = self._pop_ready() if self._may_expire else ready.popleft()
            if entry is None:
                break
            if consumer.no_ack:
                self.settle_removed(entry)
            else:
                self.unacked_count += 1
            consumer.channel.send_delivery(consumer, self, entry)
            delivered += 1
        if delivered and self._may_expire:
            self._arm_expiry()
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
        self._active = None
        return consumers

    def close(self) -> int:
        """The queue is deleted: stop its timers, drop ready and parked messages; returns ready dropped."""
        self.deleted = True
        for slot in (self._expiry, self._idle, self._retry):
            slot.cancel()
        for _, _, entry in self._parked:
            self.settle_removed(entry)
        self._parked.clear()
        dropped = self.purge()
        # Its store is deleted next: acks from channels still holding deliveries have no record left.
        self.store = None
        return dropped

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} ready={len(self.ready)} unacked={self.unacked_count}>"
