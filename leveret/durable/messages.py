"""Records read back from the store, turned into the broker's `Message` again.

Every way a message comes back from disk goes through here: a durable queue's recovery and paging-in, a
durable delayed exchange releasing a held message, and a transient backlog coming back from its spill.
"""

from __future__ import annotations

from typing import Callable

from leveret.broker.entry import QueueEntry
from leveret.broker.message import Message, Properties
from leveret.store.api import SpilledMessage, StoredMessage


def message_from_stored(stored: StoredMessage, from_raw: Callable[[bytes], Properties]) -> Message:
    """The message a store record holds (copies: the record's buffers may be a reused read buffer)."""
    return Message(stored.exchange, stored.routing_key, from_raw(bytes(stored.props_raw)), bytes(stored.body))


def spill_reviver(from_raw: Callable[[bytes], Properties], priority: int
                  ) -> Callable[[int, SpilledMessage, bool], QueueEntry]:
    """Turns one priority level's spilled messages back into entries.

    Only plain entries are spilled (no deadline, no return count: see broker/paging.py); their priority is
    their level's. A batch repeats the same property bytes object for consecutive messages, so the last one
    decoded is reused: messages sharing one properties object is nothing new (a fanout's copies do), since
    properties are never changed in place, only replaced.
    """
    last: list = [None, None]  # the last (raw bytes, properties) revived

    def revive(seq: int, spilled: SpilledMessage, redelivered: bool,
               _entry=QueueEntry, _message=Message) -> QueueEntry:
        exchange, routing_key, props_raw, body = spilled
        if props_raw is last[0]:
            properties = last[1]
        else:
            properties = from_raw(props_raw)
            last[0], last[1] = props_raw, properties
        return _entry(seq, _message(exchange, routing_key, properties, body), redelivered, priority)

    return revive
