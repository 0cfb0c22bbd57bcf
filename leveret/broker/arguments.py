"""Field-table values as RabbitMQ names and compares them in its error texts.

The codec hands the broker plain Python values, so the AMQP type is recovered from the Python type
(an int in 32 bits reads as 'signedint', as pika and most clients encode it). Used for
"inequivalent arg" and "invalid x-match" messages and for the value comparisons RabbitMQ makes.

Values nest as deep as a client's frame allows (tens of thousands of tables), so nothing here recurses:
comparison and text rendering walk containers with an explicit stack.
"""

from __future__ import annotations

import datetime
import decimal
import reprlib
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


_CONTAINERS = (Mapping, list, tuple)


def values_equal(a: Any, b: Any) -> bool:
    """Erlang-style `==` on field values: 1 == 1.0, b"x" == "x", at any depth of tables and arrays."""
    if not isinstance(a, _CONTAINERS) or not isinstance(b, _CONTAINERS):
        return as_text(a) == as_text(b)
    pending = [(a, b)]
    pop, push, extend = pending.pop, pending.append, pending.extend
    while pending:
        x, y = pop()
        if isinstance(x, Mapping):
            if not isinstance(y, Mapping) or len(x) != len(y):
                return False
            for key, value in x.items():
                other = y.get(key, _MISSING)
                if other is _MISSING:
                    return False
                push((value, other))
        elif isinstance(x, (list, tuple)):
            if not isinstance(y, (list, tuple)) or len(x) != len(y):
                return False
            extend(zip(x, y))
        elif isinstance(y, _CONTAINERS) or as_text(x) != as_text(y):
            return False
    return True


def value_text(value: Any) -> str:
    """str(value) as Python writes it (repr of the items inside tables and arrays), without recursion.

    Used where a value's text is hashed or compared (consistent-hash on a header), so it must be
    complete and stable; for error messages use `short_text`.
    """
    if not isinstance(value, _CONTAINERS):
        return str(value)
    out: list[str] = []
    append = out.append
    # Work items: a value to render, or a literal string (str instances are values only in `values`).
    todo: list[tuple[bool, Any]] = [(False, value)]
    pop, push = todo.pop, todo.append
    while todo:
        literal, item = pop()
        if literal:
            append(item)
        elif isinstance(item, Mapping):
            push((True, "}"))
            entries = list(item.items())
            for index in range(len(entries) - 1, -1, -1):
                key, child = entries[index]
                push((False, child))
                push((True, (", " if index else "") + repr(key) + ": "))
            append("{")
        elif isinstance(item, (list, tuple)):
            is_tuple = isinstance(item, tuple)
            push((True, (",)" if len(item) == 1 else ")") if is_tuple else "]"))
            for index in range(len(item) - 1, -1, -1):
                push((False, item[index]))
                if index:
                    push((True, ", "))
            append("(" if is_tuple else "[")
        else:
            append(repr(item))
    return "".join(out)


# Error texts show a nested value cut to a few levels and items (reprlib recurses at most maxlevel deep).
_SHORT = reprlib.Repr()
_SHORT.maxlevel = 4
_SHORT.maxstring = 80
_SHORT.maxother = 80


def short_text(value: Any) -> str:
    """A value for an error message: str() of a scalar, a bounded rendering of a table or array."""
    if isinstance(value, _CONTAINERS):
        return _SHORT.repr(value)
    return str(value)


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
    if isinstance(shown, _CONTAINERS):
        return short_text(shown)
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
