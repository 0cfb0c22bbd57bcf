"""A vhost's registry: declaring, deleting, binding and unbinding exchanges and queues (streams included),
with RabbitMQ 3.10's equivalence rules (equivalence.py) and texts, and what persists told to the
durability hooks (broker/storage.py) before the model changes.

Every method either succeeds or raises a `BrokerError` whose text is RabbitMQ 3.10's, checked against a live
broker. Owners are opaque hashable identities of connections; they decide who may use an exclusive queue.
`VHost` (vhost.py) is this and routing.py's `Routing` over one set of exchanges and queues.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable

from leveret.broker import equivalence
from leveret.broker.errors import AccessRefused, CommandInvalid, NotFound, PreconditionFailed
from leveret.broker.exchanges import Exchange, exchange_class
from leveret.broker.exchanges.delayed import DelayedMessageExchange
from leveret.broker.lifecycle import Lifecycle
from leveret.broker.message import PropertiesCodec
from leveret.broker.names import REPLY_TO, random_name
from leveret.broker.policies import PolicySet
from leveret.broker.queue import Queue
from leveret.broker.queue_type import QueueType
from leveret.broker.queue_arguments import check_dead_letter_exchange_type, parse_queue_arguments
from leveret.broker.storage import DurabilityHooks
from leveret.broker.stream import StreamQueue
from leveret.broker.stream_arguments import (
    EQUIVALENCE_ARGUMENTS as STREAM_EQUIVALENCE_ARGS, STREAM_MODULE, is_stream_declaration, parse_stream_arguments,
)
from leveret.broker.timers import Timers
from leveret.clock import Clock
from leveret.store.api import StreamStores

DEFAULT_EXCHANGE_REFUSED = "operation not permitted on the default exchange"


def no_exchange(name: str, vhost: str) -> NotFound:
    return NotFound(f"no exchange '{name}' in vhost '{vhost}'")


class Registry:
    """The exchanges, queues and bindings of one vhost (a part of `VHost`, which sets these attributes)."""

    name: str
    clock: Clock
    timers: Timers
    consumer_timeout: int | None
    hooks: DurabilityHooks
    streams: StreamStores | None
    codec: PropertiesCodec | None
    queues: dict[str, QueueType]
    exchanges: dict[str, Exchange]
    lifecycle: Lifecycle  # queues declared, created and deleted count here (lifecycle.py)
    policies: PolicySet
    # and routing.py's `_release_delayed`, the callback a delayed exchange is built with

    # -- texts ------------------------------------------------------------------------------
    def _no_exchange(self, name: str) -> NotFound:
        return no_exchange(name, self.name)

    def _no_queue(self, name: str) -> NotFound:
        return NotFound(f"no queue '{name}' in vhost '{self.name}'")

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
            equivalence.check_exchange(existing, type, durable=durable, auto_delete=auto_delete, internal=internal,
                                       arguments=arguments)
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
        self.policies.attach(exchange)
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
        # The durable record goes first: a delete the disk refuses (OSError) leaves the exchange as it was.
        self.hooks.exchange_removing(self.name, exchange)
        del self.exchanges[exchange.name]
        self.retired_stats.add(exchange.stats)
        exchange.close()
        self.hooks.exchange_removed(self.name, exchange)
        for destination in exchange.destinations():
            exchange.remove_destination(destination)
            destination.sources.discard(exchange)
        self._drop_bindings_to(exchange)

    def _drop_bindings_to(self, destination: QueueType | Exchange) -> None:
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

    def _bind(self, source: Exchange, destination: QueueType | Exchange, routing_key: str,
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

    def _unbind(self, source: Exchange, destination: QueueType | Exchange, routing_key: str,
                arguments: dict[str, Any] | None) -> None:
        """Remove one binding if it exists; an auto-delete source that lost its last binding goes too."""
        if source.has_binding(destination, routing_key, arguments):
            # The durable record goes first: an unbind the disk refuses (OSError) leaves the binding.
            self.hooks.unbound(self.name, source, destination, routing_key, arguments)
            source.unbind(destination, routing_key, arguments)
            if not source.is_bound_to(destination):
                destination.sources.discard(source)
            self._maybe_auto_delete_exchange(source)

    # -- queues -----------------------------------------------------------------------------
    def queue_for(self, name: str, owner: Hashable | None = None) -> QueueType:
        """The queue `owner` may use: NotFound if missing, ResourceLocked if another's exclusive queue."""
        queue = self.queues.get(name)
        if queue is None:
            raise self._no_queue(name)
        if queue.exclusive and queue.owner != owner:
            raise equivalence.locked(queue)
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
        authorize: Callable[[str], None] | None = None,
    ) -> tuple[QueueType, int, int]:
        """`authorize(name)` (a passive declare never calls it) is handed the final name, a server-named queue's
        drawn one, after the reserved-name rules and before anything else: it raises to refuse (the AMQP
        server's permission checks, server/permissions.py)."""
        if passive:
            if name == REPLY_TO:
                # RabbitMQ answers a passive declare of the pseudo-queue with (0 messages, 1 consumer)
                return Queue(REPLY_TO, self.name), 0, 1
            queue = self.queue_for(name, owner)
            queue.touch()  # a passive declare renews x-expires too (RabbitMQ 3.10)
            return queue, queue.message_count, queue.consumer_count
        # An exclusive queue is never durable, whatever the flag says (RabbitMQ 3.10's channel: Durable =
        # DurableDeclare andalso not ExclusiveDeclare; found by the fuzzer).
        durable = durable and not exclusive
        self.lifecycle.queues_declared += 1
        # The existing queue's type decides how a redeclaration is checked (a classic queue redeclared with
        # x-queue-type stream is compared by the classic rules, in their order: found by the fuzzer).
        existing = self.queues.get(name)
        if isinstance(existing, StreamQueue) or (existing is None and is_stream_declaration(arguments)):
            return self._declare_stream(name, durable=durable, exclusive=exclusive, auto_delete=auto_delete,
                                        arguments=dict(arguments or {}), owner=owner, authorize=authorize)
        if name == "":
            name = random_name("amq.gen-")
        elif name.startswith("amq."):
            raise AccessRefused(f"queue name '{name}' contains reserved prefix 'amq.*'")
        if authorize is not None:
            authorize(name)
        arguments = dict(arguments or {})
        queue = self.queues.get(name)
        if queue is None:
            self._check_queue_limit(name)  # before the arguments, as RabbitMQ 3.10
        if queue is not None:
            # A redeclaration is compared with the queue, never validated (RabbitMQ 3.10: x-message-ttl 'abc'
            # against a queue without one is "inequivalent arg", not "expected integer").
            equivalence.check_queue(queue, durable=durable, exclusive=exclusive, auto_delete=auto_delete,
                                    arguments=arguments, owner=owner,
                                    compared=(equivalence.QUEUE_EQUIVALENCE_ARGS if getattr(queue.settings, "quorum", False)
                                              else equivalence.CLASSIC_EQUIVALENCE_ARGS),
                                    defaults={"x-queue-type": "classic"})
            queue.touch()
            return queue, queue.message_count, queue.consumer_count
        settings = parse_queue_arguments(name, self.name, arguments, durable=durable, exclusive=exclusive,
                                         auto_delete=auto_delete)
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
        self.lifecycle.queues_created += 1
        self.policies.attach(queue)
        return queue, 0, 0

    def _declare_stream(self, name: str, *, durable: bool, exclusive: bool, auto_delete: bool,
                        arguments: dict[str, Any], owner: Hashable | None,
                        authorize: Callable[[str], None] | None) -> tuple[QueueType, int, int]:
        """queue.declare (not passive) of a stream: redeclaration checks, or creation (broker/stream.py)."""
        if name == "":
            raise PreconditionFailed(f"Cannot declare a server-named queue for type {STREAM_MODULE}")
        if name.startswith("amq."):
            raise AccessRefused(f"queue name '{name}' contains reserved prefix 'amq.*'")
        if authorize is not None:
            authorize(name)
        existing = self.queues.get(name)
        if existing is not None:
            equivalence.check_queue(existing, durable=durable, exclusive=exclusive, auto_delete=auto_delete,
                                    arguments=arguments, owner=owner, compared=STREAM_EQUIVALENCE_ARGS)
            return existing, existing.message_count, existing.consumer_count
        self._check_queue_limit(name)  # before the properties and arguments, as RabbitMQ 3.10
        check_dead_letter_exchange_type(name, self.name, arguments)  # the channel's, before the stream's (3.10)
        settings = parse_stream_arguments(name, self.name, arguments)  # before the properties, as RabbitMQ 3.10
        for flag, bad in (("auto-delete", auto_delete), ("exclusive-owner", exclusive), ("non-durable", not durable)):
            if bad:  # RabbitMQ 3.10's order, as for quorum queues (checked against it)
                raise PreconditionFailed(f"invalid property '{flag}' for queue '{name}' in vhost '{self.name}'")
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
            batch_messages=self.codec.batch_messages, delete_store=lambda: streams.delete_stream(vhost_name, name),
        )
        self.queues[name] = queue
        self.lifecycle.queues_created += 1
        self.policies.attach(queue)
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

    def remove_queue(self, queue: QueueType) -> int:
        """Delete without checks (exclusive owner gone, auto-delete); returns ready messages dropped."""
        if self.queues.get(queue.name) is not queue:
            return 0
        durable, stream = queue.durable and not queue.exclusive, isinstance(queue, StreamQueue)
        # The durable record goes first: a delete the disk refuses (OSError) leaves the queue as it was.
        self.hooks.queue_removing(self.name, queue.name, durable=durable, stream=stream)
        del self.queues[queue.name]
        queue.deleted = True
        self.lifecycle.queues_deleted += 1
        self.retired_stats.add(queue.stats)
        self._drop_bindings_to(queue)
        for consumer in queue.detach_consumers():
            consumer.channel.consumer_cancelled_by_broker(consumer)
        dropped = queue.close()
        self.hooks.queue_removed(self.name, queue.name, durable=durable, stream=stream)
        return dropped

    def remove_all(self) -> None:
        """Delete every queue and exchange, the vhost being deleted: the hooks remove the durable ones and
        their messages from storage as queue.delete and exchange.delete would, consumers are cancelled."""
        for queue in list(self.queues.values()):
            self.remove_queue(queue)
        for exchange in list(self.exchanges.values()):
            if exchange.name and not exchange.name.startswith("amq."):
                self._remove_exchange(exchange)
            else:
                exchange.close()  # the default and system exchanges are never stored

    def queue_expired(self, queue: QueueType) -> None:
        """x-expires: the queue was unused for its whole expiry period."""
        self.remove_queue(queue)

    def consumer_removed(self, queue: QueueType) -> None:
        """A consumer left `queue`: auto-delete it if that was the last one."""
        if queue.unused_for_auto_delete:
            self.remove_queue(queue)

    def _check_queue_limit(self, name: str) -> None:
        """RabbitMQ's refusal of a new queue beyond the vhost's max-queues (redeclarations are not counted); it
        comes before the new queue's arguments are checked, as in RabbitMQ 3.10."""
        limit = self.max_queues
        if limit is not None and len(self.queues) >= limit:
            raise PreconditionFailed(f"cannot declare queue '{name}': queue limit in vhost '{self.name}' ({limit}) "
                                     "is reached")

    def connection_limit_reached(self) -> int | None:
        """The vhost's max-connections when one more connection would exceed it, else None."""
        limit = self.max_connections
        return limit if limit is not None and len(self.connections) >= limit else None

    def connection_opened(self, owner: Hashable) -> None:
        """Count a connection that opened to this vhost (until `connection_closed`)."""
        self.connections.add(owner)

    def connection_closed(self, owner: Hashable) -> None:
        """Delete the exclusive queues of a closed connection (close its channels first)."""
        self.connections.discard(owner)
        for queue in [q for q in self.queues.values() if q.exclusive and q.owner == owner]:
            self.remove_queue(queue)
