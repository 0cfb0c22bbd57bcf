"""Durable storage composed with the broker: the one answer to "how does a message reach disk and come back".

`DurableBroker` (node.py) builds a `Broker` with a definition store and a message store (store/) behind the
small Protocols the model sees (broker/storage.py), and runs recovery. The pieces:

- hooks.py    `StoreHooks`: what the vhost calls where durable things change (RabbitMQ's rules of what persists);
- ready.py    `PagedReadyFactory`: the ready lists that page a queue's backlog to its store or a spill;
- messages.py stored records and spilled batches back to `Message`s (the one conversion);
- recovery.py rebuilding vhosts, exchanges, queues, bindings and messages at startup.

This package may import broker/, store/, the clock and config (tests/test_architecture.py); broker/ never
imports it.
"""

from leveret.durable.node import DurableBroker
from leveret.durable.recovery import RecoveryResult

__all__ = ["DurableBroker", "RecoveryResult"]
