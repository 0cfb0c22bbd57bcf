"""Dead-lettering decisions, as pure functions returning values (no routing, no IO).

What RabbitMQ 3.10 writes, checked against a live broker:
- The dead-lettered message is republished to the queue's x-dead-letter-exchange with routing key
  x-dead-letter-routing-key when set (the CC header is then removed), else with its own routing key
  and CC header. Its `expiration` property is removed.
- `x-death` is an array of tables, most recent first, one table per (queue, reason). A first death
  creates {count, reason, queue, time, exchange, routing-keys[, original-expiration]} in that key
  order; `routing-keys` are the routing key plus the CC keys the message was published with,
  `exchange` the exchange it was last published to, `time` a timestamp in whole seconds. A repeated
  (queue, reason) moves the existing table to the front with count + 1 and every other field kept
  (including its first time). Whenever the header already existed, the table placed in front has its
  keys sorted (RabbitMQ re-sorts the table it touches); the key order is invisible to clients that
  decode into dicts, but keeping it costs nothing.
- `x-first-death-queue`, `-reason` and `-exchange` are set once and never changed. RabbitMQ 3.10 does
  NOT write x-last-death-* (3.13 added them), so neither do we.
- Cycles: unless the reason is `rejected`, a target queue is dropped when it appears in the new x-death
  list and no entry from the front up to and including its own has reason `rejected` (so an
  expire -> expire loop is cut, while a loop with a consumer rejecting in it is allowed).
"""

from __future__ import annotations

import datetime
from typing import Any, Iterable, Sequence, TypeVar

from leveret.broker.arguments import as_text
from leveret.broker.message import Message

REJECTED = "rejected"
EXPIRED = "expired"
MAXLEN = "maxlen"
DELIVERY_LIMIT = "delivery_limit"

Q = TypeVar("Q")


def death_time(epoch_seconds: float) -> datetime.datetime:
    """x-death's `time`: whole seconds, UTC (encoded as an AMQP timestamp)."""
    return datetime.datetime.fromtimestamp(int(epoch_seconds), datetime.timezone.utc)


def original_routing_keys(message: Message) -> list[str]:
    """The routing key the message was published with, plus its CC keys (BCC is already gone)."""
    keys = [message.routing_key]
    headers = message.headers
    if headers:
        cc = headers.get("CC")
        if isinstance(cc, (list, tuple)):
            keys += [k for k in map(as_text, cc) if isinstance(k, str)]
    return keys


def _deaths(headers: dict[str, Any] | None) -> list[Any] | None:
    if not headers:
        return None
    deaths = headers.get("x-death")
    return list(deaths) if isinstance(deaths, (list, tuple)) else None


def updated_x_death(
    message: Message, queue_name: str, reason: str, epoch_seconds: float
) -> dict[str, Any]:
    """The headers the dead-lettered copy carries (x-death updated, x-first-death-* set at the first death)."""
    headers = dict(message.headers or {})
    deaths = _deaths(headers)
    entry: dict[str, Any] = {
        "count": 1,
        "reason": reason,
        "queue": queue_name,
        "time": death_time(epoch_seconds),
        "exchange": message.exchange,
        "routing-keys": original_routing_keys(message),
    }
    expiration = message.properties.expiration
    if expiration is not None:
        entry["original-expiration"] = as_text(expiration)
    if deaths is None:
        headers["x-death"] = [entry]
    else:
        for i, old in enumerate(deaths):
            if (
                isinstance(old, dict)
                and as_text(old.get("queue")) == queue_name
                and as_text(old.get("reason")) == reason
            ):
                count = old.get("count", 0)
                bumped = dict(old)
                bumped["count"] = (count if isinstance(count, int) else 0) + 1
                del deaths[i]
                entry = bumped
                break
        headers["x-death"] = [dict(sorted(entry.items())), *deaths]
    if "x-death" not in (message.headers or {}):
        # the first death only, as RabbitMQ 3.10 (update_x_death_header): a message that carries x-death
        # (a publisher's own, say) gets no x-first-death-*; one without gets them, overwriting any it
        # carries, which go after x-death as RabbitMQ writes them (found by the fuzzer)
        for key in ("x-first-death-exchange", "x-first-death-queue", "x-first-death-reason"):
            headers.pop(key, None)
        headers["x-first-death-exchange"] = message.exchange
        headers["x-first-death-queue"] = queue_name
        headers["x-first-death-reason"] = reason
    return headers


def dead_lettered(
    message: Message,
    queue_name: str,
    reason: str,
    dead_letter_exchange: str,
    dead_letter_routing_key: str | None,
    epoch_seconds: float,
) -> Message:
    """The copy of `message` that the queue publishes to its dead-letter exchange."""
    headers = updated_x_death(message, queue_name, reason, epoch_seconds)
    routing_key = message.routing_key
    if dead_letter_routing_key is not None:
        routing_key = dead_letter_routing_key
        headers.pop("CC", None)
    properties = message.properties.replace(headers=headers, expiration=None)
    return Message(dead_letter_exchange, routing_key, properties, message.body)


def is_cycle(queue_name: str, deaths: Sequence[Any]) -> bool:
    """Whether dead-lettering into `queue_name` closes a loop with no rejection in it."""
    for entry in deaths:
        if not isinstance(entry, dict):
            return False
        if as_text(entry.get("reason")) == REJECTED:
            return False
        if as_text(entry.get("queue")) == queue_name:
            return True
    return False


def without_cycles(message: Message, reason: str, queues: Iterable[Q], name_of: Any = None) -> list[Q]:
    """The target queues a dead-lettered `message` may enter (cycles dropped, as RabbitMQ)."""
    targets = list(queues)
    if reason == REJECTED:
        return targets
    deaths = _deaths(message.headers)
    if not deaths:
        return targets
    name_of = name_of or (lambda q: q.name)
    return [q for q in targets if not is_cycle(name_of(q), deaths)]
