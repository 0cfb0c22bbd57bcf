"""Headers exchanges: match message headers against binding arguments (x-match all/any/...-with-x).

RabbitMQ's rules, checked against 3.10:
- `x-match` is all (default), any, all-with-x or any-with-x; any other value or a non-string is a
  406 on bind.
- Binding keys starting with "x-" are ignored unless the mode ends in "-with-x".
- A binding value of void (None) matches when the header is present with any value.
- Values compare as RabbitMQ 3.10's headers exchange compares them (broker/arguments.py
  `header_values_equal`, checked against it): Erlang's `==` on the values whatever their types at the top
  (I 1 matches l 1, d 1.0 and T 1; S "a" matches x "a"; t true and D 1 match no number), exact types inside
  tables and arrays.
- A destination gets one copy of a message however many of its bindings match.
- all with no remaining keys matches every message; any with none matches nothing.
Routing tests every binding: headers bindings have no key to index on.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from leveret.broker.arguments import (
    MISSING, as_text, erlang_binary, erlang_term, field_type_name, header_values_equal,
)
from leveret.broker.errors import PreconditionFailed
from leveret.broker.exchanges.base import Arguments, Exchange, freeze

_MODES = ("all", "any", "all-with-x", "any-with-x")


def _mode_of(arguments: Arguments) -> str:
    mode = arguments.get("x-match", "all")
    return as_text(mode)


def compile_binding(arguments: Arguments) -> tuple[bool, tuple[tuple[str, Any], ...]]:
    """(match_all, ((key, value), ...)) for a binding's arguments."""
    mode = _mode_of(arguments)
    with_x = mode.endswith("-with-x")
    pairs = tuple(
        (k, v) for k, v in arguments.items() if k != "x-match" and (with_x or not k.startswith("x-"))
    )
    return mode.startswith("all"), pairs


def headers_match(match_all: bool, pairs: tuple[tuple[str, Any], ...], headers: Mapping[str, Any]) -> bool:
    """Whether one compiled binding accepts these message headers."""
    if match_all:
        for key, want in pairs:
            have = headers.get(key, MISSING)
            if have is MISSING or (want is not None and not header_values_equal(have, want)):
                return False
        return True
    for key, want in pairs:
        have = headers.get(key, MISSING)
        if have is not MISSING and (want is None or header_values_equal(have, want)):
            return True
    return False


class HeadersExchange(Exchange):
    """Routes by header matching; the routing key is ignored."""

    type_name = "headers"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (destination, frozen identity) -> compiled; several bindings per destination are possible
        self._compiled: dict[tuple[Any, str, Any], tuple[Any, bool, tuple[tuple[str, Any], ...]]] = {}

    def validate_binding(self, routing_key: str, arguments: Arguments) -> None:
        mode = arguments.get("x-match", MISSING)
        if mode is MISSING:
            return
        if field_type_name(mode) != "longstr":
            raise PreconditionFailed(
                f"Invalid x-match field type {field_type_name(mode)} (value {erlang_term(mode)}); expected longstr"
            )
        if as_text(mode) not in _MODES:
            raise PreconditionFailed(
                f"Invalid x-match field value {erlang_binary(mode)}; expected all, any, all-with-x, or any-with-x"
            )

    @staticmethod
    def _identity(destination: Any, routing_key: str, arguments: Arguments) -> tuple[Any, str, Any]:
        return destination, routing_key, freeze(arguments)

    def _add(self, destination: Any, routing_key: str, arguments: Arguments) -> None:
        match_all, pairs = compile_binding(arguments)
        self._compiled[self._identity(destination, routing_key, arguments)] = (destination, match_all, pairs)

    def _remove(self, destination: Any, routing_key: str, arguments: Arguments) -> None:
        self._compiled.pop(self._identity(destination, routing_key, arguments), None)

    def route(self, routing_key: str, headers: Mapping[str, Any] | None) -> Iterable[Any]:
        headers = headers or {}
        # Several bindings of one destination may match; it gets the message once (the hot path in routing.py
        # takes this list as it is).
        return list(dict.fromkeys(dest for dest, match_all, pairs in self._compiled.values()
                                  if headers_match(match_all, pairs, headers)))
