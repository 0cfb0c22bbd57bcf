"""`QueueEntry`: one message inside one queue, as the ready lists, channels and stores see it.

Its own module because queues, ready lists, paging, streams, channels and the durable layer all hold
entries, and none of them needs the queue to do so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leveret.broker.message import Message


class QueueEntry:
    """A message inside one queue: its sequence number, delivery history and deadlines."""

    __slots__ = ("seq", "message", "redelivered", "expires_at", "priority", "returns", "size", "offset")

    def __init__(self, seq: int, message: Message, redelivered: bool = False, priority: int = 0) -> None:
        self.seq = seq
        self.message = message
        self.redelivered = redelivered
        self.expires_at: float | None = None  # monotonic seconds
        self.priority = priority
        self.returns = 0  # times requeued: x-delivery-count, delivery limit, requeue-delay attempt
        self.size = len(message.body)
        self.offset = -1  # position in the queue's durable store; -1 when not stored

    def __repr__(self) -> str:
        return f"<QueueEntry {self.seq}{' redelivered' if self.redelivered else ''}>"


def by_seq(entry: QueueEntry) -> int:
    """Sort key: entries in queue order."""
    return entry.seq
