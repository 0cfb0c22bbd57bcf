"""`StoreHooks`: what the vhost calls where durable things change, written to the definition and message stores.

RabbitMQ's rules, kept here: only durable exchanges and queues persist; exclusive queues never do (they
die with their connection, and the vhost passes them as not durable); a binding persists when both its
source and destination are durable; transient messages (delivery_mode != 2) are never stored (the queue
decides that per message). A durable queue gets its own `QueueStore`; a durable delayed-message exchange
one for its held messages; a stream is its own log (the vhost opens it), so only its definition is here.

While `recovering` the definitions are being read back, so nothing is written to or deleted from them;
stores are still opened, as the rebuilt queues and exchanges need them.
"""

from __future__ import annotations

from typing import Any

from leveret.broker.exchanges import Exchange
from leveret.broker.exchanges.delayed import DelayedMessageExchange
from leveret.broker.message import PropertiesCodec
from leveret.broker.queue import Queue
from leveret.broker.storage import HeldMessages, QueueStorage
from leveret.broker.stream import StreamQueue
from leveret.durable.messages import message_from_stored
from leveret.durable.ready import PagedReadyFactory
from leveret.store.api import (
    BindingDef,
    DefinitionStore,
    ExchangeDef,
    GlobalParameterDef,
    MessageStore,
    OperatorPolicyDef,
    ParameterDef,
    PolicyDef,
    QueueDef,
    StoredMessage,
)

# The store of a durable delayed-message exchange's pending messages. "amq." names are refused to clients,
# so this can never collide with a queue's store.
DELAYED_STORE_PREFIX = "amq.delayed-exchange/"


def _forget(delete: Any, *key: str) -> None:
    """Undo a definition just written when what goes with it failed (best effort: the disk may refuse
    this too; then the definition comes back after a restart, without messages)."""
    try:
        delete(*key)
    except OSError:
        pass


class StoreHooks:
    """The `DurabilityHooks` (broker/storage.py) of a broker over a definition store and a message store."""

    def __init__(self, definitions: DefinitionStore, messages: MessageStore, codec: PropertiesCodec,
                 ready: PagedReadyFactory) -> None:
        self.definitions = definitions
        self.messages = messages
        self.codec = codec
        self.ready = ready
        self.recovering = False

    # -- exchanges ------------------------------------------------------------------------------
    def exchange_added(self, vhost: str, name: str, type_name: str, *, durable: bool, auto_delete: bool,
                       internal: bool, arguments: dict[str, Any]) -> HeldMessages | None:
        if not durable:
            return None
        if not self.recovering:
            self.definitions.put_exchange(ExchangeDef(vhost, name, type_name, True, auto_delete, internal,
                                                      dict(arguments)))
        if type_name != DelayedMessageExchange.type_name:
            return None
        try:
            store = self.messages.open_queue(vhost, DELAYED_STORE_PREFIX + name)
        except OSError:
            if not self.recovering:
                _forget(self.definitions.delete_exchange, vhost, name)
            raise
        return HeldMessages(store, self._revive)

    def _revive(self, stored: StoredMessage):
        return message_from_stored(stored, self.codec.from_raw)

    def exchange_removing(self, vhost: str, exchange: Exchange) -> None:
        if exchange.durable and not self.recovering:
            self.definitions.delete_exchange(vhost, exchange.name)

    def exchange_removed(self, vhost: str, exchange: Exchange) -> None:
        if exchange.durable and not self.recovering and isinstance(exchange, DelayedMessageExchange):
            self.messages.delete_queue(vhost, DELAYED_STORE_PREFIX + exchange.name)

    # -- queues ---------------------------------------------------------------------------------
    def queue_added(self, vhost: str, name: str, *, durable: bool, auto_delete: bool, arguments: dict[str, Any],
                    stream: bool) -> QueueStorage:
        if durable and not self.recovering:
            self.definitions.put_queue(QueueDef(vhost, name, True, auto_delete, dict(arguments)))
        if stream:
            return QueueStorage(None, None)
        if not durable:
            return QueueStorage(None, self.ready)  # its backlog pages to a scratch spill
        try:
            store = self.messages.open_queue(vhost, name)
        except OSError:
            if not self.recovering:
                _forget(self.definitions.delete_queue, vhost, name)
            raise
        return QueueStorage(store, self.ready, self._revive)

    def queue_removing(self, vhost: str, name: str, *, durable: bool, stream: bool) -> None:
        if durable and not self.recovering:
            self.definitions.delete_queue(vhost, name)

    def queue_removed(self, vhost: str, name: str, *, durable: bool, stream: bool) -> None:
        if durable and not self.recovering and not stream:
            self.messages.delete_queue(vhost, name)

    # -- bindings -------------------------------------------------------------------------------
    @staticmethod
    def _binding(vhost: str, source: Exchange, destination: Any, routing_key: str,
                 arguments: dict[str, Any] | None) -> BindingDef | None:
        if not source.durable or source.name == "":
            return None
        if isinstance(destination, (Queue, StreamQueue)):
            if not destination.durable or destination.exclusive:
                return None
            kind = "queue"
        else:
            if not destination.durable:
                return None
            kind = "exchange"
        return BindingDef(vhost, source.name, destination.name, kind, routing_key, dict(arguments or {}))

    def bound(self, vhost: str, source: Exchange, destination: Any, routing_key: str,
              arguments: dict[str, Any] | None) -> None:
        if self.recovering:
            return
        binding = self._binding(vhost, source, destination, routing_key, arguments)
        if binding is not None:
            self.definitions.put_binding(binding)

    def unbound(self, vhost: str, source: Exchange, destination: Any, routing_key: str,
                arguments: dict[str, Any] | None) -> None:
        if self.recovering:
            return
        binding = self._binding(vhost, source, destination, routing_key, arguments)
        if binding is not None:
            self.definitions.delete_binding(binding)

    # -- runtime parameters and policies (broker/parameters.py, policies.py; never called while
    # recovering: those restore them) ---------------------------------------------------------------
    def parameter_set(self, vhost: str, component: str, name: str, value: Any) -> None:
        self.definitions.put_parameter(ParameterDef(vhost, component, name, value))

    def parameter_cleared(self, vhost: str, component: str, name: str) -> None:
        self.definitions.delete_parameter(vhost, component, name)

    def global_parameter_set(self, name: str, value: Any) -> None:
        self.definitions.put_global_parameter(GlobalParameterDef(name, value))

    def global_parameter_cleared(self, name: str) -> None:
        self.definitions.delete_global_parameter(name)

    def policy_set(self, policy: PolicyDef) -> None:
        if isinstance(policy, OperatorPolicyDef):
            self.definitions.put_operator_policy(policy)
        else:
            self.definitions.put_policy(policy)

    def policy_cleared(self, vhost: str, name: str, *, operator: bool) -> None:
        if operator:
            self.definitions.delete_operator_policy(vhost, name)
        else:
            self.definitions.delete_policy(vhost, name)
