"""In-memory twins of the stores in api.py, held to the same contract tests as the file stores.

Used by broker tests and by brokers run without a data directory. Nothing here is durable; a
commit only numbers itself, so code that waits for commits behaves the same against both.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

from leveret.store.api import (
    BindingDef,
    Definitions,
    ExchangeDef,
    PermissionDef,
    PolicyDef,
    QueueDef,
    StoredMessage,
    UserDef,
    VHostDef,
)


class MemoryCommit:
    """A commit with nothing to fsync."""

    __slots__ = ("seq",)

    def __init__(self, seq: int) -> None:
        self.seq = seq

    def run(self) -> int:
        return self.seq


class MemoryQueueStore:
    """One queue's unacked messages in a dict (insertion order is offset order)."""

    def __init__(self, on_dirty=None) -> None:
        self._messages: dict[int, StoredMessage] = {}
        self._next = 0
        self._on_dirty = on_dirty
        self.deleted = False

    @property
    def next_offset(self) -> int:
        return self._next

    def __len__(self) -> int:
        return len(self._messages)

    def append(
        self, exchange: str, routing_key: str, props_raw: bytes, body: bytes, timestamp: int, flags: int = 0
    ) -> int:
        if len(exchange.encode()) > 255 or len(routing_key.encode()) > 255:
            raise ValueError("exchange and routing key are AMQP shortstrs (at most 255 bytes)")
        offset = self._next
        self._next += 1
        self._messages[offset] = StoredMessage(offset, timestamp, flags, exchange, routing_key, bytes(props_raw), bytes(body))
        if self._on_dirty is not None:
            self._on_dirty()
        return offset

    def ack(self, offset: int) -> bool:
        if self._messages.pop(offset, None) is None:
            return False
        if self._on_dirty is not None:
            self._on_dirty()
        return True

    def read(self, offset: int) -> StoredMessage:
        return self._messages[offset]

    def recover(self) -> Iterator[tuple[int, StoredMessage]]:
        for offset, message in list(self._messages.items()):
            if offset in self._messages:
                yield offset, message

    def delete(self) -> None:
        self._messages.clear()
        self.deleted = True

    def close(self) -> None:
        """Nothing to release."""


class MemoryMessageStore:
    """Queues by (vhost, name) in a dict; commits are numbered like the file store's."""

    def __init__(self) -> None:
        self._queues: dict[tuple[str, str], MemoryQueueStore] = {}
        self._seq = 0
        self._dirty = False

    def _mark_dirty(self) -> None:
        self._dirty = True

    def open_queue(self, vhost: str, name: str) -> MemoryQueueStore:
        store = self._queues.get((vhost, name))
        if store is None:
            store = self._queues[(vhost, name)] = MemoryQueueStore(self._mark_dirty)
        return store

    def delete_queue(self, vhost: str, name: str) -> None:
        store = self._queues.pop((vhost, name), None)
        if store is not None:
            store.delete()

    def queues(self) -> list[tuple[str, str]]:
        return sorted(self._queues)

    @property
    def commit_pending(self) -> bool:
        return self._dirty

    def begin_commit(self) -> MemoryCommit:
        self._seq += 1
        self._dirty = False
        return MemoryCommit(self._seq)

    def sync(self) -> int:
        return self.begin_commit().run()

    def close(self) -> None:
        """Nothing to release; the queues stay readable (a memory store has no restart)."""


class MemoryDefinitionStore:
    """Definitions held in a Definitions value; load() returns a deep copy."""

    def __init__(self) -> None:
        self._defs = Definitions()

    def load(self) -> Definitions:
        return copy.deepcopy(self._defs)

    def put_vhost(self, vhost: VHostDef) -> None:
        self._defs.apply_put(vhost)

    def delete_vhost(self, name: str) -> None:
        self._defs.apply_delete("vhost", (name,))

    def put_user(self, user: UserDef) -> None:
        self._defs.apply_put(user)

    def delete_user(self, name: str) -> None:
        self._defs.apply_delete("user", (name,))

    def put_permission(self, permission: PermissionDef) -> None:
        self._defs.apply_put(permission)

    def delete_permission(self, user: str, vhost: str) -> None:
        self._defs.apply_delete("permission", (user, vhost))

    def put_exchange(self, exchange: ExchangeDef) -> None:
        self._defs.apply_put(exchange)

    def delete_exchange(self, vhost: str, name: str) -> None:
        self._defs.apply_delete("exchange", (vhost, name))

    def put_queue(self, queue: QueueDef) -> None:
        self._defs.apply_put(queue)

    def delete_queue(self, vhost: str, name: str) -> None:
        self._defs.apply_delete("queue", (vhost, name))

    def put_binding(self, binding: BindingDef) -> None:
        self._defs.apply_put(binding)

    def delete_binding(self, binding: BindingDef) -> None:
        self._defs.apply_delete("binding", binding.key())

    def put_policy(self, policy: PolicyDef) -> None:
        self._defs.apply_put(policy)

    def delete_policy(self, vhost: str, name: str) -> None:
        self._defs.apply_delete("policy", (vhost, name))

    def close(self) -> None:
        """Nothing to release."""
