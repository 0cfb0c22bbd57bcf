"""Node-wide counts of things opened and closed, and of publishes confirmed or unroutable, for
rabbitmq_prometheus's counters (http/metrics_global.py): connections and channels opened and closed,
queues declared, created and deleted, publishes received in confirm mode and confirmed, unroutable
publishes returned or dropped.

One `Lifecycle` per Broker, shared by its vhosts, so deleting a vhost keeps its counts. Each count is
bumped where its event happens (a queue's creation, a channel's close, an unroutable publish), never on
the path every message takes: confirms are counted from each channel's sequence numbers when it closes,
and the open channels' are added at scrape time.
"""

from __future__ import annotations

from typing import Any


class Lifecycle:
    """Plain integer counters."""

    __slots__ = ("connections_opened", "connections_closed", "channels_opened", "channels_closed",
                 "queues_declared", "queues_created", "queues_deleted", "received_confirm", "confirmed",
                 "unroutable_returned", "unroutable_dropped")

    def __init__(self) -> None:
        self.connections_opened = self.connections_closed = 0
        self.channels_opened = self.channels_closed = 0
        self.queues_declared = self.queues_created = self.queues_deleted = 0
        self.received_confirm = self.confirmed = 0
        self.unroutable_returned = self.unroutable_dropped = 0

    def channel_closed(self, target: Any) -> None:
        """A channel closed: count it, and its confirm-mode publishes (`target`: its protocol side, which
        numbers them: `publish_seq`, and `confirmed_upto` the last one acked or nacked)."""
        self.channels_closed += 1
        self.received_confirm += getattr(target, "publish_seq", 0)
        self.confirmed += getattr(target, "confirmed_upto", 0)

    def unroutable(self, mandatory: bool) -> None:
        """A publish no queue took: returned to its publisher (`mandatory`) or dropped."""
        if mandatory:
            self.unroutable_returned += 1
        else:
            self.unroutable_dropped += 1
