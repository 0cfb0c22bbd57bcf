"""`DurableBroker`: a `Broker` built with durable storage, and its recovery.

The one place that composes the model with the store: it makes the hooks (hooks.py) and the paged
ready-list factory (ready.py) over a definition store and a message store, builds the broker with them
and the message store's streams, and rebuilds the durable model at startup (recovery.py). The server opens
one over a data directory (`DurableBroker.open`: the file stores, and the clean-shutdown marker read at
start and written at `close`); tests build one over the stores' memory twins.
"""

from __future__ import annotations

import os

from leveret.access import AccessRegistry
from leveret.broker.message import PropertiesCodec
from leveret.broker.paging import MemoryBudget
from leveret.broker.vhost import Broker
from leveret.clock import Clock
from leveret.durable.access import delete_vhost, load_access, put_vhost, seed_once, set_vhost_limit
from leveret.durable.clean_shutdown import take_marker, write_marker
from leveret.durable.hooks import StoreHooks
from leveret.durable.ready import PagedReadyFactory
from leveret.durable.recovery import Delivered, RecoverableStore, RecoveryResult, recover
from leveret.store.api import DefinitionStore
from leveret.store.definitions import FileDefinitionStore
from leveret.store.filestore import FileMessageStore
from leveret.store.fsio import REAL, FileIO


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
        loopback_users: tuple[str, ...] = ("guest",),
        **paging: int,
    ) -> None:
        """`paging` sizes the paged ready lists (window_count, window_bytes, scratch_window_count, spill_batch,
        memory_budget: see `PagedReadyFactory` and broker/paging.py). `loopback_users` may only connect from
        loopback (RabbitMQ's setting of that name)."""
        self.definitions = definitions
        self.messages = messages
        # Set by `open`: where the clean-shutdown marker lives, and what writes it.
        self.data_dir: str | None = None
        self.file_io: FileIO = REAL
        self.ready = PagedReadyFactory(messages, codec.from_raw, **paging)
        self.hooks = StoreHooks(definitions, messages, codec, self.ready)
        self.broker = Broker(clock, hooks=self.hooks, streams=messages, codec=codec,
                             consumer_timeout=consumer_timeout, parameter_hooks=self.hooks)
        # Users, vhosts and permissions (leveret/access/), written through to the same definition store.
        self.access = AccessRegistry(definitions, loopback_users=loopback_users)

    @property
    def memory_budget(self) -> MemoryBudget:
        """Shared by every paged queue (the memory alarm and /api/overview read it)."""
        return self.ready.memory_budget

    def recover(self, delivered: Delivered = None) -> RecoveryResult:
        """Rebuild the durable model from the stores (see recovery.py) and load the access registry; call
        once, before any client."""
        result = recover(self.broker, self.hooks, self.messages, delivered)
        load_access(self.access, self.broker)
        return result

    # -- over a data directory ------------------------------------------------------------------
    @classmethod
    def open(cls, data_dir: str, codec: PropertiesCodec, *, file_io: FileIO = REAL, clock: Clock | None = None,
             consumer_timeout: int | None = None, loopback_users: tuple[str, ...] = ("guest",),
             **paging: int) -> "DurableBroker":
        """The file stores under `data_dir` (messages/, definitions/), a broker over them, not yet recovered.
        `file_io` does every file write (tests pass one that fails on demand; store/fsio.py)."""
        node = cls(
            FileDefinitionStore(os.path.join(data_dir, "definitions"), file_io=file_io),
            FileMessageStore(os.path.join(data_dir, "messages"), file_io=file_io),
            codec, clock=clock, consumer_timeout=consumer_timeout, loopback_users=loopback_users, **paging,
        )
        node.data_dir = data_dir
        node.file_io = file_io
        return node

    def recover_at_start(self) -> RecoveryResult:
        """`recover`, told by the clean-shutdown marker (taken) which messages had been delivered."""
        assert self.data_dir is not None, "only a DurableBroker.open() has a marker"
        return self.recover(take_marker(self.data_dir))

    def seed_access(self, *, user: str, password: str, vhost: str) -> bool:
        """The default user and vhost, on the first start of this data directory only (durable/access.py)."""
        assert self.data_dir is not None, "only a DurableBroker.open() has a data directory"
        return seed_once(self.access, self.broker, self.data_dir, self.file_io, user=user, password=password,
                         vhost=vhost)

    def put_vhost(self, name: str, description: str = "", tags: tuple[str, ...] = ()) -> bool:
        """Create or update a vhost, in the access registry and the model; True when it is new."""
        return put_vhost(self.access, self.broker, name, description, tags)

    def set_vhost_limit(self, name: str, limit: str, value: int | None) -> None:
        """Set (None: clear) a vhost's max-connections or max-queues, in the registry and the model."""
        set_vhost_limit(self.access, self.broker, name, limit, value)

    def delete_vhost(self, name: str) -> bool:
        """Delete a vhost with its permissions, queues, exchanges and messages; False when it does not exist."""
        return delete_vhost(self.access, self.broker, name)

    def close(self) -> None:
        """A clean stop, after the last commit: write the clean-shutdown marker, close both stores."""
        if self.data_dir is not None:
            write_marker(self.data_dir, self.broker, self.file_io)
        self.messages.close()
        self.definitions.close()
