"""`QueueType`: what every kind of queue offers the vhost, its channels and the management API.

Two kinds implement it: `Queue` (queue.py: classic and quorum queues, messages that leave when acked) and
`StreamQueue` (stream.py: an append-only log read through per-consumer cursors). Neither extends the other;
the vhost, channels and consumers hold a `QueueType` and never ask which kind it is, except where
RabbitMQ's behaviour differs by kind (declaring, the management API's `type`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Hashable, Iterable, Protocol

if TYPE_CHECKING:
    from leveret.broker.consumer import Consumer
    from leveret.broker.entry import QueueEntry
    from leveret.broker.message import Message
    from leveret.store.api import QueueStore


class QueueType(Protocol):
    """A queue as the rest of the broker sees it."""

    name: str
    vhost_name: str
    durable: bool
    exclusive: bool
    auto_delete: bool
    arguments: dict[str, Any]
    owner: Hashable | None  # the connection of an exclusive queue
    sources: set[Any]  # exchanges with at least one binding to it
    deleted: bool
    had_consumers: bool
    unacked_count: int
    ack_timeout: int | None  # consumer timeout (ms) of its deliveries
    adds_delivery_count: bool  # deliveries go through `message_for_delivery`
    store: "QueueStore | None"  # where persistent messages are kept (None: nowhere, or a stream's own log)

    def describe(self) -> str:
        """"queue 'name' in vhost 'v'", as RabbitMQ's texts name it."""

    @property
    def message_count(self) -> int:
        """Ready messages, as queue.declare-ok reports them."""

    @property
    def consumer_count(self) -> int: ...

    @property
    def consumers(self) -> "list[Consumer]": ...

    @property
    def unused_for_auto_delete(self) -> bool:
        """An auto-delete queue whose last consumer went."""

    def touch(self) -> None:
        """It was used: restart x-expires."""

    def enqueue(self, message: "Message") -> "QueueEntry | None":
        """Take a routed message; None when refused (x-overflow reject-publish)."""

    def fetch(self, no_ack: bool) -> "QueueEntry | None":
        """basic.get."""

    def purge(self) -> int:
        """queue.purge: drop the ready messages; how many."""

    def message_for_delivery(self, entry: "QueueEntry", get: bool = False) -> "Message":
        """The message as sent to a client."""

    def settle(self, entries: "Iterable[QueueEntry]") -> None:
        """Acknowledged."""

    def requeue(self, entries: "Iterable[QueueEntry]", *, delay: bool = False) -> None:
        """Returned unacknowledged (`delay`: by nack/reject, not by a closing channel)."""

    def discard(self, entries: "Iterable[QueueEntry]", reason: str = "rejected") -> None:
        """Rejected without requeue."""

    def add_consumer(self, consumer: "Consumer") -> None:
        """Register a consumer (receiving once `unblock`ed)."""

    def remove_consumer(self, consumer: "Consumer") -> None: ...

    def detach_consumers(self) -> "list[Consumer]":
        """Remove and return every consumer (the queue is being deleted)."""

    def unblock(self, consumer: "Consumer") -> None:
        """The consumer may take messages again (credit freed, or it just started)."""

    def dispatch(self) -> int:
        """Deliver what consumers with credit may take; how many."""

    def close(self) -> int:
        """It is deleted: stop its timers, drop what it holds; ready messages dropped."""
