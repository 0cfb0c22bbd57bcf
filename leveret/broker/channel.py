"""The broker side of one AMQP channel: consumers, delivery tags, credit, acknowledgements.

Delivery tags are per channel, start at 1 and grow by one for every delivery and get-ok. Unacked
deliveries live in an OrderedDict by tag, so `multiple` acks pop from the front in O(1) each.

Credit follows RabbitMQ: basic.qos global=false sets the limit of consumers created afterwards, global=true
a limit shared by every consumer of the channel, counted as RabbitMQ 3.10's limiter counts it (each case
checked against it, most found by the fuzzer): consumer deliveries awaiting their ack count, no-ack ones and
basic.get do not, except that the limit, when switched on, starts from every unacked delivery of the channel,
gets included; settling a consumer delivery frees one, settling a get frees none (so a get unacked when the
limit was set keeps its place until the limit is switched off). Once it is reached no consumer of the channel
gets a delivery, no-ack ones included (the limiter refuses them all). When an
ack frees credit the channel puts its blocked consumers back into their queues' rotation.

Settled or requeued messages are grouped per queue so each queue merges a requeued batch once, keeping
original order.

The channel talks to the server only through a `DeliveryTarget`, which writes frames synchronously and
never calls back into the broker, so delivering inside a broker call is safe.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Hashable, Protocol

from leveret.broker.ack_deadlines import AckDeadlines
from leveret.broker.arguments import as_text, field_type_name
from leveret.broker.consumer import UNLIMITED, Consumer
from leveret.broker.entry import QueueEntry
from leveret.broker.errors import NotAllowed, NotImplementedByBroker, PreconditionFailed
from leveret.broker.lifecycle import Lifecycle
from leveret.broker.message import Message
from leveret.broker.names import REPLY_TO, random_name
from leveret.broker.queue_type import QueueType
from leveret.broker.route_result import RouteResult
from leveret.broker.stats import count_get

if TYPE_CHECKING:
    from leveret.broker.timers import Timers
    from leveret.clock import Clock


class DeliveryTarget(Protocol):
    """What the server implements for a channel: frames out, written synchronously."""

    def deliver(self, consumer_tag: str, delivery_tag: int, redelivered: bool, message: Message) -> None:
        """Send basic.deliver + content."""

    def deliver_batch(self, consumer_tag: str, deliveries: list) -> None:
        """`deliver` for each (delivery_tag, redelivered, message) of one consumer, in order, made at once."""

    def consumer_cancelled(self, consumer_tag: str) -> None:
        """Send a server-initiated basic.cancel (e.g. the queue was deleted)."""

    # Optional: `channel_error(error: BrokerError) -> None`: close this channel with `error` (AMQP: a
    # channel.close with the reply server/replies.py maps the error to). The broker has already
    # closed its side (unacked messages requeued) when it calls it. Used by the consumer timeout.


CONSUMER_TIMEOUT_TEXT = (
    "delivery acknowledgement on channel {channel} timed out. Timeout value used: {timeout} ms. "
    "This timeout value can be configured, see consumers doc guide to learn more"
)


class ChannelHost(Protocol):
    """What a channel needs of its vhost (broker/vhost.py `VHost`; a Protocol so this module, part of the
    channel <-> consumer <-> queue circle, does not pull the vhost into it)."""

    clock: "Clock"
    timers: "Timers"
    lifecycle: Lifecycle  # node-wide counts: this channel's open and close, and its confirms at close

    def queue_for(self, name: str, owner: Hashable | None = None) -> QueueType:
        """The queue `owner` may use (NotFound, ResourceLocked)."""

    def publish(self, exchange: str, routing_key: str, message: Message, *, mandatory: bool = False,
                channel: Any = None) -> RouteResult:
        """Route and enqueue a message."""

    def register_reply_channel(self, channel: Any) -> str:
        """Make `channel` reachable by direct reply-to; returns its address."""

    def unregister_reply_channel(self, address: str) -> None:
        """The address no longer reaches a channel."""

    def consumer_removed(self, queue: Any) -> None:
        """A consumer left `queue` (auto-delete may remove it)."""


# (delivery tag, queue, entry, consumer or None for basic.get)
Unacked = tuple[int, QueueType, QueueEntry, "Consumer | None"]


class Channel:
    """Consumers, unacked deliveries and credit of one channel of one connection."""

    def __init__(self, vhost: ChannelHost, target: DeliveryTarget, owner: Hashable, *, user: str = "guest",
                 refill_later: Callable[["Channel"], bool] | None = None, may_impersonate: bool = False) -> None:
        """`refill_later(channel)`: the owner may take over putting consumers back into rotation after acks
        (it returns True, and calls `refill_due` later); without it, or when it returns False, that happens
        at once."""
        self.vhost = vhost
        self.target = target
        self.owner = owner
        self.user = user
        # The broker's internal identity (its shovels) republishes messages with whatever user_id they carry,
        # as RabbitMQ's internal user may.
        self.may_impersonate = may_impersonate
        self.consumers: dict[str, Consumer] = {}
        self.closed = False
        vhost.lifecycle.channels_opened += 1
        self._unacked: OrderedDict[int, Unacked] = OrderedDict()
        self._next_tag = 1
        self._consumer_prefetch = 0
        self._global_prefetch = 0
        self._global_unacked = 0
        self._paused = False
        self._reply_tag: str | None = None
        self._reply_address: str | None = None
        # consumer timeout (ack_deadlines.py); the vhost's clock is read only once a timed delivery is made
        self._ack_deadlines = AckDeadlines(vhost.timers, lambda: vhost.clock.monotonic(),
                                           self._check_ack_deadlines)
        self._ack_pending = self._ack_deadlines.pending  # read on every settle
        self._refill_later = refill_later
        self._refill_pending = False  # `refill_later` took the refill: `refill_due` comes

    # -- facts ------------------------------------------------------------------------------
    @property
    def unacked_count(self) -> int:
        """Deliveries and get-oks not yet acked, nacked or rejected."""
        return len(self._unacked)

    @property
    def prefetch_count(self) -> int:
        """The per-consumer limit given to consumers created from now on."""
        return self._consumer_prefetch

    @property
    def global_prefetch_count(self) -> int:
        """The channel-wide limit (basic.qos global=true)."""
        return self._global_prefetch

    @property
    def reply_address(self) -> str | None:
        """This channel's direct reply-to address once it consumes from amq.rabbitmq.reply-to."""
        return self._reply_address

    def accepts_deliveries(self) -> bool:
        return not self.closed and not self._paused

    def has_credit(self) -> bool:
        """Whether the channel-wide limit allows one more acknowledged delivery."""
        if self.closed or self._paused:
            return False
        return not self._global_prefetch or self._global_unacked < self._global_prefetch

    def credit(self) -> int:
        """How many more acknowledged deliveries the channel-wide limit allows (a large number without one)."""
        if self.closed or self._paused:
            return 0
        if not self._global_prefetch:
            return UNLIMITED
        return max(0, self._global_prefetch - self._global_unacked)

    # -- flow and qos -----------------------------------------------------------------------
    def qos(self, prefetch_size: int, prefetch_count: int, global_: bool) -> None:
        if prefetch_size:
            raise NotImplementedByBroker(f"prefetch_size!=0 ({prefetch_size})")
        if global_:
            # RabbitMQ 3.10's limiter: switched on, it starts from the channel's unacked deliveries, gets
            # included; switched off, it forgets them; a new limit on an active one keeps its count.
            if not prefetch_count:
                self._global_unacked = 0
            elif not self._global_prefetch:
                self._global_unacked = len(self._unacked)
            self._global_prefetch = prefetch_count
            self._refill()
        else:
            self._consumer_prefetch = prefetch_count

    def flow(self, active: bool) -> bool:
        """channel.flow from the client; RabbitMQ 3.10 refuses active=false with 540."""
        if not active:
            raise NotImplementedByBroker("active=false")
        return True

    def pause_deliveries(self) -> None:
        """Server back-pressure (socket buffer full): stop delivering to this channel's consumers."""
        self._paused = True

    def resume_deliveries(self) -> None:
        self._paused = False
        self._refill()

    # -- consumers --------------------------------------------------------------------------
    def consume(
        self,
        queue: str,
        consumer_tag: str = "",
        *,
        no_ack: bool = False,
        exclusive: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> str:
        """Register a consumer and return its tag; deliveries begin at `start_consumer`."""
        if not consumer_tag:
            consumer_tag = random_name("amq.ctag-")
        if consumer_tag in self.consumers or consumer_tag == self._reply_tag:
            raise NotAllowed(f"attempt to reuse consumer tag '{consumer_tag}'")
        if queue == REPLY_TO:
            return self._consume_replies(consumer_tag, no_ack)
        q = self.vhost.queue_for(queue, self.owner)
        arguments = dict(arguments or {})
        priority = arguments.get("x-priority", 0)
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise PreconditionFailed(
                f"invalid arg 'x-priority' for {q.describe()}: \"expected integer, got {field_type_name(priority)}\""
            )
        consumer = Consumer(
            consumer_tag,
            self,
            q,
            no_ack=no_ack,
            exclusive=exclusive,
            priority=priority,
            arguments=arguments,
            prefetch=self._consumer_prefetch,
        )
        q.add_consumer(consumer)
        self.consumers[consumer_tag] = consumer
        return consumer_tag

    def _consume_replies(self, consumer_tag: str, no_ack: bool) -> str:
        if not no_ack:
            raise PreconditionFailed("reply consumer cannot acknowledge")
        if self._reply_tag is not None:
            raise PreconditionFailed("reply consumer already set")
        self._reply_tag = consumer_tag
        if self._reply_address is None:
            # the address outlives a cancel so late replies still find this channel (as RabbitMQ)
            self._reply_address = self.vhost.register_reply_channel(self)
        return consumer_tag

    def start_consumer(self, consumer_tag: str) -> None:
        """Called after consume-ok is written: deliver what is ready."""
        consumer = self.consumers.get(consumer_tag)
        if consumer is not None:
            consumer.queue.unblock(consumer)

    def cancel(self, consumer_tag: str) -> bool:
        """Client basic.cancel; False for an unknown tag (not an error). Unacked messages stay owed."""
        if consumer_tag == self._reply_tag and consumer_tag is not None:
            self._reply_tag = None
            return True
        consumer = self.consumers.pop(consumer_tag, None)
        if consumer is None:
            return False
        consumer.queue.remove_consumer(consumer)
        self.vhost.consumer_removed(consumer.queue)
        return True

    def consumer_cancelled_by_broker(self, consumer: Consumer) -> None:
        """The queue went away: forget the consumer and tell the client."""
        if self.consumers.get(consumer.tag) is consumer:
            del self.consumers[consumer.tag]
            if not self.closed:
                self.target.consumer_cancelled(consumer.tag)

    # -- deliveries -------------------------------------------------------------------------
    def send_delivery(self, consumer: Consumer, queue: QueueType, entry: QueueEntry) -> None:
        """Called by a queue's dispatch for a consumer with credit."""
        tag = self._next_tag
        self._next_tag = tag + 1
        stats = queue.stats  # the management API's counters (broker/stats.py)
        if entry.redelivered:
            stats.redeliver += 1
        if consumer.no_ack:
            stats.deliver_no_ack += 1
        else:
            stats.deliver += 1
            self._unacked[tag] = (tag, queue, entry, consumer)
            consumer.unacked += 1
            self._global_unacked += 1
            if queue.ack_timeout:
                self._ack_deadlines.start(tag, queue.ack_timeout)
        message = queue.message_for_delivery(entry) if queue.adds_delivery_count else entry.message
        self.target.deliver(consumer.tag, tag, entry.redelivered, message)

    def send_deliveries(self, consumer: Consumer, queue: QueueType, entries: list[QueueEntry]) -> None:
        """A run of entries for one consumer with credit for all of them (a queue's dispatch): the same
        bookkeeping as `send_delivery` for each, then one call to the target for all."""
        first_tag = tag = self._next_tag
        stats = queue.stats
        no_ack = consumer.no_ack
        unacked = self._unacked
        rewrites = queue.adds_delivery_count
        deliveries = []
        for entry in entries:
            redelivered = entry.redelivered
            if redelivered:
                stats.redeliver += 1
            if not no_ack:
                unacked[tag] = (tag, queue, entry, consumer)
            deliveries.append((tag, redelivered, queue.message_for_delivery(entry) if rewrites else entry.message))
            tag += 1
        self._next_tag = tag
        count = len(entries)
        if no_ack:
            stats.deliver_no_ack += count
        else:
            stats.deliver += count
            consumer.unacked += count
            self._global_unacked += count
            if queue.ack_timeout:
                # The consumer timeout (on by default): one deadline for the run, not a clock read per delivery.
                self._ack_deadlines.start(first_tag, queue.ack_timeout, count)
        self.target.deliver_batch(consumer.tag, deliveries)

    def deliver_reply(self, message: Message) -> bool:
        """A direct reply-to message addressed to this channel (no ack, no queue); False if nobody listens."""
        if self.closed or self._reply_tag is None:
            return False
        tag = self._next_tag
        self._next_tag = tag + 1
        self.target.deliver(self._reply_tag, tag, False, message)
        return True

    def publish(self, exchange: str, routing_key: str, message: Message, *, mandatory: bool = False) -> RouteResult:
        """basic.publish from this channel: user_id check, then `VHost.publish` (with reply-to rewriting)."""
        if message.properties.user_id is not None:
            self.check_user_id(message)
        return self.vhost.publish(exchange, routing_key, message, mandatory=mandatory, channel=self)

    def check_user_id(self, message: Message) -> None:
        """A publish may only claim the authenticated user as its user_id (RabbitMQ's 406)."""
        user_id = message.properties.user_id
        if user_id is not None and as_text(user_id) != self.user and not self.may_impersonate:
            raise PreconditionFailed(
                f"user_id property set to '{as_text(user_id)}' but authenticated user was '{self.user}'"
            )

    def rewrite_reply_to(self, message: Message) -> Message:
        """Direct reply-to: reply_to "amq.rabbitmq.reply-to" becomes this channel's reply address."""
        reply_to = message.properties.reply_to
        if reply_to is None or as_text(reply_to) != REPLY_TO:
            return message
        if self._reply_tag is None or self._reply_address is None:
            raise PreconditionFailed("fast reply consumer does not exist")
        return message.with_properties(reply_to=self._reply_address)

    def get(self, queue: str, no_ack: bool = False) -> tuple[int, bool, Message, int] | None:
        """basic.get: (delivery_tag, redelivered, message, message_count_after) or None if empty."""
        q = self.vhost.queue_for(queue, self.owner)
        entry = q.fetch(no_ack)
        count_get(q.stats, entry, no_ack)
        if entry is None:
            return None
        tag = self._next_tag
        self._next_tag = tag + 1
        if not no_ack:
            self._unacked[tag] = (tag, q, entry, None)  # not counted by the limiter (see the module doc)
            if q.ack_timeout:
                self._ack_deadlines.start(tag, q.ack_timeout)
        message = q.message_for_delivery(entry, get=True) if q.adds_delivery_count else entry.message
        return tag, entry.redelivered, message, q.message_count

    # -- acknowledgements -------------------------------------------------------------------
    def take(self, delivery_tag: int, multiple: bool) -> list[Unacked]:
        """Remove and return the deliveries an ack/nack/reject names, or raise "unknown delivery tag".

        Public for transactions: take at ack time, `settle` at commit, `restore` at rollback. Credit is
        only released by `settle`, as RabbitMQ releases it at commit.
        """
        unacked = self._unacked
        if multiple:
            if delivery_tag == 0:
                taken = list(unacked.values())
                unacked.clear()
                return taken
            if delivery_tag not in unacked:
                raise PreconditionFailed(f"unknown delivery tag {delivery_tag}")
            taken = []
            while unacked:
                first = next(iter(unacked))
                if first > delivery_tag:
                    break
                taken.append(unacked.popitem(last=False)[1])
            return taken
        record = unacked.pop(delivery_tag, None)
        if record is None:
            raise PreconditionFailed(f"unknown delivery tag {delivery_tag}")
        return [record]

    def check_delivery_tag(self, delivery_tag: int, multiple: bool) -> None:
        """Raise as ack/nack/reject would for this tag, without settling anything (tx validates early)."""
        if multiple and delivery_tag == 0:
            return
        if delivery_tag not in self._unacked:
            raise PreconditionFailed(f"unknown delivery tag {delivery_tag}")

    def settle(
        self, records: list[Unacked], *, ack: bool = True, requeue: bool = False, delay: bool = False
    ) -> None:
        """Finish taken deliveries: ack, requeue, or discard (reason 'rejected').

        `delay`: a requeue asked for by nack/reject, which honours the queue's x-requeue-delay (a
        requeue because the channel closed or basic.recover is immediate).
        """
        if self._ack_pending:
            self._ack_deadlines.prune(self._unacked)
        if ack and len(records) == 1:
            # hot path: a single ack
            _, queue, entry, consumer = records[0]
            queue.settle((entry,))
            queue.stats.ack += 1
            if consumer is not None:
                consumer.unacked -= 1
                if self._global_unacked:
                    self._global_unacked -= 1
                self._credit_freed()
            return
        by_queue: dict[QueueType, list[QueueEntry]] = {}
        settled = 0
        for _, queue, entry, consumer in records:
            if consumer is not None:
                consumer.unacked -= 1
                settled += 1
            by_queue.setdefault(queue, []).append(entry)
        self._global_unacked = max(0, self._global_unacked - settled)
        for queue, entries in by_queue.items():
            if ack:
                queue.settle(entries)
                queue.stats.ack += len(entries)
            elif requeue:
                queue.requeue(entries, delay=delay)
            else:
                queue.discard(entries, "rejected")
        self._credit_freed()

    def restore(self, records: list[Unacked]) -> None:
        """Put taken (unsettled) deliveries back as unacked, e.g. on tx.rollback."""
        merged = sorted([*self._unacked.values(), *records], key=lambda record: record[0])
        self._unacked = OrderedDict((record[0], record) for record in merged)

    def ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.settle(self.take(delivery_tag, multiple), ack=True)

    def nack(self, delivery_tag: int, multiple: bool = False, requeue: bool = True) -> None:
        self.settle(self.take(delivery_tag, multiple), ack=False, requeue=requeue, delay=True)

    def reject(self, delivery_tag: int, requeue: bool = True) -> None:
        self.settle(self.take(delivery_tag, False), ack=False, requeue=requeue, delay=True)

    def recover(self, requeue: bool = True) -> None:
        """basic.recover: requeue every unacked delivery; RabbitMQ 3.10 refuses requeue=false (540)."""
        if not requeue:
            raise NotImplementedByBroker("requeue=false")
        self.settle(self.take(0, True), ack=False, requeue=True)

    def _credit_freed(self) -> None:
        """Acks freed credit: refill now, or leave it to the owner (one refill for a read full of acks)."""
        if self._refill_pending:
            return
        later = self._refill_later
        if later is not None and later(self):
            self._refill_pending = True
            return
        self._refill()

    def refill_due(self) -> None:
        """The refill `refill_later` took over."""
        self._refill_pending = False
        self._refill()

    def _refill(self) -> None:
        """Put consumers that were out of credit back into rotation if they now have some."""
        if self.closed:
            return
        blocked = [c for c in self.consumers.values() if c.blocked]
        for consumer in blocked:
            consumer.queue.unblock(consumer)

    # -- consumer timeout -------------------------------------------------------------------
    def _check_ack_deadlines(self) -> None:
        """The oldest timed delivery's deadline passed: close the channel if it is still unacked."""
        if self.closed:
            return
        timeout = self._ack_deadlines.expired(self._unacked)
        if timeout is not None:
            self.time_out(timeout)

    def time_out(self, timeout_ms: int) -> None:
        """A delivery stayed unacked past the consumer timeout: close the channel (406) and requeue."""
        number = getattr(self.target, "number", 0)
        error = PreconditionFailed(CONSUMER_TIMEOUT_TEXT.format(channel=number, timeout=timeout_ms))
        self.close()
        channel_error = getattr(self.target, "channel_error", None)
        if channel_error is not None:
            channel_error(error)

    # -- teardown ---------------------------------------------------------------------------
    def close(self) -> None:
        """Channel closed (by either side or with its connection): requeue everything, drop consumers."""
        if self.closed:
            return
        self.closed = True  # first, so requeued messages are not dispatched back to us
        self.vhost.lifecycle.channel_closed(self.target)
        self.settle(self.take(0, True), ack=False, requeue=True)
        for consumer_tag in list(self.consumers):
            self.cancel(consumer_tag)
        self._reply_tag = None
        self._ack_deadlines.clear()
        if self._reply_address is not None:
            self.vhost.unregister_reply_channel(self._reply_address)

    def __repr__(self) -> str:
        return f"<Channel owner={self.owner!r} consumers={len(self.consumers)} unacked={len(self._unacked)}>"
