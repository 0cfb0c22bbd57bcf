"""Field-table values as RabbitMQ names and compares them in its error texts.

The codec hands the broker plain Python values, so the AMQP type is recovered from the Python type
(an int in 32 bits reads as 'signedint', as pika and most clients encode it). Used for
"inequivalent arg" and "invalid x-match" messages and for the value comparisons RabbitMQ makes.
"""

from __future__ import annotations

import datetime
import decimal
from typing import Any, Mapping


def field_type_name(value: Any) -> str:
    """RabbitMQ's name for the AMQP field type a value would have on the wire."""
    if value is None:
        return "void"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "signedint" if -(2**31) <= value < 2**31 else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return "longstr"
    if isinstance(value, decimal.Decimal):
        return "decimal"
    if isinstance(value, datetime.datetime):
        return "timestamp"
    if isinstance(value, Mapping):
        return "table"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def as_text(value: Any) -> Any:
    """Strings arrive as str or bytes depending on the codec; compare them as str."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return value


def values_equal(a: Any, b: Any) -> bool:
    """Erlang-style `==` on field values: 1 == 1.0, b"x" == "x"."""
    return as_text(a) == as_text(b)


def describe_value(value: Any) -> str:
    """How RabbitMQ prints an argument in "inequivalent arg" errors ('none' when absent)."""
    if value is _MISSING:
        return "none"
    return f"the value '{_shown(value)}' of type '{field_type_name(value)}'"


def _kind(value: Any) -> str:
    """The type for equivalence: ints of any width are one kind, since the codec loses the width."""
    name = field_type_name(value)
    return "long" if name == "signedint" else name


class _Missing:
    """Marker for an argument that is not present (distinct from a void value)."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()
MISSING: Any = _MISSING


def _shown(value: Any) -> Any:
    shown = as_text(value)
    if isinstance(shown, bool):
        return "true" if shown else "false"
    return shown


def first_inequivalent(
    current: Mapping[str, Any],
    requested: Mapping[str, Any],
    keys: tuple[str, ...],
    defaults: Mapping[str, Any] | None = None,
) -> tuple[str, str, str] | None:
    """The first of `keys` whose value differs: (key, received text, current text), else None.

    Texts are RabbitMQ's: two values of one type print bare ('11' vs '10'); otherwise each side is
    "the value 'v' of type 't'" or "none". `defaults` are values equivalent to absence
    (x-queue-type: classic).
    """
    defaults = defaults or {}
    for key in keys:
        old = current.get(key, _MISSING)
        new = requested.get(key, _MISSING)
        if key in defaults:
            old = defaults[key] if old is _MISSING else old
            new = defaults[key] if new is _MISSING else new
        if old is _MISSING and new is _MISSING:
            continue
        if old is not _MISSING and new is not _MISSING and _kind(old) == _kind(new):
            if values_equal(old, new):
                continue
            return key, f"'{_shown(new)}'", f"'{_shown(old)}'"
        return key, describe_value(new), describe_value(old)
    return None
