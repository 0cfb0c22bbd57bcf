"""Message counters per queue, exchange and vhost, as the management API's `message_stats` shows them.

Each queue and exchange carries one `MessageStats`; the paths a message already takes add one to a slot
(routing.py: an exchange's publish_in/publish_out, a queue's publish; channel.py: a queue's deliver, get,
ack, redeliver), so counting costs an attribute increment and allocates nothing. Totals for a vhost or the
node are summed when asked for; a vhost keeps the counts of its deleted queues and exchanges in its own
`MessageStats` (`retire`), so totals never go backwards when objects go. Rates are not kept here: the
HTTP side samples these counters on its own timer (http/rates.py).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Iterable

# RabbitMQ's names. A queue counts publish (messages it took in), deliver and deliver_no_ack (to consumers
# acking or not), get, get_no_ack and get_empty (basic.get), ack and redeliver; an exchange counts
# publish_in (published to it) and publish_out (routed on from it).
FIELDS = ("publish", "publish_in", "publish_out", "deliver", "deliver_no_ack", "get", "get_no_ack",
          "get_empty", "ack", "redeliver")


class MessageStats:
    """Plain integer counters, one slot per field."""

    __slots__ = FIELDS

    def __init__(self) -> None:
        self.publish = self.publish_in = self.publish_out = 0
        self.deliver = self.deliver_no_ack = self.get = self.get_no_ack = self.get_empty = 0
        self.ack = self.redeliver = 0

    def add(self, other: "MessageStats") -> None:
        """Add `other`'s counts to these."""
        for field in FIELDS:
            setattr(self, field, getattr(self, field) + getattr(other, field))

    def values(self) -> tuple[int, ...]:
        """The counts in FIELDS order (a sample for rates)."""
        return _counts(self)

    @classmethod
    def of(cls, values: Iterable[int]) -> "MessageStats":
        """A `MessageStats` holding `values` (in FIELDS order)."""
        stats = cls()
        for field, value in zip(FIELDS, values):
            setattr(stats, field, value)
        return stats


_counts = attrgetter(*FIELDS)  # one C call for every count of one object
ZERO = (0,) * len(FIELDS)


def sum_counts(rows: Iterable[tuple[int, ...]]) -> tuple[int, ...]:
    """The field-by-field sum of count tuples, all of one length (ZERO for none)."""
    return tuple(map(sum, zip(*rows))) or ZERO


def total(stats: Iterable[MessageStats]) -> MessageStats:
    """One `MessageStats` with the sum of `stats`."""
    return MessageStats.of(sum_counts(map(_counts, stats)))


def count_get(stats: MessageStats, entry: object, no_ack: bool) -> None:
    """One basic.get: `entry` the message it took (None: the queue was empty)."""
    if entry is None:
        stats.get_empty += 1
    elif no_ack:
        stats.get_no_ack += 1
    else:
        stats.get += 1
    if entry is not None and getattr(entry, "redelivered", False):
        stats.redeliver += 1
