"""A stream queue's declaration: which queue.declare asks for a stream, and its arguments checked with
RabbitMQ 3.10's texts (refused classic arguments, x-max-age intervals, retention and segment sizes).

The vhost's registry (broker/registry.py) uses this when a stream is declared or redeclared; the stream
itself is broker/stream.py.
"""

from __future__ import annotations

import re
from typing import Any

from leveret.broker.arguments import as_text, field_type_name
from leveret.broker.errors import PreconditionFailed

STREAM_MODULE = "rabbit_stream_queue"
# Queue arguments a stream refuses (RabbitMQ 3.10, each checked against it); a declaration naming several is
# refused for the first in its own table's order (found by the fuzzer). Other unknown arguments are ignored.
REFUSED_ARGUMENTS = frozenset({
    "x-expires",
    "x-message-ttl",
    "x-max-length",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-dead-letter-strategy",
    "x-overflow",
    "x-max-priority",
    "x-queue-mode",
    "x-queue-version",
    "x-queue-master-locator",
    "x-single-active-consumer",
    "x-delivery-limit",
    "x-quorum-initial-group-size",
})
# Arguments compared when a stream is redeclared (others, even refused ones, are ignored then).
EQUIVALENCE_ARGUMENTS = (
    "x-max-length-bytes",
    "x-queue-type",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-queue-leader-locator",
)
_UNIT_MS = {"Y": 365 * 86400_000, "M": 30 * 86400_000, "D": 86400_000, "h": 3600_000, "m": 60_000, "s": 1000}
_INTERVAL = re.compile(r"([0-9]+)([YMDhms])")


def is_stream_declaration(arguments: dict[str, Any] | None) -> bool:
    """Whether a queue.declare asks for a stream."""
    return bool(arguments) and as_text(arguments.get("x-queue-type")) == "stream"  # type: ignore[union-attr]


def parse_interval(text: str) -> int | None:
    """Milliseconds in "<n><Y|M|D|h|m|s>" with n > 0 (RabbitMQ's x-max-age form), None if malformed."""
    match = _INTERVAL.fullmatch(text)
    if match is None or int(match.group(1)) == 0:
        return None
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


class StreamSettings:
    """A stream's validated retention and segment arguments (None: not set)."""

    __slots__ = ("max_age_ms", "max_bytes", "segment_size")

    def __init__(self, max_age_ms: int | None = None, max_bytes: int | None = None, segment_size: int | None = None):
        self.max_age_ms = max_age_ms
        self.max_bytes = max_bytes
        self.segment_size = segment_size


def refuse_arguments(queue_name: str, vhost_name: str, arguments: dict[str, Any]) -> None:
    """The arguments a stream refuses, whatever their values (after the stream's own arguments are checked)."""
    where = f"for queue '{queue_name}' in vhost '{vhost_name}'"
    for key in arguments:
        if key in REFUSED_ARGUMENTS:
            raise PreconditionFailed(f"invalid arg '{key}' {where} of queue type {STREAM_MODULE}")


# x-queue-leader-locator values RabbitMQ 3.10 accepts (checked against it); a stream on one node ignores them.
LEADER_LOCATORS = ("client-local", "random", "least-leaders", "balanced")


def parse_stream_arguments(queue_name: str, vhost_name: str, arguments: dict[str, Any]) -> StreamSettings:
    """Validate a new stream's arguments with RabbitMQ 3.10's errors, in its order: the stream's own arguments
    are checked first, in the order of RabbitMQ's declare_args (x-max-length-bytes, x-max-age,
    x-stream-max-segment-size-bytes, x-initial-cluster-size, x-queue-leader-locator), then the refused ones
    (by name, whatever their values), all before the queue's durable, exclusive and auto-delete properties
    (found by the fuzzer)."""
    where = f"for queue '{queue_name}' in vhost '{vhost_name}'"

    def integer(key: str) -> int | None:
        if key not in arguments:
            return None
        value = arguments[key]
        if not isinstance(value, int) or isinstance(value, bool):
            raise PreconditionFailed(f'invalid arg \'{key}\' {where}: "expected integer, got {field_type_name(value)}"')
        if value < 0:
            raise PreconditionFailed(f"invalid arg '{key}' {where}: {{value_negative,{value}}}")
        return value

    def unacceptable(key: str, value: Any) -> PreconditionFailed:
        kind = "binary" if isinstance(value, (bytes, bytearray, memoryview)) else field_type_name(value)
        return PreconditionFailed(f"invalid arg '{key}' {where}: {{unacceptable_type,{kind}}}")

    settings = StreamSettings(max_bytes=integer("x-max-length-bytes"))
    if "x-max-age" in arguments:
        value = arguments["x-max-age"]
        if not isinstance(value, str):
            raise unacceptable("x-max-age", value)
        settings.max_age_ms = parse_interval(value)
        if settings.max_age_ms is None:
            raise PreconditionFailed(f"invalid arg 'x-max-age' {where}: invalid_max_age")
    settings.segment_size = integer("x-stream-max-segment-size-bytes")
    if integer("x-initial-cluster-size") == 0:
        raise PreconditionFailed(f"invalid arg 'x-initial-cluster-size' {where}: {{value_zero,0}}")
    if "x-queue-leader-locator" in arguments:
        value = arguments["x-queue-leader-locator"]
        if not isinstance(value, str):
            raise unacceptable("x-queue-leader-locator", value)
        if value not in LEADER_LOCATORS:
            raise PreconditionFailed(f"invalid arg 'x-queue-leader-locator' {where}: invalid_queue_locator_arg")
    refuse_arguments(queue_name, vhost_name, arguments)
    return settings
