"""What one publish did: whether it was routed, which queues took it, how many refused it."""

from __future__ import annotations


class RouteResult:
    """The outcome of one publish.

    `routed`: some queue matched (or a delayed exchange took the message), so no basic.return.
    `queues`: the queues that accepted it (`Queue`s; not imported here, so the channel can
    return this without importing the queue module). `rejected`: how many matched queues refused it
    (x-overflow reject-publish / reject-publish-dlx at their limit). RabbitMQ 3.10 nacks a publisher
    confirm when ANY matched queue rejected, even if others accepted (checked against a live
    broker), so the server sends basic.nack exactly when `rejected` is non-zero. `delayed`: held by
    an x-delayed-message exchange (mandatory is not supported, as the plugin; a persistent message held
    by a durable delayed exchange is stored, so its confirm waits for the fsync like a queue's).
    """

    __slots__ = ("routed", "queues", "rejected", "delayed")

    def __init__(self, routed: bool, queues: list, rejected: int = 0, delayed: bool = False) -> None:
        self.routed = routed
        self.queues = queues
        self.rejected = rejected
        self.delayed = delayed

    @property
    def nack(self) -> bool:
        """Whether a publisher confirm for this publish must be a basic.nack."""
        return self.rejected > 0

    def __repr__(self) -> str:
        extra = f", rejected={self.rejected}" if self.rejected else ""
        return f"RouteResult(routed={self.routed}, queues={[q.name for q in self.queues]}{extra})"
