"""Virtual hosts (exchanges, queues, bindings and the publish path through them) and the Broker holding them.

Every method either succeeds or raises a `BrokerError` whose text is RabbitMQ 3.10's, checked against
a live broker. Owners are opaque hashable identities of connections; they decide who may use an
exclusive queue. The direct reply-to registry (token -> channel) lives here because a reply is
published on some other channel of some other connection.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Hashable, Protocol

from leveret.broker import deadletter
from leveret.broker.arguments import as_text, field_type_name, first_inequivalent
from leveret.broker.errors import AccessRefused, CommandInvalid, NotFound, PreconditionFailed, ResourceLocked
from leveret.broker.exchanges import DefaultExchange, Exchange, exchange_class
from leveret.broker.exchanges.delayed import DelayedMessageExchange
from leveret.broker.message import Message, PropertiesCodec
from leveret.broker.names import REPLY_TO, REPLY_TO_PREFIX, random_name
from leveret.broker.queue import Queue
from leveret.broker.queue_arguments import parse_queue_arguments
from leveret.broker.route_result import RouteResult
from leveret.broker.storage import NO_HOOKS, DurabilityHooks
from leveret.broker.stream import StreamQueue
from leveret.broker.stream_arguments import (
    EQUIVALENCE_ARGUMENTS as STREAM_EQUIVALENCE_ARGS, STREAM_MODULE, is_stream_declaration, parse_stream_arguments,
)
from leveret.broker.timers import Timers
from leveret.clock import Clock, SystemClock
from leveret.store.api import StreamStores

# Pre-declared exchanges of every vhost (name, type); all durable, none deletable.
SYSTEM_EXCHANGES = (
    ("amq.direct", "direct"),
    ("amq.fanout", "fanout"),
    ("amq.topic", "topic"),
    ("amq.headers", "headers"),
    ("amq.match", "headers"),
)

# The queue arguments RabbitMQ 3.10 compares on redeclaration, in its order; others are ignored.
QUEUE_EQUIVALENCE_ARGS = (
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-single-active-consumer",
    "x-queue-type",
    "x-quorum-initial-group-size",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-queue-leader-locator",
    "x-queue-master-locator",
    "x-delivery-limit",
)
EXCHANGE_EQUIVALENCE_ARGS = ("alternate-exchange",)

DEFAULT_EXCHANGE_REFUSED = "operation not permitted on the default exchange"


class ReplyChannel(Protocol):
    """What direct reply-to needs of a channel (broker/channel.py `Channel`, which imports this module)."""

    def rewrite_reply_to(self, message: Message) -> Message:
        """reply_to "amq.rabbitmq.reply-to" made this channel's address (refused without a reply consumer)."""

    def deliver_reply(self, message: Message) -> bool:
        """Deliver a reply addressed to this channel; False when nobody listens."""


def _flag(value: bool) -> str:
    return "true" if value else "false"


MAX_DELAY_MS = 2**32 - 1


def check_expiration(value: Any) -> None:
    """Refuse an unreadable `expiration` property with RabbitMQ's text (channel error 406)."""
    text = as_text(value)
    if not isinstance(text, str):
        raise PreconditionFailed(f"invalid expiration '{text!r}': no_integer")
    digits = text[1:] if text[:1] in ("-", "+") else text
    n = len(digits) - len(digits.lstrip("0123456789"))
    if n == 0:
        raise PreconditionFailed(f"invalid expiration '{text}': no_integer")
    if n < len(digits):
        raise PreconditionFailed(f'invalid expiration \'{text}\': {{leftover_string,"{digits[n:]}"}}')
    if text.startswith("-") and int(digits):
        raise PreconditionFailed(f"invalid expiration '{text}': {{value_negative,{int(text)}}}")


class VHost:
    """Exchanges, queues and bindings of one virtual host."""

    def __init__(
        self,
        name: str,
        clock: Clock,
        timers: Timers,
        *,
        hooks: DurabilityHooks = NO_HOOKS,
        streams: StreamStores | None = None,
        codec: PropertiesCodec | None = None,
        consumer_timeout: int | None = None,
    ) -> None:
        """`hooks` record durable changes and give new queues their storage (broker/storage.py); `streams`
        holds stream queues' logs (None: streams are refused); `codec` turns stored property bytes back
        into properties (needed with `streams`)."""
        self.name = name
        self.clock = clock
        self.timers = timers
        # broker-wide consumer timeout in ms (None: off); a queue's x-consumer-timeout overrides it
        self.consumer_timeout = consumer_timeout
        self.hooks = hooks
        self.streams = streams
        self.codec = codec
        self.queues: dict[str, Queue] = {}
        self.default_exchange = DefaultExchange(self.queues, name)
        self.exchanges: dict[str, Exchange] = {"": self.default_exchange}
        for xname, xtype in SYSTEM_EXCHANGES:
            cls = exchange_class(xtype)
            assert cls is not None
            self.exchanges[xname] = cls(xname, name, durable=True)
        self._reply_channels: dict[str, ReplyChannel] = {}

    # -- texts ------------------------------------------------------------------------------
    def _no_exchange(self, name: str) -> NotFound:
        return NotFound(f"no exchange '{name}' in vhost '{self.name}'")

    def _no_queue(self, name: str) -> NotFound:
        return NotFound(f"no queue '{name}' in vhost '{self.name}'")

    def _locked(self, queue: Queue) -> ResourceLocked:
        return ResourceLocked(
            f"cannot obtain exclusive access to locked {queue.describe()}. It could be originally declared "
            "on another connection or the exclusive property value does not match that of the original "
            "declaration."
        )

    def _inequivalent(self, key: str, what: str, received: str, current: str) -> PreconditionFailed:
        return PreconditionFailed(f"inequivalent arg '{key}' for {what}: received {received} but current is {current}")

    # -- exchanges --------------------------------------------------------------------------
    def declare_exchange(
        self,
        name: str,
        type: str,
        *,
        passive: bool = False,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> Exchange:
        if passive:
            if name == "":
                raise AccessRefused(DEFAULT_EXCHANGE_REFUSED)
            found = self.exchanges.get(name)
            if found is None:
                raise self._no_exchange(name)
            return found
        cls = exchange_class(type)
        if cls is None:
            # RabbitMQ says "invalid" only for names that happen to be existing Erlang atoms (like 'foo');
            # for any other unregistered name it says "unknown", which is what we always say.
            raise CommandInvalid(f"unknown exchange type '{type}'")
        if name == "":
            raise AccessRefused(DEFAULT_EXCHANGE_REFUSED)
        arguments = dict(arguments or {})
        cls.validate_arguments(arguments)
        existing = self.exchanges.get(name)
        if existing is not None:
            what = existing.describe()
            for key, have, want in (
                ("type", existing.type_name, type),
                ("durable", _flag(existing.durable), _flag(durable)),
                ("auto_delete", _flag(existing.auto_delete), _flag(auto_delete)),
                ("internal", _flag(existing.internal), _flag(internal)),
            ):
                if have != want:
                    raise self._inequivalent(key, what, f"'{want}'", f"'{have}'")
            diff = first_inequivalent(existing.arguments, arguments, EXCHANGE_EQUIVALENCE_ARGS)
            if diff is not None:
                raise self._inequivalent(diff[0], what, diff[1], diff[2])
            return existing
        # the reserved prefix only matters when creating: redeclaring amq.direct is fine
        if name.startswith("amq."):
            raise AccessRefused(f"exchange name '{name}' contains reserved prefix 'amq.*'")
        # Recorded first: an OSError (a full disk) leaves it out of the model too; the server closes with 541.
        held = self.hooks.exchange_added(self.name, name, cls.type_name, durable=durable, auto_delete=auto_delete,
                                         internal=internal, arguments=arguments)
        if cls is DelayedMessageExchange:
            exchange: Exchange = DelayedMessageExchange(
                name, self.name, durable=durable, auto_delete=auto_delete, internal=internal, arguments=arguments,
                timers=self.timers, clock=self.clock, release=self._release_delayed, held=held,
            )
        else:
            exchange = cls(
                name, self.name, durable=durable, auto_delete=auto_delete, internal=internal, arguments=arguments
            )
        self.exchanges[name] = exchange
        return exchange

    def delete_exchange(self, name: str, *, if_unused: bool = False) -> None:
        if name == "":
            raise AccessRefused(DEFAULT_EXCHANGE_REFUSED)
        exchange = self.exchanges.get(name)
        if exchange is None:
            return  # RabbitMQ 3.10 answers delete-ok for a missing exchange
        if name.startswith("amq."):
            raise AccessRefused(f"deletion of system exchange '{name}' in vhost '{self.name}' not allowed")
        if if_unused and exchange.has_bindings:
            raise PreconditionFailed(f"{exchange.describe()} in use")
        self._remove_exchange(exchange)

    def _remove_exchange(self, exchange: Exchange) -> None:
        if self.exchanges.get(exchange.name) is not exchange:
            return
        del self.exchanges[exchange.name]
        exchange.close()
        self.hooks.exchange_removed(self.name, exchange)
        for destination in exchange.destinations():
            exchange.remove_destination(destination)
            destination.sources.discard(exchange)
        self._drop_bindings_to(exchange)

    def _drop_bindings_to(self, destination: Queue | Exchange) -> None:
        """Remove every binding whose destination is going away, auto-deleting emptied sources."""
        sources = list(destination.sources)
        destination.sources.clear()
        for source in sources:
            source.remove_destination(destination)
        for source in sources:
            self._maybe_auto_delete_exchange(source)

    def _maybe_auto_delete_exchange(self, exchange: Exchange) -> None:
        if exchange.auto_delete and not exchange.has_bindings:
            self._remove_exchange(exchange)

    def bind_exchange(
        self, destination: str, source: str, routing_key: str = "", arguments: dict[str, Any] | None = None
    ) -> None:
        if destination == "" or source == "":
            raise AccessRefused(DEFAULT_EXCHANGE_REFUSED)
        src = self.exchanges.get(source)
        if src is None:
            raise self._no_exchange(source)
        dst = self.exchanges.get(destination)
        if dst is None:
            raise self._no_exchange(destination)
        self._bind(src, dst, routing_key, arguments)

    def unbind_exchange(
        self, destination: str, source: str, routing_key: str = "", arguments: dict[str, Any] | None = None
    ) -> None:
        if destination == "" or source == "":
            raise AccessRefused(DEFAULT_EXCHANGE_REFUSED)
        src = self.exchanges.get(source)
        dst = self.exchanges.get(destination)
        if src is None or dst is None:
            return  # unbinding what does not exist is not an error in RabbitMQ
        self._unbind(src, dst, routing_key, arguments)

    def _bind(self, source: Exchange, destination: Queue | Exchange, routing_key: str,
              arguments: dict[str, Any] | None) -> None:
        """One binding, to a queue or an exchange: routing table, back-reference, durable record."""
        had_source = source in destination.sources
        added = source.bind(destination, routing_key, arguments)
        destination.sources.add(source)
        try:
            self.hooks.bound(self.name, source, destination, routing_key, arguments)
        except OSError:
            # Not on disk (a full disk): not in the model either; the server closes with 541.
            if added:
                source.unbind(destination, routing_key, arguments)
            if not had_source:
                destination.sources.discard(source)
            raise

    def _unbind(self, source: Exchange, destination: Queue | Exchange, routing_key: str,
                arguments: dict[str, Any] | None) -> None:
        """Remove one binding if it exists; an auto-delete source that lost its last binding goes too."""
        if source.unbind(destination, routing_key, arguments):
            self.hooks.unbound(self.name, source, destination, routing_key, arguments)
            if not source.is_bound_to(destination):
                destination.sources.discard(source)
            self._maybe_auto_delete_exchange(source)

    # -- queues -----------------------------------------------------------------------------
    def queue_for(self, name: str, owner: Hashable | None = None) -> Queue:
        """The queue `owner` may use: NotFound if missing, ResourceLocked if another's exclusive queue."""
        queue = self.queues.get(name)
        if queue is None:
            raise self._no_queue(name)
        if queue.exclusive and queue.owner != owner:
            raise self._locked(queue)
        return queue

    def declare_queue(
        self,
        name: str,
        *,
        passive: bool = False,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
        owner: Hashable | None = None,
    ) -> tuple[Queue, int, int]:
        if passive:
            if name == REPLY_TO:
                # RabbitMQ answers a passive declare of the pseudo-queue with (0 messages, 1 consumer)
                return Queue(REPLY_TO, self.name), 0, 1
            queue = self.queue_for(name, owner)
            queue.touch()  # a passive declare renews x-expires too (RabbitMQ 3.10)
            return queue, queue.message_count, queue.consumer_count
        if is_stream_declaration(arguments) or isinstance(self.queues.get(name), StreamQueue):
            return self._declare_stream(name, durable=durable, exclusive=exclusive, auto_delete=auto_delete,
                                        arguments=dict(arguments or {}), owner=owner)
        if name == "":
            name = random_name("amq.gen-")
        elif name.startswith("amq."):
            raise AccessRefused(f"queue name '{name}' contains reserved prefix 'amq.*'")
        arguments = dict(arguments or {})
        queue = self.queues.get(name)
        # arguments are validated before anything else, redeclarations included (as RabbitMQ)
        settings = parse_queue_arguments(
            name,
            self.name,
            arguments,
            durable=durable or queue is not None,
            exclusive=exclusive and queue is None,
            auto_delete=auto_delete and queue is None,
        )
        if queue is not None:
            # strict exclusivity: the flag itself must match, and an exclusive queue must be ours
            if queue.exclusive != exclusive or (queue.exclusive and queue.owner != owner):
                raise self._locked(queue)
            what = queue.describe()
            if queue.durable != durable:
                raise self._inequivalent("durable", what, f"'{_flag(durable)}'", f"'{_flag(queue.durable)}'")
            if queue.auto_delete != auto_delete:
                raise self._inequivalent(
                    "auto_delete", what, f"'{_flag(auto_delete)}'", f"'{_flag(queue.auto_delete)}'"
                )
            diff = first_inequivalent(queue.arguments, arguments, QUEUE_EQUIVALENCE_ARGS, {"x-queue-type": "classic"})
            if diff is not None:
                raise self._inequivalent(diff[0], what, diff[1], diff[2])
            queue.touch()
            return queue, queue.message_count, queue.consumer_count
        # Recorded first: an OSError (a full disk) leaves it out of the model too; the server closes with 541.
        storage = self.hooks.queue_added(self.name, name, durable=durable and not exclusive, auto_delete=auto_delete,
                                         arguments=arguments, stream=False)
        queue = Queue(
            name,
            self.name,
            durable=durable,
            exclusive=exclusive,
            auto_delete=auto_delete,
            arguments=arguments,
            owner=owner,
            settings=settings,
            host=self,
            storage=storage,
        )
        self.queues[name] = queue
        return queue, 0, 0

    def _declare_stream(self, name: str, *, durable: bool, exclusive: bool, auto_delete: bool,
                        arguments: dict[str, Any], owner: Hashable | None) -> tuple[Queue, int, int]:
        """queue.declare (not passive) of a stream: redeclaration checks, or creation (broker/stream.py)."""
        if name == "":
            raise PreconditionFailed(f"Cannot declare a server-named queue for type {STREAM_MODULE}")
        if name.startswith("amq."):
            raise AccessRefused(f"queue name '{name}' contains reserved prefix 'amq.*'")
        existing = self.queues.get(name)
        if existing is not None:
            if existing.exclusive != exclusive or (existing.exclusive and existing.owner != owner):
                raise self._locked(existing)
            what = existing.describe()
            flags = (("durable", existing.durable, durable), ("auto_delete", existing.auto_delete, auto_delete))
            for key, have, want in flags:
                if have != want:
                    raise self._inequivalent(key, what, f"'{_flag(want)}'", f"'{_flag(have)}'")
            diff = first_inequivalent(existing.arguments, arguments, STREAM_EQUIVALENCE_ARGS)
            if diff is not None:
                raise self._inequivalent(diff[0], what, diff[1], diff[2])
            return existing, existing.message_count, existing.consumer_count
        for flag, bad in (("non-durable", not durable), ("exclusive-owner", exclusive), ("auto-delete", auto_delete)):
            if bad:
                raise PreconditionFailed(f"invalid property '{flag}' for queue '{name}' in vhost '{self.name}'")
        settings = parse_stream_arguments(name, self.name, arguments)
        streams = self.streams
        if streams is None or self.codec is None:
            raise PreconditionFailed(f"stream queues need a message store; none for vhost '{self.name}'")
        store = streams.open_stream(
            self.name, name, segment_size=settings.segment_size, max_age_ms=settings.max_age_ms,
            max_bytes=settings.max_bytes,
        )
        # A stream is its own log: the hooks only record its definition (an OSError: not in the model).
        self.hooks.queue_added(self.name, name, durable=True, auto_delete=False, arguments=arguments, stream=True)
        vhost_name = self.name
        queue = StreamQueue(
            name, vhost_name, arguments=arguments, store=store, settings=settings, clock=self.clock,
            timers=self.timers, delivery_properties=self.codec.with_stream_offset,
            delete_store=lambda: streams.delete_stream(vhost_name, name),
        )
        self.queues[name] = queue
        return queue, 0, 0

    def bind_queue(
        self,
        queue: str,
        exchange: str,
        routing_key: str = "",
        arguments: dict[str, Any] | None = None,
        owner: Hashable | None = None,
    ) -> None:
        if exchange == "":
            raise AccessRefused(DEFAULT_EXCHANGE_REFUSED)
        source = self.exchanges.get(exchange)
        if source is None:
            raise self._no_exchange(exchange)
        self._bind(source, self.queue_for(queue, owner), routing_key, arguments)

    def unbind_queue(
        self,
        queue: str,
        exchange: str,
        routing_key: str = "",
        arguments: dict[str, Any] | None = None,
        owner: Hashable | None = None,
    ) -> None:
        # RabbitMQ 3.10 checks neither existence nor exclusivity on unbind
        if exchange == "":
            raise AccessRefused(DEFAULT_EXCHANGE_REFUSED)
        source = self.exchanges.get(exchange)
        q = self.queues.get(queue)
        if source is None or q is None:
            return
        self._unbind(source, q, routing_key, arguments)

    def purge_queue(self, name: str, owner: Hashable | None = None) -> int:
        return self.queue_for(name, owner).purge()

    def delete_queue(
        self, name: str, *, if_unused: bool = False, if_empty: bool = False, owner: Hashable | None = None
    ) -> int:
        """Delete a queue, cancelling its consumers; returns its ready message count (0 if missing)."""
        if name not in self.queues:
            return 0  # RabbitMQ 3.10 answers delete-ok with 0 for a missing queue
        queue = self.queue_for(name, owner)
        if if_unused and queue.consumer_count:
            raise PreconditionFailed(f"{queue.describe()} in use")
        if if_empty and queue.message_count:
            raise PreconditionFailed(f"{queue.describe()} not empty")
        return self.remove_queue(queue)

    def remove_queue(self, queue: Queue) -> int:
        """Delete without checks (exclusive owner gone, auto-delete); returns ready messages dropped."""
        if self.queues.get(queue.name) is not queue:
            return 0
        del self.queues[queue.name]
        queue.deleted = True
        self._drop_bindings_to(queue)
        for consumer in queue.detach_consumers():
            consumer.channel.consumer_cancelled_by_broker(consumer)
        dropped = queue.close()
        self.hooks.queue_removed(self.name, queue.name, durable=queue.durable and not queue.exclusive,
                                 stream=isinstance(queue, StreamQueue))
        return dropped

    def queue_expired(self, queue: Queue) -> None:
        """x-expires: the queue was unused for its whole expiry period."""
        self.remove_queue(queue)

    def dead_letter(self, queue: Queue, message: Message, reason: str) -> None:
        """Publish the dead-lettered copy of `message` from `queue` to its dead-letter exchange.

        A missing dead-letter exchange drops the message, and so does a cycle (see deadletter.py),
        both silently, as RabbitMQ does.
        """
        name = queue.settings.dead_letter_exchange
        exchange = self.exchanges.get(name) if name is not None else None
        if exchange is None or name is None:
            return
        copy = deadletter.dead_lettered(
            message, queue.name, reason, name, queue.settings.dead_letter_routing_key, self.clock.time()
        )
        if type(exchange) is DelayedMessageExchange:
            # the plugin delays whatever its exchange routes, dead-lettered copies included: with a
            # DLX of this type an x-delay header turns dead-lettering into a delayed retry
            delay = exchange.delay_of(copy)
            if delay is not None:
                exchange.hold(copy, delay)
                return
        self._deliver(exchange, copy.routing_key, copy, reason=reason)

    def _release_delayed(self, exchange: DelayedMessageExchange, message: Message) -> None:
        """A delayed message is due: route it through its exchange's x-delayed-type now."""
        if self.exchanges.get(exchange.name) is exchange:
            self._deliver(exchange, message.routing_key, message)

    def consumer_removed(self, queue: Queue) -> None:
        """A consumer left `queue`: auto-delete it if that was the last one."""
        if queue.unused_for_auto_delete:
            self.remove_queue(queue)

    def connection_closed(self, owner: Hashable) -> None:
        """Delete the exclusive queues of a closed connection (close its channels first)."""
        for queue in [q for q in self.queues.values() if q.exclusive and q.owner == owner]:
            self.remove_queue(queue)

    # -- direct reply-to --------------------------------------------------------------------
    def register_reply_channel(self, channel: ReplyChannel) -> str:
        """Make `channel` reachable by direct reply-to; returns the reply_to address for it."""
        address = random_name(REPLY_TO_PREFIX)
        self._reply_channels[address] = channel
        return address

    def unregister_reply_channel(self, address: str) -> None:
        self._reply_channels.pop(address, None)

    # -- publishing -------------------------------------------------------------------------
    def check_publish(self, exchange: str) -> Exchange:
        """The exchange a publish would start from, or the error it would raise (tx validates early)."""
        source = self.exchanges.get(exchange)
        if source is None:
            raise self._no_exchange(exchange)
        if source.internal:
            raise AccessRefused(f"cannot publish to internal exchange '{exchange}' in vhost '{self.name}'")
        return source

    def publish(
        self,
        exchange: str,
        routing_key: str,
        message: Message,
        *,
        mandatory: bool = False,
        channel: ReplyChannel | None = None,
    ) -> RouteResult:
        """Route `message` to queues and enqueue it; `mandatory` is for the caller's basic.return.

        `channel` is the publishing channel, needed for direct reply-to (reply_to "amq.rabbitmq.reply-to"
        is rewritten to that channel's address, or refused if it has no reply consumer).
        """
        source = self.check_publish(exchange)
        # Most publishes carry none of reply_to, expiration, headers and user_id: one test skips their checks.
        plain = message.properties.routing_plain
        if not plain and channel is not None:
            message = channel.rewrite_reply_to(message)
        if exchange == "" and routing_key.startswith(REPLY_TO_PREFIX):
            channel = self._reply_channels.get(routing_key)
            delivered = channel is not None and channel.deliver_reply(message)
            return RouteResult(delivered, [])
        if not plain and message.properties.expiration is not None:
            check_expiration(message.properties.expiration)
        if type(source) is DelayedMessageExchange:
            delay = source.delay_of(message)
            if delay is not None:
                source.hold(message, delay)
                return RouteResult(True, [], delayed=True)
        return self._deliver(source, routing_key, message)

    def _deliver(
        self, source: Exchange, routing_key: str, message: Message, reason: str | None = None
    ) -> RouteResult:
        """Route `message` from `source` (with CC/BCC) and enqueue it; `reason` marks a dead-lettered copy.

        Every publish, dead-lettered copy and released delayed message goes through here.
        """
        headers = message.properties.headers
        routing_keys = [routing_key]
        if headers and ("CC" in headers or "BCC" in headers):
            routing_keys += self._sender_selected_keys(headers, "CC")
            routing_keys += self._sender_selected_keys(headers, "BCC")
            if "BCC" in headers:
                # BCC recipients must stay invisible to every receiver
                message = message.with_properties(headers={k: v for k, v in headers.items() if k != "BCC"})
        queues = self._route(source, routing_keys, headers, message)
        if reason is not None:
            queues = deadletter.without_cycles(message, reason, queues)
        if len(queues) == 1:
            # hot path: one queue
            if queues[0].enqueue(message) is None:
                return RouteResult(True, [], 1)
            return RouteResult(True, queues)
        accepted: list[Queue] = []
        rejected = 0
        for queue in queues:
            if queue.enqueue(message) is None:
                rejected += 1
            else:
                accepted.append(queue)
        return RouteResult(bool(queues), accepted, rejected)

    @staticmethod
    def _sender_selected_keys(headers: dict[str, Any], name: str) -> list[str]:
        value = headers.get(name)
        if name not in headers:
            return []
        if not isinstance(value, (list, tuple)):
            raise PreconditionFailed(
                f'invalid message: {{unacceptable_type_in_header,"{name}",{field_type_name(value)}}}'
            )
        return [key for key in map(as_text, value) if isinstance(key, str)]

    def _route(
        self, source: Exchange, routing_keys: list[str], headers: dict[str, Any] | None, message: Message
    ) -> list[Queue]:
        """Breadth-first over exchange-to-exchange bindings; each exchange and queue at most once."""
        if len(routing_keys) == 1 and not source.needs_message:
            # hot path: one key straight to queues (no e2e hop, no alternate exchange involved)
            direct: list[Queue] = []
            for destination in source.route(routing_keys[0], headers):
                if type(destination) is not Queue:
                    break
                direct.append(destination)
            else:
                if direct:
                    return direct
        queues: dict[Queue, None] = {}
        seen: set[Exchange] = {source}
        work: deque[Exchange] = deque((source,))
        single = len(routing_keys) == 1
        while work:
            exchange = work.popleft()
            if exchange.needs_message:
                destinations: Any = {}
                for key in routing_keys:
                    destinations.update(dict.fromkeys(exchange.route_message(key, message)))
            elif single:
                destinations = exchange.route(routing_keys[0], headers)
            else:
                destinations = {}
                for key in routing_keys:
                    destinations.update(dict.fromkeys(exchange.route(key, headers)))
            empty = True
            for destination in destinations:
                empty = False
                if isinstance(destination, Queue):
                    queues[destination] = None
                elif destination not in seen:
                    seen.add(destination)
                    work.append(destination)
            if empty:
                ae_name = exchange.alternate_exchange
                if ae_name is not None:
                    alternate = self.exchanges.get(ae_name)
                    if alternate is not None and alternate not in seen:
                        seen.add(alternate)
                        work.append(alternate)
        return list(queues)

    def __repr__(self) -> str:
        return f"<VHost {self.name!r} exchanges={len(self.exchanges)} queues={len(self.queues)}>"


class Broker:
    """All virtual hosts of one node, sharing one clock and one heap of timers; "/" exists from the start.

    Built bare (`Broker(clock)`) it keeps everything in memory; leveret/durable/ builds it with the hooks,
    stream stores and codec of durable storage (see broker/storage.py).
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        hooks: DurabilityHooks = NO_HOOKS,
        streams: StreamStores | None = None,
        codec: PropertiesCodec | None = None,
        consumer_timeout: int | None = None,
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        # every deadline of every vhost: the server drives them all with ONE event-loop timer
        self.timers = Timers(self.clock)
        # RabbitMQ's consumer_timeout in ms (None or 0: off)
        self.consumer_timeout: int | None = consumer_timeout or None
        self.hooks = hooks
        self.streams = streams
        self.codec = codec
        self.vhosts: dict[str, VHost] = {}
        self.add_vhost("/")

    def vhost(self, name: str) -> VHost | None:
        return self.vhosts.get(name)

    def add_vhost(self, name: str) -> VHost:
        """Create (or return the existing) vhost `name`."""
        vhost = self.vhosts.get(name)
        if vhost is None:
            vhost = self.vhosts[name] = VHost(
                name, self.clock, self.timers, hooks=self.hooks, streams=self.streams, codec=self.codec,
                consumer_timeout=self.consumer_timeout,
            )
        return vhost
