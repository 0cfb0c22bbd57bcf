"""A consumer: one basic.consume on one channel against one queue.

The queue keeps consumers that may receive right now in per-priority round-robin deques; a consumer
that is found without credit is taken out (`blocked`) and put back by `Queue.unblock` when its
channel frees credit, so a dispatch never scans consumers that cannot take a message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leveret.broker.channel import Channel
    from leveret.broker.queue_type import QueueType


# The credit of a consumer without a prefetch limit (a dispatch step caps its run anyway).
UNLIMITED = 1 << 30


class Consumer:
    """State of one subscription: its credit (prefetch) and its place in the queue's rotation."""

    __slots__ = (
        "tag",
        "channel",
        "queue",
        "no_ack",
        "exclusive",
        "priority",
        "arguments",
        "prefetch",
        "unacked",
        "blocked",
    )

    def __init__(
        self,
        tag: str,
        channel: "Channel",
        queue: "QueueType",
        *,
        no_ack: bool = False,
        exclusive: bool = False,
        priority: int = 0,
        arguments: dict[str, Any] | None = None,
        prefetch: int = 0,
    ) -> None:
        self.tag = tag
        self.channel = channel
        self.queue = queue
        self.no_ack = no_ack
        self.exclusive = exclusive
        self.priority = priority
        self.arguments = arguments or {}
        # per-consumer limit fixed at consume time (basic.qos global=false applies to later consumers)
        self.prefetch = prefetch
        self.unacked = 0
        # True while not in the queue's rotation (not yet started, or found without credit)
        self.blocked = True

    def has_credit(self) -> bool:
        """Whether one more delivery is allowed now (per-consumer and channel-wide limits)."""
        if self.no_ack:
            # Not counted, but not let through a full channel-wide limit either: RabbitMQ 3.10's limiter
            # answers can_send false to every consumer of the channel once it is reached (found by the fuzzer).
            return self.channel.has_credit()
        if self.prefetch and self.unacked >= self.prefetch:
            return False
        return self.channel.has_credit()

    def credit(self) -> int:
        """How many more deliveries are allowed now; UNLIMITED when no limit applies."""
        channel = self.channel
        if not channel.accepts_deliveries():
            return 0
        if self.no_ack:
            return UNLIMITED if channel.has_credit() else 0
        credit = self.prefetch - self.unacked if self.prefetch else UNLIMITED
        return min(credit, channel.credit())

    def __repr__(self) -> str:
        return f"<Consumer {self.tag!r} on {self.queue.name!r}>"
