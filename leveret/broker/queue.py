"""A queue: ready messages in order, unacknowledged ones held by channels, dispatch, and the
behaviour its arguments ask for (length limits, dead-lettering, priorities, quorum delivery limits).

Which consumer takes the next message (priorities, round robin, exclusive, single active consumer) is
rotation.py's `ConsumerRotation`; a consumer without credit leaves the rotation and returns through
`unblock`, so each delivery costs O(1) amortised. `Queue` extends two parts of its own: its deadlines
(queue_deadlines.py: TTL, x-expires, x-requeue-delay) and its messages on the store (queue_stored.py:
`_admit` as one enters, `settle_removed` as one leaves for good, and the store's rollbacks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Hashable, Iterable

from leveret.broker import deadletter
from leveret.broker.entry import QueueEntry, by_seq
from leveret.broker.message import Message
from leveret.broker.policy_definitions import NO_POLICY, AppliedPolicy
from leveret.broker.queue_arguments import QueueSettings, parse_queue_arguments
from leveret.broker.queue_deadlines import NO_OFFSETS, QueueDeadlines, QueueHost
from leveret.broker.queue_stored import StoredMessages
from leveret.broker.ready import PriorityReady, ReadyList
from leveret.broker.rotation import ConsumerRotation
from leveret.broker.stats import MessageStats
from leveret.broker.storage import IN_MEMORY, QueueStorage
from leveret.store.api import QueueStore

# At most this many messages go to one consumer in one step of a dispatch (then the loop looks again).
DISPATCH_RUN = 256

if TYPE_CHECKING:
    from leveret.broker.consumer import Consumer


class Queue(QueueDeadlines, StoredMessages):
    """One queue and its consumers."""

    applied_policy: AppliedPolicy = NO_POLICY  # set by policies.py with the settings it makes

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
        # What the arguments alone ask for; a policy (policies.py) makes `settings` from it (`apply_settings`).
        self.argument_settings = settings
        self.host = host
        # Durable storage of persistent messages (leveret.store.api.QueueStore), for durable queues only.
        self.store: QueueStore | None = storage.store
        self.ready: ReadyList | PriorityReady
        make_ready = storage.ready
        if make_ready is None:
            self.ready = PriorityReady(settings.max_priority) if settings.max_priority else ReadyList()
        elif settings.max_priority:
            self.ready = PriorityReady(settings.max_priority, level_factory=lambda level: make_ready(self, level))
        else:
            self.ready = make_ready(self, 0)
        self.unacked_count = 0
        self.stats = MessageStats()  # the management API's message_stats (stats.py)
        self.deleted = False
        self._revive = storage.revive  # a stored message back (see put_back)
        if storage.store is not None:
            # Records the store rolls back (a failed write or fsync) leave the queue (see forget_stored);
            # records whose acks it rolls back are in it again (see put_back).
            storage.store.on_lost = self.forget_stored
            storage.store.on_unacked = self.put_back
        # exchanges with at least one binding to this queue (so deletion drops them without a scan)
        self.sources: set[Any] = set()
        self._next_seq = 1
        self._rotation = ConsumerRotation(settings.single_active_consumer, self.dispatch)
        # Read on every enqueue and credit refill: the rotation's own dict, list and method, taken once.
        # `unblock(consumer)`: put a consumer (back) into rotation if it has credit, and dispatch to it.
        self._consumers = self._rotation.consumers
        self._priorities = self._rotation.priorities
        self.unblock = self._rotation.admit
        self.had_consumers = False
        self.dispatch_pending = False  # waiting in its host's dispatch_due (see enqueue)
        self._limited = settings.max_length is not None or settings.max_length_bytes is not None
        # no length limit, priorities or queue TTL: enqueue takes its hot path (per-message TTL aside)
        self._plain = not self._limited and not settings.max_priority and settings.message_ttl is None
        # consumer timeout (ms) for deliveries from this queue: x-consumer-timeout, else the broker's
        self.ack_timeout: int | None = settings.consumer_timeout or (host.consumer_timeout if host else None)
        # quorum queues rewrite headers on delivery (x-delivery-count); read per delivery by channels
        self.adds_delivery_count = settings.quorum
        self._rolled_back = NO_OFFSETS  # offsets the store just rolled back (see forget_stored)
        self._init_deadlines(host.timers if host is not None else None)

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
    def consumer_count(self) -> int:
        return len(self._consumers)

    @property
    def consumers(self) -> list[Consumer]:
        return list(self._consumers)

    @property
    def active_consumer(self) -> Consumer | None:
        """With x-single-active-consumer, the consumer receiving messages."""
        return self._rotation.active

    @property
    def quorum(self) -> bool:
        return self.settings.quorum

    @property
    def unused_for_auto_delete(self) -> bool:
        """An auto-delete queue goes when its last consumer goes (never if it had none)."""
        return self.auto_delete and self.had_consumers and not self._consumers

    def apply_settings(self, settings: QueueSettings) -> None:
        """A policy changed what the queue does: take `settings` from now on (TTLs of messages already in
        stay as they were enqueued, as in RabbitMQ); a lower length limit drops (or dead-letters) heads now."""
        expires = self.settings.expires
        self.settings = settings
        self._limited = settings.max_length is not None or settings.max_length_bytes is not None
        self._plain = not self._limited and not settings.max_priority and settings.message_ttl is None
        self._may_expire = self._may_expire or settings.message_ttl is not None
        if settings.expires != expires:
            self._idle.cancel()
            self.touch()
        if self._limited and settings.overflow == "drop-head":
            self._drop_over_limit()

    # -- messages in ------------------------------------------------------------------------
    def enqueue(self, message: Message, redelivered: bool = False) -> QueueEntry | None:
        """Accept a routed message; None when x-overflow reject-publish(-dlx) refused it. `redelivered`: a move
        task's copy of a message that may have been moved before (server/move_tasks.py)."""
        if self._plain and message.properties.expiration is None:
            # hot path: no limits, priorities or TTLs to consider
            entry = QueueEntry(self._next_seq, message, redelivered)
            self._next_seq += 1
            if self.store is not None:
                self._admit(entry)
            self.ready.append(entry)
            if self._priorities:
                host = self.host
                due = host.dispatch_due if host is not None else None
                if due is None:
                    self.dispatch()
                elif not self.dispatch_pending:
                    # A session is reading a run of publishes: this queue dispatches once when the run ends,
                    # a run of deliveries per consumer instead of one delivery per publish.
                    self.dispatch_pending = True
                    due.append(self)
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
        entry = QueueEntry(self._next_seq, message, redelivered, priority)
        self._next_seq += 1
        ttl = self._ttl_ms(message)
        if ttl is not None and self.host is not None:
            entry.expires_at = self._now() + ttl / 1000.0
            self._may_expire = True
        self._admit(entry)
        self.ready.append(entry)
        if self._priorities:
            self.dispatch()
        # drop-head first, then expiry: RabbitMQ 3.10 drops over the limit, then sweeps expired heads when the
        # new message may expire or a drop uncovered a new head (a TTL-0 message behind the dropped one
        # goes too; found by the fuzzer)
        dropped = self._drop_over_limit() if self._limited else False
        if entry.expires_at is not None or dropped:
            # TTL 0: what no consumer took just now expires now (RabbitMQ semantics)
            self._expire_heads()
        return entry

    def next_seq(self) -> int:
        """Take the next sequence number (recovery and paging place entries themselves)."""
        seq = self._next_seq
        self._next_seq = seq + 1
        return seq

    def _would_overflow(self, size: int) -> bool:
        settings = self.settings
        if settings.max_length is not None and len(self.ready) + 1 > settings.max_length:
            return True
        return settings.max_length_bytes is not None and self.ready.bytes + size > settings.max_length_bytes

    def _drop_over_limit(self) -> bool:
        """x-overflow drop-head: drop (dead-letter, reason maxlen) from the head until within limits; whether
        anything was dropped."""
        settings = self.settings
        ready = self.ready
        max_length = settings.max_length
        max_bytes = settings.max_length_bytes
        dropped = False
        while ready and (
            (max_length is not None and len(ready) > max_length)
            or (max_bytes is not None and ready.bytes > max_bytes)
        ):
            self._dead_letter(ready.popleft(), deadletter.MAXLEN)
            dropped = True
        return dropped

    def requeue(self, entries: Iterable[QueueEntry], *, delay: bool = False) -> None:
        """Return unacknowledged entries to their original positions, marked redelivered.

        Each return counts towards a quorum queue's x-delivery-limit. With `delay` (nack/reject, not a
        channel closing) and x-requeue-delay set, entries are parked and come back after their delay.
        """
        batch = sorted(entries, key=by_seq)
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
            if self._limited and settings.overflow == "drop-head":
                # RabbitMQ 3.10 drops over the limit after a requeue too (requeue_and_run: maybe_drop_head;
                # found by the fuzzer's hour run)
                self._drop_over_limit()
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
            # heads expired by now go before get-ok counts what is left (RabbitMQ 3.10's fetch drops them;
            # found by the fuzzer)
            self._expire_heads()
        return entry

    def unfetch(self, entry: QueueEntry) -> None:
        """An entry `fetch` took that nobody saw (a move task could not place it) goes back to its place,
        not flagged redelivered."""
        self.unacked_count -= 1
        if self.deleted:
            self.settle_removed(entry)
            return
        self.ready.merge([entry])
        self.dispatch()

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
                back = sorted((e for e in entries[i:] if e.offset not in self._rolled_back), key=by_seq)
                self._rolled_back = NO_OFFSETS
                for item in back:
                    item.redelivered = True
                self.ready.merge(back)
                self.unacked_count -= len(entries) - i - 1
                raise

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

    # -- consumers --------------------------------------------------------------------------
    def add_consumer(self, consumer: Consumer) -> None:
        """Register a consumer (not yet receiving: see `unblock`). Checks exclusivity."""
        self._rotation.add(consumer, self.describe())
        self.had_consumers = True

    def remove_consumer(self, consumer: Consumer) -> None:
        if consumer not in self._consumers:
            return
        successor = self._rotation.remove(consumer)
        if successor is not None:
            self.unblock(successor)  # single active consumer: the next one takes over
        if not self._consumers and self.settings.expires is not None:
            self.touch()

    def dispatch(self) -> int:
        """Deliver ready messages to consumers with credit; returns how many were delivered."""
        delivered = 0
        ready = self.ready
        rotation = self._rotation
        next_consumer = rotation.next
        while ready:
            consumer = next_consumer()
            if consumer is None:
                break
            if not self._may_expire and len(ready) > 1 and rotation.alone():
                # The only consumer that may take messages: it takes a run of them, as many as its
                # credit allows, in one call down to the frames (the order round robin would give anyway).
                run = min(consumer.credit(), len(ready), DISPATCH_RUN)
                if run > 1:
                    popleft = ready.popleft
                    entries = [popleft() for _ in range(run)]
                    if consumer.no_ack:
                        for entry in entries:
                            self.settle_removed(entry)
                    else:
                        self.unacked_count += run
                    consumer.channel.send_deliveries(consumer, self, entries)
                    delivered += run
                    continue
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
            self._expire_heads()  # as after a fetch: a head uncovered by the deliveries and due goes now
        return delivered

    def detach_consumers(self) -> list[Consumer]:
        """Remove and return every consumer (the queue is being deleted)."""
        return self._rotation.clear()

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
