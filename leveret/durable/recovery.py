"""Startup: the durable model rebuilt from the definition store, then each durable queue's messages.

Vhosts, exchanges, queues and bindings come back through the vhost's ordinary declare and bind calls
with the hooks in their `recovering` mode (nothing is written back), then runtime parameters (restored,
not set again); each durable queue's unacknowledged
messages come back in store order (a clean shutdown's index says which were delivered), a durable
delayed exchange's held messages with their due times. Stores no definition names any more are deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from leveret.broker.exchanges.delayed import DelayedMessageExchange
from leveret.broker.paging import PagedReadyList
from leveret.broker.queue import Queue
from leveret.broker.stream import StreamQueue
from leveret.broker.vhost import Broker
from leveret.durable.hooks import DELAYED_STORE_PREFIX, StoreHooks
from leveret.durable.messages import message_from_stored
from leveret.store.api import Definitions, MessageStore, StoredMessage, StreamStores

class RecoverableStore(MessageStore, StreamStores, Protocol):
    """The message store recovery needs: queues' stores and streams' logs (the file store and its twin)."""


# Offsets delivered before a clean shutdown, per (vhost, queue); None: the last stop was a crash.
Delivered = dict[tuple[str, str], set[int]] | None


@dataclass
class RecoveryResult:
    """What `recover` rebuilt."""

    vhosts: int = 0
    exchanges: int = 0
    queues: int = 0
    bindings: int = 0
    messages: int = 0
    delayed_messages: int = 0
    parameters: int = 0
    dropped_queue_stores: list[tuple[str, str]] = field(default_factory=list)


def recover(broker: Broker, hooks: StoreHooks, messages: RecoverableStore, delivered: Delivered) -> RecoveryResult:
    """Rebuild the durable model. `delivered` names, per (vhost, queue), the stored offsets that had been
    delivered before a clean shutdown; None means the last stop was a crash, so every recovered message
    may have been delivered and is flagged redelivered (at-least-once)."""
    hooks.recovering = True
    try:
        result, restored = _rebuild(broker, hooks, messages, delivered)
    finally:
        hooks.recovering = False
    # Only now may messages expire (TTLs that ran out while the broker was down) or queues time out:
    # dead-lettering routes through exchanges and bindings, which must all be back first, or a
    # message would be routed nowhere and dropped.
    for queue in restored:
        queue.restarted()
    return result


def _rebuild(broker: Broker, hooks: StoreHooks, messages: RecoverableStore,
             delivered: Delivered) -> tuple[RecoveryResult, list[Queue]]:
    result = RecoveryResult()
    defs: Definitions = hooks.definitions.load()
    for vhost_def in defs.vhosts.values():
        if vhost_def.name not in broker.vhosts:
            broker.add_vhost(vhost_def.name)
            result.vhosts += 1
    # Before the queues and exchanges, so each is matched as it is declared again.
    for policy in [*defs.policies.values(), *defs.operator_policies.values()]:
        broker.policies.restore(policy)
    for ex in defs.exchanges.values():
        vhost = broker.vhosts.get(ex.vhost) or broker.add_vhost(ex.vhost)
        if ex.name in vhost.exchanges:
            continue
        exchange = vhost.declare_exchange(ex.name, ex.type, durable=True, auto_delete=ex.auto_delete,
                                          internal=ex.internal, arguments=dict(ex.arguments))
        result.exchanges += 1
        if isinstance(exchange, DelayedMessageExchange) and exchange.store is not None:
            for offset, stored in exchange.store.recover():
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
        seen = None if delivered is None else delivered.get((q.vhost, q.name), set())
        result.messages += _restore_messages(queue, seen, hooks)
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
    # Last, so a component already registered finds the whole model when told of its parameters.
    for p in defs.parameters.values():
        broker.parameters.restore(p.vhost, p.component, p.name, p.value)
        result.parameters += 1
    for g in defs.global_parameters.values():
        broker.parameters.restore_global(g.name, g.value)
    wanted = set(defs.queues) | {
        (ex.vhost, DELAYED_STORE_PREFIX + ex.name) for ex in defs.exchanges.values()
        if ex.type == DelayedMessageExchange.type_name
    }
    for key in messages.queues():
        if key not in wanted:
            messages.delete_queue(*key)
            result.dropped_queue_stores.append(key)
    for key in messages.streams():
        if key not in defs.queues:  # a stream whose definition is gone (deleted, or never confirmed)
            messages.delete_stream(*key)
            result.dropped_queue_stores.append(key)
    return result, restored


def _restore_messages(queue: Queue, seen: set[int] | None, hooks: StoreHooks) -> int:
    """Put a durable queue's unacked stored messages back, in store order; returns how many.

    `seen` holds the offsets delivered before a clean shutdown; None (a crash) flags them all. Their
    deadlines are armed by the caller once the whole model is back (see recover)."""
    count = 0
    ready = queue.ready
    store = queue.store
    assert store is not None  # a durable classic queue is built with its store
    from_raw = hooks.codec.from_raw

    def restore(seq: int, stored: StoredMessage, redelivered: bool) -> None:
        message = message_from_stored(stored, from_raw)
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
    window = hooks.ready.window_count
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
            ahead, at = store.read_batch(offset, max(1, min(256, window))), 0
        if at < len(ahead) and ahead[at].offset == offset:
            restore(seq, ahead[at], redelivered)
            at += 1
        else:
            count -= 1  # indexed but unreadable (damaged since recovery checked it): gone
    return count
