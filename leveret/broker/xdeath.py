"""Reading a dead-lettered message's history back: its `x-death` header decoded into plain values.

deadletter.py writes the header (RabbitMQ 3.10's layout: most recent death first, one table per queue and
reason); this reads it for the management API's dead-letter view and for move tasks, which send a message
back to the queue it last died in. Headers come from clients too, so nothing here trusts their shape: a
table that is not a table, a count that is not a number, a time in any of the codec's forms are read as
far as they make sense and otherwise left out.
"""

from __future__ import annotations

import datetime
from typing import Any, NamedTuple

from leveret.broker.arguments import as_text
from leveret.broker.message import Message

# The header a move task increments on each message it moves (a leveret extension).
REPLAY_COUNT = "x-replay-count"


class Death(NamedTuple):
    """One table of `x-death`: one queue the message died in, for one reason."""

    reason: str | None
    queue: str | None
    exchange: str | None
    routing_keys: list[str]
    count: int
    time: int | None  # epoch seconds
    original_expiration: str | None


def _text(value: Any) -> str | None:
    value = as_text(value)
    return value if isinstance(value, str) else None


def _seconds(value: Any) -> int | None:
    """x-death's `time`: an AMQP timestamp (an int, once decoded) or a datetime (a copy made in this process)."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return int(value.timestamp())
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    return None


def deaths(message: Message) -> list[Death]:
    """The message's x-death tables, most recent first (empty when it never died)."""
    headers = message.headers
    tables = headers.get("x-death") if headers else None
    if not isinstance(tables, (list, tuple)):
        return []
    out = []
    for table in tables:
        if not isinstance(table, dict):
            continue
        keys = table.get("routing-keys")
        count = table.get("count")
        out.append(Death(
            reason=_text(table.get("reason")),
            queue=_text(table.get("queue")),
            exchange=_text(table.get("exchange")),
            routing_keys=[k for k in map(_text, keys) if k is not None] if isinstance(keys, (list, tuple)) else [],
            count=count if isinstance(count, int) and not isinstance(count, bool) else 0,
            time=_seconds(table.get("time")),
            original_expiration=_text(table.get("original-expiration")),
        ))
    return out


def first_death(message: Message) -> dict[str, str | None]:
    """x-first-death-reason, -queue and -exchange (None where absent)."""
    headers = message.headers or {}
    return {key: _text(headers.get("x-first-death-" + key)) for key in ("reason", "queue", "exchange")}


def replay_count(message: Message) -> int:
    """How many times move tasks have moved this message (its x-replay-count header; 0 without one)."""
    value = (message.headers or {}).get(REPLAY_COUNT)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def origin_queue(message: Message) -> str | None:
    """The queue a dead letter goes back to: the one it last died in (x-death's first table), as a
    consumer of the dead-letter queue would read it; None for a message that never died."""
    for death in deaths(message):
        if death.queue is not None:
            return death.queue
    return None
