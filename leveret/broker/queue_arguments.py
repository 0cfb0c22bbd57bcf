"""Queue arguments: validated at declare time into one `QueueSettings`, with RabbitMQ 3.10's errors.

Every text below was read from a live RabbitMQ 3.10 (406 PRECONDITION_FAILED, channel level):
- integers (x-message-ttl, x-expires, x-max-length, x-max-length-bytes, x-max-priority):
  `invalid arg 'K' for queue 'q' in vhost '/': "expected integer, got longstr"`, `{value_negative,-1}`,
  `{value_zero,0}` (x-expires only), `{max_value_exceeded,256}` (x-max-priority only);
- x-overflow: `{unacceptable_type,signedint}` / `invalid_overflow`;
- x-single-active-consumer: `{unacceptable_type,longstr}`;
- x-dead-letter-exchange of a wrong type: `invalid type 'signedint' for arg 'K' in queue 'q' in vhost '/'`,
  x-dead-letter-routing-key: `{unacceptable_type,signedint}`; a routing key without an exchange:
  `routing_key_but_no_dlx_defined`;
- x-queue-type: `"unsupported queue type 'foo'"`;
- arguments of another queue type: `invalid arg 'x-delivery-limit' for queue 'q' in vhost '/' of queue
  type rabbit_classic_queue`;
- quorum queues: `invalid property 'non-durable' | 'exclusive-owner' | 'auto-delete' for queue ...`;
  x-dead-letter-strategy other than at-most-once / at-least-once: `invalid_dlx_strategy`. A quorum
  x-delivery-limit that is not a non-negative integer is accepted and means "no limit" (as 3.10).

Extensions (documented in docs/compatibility.md by the lead): `x-requeue-delay` (ms, or an array of ms
per attempt) and `x-consumer-timeout` (ms; RabbitMQ 3.10 accepts and ignores it, 3.12 honours it).
"""

from __future__ import annotations

from typing import Any, Mapping

from leveret.broker.arguments import as_text, field_type_name
from leveret.broker.errors import PreconditionFailed

OVERFLOW_MODES = ("drop-head", "reject-publish", "reject-publish-dlx")
DLX_STRATEGIES = ("at-most-once", "at-least-once")
QUEUE_TYPES = ("classic", "quorum")
MAX_PRIORITY = 255

# arguments a queue type refuses, with the type's Erlang module name used in the error text
_REFUSED_BY_TYPE = {
    "classic": (
        "rabbit_classic_queue",
        (
            "x-delivery-limit",
            "x-dead-letter-strategy",
            "x-quorum-initial-group-size",
            "x-max-in-memory-length",
            "x-max-in-memory-bytes",
        ),
    ),
    "quorum": ("rabbit_quorum_queue", ("x-max-priority", "x-queue-mode", "x-queue-master-locator")),
}


class QueueSettings:
    """The behaviour a queue's arguments ask for, already validated; None means "not set"."""

    __slots__ = (
        "queue_type",
        "message_ttl",
        "expires",
        "dead_letter_exchange",
        "dead_letter_routing_key",
        "dead_letter_strategy",
        "max_length",
        "max_length_bytes",
        "overflow",
        "max_priority",
        "single_active_consumer",
        "delivery_limit",
        "requeue_delays",
        "consumer_timeout",
    )

    def __init__(self) -> None:
        self.queue_type = "classic"
        self.message_ttl: int | None = None  # ms
        self.expires: int | None = None  # ms
        self.dead_letter_exchange: str | None = None
        self.dead_letter_routing_key: str | None = None
        self.dead_letter_strategy = "at-most-once"
        self.max_length: int | None = None
        self.max_length_bytes: int | None = None
        self.overflow = "drop-head"
        self.max_priority: int | None = None
        self.single_active_consumer = False
        self.delivery_limit: int | None = None
        self.requeue_delays: tuple[int, ...] = ()  # ms per attempt; the last repeats
        self.consumer_timeout: int | None = None  # ms

    @property
    def quorum(self) -> bool:
        return self.queue_type == "quorum"

    def requeue_delay(self, attempt: int) -> int:
        """Delay (ms) before a message nacked for the `attempt`-th time (1-based) is visible again."""
        delays = self.requeue_delays
        if not delays:
            return 0
        return delays[min(attempt, len(delays)) - 1]


INTEGER_TYPES = ("byte", "short", "signedint", "long", "unsignedbyte", "unsignedshort", "unsignedint")
# RabbitMQ's longest TTL and x-expires, in ms (ten years): longer is {value_too_large,N}.
MAX_EXPIRY_MS = 315_360_000_000


def _is_int(value: Any) -> bool:
    """An integer field type as RabbitMQ's argument checks take it (never bool, timestamp or decimal)."""
    return field_type_name(value) in INTEGER_TYPES


class _Checker:
    def __init__(self, queue_name: str, vhost_name: str, arguments: Mapping[str, Any]) -> None:
        self.where = f"for queue '{queue_name}' in vhost '{vhost_name}'"
        self.queue_name = queue_name
        self.vhost_name = vhost_name
        self.arguments = arguments

    def invalid(self, key: str, detail: str) -> PreconditionFailed:
        return PreconditionFailed(f"invalid arg '{key}' {self.where}: {detail}")

    def integer(self, key: str, *, zero_ok: bool = True, maximum: int | None = None,
                too_large: int | None = None) -> int | None:
        if key not in self.arguments:
            return None
        value = self.arguments[key]
        if not _is_int(value):
            raise self.invalid(key, f'"expected integer, got {field_type_name(value)}"')
        if value < 0:
            raise self.invalid(key, f"{{value_negative,{value}}}")
        if value == 0 and not zero_ok:
            raise self.invalid(key, f"{{value_zero,{value}}}")
        if maximum is not None and value > maximum:
            raise self.invalid(key, f"{{max_value_exceeded,{value}}}")
        if too_large is not None and value > too_large:
            raise self.invalid(key, f"{{value_too_large,{value}}}")
        return value

    def text(self, key: str) -> str | None:
        if key not in self.arguments:
            return None
        value = as_text(self.arguments[key])
        if field_type_name(self.arguments[key]) != "longstr":
            raise PreconditionFailed(
                f"invalid type '{field_type_name(self.arguments[key])}' for arg '{key}' in queue "
                f"'{self.queue_name}' in vhost '{self.vhost_name}'"
            )
        return value


def check_dead_letter_exchange_type(queue_name: str, vhost_name: str, arguments: Mapping[str, Any]) -> None:
    """The channel's check of x-dead-letter-exchange's type, made for a new queue of any type before the queue
    type checks anything (RabbitMQ 3.10: a byte-array one beats a stream's refusal of the argument)."""
    _Checker(queue_name, vhost_name, arguments).text("x-dead-letter-exchange")


def parse_queue_arguments(
    queue_name: str,
    vhost_name: str,
    arguments: Mapping[str, Any],
    *,
    durable: bool = True,
    exclusive: bool = False,
    auto_delete: bool = False,
) -> QueueSettings:
    """Validate `arguments` for a new queue and return its settings, or raise PreconditionFailed."""
    check = _Checker(queue_name, vhost_name, arguments)
    settings = QueueSettings()
    # The channel checks the dead-letter exchange's type before the queue checks anything (RabbitMQ 3.10:
    # a byte-array x-dead-letter-exchange beats an invalid x-message-ttl or x-queue-type).
    settings.dead_letter_exchange = check.text("x-dead-letter-exchange")
    if "x-queue-type" in arguments:
        queue_type = as_text(arguments["x-queue-type"])
        if field_type_name(arguments["x-queue-type"]) != "longstr":
            raise check.invalid("x-queue-type", f"{{unacceptable_type,{field_type_name(arguments['x-queue-type'])}}}")
        if queue_type not in QUEUE_TYPES:
            raise check.invalid("x-queue-type", f"\"unsupported queue type '{queue_type}'\"")
        settings.queue_type = queue_type
    settings.expires = check.integer("x-expires", zero_ok=False, too_large=MAX_EXPIRY_MS)
    settings.message_ttl = check.integer("x-message-ttl", too_large=MAX_EXPIRY_MS)
    routing_key = arguments.get("x-dead-letter-routing-key")
    if "x-dead-letter-routing-key" in arguments and field_type_name(routing_key) != "longstr":
        raise check.invalid("x-dead-letter-routing-key", f"{{unacceptable_type,{field_type_name(routing_key)}}}")
    settings.dead_letter_routing_key = check.text("x-dead-letter-routing-key")
    if settings.dead_letter_routing_key is not None and settings.dead_letter_exchange is None:
        raise check.invalid("x-dead-letter-routing-key", "routing_key_but_no_dlx_defined")
    settings.max_length = check.integer("x-max-length")
    settings.max_length_bytes = check.integer("x-max-length-bytes")
    # An argument the queue type refuses has its value checked by nobody: the refusal below answers for it
    # (RabbitMQ 3.10: x-max-priority 'abc' on a quorum queue is "invalid arg ... of queue type", found by the
    # fuzzer).
    refused = _REFUSED_BY_TYPE.get(settings.queue_type, ("", ()))[1]
    if "x-max-priority" not in refused:
        settings.max_priority = check.integer("x-max-priority", maximum=MAX_PRIORITY)
    if "x-overflow" in arguments:
        overflow = arguments["x-overflow"]
        if field_type_name(overflow) != "longstr":
            raise check.invalid("x-overflow", f"{{unacceptable_type,{field_type_name(overflow)}}}")
        if as_text(overflow) not in OVERFLOW_MODES:
            raise check.invalid("x-overflow", "invalid_overflow")
        settings.overflow = as_text(overflow)
    if "x-queue-mode" in arguments and "x-queue-mode" not in refused:
        mode = arguments["x-queue-mode"]
        if field_type_name(mode) != "longstr":
            raise check.invalid("x-queue-mode", f"{{unacceptable_type,{field_type_name(mode)}}}")
        if as_text(mode) not in ("default", "lazy"):
            raise check.invalid("x-queue-mode", f"\"unsupported queue mode '{as_text(mode)}'\"")
    if "x-single-active-consumer" in arguments:
        sac = arguments["x-single-active-consumer"]
        if not isinstance(sac, bool):
            raise check.invalid("x-single-active-consumer", f"{{unacceptable_type,{field_type_name(sac)}}}")
        settings.single_active_consumer = sac
    # What the type refuses comes after every value check above (RabbitMQ 3.10's order: x-message-ttl 'abc'
    # with x-delivery-limit on a classic queue is "expected integer"); the type itself is checked first.
    module = _REFUSED_BY_TYPE[settings.queue_type][0]
    for key in refused:
        if key in arguments:
            raise PreconditionFailed(f"invalid arg '{key}' {check.where} of queue type {module}")
    if settings.quorum:
        # In RabbitMQ 3.10's order (checked against it): auto-delete, then exclusive, then durability, after
        # the arguments the type refuses (a non-durable quorum queue with x-max-priority: the argument).
        for flag, bad in (("auto-delete", auto_delete), ("exclusive-owner", exclusive), ("non-durable", not durable)):
            if bad:
                raise PreconditionFailed(f"invalid property '{flag}' {check.where}")

    if "x-dead-letter-strategy" in arguments:
        strategy = as_text(arguments["x-dead-letter-strategy"])
        if strategy not in DLX_STRATEGIES:
            raise check.invalid("x-dead-letter-strategy", "invalid_dlx_strategy")
        settings.dead_letter_strategy = strategy
    if settings.quorum:
        limit = arguments.get("x-delivery-limit")
        if _is_int(limit) and limit >= 0:
            settings.delivery_limit = limit
    if "x-requeue-delay" in arguments:
        settings.requeue_delays = _requeue_delays(check, arguments["x-requeue-delay"])
    timeout = arguments.get("x-consumer-timeout")
    if _is_int(timeout) and timeout > 0:
        settings.consumer_timeout = timeout
    if settings.max_priority == 0:
        settings.max_priority = None  # RabbitMQ accepts 0 and behaves as a plain queue
    return settings


# Policy keys whose lower value wins against the queue's own argument, and those where the argument wins
# (RabbitMQ 3.10's resolution), with the QueueSettings field each sets.
_LOWER_WINS = (("message-ttl", "message_ttl"), ("expires", "expires"), ("max-length", "max_length"),
               ("max-length-bytes", "max_length_bytes"), ("delivery-limit", "delivery_limit"))
_ARGUMENT_WINS = (("dead-letter-exchange", "dead_letter_exchange"),
                  ("dead-letter-routing-key", "dead_letter_routing_key"), ("overflow", "overflow"),
                  ("dead-letter-strategy", "dead_letter_strategy"))


def with_policy(base: QueueSettings, arguments: Mapping[str, Any], definition: Mapping[str, Any]) -> QueueSettings:
    """The settings of a queue declared with `arguments` (`base`, parsed from them) under an effective policy
    `definition` (policies.py has checked its values and that they apply to the queue's type)."""
    settings = QueueSettings()
    for slot in QueueSettings.__slots__:
        setattr(settings, slot, getattr(base, slot))
    for key, slot in _LOWER_WINS:
        value = definition.get(key)
        if value is not None and (key != "delivery-limit" or base.quorum):
            own = getattr(base, slot)
            setattr(settings, slot, value if own is None else min(own, value))
    for key, slot in _ARGUMENT_WINS:
        if key in definition and "x-" + key not in arguments:
            setattr(settings, slot, definition[key])
    return settings


def _requeue_delays(check: _Checker, value: Any) -> tuple[int, ...]:
    delays = list(value) if isinstance(value, (list, tuple)) else [value]
    if not delays:
        raise check.invalid("x-requeue-delay", "empty_array")
    for delay in delays:
        if not _is_int(delay):
            raise check.invalid("x-requeue-delay", f'"expected integer, got {field_type_name(delay)}"')
        if delay < 0:
            raise check.invalid("x-requeue-delay", f"{{value_negative,{delay}}}")
    return tuple(delays)


def parse_expiration(value: Any) -> int | None:
    """A message's `expiration` property as ms, or None when absent or not a non-negative integer.

    RabbitMQ refuses a malformed expiration at publish with a channel error; the server's codec
    validates it there, so here an unreadable value simply means "no per-message TTL".
    """
    if value is None:
        return None
    text = as_text(value)
    if isinstance(text, str) and text.isdigit():
        return int(text)
    return None
