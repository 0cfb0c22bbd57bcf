"""What of the model survives a restart, and how it comes back.

The vhost calls a `Persistence` at the few places where durable things change (exchange, queue and
binding added or removed); it writes definitions to a `DefinitionStore` and gives durable queues a
`QueueStore` for their persistent messages. At startup `recover` rebuilds vhosts, durable exchanges,
queues and bindings from the definitions, then each durable queue's unacknowledged messages in store
order. Only `leveret.store.api` is used, so the same code runs on the file store and its memory twin.

RabbitMQ's rules, kept here: only durable exchanges and queues persist; exclusive queues never do (they
die with their connection); a binding persists when both its source and destination are durable;
transient messages (delivery_mode != 2) are never stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from leveret.broker.exchanges.delayed import DelayedMessageExchange
from leveret.broker.message import Message, Properties
from leveret.broker.paging import (
    MEMORY_BUDGET_BYTES, SCRATCH_WINDOW_COUNT, SPILL_BATCH, WINDOW_BYTES, WINDOW_COUNT, MemoryBudget, PagedReadyList,
)
from leveret.broker.queue import QueueEntry
from leveret.broker.ready import PriorityReady, ReadyList
from leveret.broker.stream import StreamQueue
from leveret.store.api import (
    BindingDef, DefinitionStore, ExchangeDef, MessageStore, QueueDef, QueueStore, SpilledMessage, StoredMessage,
)

if TYPE_CHECKING:
    from leveret.broker.exchanges import Exchange
    from leveret.broker.queue import Queue
    from leveret.broker.vhost import Broker, VHost


# The store of a durable delayed-message exchange's pending messages. "amq." names are refused to clients,
# so this can never collide with a queue's store.
DELAYED_STORE_PREFIX = "amq.delayed-exchange/"


@dataclass
class RecoveryResult:
    """What `Persistence.recover` rebuilt."""

    vhosts: int = 0
    exchanges: int = 0
    queues: int = 0
    bindings: int = 0
    messages: int = 0
    delayed_messages: int = 0
    dropped_queue_stores: list[tuple[str, str]] = field(default_factory=list)


def _durable_queue(queue: "Queue") -> bool:
    return queue.durable and not queue.exclusive


class Persistence:
    """Writes durable definitions and opens message stores for durable queues."""

    def __init__(
        self,
        definitions: DefinitionStore,
        messages: MessageStore,
        make_properties: Callable[[bytes], Properties],
        *,
        window_count: int = WINDOW_COUNT,
        window_bytes: int = WINDOW_BYTES,
        scratch_window_count: int = SCRATCH_WINDOW_COUNT,
        spill_batch: int = SPILL_BATCH,
        memory_budget: int = MEMORY_BUDGET_BYTES,
    ) -> None:
        self.definitions = definitions
        self.messages = messages
        self.make_properties = make_properties
        # How much of each durable queue's backlog stays in memory (see paging.py).
        self.window_count = window_count
        self.window_bytes = window_bytes
        self.scratch_window_count = scratch_window_count
        self.spill_batch = spill_batch
        # Shared by every paged queue: transient backlogs together stay under it (see paging.py).
        self.memory_budget = MemoryBudget(memory_budget)

    # -- hooks called by the vhost ------------------------------------------------------------
    def exchange_added(self, vhost: "VHost", exchange: "Exchange") -> None:
        if exchange.durable:
            self.definitions.put_exchange(ExchangeDef(
                vhost.name, exchange.name, exchange.type_name, True, exchange.auto_delete, exchange.internal,
                dict(exchange.arguments),
            ))
            try:
                self._attach_delayed_store(vhost.name, exchange)
            except OSError:
                self._forget_definition(self.definitions.delete_exchange, vhost.name, exchange.name)
                raise

    @staticmethod
    def _forget_definition(delete: Any, *key: str) -> None:
        """Undo a definition just written when what goes with it failed (best effort: the disk may refuse
        this too; then the definition comes back after a restart, without messages)."""
        try:
            delete(*key)
        except OSError:
            pass

    def exchange_removed(self, vhost: "VHost", exchange: "Exchange") -> None:
        if exchange.durable:
            self.definitions.delete_exchange(vhost.name, exchange.name)
            if isinstance(exchange, DelayedMessageExchange):
                exchange.store = None
                self.messages.delete_queue(vhost.name, DELAYED_STORE_PREFIX + exchange.name)

    def _attach_delayed_store(self, vhost_name: str, exchange: "Exchange") -> QueueStore | None:
        """A durable delayed-message exchange keeps its persistent pending messages in a store of its own."""
        if not isinstance(exchange, DelayedMessageExchange):
            return None
        store = self.messages.open_queue(vhost_name, DELAYED_STORE_PREFIX + exchange.name)
        make_properties = self.make_properties
        exchange.store = store
        exchange.make_message = lambda stored: Message(
            stored.exchange, stored.routing_key, make_properties(bytes(stored.props_raw)), bytes(stored.body))
        return store

    def queue_added(self, vhost: "VHost", queue: "Queue") -> None:
        if _durable_queue(queue):
            self.definitions.put_queue(QueueDef(vhost.name, queue.name, True, queue.auto_delete,
                                                dict(queue.arguments)))
            if not isinstance(queue, StreamQueue):  # a stream is its own log (store/stream.py)
                try:
                    store = self.messages.open_queue(vhost.name, queue.name)
                except OSError:
                    self._forget_definition(self.definitions.delete_queue, vhost.name, queue.name)
                    raise
                self._attach_store(queue, store)
        elif not isinstance(queue, StreamQueue):
            self._attach_store(queue, None)  # transient: its backlog pages to a scratch store

    def _attach_store(self, queue: "Queue", store: QueueStore | None) -> None:
        """Give a queue its store (durable queues) and a ready list that pages its backlog out of memory: to
        that store, or for messages without a durable copy to a spill. A queue with priorities pages each
        level on its own."""
        queue.store = store
        if store is not None:
            store.on_lost = queue.forget_stored
        if isinstance(queue.ready, ReadyList) and not queue.ready:
            queue.ready = self._paged_ready(queue, store, 0)
        elif isinstance(queue.ready, PriorityReady) and not queue.ready:
            queue.ready = PriorityReady(
                queue.ready.max_priority, level_factory=lambda priority: self._paged_ready(queue, store, priority))

    def _paged_ready(self, queue: "Queue", store: QueueStore | None, priority: int) -> PagedReadyList:
        """The paged ready list of `queue` (of one of its priority levels)."""
        make_properties = self.make_properties

        def make_entry(seq: int, stored: StoredMessage, redelivered: bool) -> "QueueEntry":
            message = Message(stored.exchange, stored.routing_key, make_properties(bytes(stored.props_raw)),
                              bytes(stored.body))
            return queue.restored_entry(seq, stored.offset, message, redelivered, stored.timestamp)

        last: list = [None, None]  # the last (raw bytes, properties) revived: a batch repeats them

        def revive(seq: int, spilled: SpilledMessage, redelivered: bool,
                   _entry=QueueEntry, _message=Message) -> "QueueEntry":
            # Only plain entries are spilled (no deadline, no return count): see paging.py. Their priority
            # is their level's. Messages sharing one properties object is nothing new (a fanout's copies
            # do): properties are never changed in place, only replaced.
            exchange, routing_key, props_raw, body = spilled
            if props_raw is last[0]:
                properties = last[1]
            else:
                properties = make_properties(props_raw)
                last[0], last[1] = props_raw, properties
            return _entry(seq, _message(exchange, routing_key, properties, body), redelivered, priority)

        return PagedReadyList(store, make_entry, revive=revive, open_spill=self.messages.open_spill,
                              window_count=self.window_count, window_bytes=self.window_bytes,
                              scratch_window_count=self.scratch_window_count, spill_batch=self.spill_batch,
                              budget=self.memory_budget)

    def _restore_messages(self, queue: "Queue", seen: set[int] | None) -> int:
        """Put a durable queue's unacked stored messages back, in store order; returns how many.

        `seen` holds the offsets delivered before a clean shutdown; None (a crash) flags them all. Their
        deadlines are armed by the caller once the whole model is back (see _recover)."""
        count = 0
        ready = queue.ready
        store = queue.store
        make_properties = self.make_properties

        def restore(seq: int, stored: StoredMessage, redelivered: bool) -> None:
            message = Message(stored.exchange, stored.routing_key, make_properties(bytes(stored.props_raw)),
                              bytes(stored.body))
            ready.append(queue.restored_entry(seq, stored.offset, message, redelivered, stored.timestamp))

        if not isinstance(ready, PagedReadyList):
            for offset, stored in store.recover():
                count += 1
                restore(queue.next_seq(), stored, True if seen is None else offset in seen)
            return count
        # Paged: the index (no bodies) is enough for the disk tail; only the in-memory window's
        # messages are read whole, a few hundred at a time.
        ahead: list[StoredMessage] = []
        at = 0
        next_seq, append_stored = queue.next_seq, ready.append_stored  # about 1 us a message: keep it lean
        for offset, size, _timestamp in store.recover_index():
            redelivered = True if seen is None else offset in seen
            seq = next_seq()
            count += 1
            if append_stored(seq, offset, size, redelivered):
                continue
            while at < len(ahead) and ahead[at].offset < offset:
                at += 1
            if at == len(ahead):
                ahead, at = store.read_batch(offset, max(1, min(256, self.window_count))), 0
            if at < len(ahead) and ahead[at].offset == offset:
                restore(seq, ahead[at], redelivered)
                at += 1
            else:
                count -= 1  # indexed but unreadable (damaged since recovery checked it): gone
        return count

    def queue_removed(self, vhost: "VHost", queue: "Queue") -> None:
        if _durable_queue(queue):
            if not isinstance(queue, StreamQueue):
                queue.store = None
                self.messages.delete_queue(vhost.name, queue.name)
            self.definitions.delete_queue(vhost.name, queue.name)

    def _binding(self, vhost: "VHost", source: "Exchange", destination: Any, routing_key: str,
                 arguments: dict[str, Any] | None) -> BindingDef | None:
        from leveret.broker.queue import Queue

        if not source.durable or source.name == "":
            return None
        if isinstance(destination, Queue):
            if not _durable_queue(destination):
                return None
            kind = "queue"
        else:
            if not destination.durable:
                return None
            kind = "exchange"
        return BindingDef(vhost.name, source.name, destination.name, kind, routing_key, dict(arguments or {}))

    def bound(self, vhost: "VHost", source: "Exchange", destination: Any, routing_key: str,
              arguments: dict[str, Any] | None) -> None:
        binding = self._binding(vhost, source, destination, routing_key, arguments)
        if binding is not None:
            self.definitions.put_binding(binding)

    def unbound(self, vhost: "VHost", source: "Exchange", destination: Any, routing_key: str,
                arguments: dict[str, Any] | None) -> None:
        binding = self._binding(vhost, source, destination, routing_key, arguments)
        if binding is not None:
            self.definitions.delete_binding(binding)

    # -- startup ------------------------------------------------------------------------------
    def recover(self, broker: "Broker", *, delivered: dict[tuple[str, str], set[int]] | None = None) -> RecoveryResult:
        """Rebuild the durable model. `delivered` names, per (vhost, queue), the stored offsets that had been
        delivered before a clean shutdown; None means the last stop was a crash, so every recovered message
        may have been delivered and is flagged redelivered (at-least-once)."""
        # Rebuilding must not write the definitions it is reading back: hooks are off until the end.
        broker.persistence = None
        for vhost in broker.vhosts.values():
            vhost.persistence = None
        self._restored: list[Queue] = []
        try:
            result = self._recover(broker, delivered)
        finally:
            broker.persistence = self
            for vhost in broker.vhosts.values():
                vhost.persistence = self
        # Only now may messages expire (TTLs that ran out while the broker was down) or queues time out:
        # dead-lettering routes through exchanges and bindings, which must all be back first, or a
        # message would be routed nowhere and dropped.
        restored, self._restored = self._restored, []
        for queue in restored:
            queue.restarted()
        return result

    def _recover(self, broker: "Broker", delivered: dict[tuple[str, str], set[int]] | None) -> RecoveryResult:
        result = RecoveryResult()
        defs = self.definitions.load()
        for vhost_def in defs.vhosts.values():
            if vhost_def.name not in broker.vhosts:
                broker.add_vhost(vhost_def.name)
                result.vhosts += 1
        for ex in defs.exchanges.values():
            vhost = broker.vhosts.get(ex.vhost) or broker.add_vhost(ex.vhost)
            if ex.name in vhost.exchanges:
                continue
            exchange = vhost.declare_exchange(ex.name, ex.type, durable=True, auto_delete=ex.auto_delete,
                                              internal=ex.internal, arguments=dict(ex.arguments))
            result.exchanges += 1
            store = self._attach_delayed_store(ex.vhost, exchange)
            if store is not None:
                for offset, stored in store.recover():
                    exchange.restore(offset, stored.timestamp)
                    result.delayed_messages += 1
        restored: list[Queue] = []
        for q in defs.queues.values():
            vhost = broker.vhosts.get(q.vhost) or broker.add_vhost(q.vhost)
            queue, _, _ = vhost.declare_queue(q.name, durable=True, auto_delete=q.auto_delete,
                                              arguments=dict(q.arguments))
            result.queues += 1
            if isinstance(queue, StreamQueue):
                continue  # declaring it reopened its log; nothing to restore
            self._attach_store(queue, self.messages.open_queue(q.vhost, q.name))
            seen = None if delivered is None else delivered.get((q.vhost, q.name), set())
            result.messages += self._restore_messages(queue, seen)
            restored.append(queue)
        for b in defs.bindings.values():
            vhost = broker.vhosts.get(b.vhost)
            if vhost is None:
                continue
            try:
                if b.destination_type == "queue":
                    vhost.bind_queue(b.destination, b.source, b.routing_key, dict(b.arguments))
                else:
                    vhost.bind_exchange(b.destination, b.source, b.routing_key, dict(b.arguments))
            except Exception:
                continue  # a binding whose ends are gone is simply not restored
            result.bindings += 1
        self._restored = restored
        wanted = set(defs.queues) | {
            (ex.vhost, DELAYED_STORE_PREFIX + ex.name) for ex in defs.exchanges.values()
            if ex.type == DelayedMessageExchange.type_name
        }
        for key in self.messages.queues():
            if key not in wanted:
                self.messages.delete_queue(*key)
                result.dropped_queue_stores.append(key)
        streams = getattr(self.messages, "streams", None)
        if streams is not None:
            for key in streams():
                if key not in defs.queues:  # a stream whose definition is gone (deleted, or never confirmed)
                    self.messages.delete_stream(*key)
                    result.dropped_queue_stores.append(key)
        return result
