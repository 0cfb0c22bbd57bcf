"""Where a move task's copy of a message goes, and the copy itself (server/move_tasks.py moves them).

A copy goes, as its task's `Destination` says:

- by default, straight into the queue the message last died in (x-death's first table): the queue, not the
  exchange it was published to, whose other bindings already had their copy the first time;
- or straight into a named queue;
- or through a named exchange, with a named routing key or else each message's own (an ordinary publish:
  CC and BCC headers, alternate exchanges and exchange-to-exchange bindings apply).

A source message flagged redelivered gives a copy flagged redelivered when it goes straight into a queue.
With `replay_count` each copy carries x-replay-count, one more than its source's. A copy that cannot be
placed (its original queue is gone or unknown, the destination refused it at its length limit, the exchange
is gone or routed it nowhere) raises `Unplaced` with the reason, and nothing of it was kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leveret.broker import xdeath
from leveret.broker.entry import QueueEntry
from leveret.broker.errors import BrokerError
from leveret.broker.message import Message
from leveret.broker.queue import Queue
from leveret.broker.vhost import VHost


@dataclass(frozen=True)
class Destination:
    """Where copies go: `queue`, or `exchange` (with `routing_key`, None: each message's own), or neither:
    each message's original queue."""

    queue: str | None = None
    exchange: str | None = None
    routing_key: str | None = None

    def describe(self) -> dict[str, Any]:
        if self.exchange is not None:
            return {"type": "exchange", "exchange": self.exchange, "routing_key": self.routing_key}
        if self.queue is not None:
            return {"type": "queue", "queue": self.queue}
        return {"type": "original-queue"}


class Unplaced(Exception):
    """A copy could not be placed; the task fails with this reason."""


def copy_of(entry: QueueEntry, exchange: str, routing_key: str, replay_count: bool) -> Message:
    """The copy of `entry`'s message, published as `exchange` and `routing_key` say."""
    message = entry.message
    if replay_count:
        headers = dict(message.headers or {})
        headers[xdeath.REPLAY_COUNT] = xdeath.replay_count(message) + 1
        return Message(exchange, routing_key, message.properties.replace(headers=headers), message.body)
    return Message(exchange, routing_key, message.properties, message.body)


def place_copy(vhost: VHost, destination: Destination, entry: QueueEntry, replay_count: bool) -> None:
    """Put a copy of `entry`'s message where `destination` says, or raise `Unplaced`."""
    if destination.exchange is not None:
        routing_key = destination.routing_key
        if routing_key is None:
            routing_key = entry.message.routing_key
        try:
            result = vhost.publish(destination.exchange, routing_key,
                                   copy_of(entry, destination.exchange, routing_key, replay_count))
        except BrokerError as exc:
            raise Unplaced(exc.text) from None
        if not result.routed:
            raise Unplaced(f"a message routed to no queue from exchange '{destination.exchange}' "
                           f"with routing key '{routing_key}'")
        if result.rejected:
            raise Unplaced("a queue refused a message at its length limit (x-overflow reject-publish)")
        return
    name = destination.queue if destination.queue is not None else xdeath.origin_queue(entry.message)
    if name is None:
        raise Unplaced("a message has no x-death header: it was not dead-lettered, so it has no original queue")
    queue = vhost.queues.get(name)
    if queue is None:
        raise Unplaced(f"no queue '{name}' in vhost '{vhost.name}'")
    copy = copy_of(entry, "", name, replay_count)
    placed = queue.enqueue(copy, entry.redelivered) if isinstance(queue, Queue) else queue.enqueue(copy)
    if placed is None:
        raise Unplaced(f"{queue.describe()} refused a message at its length limit (x-overflow reject-publish)")
