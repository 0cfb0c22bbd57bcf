"""What the model needs from durable storage: small Protocols handed to it at construction.

The broker never opens, finds or wires storage itself. leveret/durable/ implements these over the store
(store/api.py) and builds the broker with them; a broker built without them (`Broker(clock)`, as the broker
unit tests do) gets `NO_HOOKS` and keeps everything in memory.

- `DurabilityHooks`: called by the vhost where durable things change. Declaring a queue or an exchange asks
  first (`queue_added`, `exchange_added`) and gets what the new object is built with: a queue's
  `QueueStorage` (its message store and ready-list factory), a delayed exchange's `HeldMessages`. An
  `OSError` from a hook means "not on disk": the vhost leaves the model unchanged and re-raises.
- `ReadyFactory`: makes one priority level's ready list for a queue (a paged one for queues that page
  their backlog out of memory, see paging.py).
- `StreamStores` (store/api.py): where stream queues keep their logs.
- `ParameterHooks`: where runtime parameters (parameters.py) and policies (policies.py) are written;
  `StoreHooks` is both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Protocol

from leveret.store.api import PolicyDef, QueueStore, StoredMessage

if TYPE_CHECKING:
    from leveret.broker.exchanges.base import Exchange
    from leveret.broker.message import Message
    from leveret.broker.ready import ReadyList


class ReadyFactory(Protocol):
    def __call__(self, queue: Any, priority: int) -> "ReadyList":
        """The ready list of `queue`'s priority level `priority` (0 for a queue without priorities); the
        queue's `store` is set already."""


class QueueStorage(NamedTuple):
    """What a new queue is built with: where its persistent messages go, how its ready lists are made, and
    how a stored message comes back (for messages a failed commit makes unacked again)."""

    store: QueueStore | None  # None: no durable copies (transient queues, in-memory brokers)
    ready: ReadyFactory | None  # None: plain in-memory ready lists
    revive: Callable[[StoredMessage], "Message"] | None = None


IN_MEMORY = QueueStorage(None, None)


class HeldMessages(NamedTuple):
    """A durable delayed-message exchange's store of held persistent messages, and how one comes back."""

    store: QueueStore
    revive: Callable[[StoredMessage], "Message"]


class DurabilityHooks(Protocol):
    """The vhost's calls into durable storage (RabbitMQ's rules of what persists live behind them)."""

    def exchange_added(self, vhost: str, name: str, type_name: str, *, durable: bool, auto_delete: bool,
                       internal: bool, arguments: dict[str, Any]) -> HeldMessages | None:
        """An exchange is about to be created: record it; a durable delayed exchange gets its store."""

    def exchange_removing(self, vhost: str, exchange: "Exchange") -> None:
        """An exchange is about to be deleted: forget its record (OSError, a full disk: it stays as it was)."""

    def exchange_removed(self, vhost: str, exchange: "Exchange") -> None:
        """An exchange was deleted (and closed): drop what it kept (a delayed exchange's held messages)."""

    def queue_added(self, vhost: str, name: str, *, durable: bool, auto_delete: bool, arguments: dict[str, Any],
                    stream: bool) -> QueueStorage:
        """A queue is about to be created (`durable` already false for exclusive ones): record it, and say
        what it is built with (a stream keeps its own log and ignores the answer)."""

    def queue_removing(self, vhost: str, name: str, *, durable: bool, stream: bool) -> None:
        """A queue is about to be deleted: forget its record (OSError, a full disk: it stays as it was)."""

    def queue_removed(self, vhost: str, name: str, *, durable: bool, stream: bool) -> None:
        """A queue was deleted (and closed): drop its messages. A crash before this leaves a store that no
        record names, which recovery deletes."""

    def bound(self, vhost: str, source: "Exchange", destination: Any, routing_key: str,
              arguments: dict[str, Any] | None) -> None:
        """A binding was added."""

    def unbound(self, vhost: str, source: "Exchange", destination: Any, routing_key: str,
                arguments: dict[str, Any] | None) -> None:
        """A binding is about to be removed: forget its record (OSError: it stays as it was)."""


class ParameterHooks(Protocol):
    """Where runtime parameters and policies (operator policies: `OperatorPolicyDef`) are made durable; each
    call returns once the change is on disk (an `OSError`: it is not, and the caller leaves its model
    unchanged)."""

    def parameter_set(self, vhost: str, component: str, name: str, value: Any) -> None: ...
    def parameter_cleared(self, vhost: str, component: str, name: str) -> None: ...
    def global_parameter_set(self, name: str, value: Any) -> None: ...
    def global_parameter_cleared(self, name: str) -> None: ...
    def policy_set(self, policy: PolicyDef) -> None: ...
    def policy_cleared(self, vhost: str, name: str, *, operator: bool) -> None: ...


class NoHooks:
    """The hooks of an in-memory broker: nothing is recorded, queues keep their messages in memory."""

    def exchange_added(self, vhost: str, name: str, type_name: str, *, durable: bool, auto_delete: bool,
                       internal: bool, arguments: dict[str, Any]) -> HeldMessages | None:
        return None

    def exchange_removing(self, vhost: str, exchange: "Exchange") -> None:
        pass

    def exchange_removed(self, vhost: str, exchange: "Exchange") -> None:
        pass

    def queue_added(self, vhost: str, name: str, *, durable: bool, auto_delete: bool, arguments: dict[str, Any],
                    stream: bool) -> QueueStorage:
        return IN_MEMORY

    def queue_removing(self, vhost: str, name: str, *, durable: bool, stream: bool) -> None:
        pass

    def queue_removed(self, vhost: str, name: str, *, durable: bool, stream: bool) -> None:
        pass

    def bound(self, vhost: str, source: "Exchange", destination: Any, routing_key: str,
              arguments: dict[str, Any] | None) -> None:
        pass

    def unbound(self, vhost: str, source: "Exchange", destination: Any, routing_key: str,
                arguments: dict[str, Any] | None) -> None:
        pass

    def parameter_set(self, vhost: str, component: str, name: str, value: Any) -> None:
        pass

    def parameter_cleared(self, vhost: str, component: str, name: str) -> None:
        pass

    def global_parameter_set(self, name: str, value: Any) -> None:
        pass

    def global_parameter_cleared(self, name: str) -> None:
        pass

    def policy_set(self, policy: PolicyDef) -> None:
        pass

    def policy_cleared(self, vhost: str, name: str, *, operator: bool) -> None:
        pass


NO_HOOKS = NoHooks()
