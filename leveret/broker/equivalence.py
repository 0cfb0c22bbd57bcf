"""RabbitMQ 3.10's rules for redeclaring what exists: which flags and arguments must match, and the texts
it answers with when they do not (each checked against a live broker)."""

from __future__ import annotations

from typing import Any, Hashable

from leveret.broker.arguments import first_inequivalent
from leveret.broker.errors import PreconditionFailed, ResourceLocked

# The queue arguments RabbitMQ 3.10 compares on redeclaration, in its order; others are ignored.
QUEUE_EQUIVALENCE_ARGS = (
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-single-active-consumer",
    "x-queue-type",
    "x-quorum-initial-group-size",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-queue-leader-locator",
    "x-queue-master-locator",
    "x-delivery-limit",
)
# A classic queue's redeclaration ignores x-delivery-limit (RabbitMQ 3.10; found by the fuzzer).
CLASSIC_EQUIVALENCE_ARGS = tuple(key for key in QUEUE_EQUIVALENCE_ARGS if key != "x-delivery-limit")
EXCHANGE_EQUIVALENCE_ARGS = ("alternate-exchange",)


def flag(value: bool) -> str:
    return "true" if value else "false"


def inequivalent(key: str, what: str, received: str, current: str) -> PreconditionFailed:
    return PreconditionFailed(f"inequivalent arg '{key}' for {what}: received {received} but current is {current}")


def locked(queue: Any) -> ResourceLocked:
    return ResourceLocked(
        f"cannot obtain exclusive access to locked {queue.describe()}. It could be originally declared "
        "on another connection or the exclusive property value does not match that of the original "
        "declaration."
    )


def check_queue(existing: Any, *, durable: bool, exclusive: bool, auto_delete: bool, arguments: dict[str, Any],
                owner: Hashable | None, compared: tuple[str, ...], defaults: dict[str, Any] | None = None) -> None:
    """A redeclaration of `existing` (a classic queue or a stream) must match it: the error if not.

    Strict exclusivity: the flag itself must match, and an exclusive queue must be the owner's. Then durable,
    auto_delete, and the `compared` arguments (`defaults` fill in absent ones on both sides)."""
    if existing.exclusive != exclusive or (existing.exclusive and existing.owner != owner):
        raise locked(existing)
    what = existing.describe()
    for key, have, want in (("durable", existing.durable, durable), ("auto_delete", existing.auto_delete, auto_delete)):
        if have != want:
            raise inequivalent(key, what, f"'{flag(want)}'", f"'{flag(have)}'")
    diff = first_inequivalent(existing.arguments, arguments, compared, defaults)
    if diff is not None:
        raise inequivalent(diff[0], what, diff[1], diff[2])


def check_exchange(existing: Any, type_name: str, *, durable: bool, auto_delete: bool, internal: bool,
                   arguments: dict[str, Any]) -> None:
    """A redeclaration of the exchange `existing` must match its type, flags and alternate-exchange."""
    what = existing.describe()
    for key, have, want in (
        ("type", existing.type_name, type_name),
        ("durable", flag(existing.durable), flag(durable)),
        ("auto_delete", flag(existing.auto_delete), flag(auto_delete)),
        ("internal", flag(existing.internal), flag(internal)),
    ):
        if have != want:
            raise inequivalent(key, what, f"'{want}'", f"'{have}'")
    diff = first_inequivalent(existing.arguments, arguments, EXCHANGE_EQUIVALENCE_ARGS)
    if diff is not None:
        raise inequivalent(diff[0], what, diff[1], diff[2])
