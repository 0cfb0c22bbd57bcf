"""What a policy may say: its pattern, apply-to, priority and definition keys checked with RabbitMQ 3.10's
texts, which queue types each key applies to, and how an operator policy's values meet a policy's.

Every text here was read from a live RabbitMQ 3.10 (the management API's 400 reasons, without their
"Validation failed" frame, which the HTTP layer adds). A definition's recognised keys are checked in
name order and the first bad value is reported; unrecognised keys are reported together after that, as
RabbitMQ does. Values are shown as Erlang terms (`<<"text">>`, `true`, `#{<<"k">> => 1}`).

Applicability (RabbitMQ's queue type capabilities): a policy whose definition holds a key the queue's
type does not support does not apply to that queue at all, so a lower-priority policy may apply instead.
"""

from __future__ import annotations

import re
from typing import Any, Callable, NamedTuple

from leveret.broker.errors import PreconditionFailed
from leveret.broker.queue_arguments import OVERFLOW_MODES
from leveret.broker.stream_arguments import parse_interval

# apply-to values: RabbitMQ 3.10's three, and 3.12's per queue type (an extension here).
APPLY_TO = ("queues", "exchanges", "all", "classic_queues", "quorum_queues", "streams")
APPLY_TO_TYPES = {"classic_queues": "classic", "quorum_queues": "quorum", "streams": "stream"}
# Keys an operator policy may hold; each takes the lower of the policy's and the operator policy's value.
OPERATOR_KEYS = frozenset({"expires", "message-ttl", "max-length", "max-length-bytes", "max-in-memory-length",
                           "max-in-memory-bytes", "delivery-limit"})
_MIRRORING = frozenset({"ha-mode", "ha-params", "ha-sync-mode", "ha-sync-batch-size", "ha-promote-on-shutdown",
                        "ha-promote-on-failure"})
# The keys each queue type does not support (RabbitMQ 3.10's capabilities).
NOT_APPLICABLE = {
    "classic": frozenset({"max-age", "stream-max-segment-size-bytes", "queue-leader-locator", "initial-cluster-size",
                          "delivery-limit", "dead-letter-strategy"}),
    "quorum": frozenset({"queue-mode", "queue-master-locator", "max-age", "stream-max-segment-size-bytes",
                         "initial-cluster-size"}) | _MIRRORING,
    "stream": frozenset({"expires", "message-ttl", "dead-letter-exchange", "dead-letter-routing-key", "max-length",
                         "max-in-memory-length", "max-in-memory-bytes", "overflow", "queue-mode", "delivery-limit",
                         "queue-master-locator", "dead-letter-strategy", "queue-version"}) | _MIRRORING,
}


class PolicyInvalid(PreconditionFailed):
    """A policy RabbitMQ would refuse; `text` is its reason without the "Validation failed" frame."""


def erlang_term(value: Any) -> str:
    """`value` (JSON) written as RabbitMQ's texts show Erlang terms; walked without recursion."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Text):
            out.append(item)
        elif isinstance(item, bool):
            out.append("true" if item else "false")
        elif item is None:
            out.append("null")
        elif isinstance(item, str):
            out.append(f'<<"{item}">>')
        elif isinstance(item, (int, float)):
            out.append(repr(item))
        elif isinstance(item, list):
            parts: list[Any] = [_Text("[")]
            for i, element in enumerate(item):
                parts += [_Text(",")] if i else []
                parts.append(element)
            stack.extend(reversed([*parts, _Text("]")]))
        elif isinstance(item, dict):
            parts = [_Text("#{")]
            for i, (key, element) in enumerate(item.items()):
                parts += [_Text(", ")] if i else []
                parts += [key, _Text(" => "), element]
            stack.extend(reversed([*parts, _Text("}")]))
        else:
            out.append(str(item))
    return "".join(out)


class _Text(str):
    """Literal text in erlang_term's walk (not a value to write as a binary)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(what: str, minimum: int = 0) -> Callable[[Any], str | None]:
    return lambda v: None if _is_int(v) and v >= minimum else f"{erlang_term(v)} is not a valid {what}"


def _text(what: str) -> Callable[[Any], str | None]:
    return lambda v: None if isinstance(v, str) else f"{erlang_term(v)} is not a valid {what}"


def _one_of(values: tuple[Any, ...], text: str) -> Callable[[Any], str | None]:
    return lambda v: None if v in values and not isinstance(v, bool) else f"{erlang_term(v)} {text}"


def _interval(v: Any) -> str | None:
    # RabbitMQ 3.10 crashes (500) on a non-string max-age; leveret refuses it with the same text.
    return None if isinstance(v, str) and parse_interval(v) is not None else f"{erlang_term(v)} is not a valid max age"


def _anything(_v: Any) -> str | None:
    return None


_VALIDATORS: dict[str, Callable[[Any], str | None]] = {
    "alternate-exchange": _text("alternate exchange name"),
    "dead-letter-exchange": _text("dead letter exchange name"),
    "dead-letter-routing-key": _text("dead letter routing key"),
    "dead-letter-strategy": _one_of(("at-most-once", "at-least-once"), "is not a valid dead letter strategy"),
    "delivery-limit": _integer("delivery limit"),
    "expires": _integer("queue expiry", minimum=1),
    "ha-mode": _one_of(("all", "exactly", "nodes"), "is not a valid ha-mode value"),
    "ha-params": _anything,
    "ha-promote-on-failure": _anything,
    "ha-promote-on-shutdown": _anything,
    "ha-sync-batch-size": _anything,
    "ha-sync-mode": _anything,
    "initial-cluster-size": _integer("initial cluster size"),
    "max-age": _interval,
    "max-in-memory-bytes": _integer("maximum memory in bytes"),
    "max-in-memory-length": _integer("maximum memory in bytes"),
    "max-length": _integer("maximum length"),
    "max-length-bytes": _integer("maximum length in bytes"),
    "message-ttl": _integer("message TTL"),
    "overflow": _one_of(OVERFLOW_MODES, "is not a valid overflow value"),
    "queue-leader-locator": _one_of(("client-local", "balanced", "random", "least-leaders"),
                                    "is not a valid queue leader locator value"),
    "queue-master-locator": _one_of(("min-masters", "client-local", "random"), "invalid queue-master-locator value"),
    "queue-mode": _one_of(("default", "lazy"), "is not a valid queue-mode value"),
    "queue-version": _one_of((1, 2), "is not a valid queue-version value"),
    "stream-max-segment-size-bytes": _integer("segment size"),
}


def check_definition(definition: Any, *, operator: bool) -> None:
    """Raise PolicyInvalid with RabbitMQ's text unless `definition` is a valid (operator) policy definition."""
    if not isinstance(definition, dict):
        raise PolicyInvalid(f"definition must be a dictionary: {erlang_term(definition)}")
    if not definition:
        raise PolicyInvalid("no policy provided")
    known = OPERATOR_KEYS if operator else _VALIDATORS.keys()
    for key in sorted(k for k in definition if k in known):
        error = _VALIDATORS[key](definition[key])
        if error is not None:
            raise PolicyInvalid(error)
    unknown = sorted(k for k in definition if k not in known)
    if unknown:
        terms = ",".join(f"{{{erlang_term(k)},{erlang_term(definition[k])}}}" for k in unknown)
        raise PolicyInvalid(f"[{terms}] are not recognised policy settings")


def check_policy(pattern: Any, definition: Any, apply_to: Any, priority: Any, *, operator: bool) -> re.Pattern:
    """Check a whole policy as RabbitMQ 3.10 does; return its compiled pattern."""
    if not isinstance(pattern, str):
        raise PolicyInvalid(f"pattern should be a binary but was {erlang_term(pattern)}")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise PolicyInvalid(f'pattern should be regular expression but is invalid: {{"{exc.msg}",{exc.pos}}}') from None
    if apply_to not in APPLY_TO:
        shown = apply_to if isinstance(apply_to, str) else erlang_term(apply_to)
        raise PolicyInvalid(f"apply-to '{shown}' unrecognised; should be 'queues', 'exchanges' or 'all'")
    if isinstance(priority, bool) or not isinstance(priority, (int, float)):
        raise PolicyInvalid(f"priority should be a number, actually was {erlang_term(priority)}")
    check_definition(definition, operator=operator)
    return compiled


def applies_to_type(definition: dict[str, Any], queue_type: str) -> bool:
    """Whether a policy with `definition` may apply to a queue of `queue_type` (classic, quorum, stream)."""
    refused = NOT_APPLICABLE[queue_type]
    return not any(key in refused for key in definition)


def merge_operator(definition: dict[str, Any] | None, operator: dict[str, Any] | None) -> dict[str, Any]:
    """The effective policy definition: the policy's, with an operator policy's values where it has none
    and the lower of both where both have one."""
    merged = dict(definition or {})
    for key, value in (operator or {}).items():
        mine = merged.get(key)
        merged[key] = value if mine is None or not _comparable(mine, value) else min(mine, value)
    return merged


def _comparable(a: Any, b: Any) -> bool:
    return _is_int(a) and _is_int(b)


class AppliedPolicy(NamedTuple):
    """What a queue's policies are: the policy's and the operator policy's names (None: none applies) and the
    effective definition (merge_operator's), as the management API shows them."""

    policy: str | None = None
    operator_policy: str | None = None
    definition: dict[str, Any] = {}


NO_POLICY = AppliedPolicy()
