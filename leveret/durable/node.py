"""`DurableBroker`: a `Broker` built with durable storage, and its recovery.

The one place that composes the model with the store: it makes the hooks (hooks.py) and the paged
ready-list factory (ready.py) over a definition store and a message store, builds the broker with them
and the message store's streams, and rebuilds the durable model at startup (recovery.py). The server
builds one (server/app.py); tests build one over the stores' memory twins.
"""

from __future__ import annotations

from leveret.broker.message import PropertiesCodec
from leveret.broker.paging import MemoryBudget
from leveret.broker.vhost import Broker
from leveret.clock import Clock
from leveret.durable.hooks import StoreHooks
from leveret.durable.ready import PagedReadyFactory
from leveret.durable.recovery import Delivered, RecoverableStore, RecoveryResult, recover
from leveret.store.api import DefinitionStore


class DurableBroker:
    """A broker whose durable exchanges, queues, bindings and persistent messages live in the given stores."""

    def __init__(
        self,
        definitions: DefinitionStore,
        messages: RecoverableStore,
        codec: PropertiesCodec,
        *,
        clock: Clock | None = None,
        consumer_timeout: int | None = None,
        **paging: int,
    ) -> None:
        """`paging` sizes the paged ready lists (window_count, window_bytes, scratch_window_count, spill_batch,
        memory_budget: see `PagedReadyFactory` and broker/paging.py)."""
        self.definitions = definitions
        self.messages = messages
        self.ready = PagedReadyFactory(messages, codec.from_raw, **paging)
        self.hooks = StoreHooks(definitions, messages, codec, self.ready)
        self.broker = Broker(clock, hooks=self.hooks, streams=messages, codec=codec,
                             consumer_timeout=consumer_timeout)

    @property
    def memory_budget(self) -> MemoryBudget:
        """Shared by every paged queue (the memory alarm and /api/overview read it)."""
        return self.ready.memory_budget

    def recover(self, delivered: Delivered = None) -> RecoveryResult:
        """Rebuild the durable model from the stores (see recovery.py); call once, before any client."""
        return recover(self.broker, self.hooks, self.messages, delivered)
