"""Field-table values as RabbitMQ names and compares them: types, type classes, equality, error texts.

The codec (amqp/table.py) decodes every value to a Python value that keeps its AMQP type: a plain int is
a signedint, a plain float a double, str a longstr and bytes a binary (tag x); the other types are
subclasses naming their type in `field_type` (read here by duck typing, since broker/ does not import the
codec). Used for "inequivalent arg" and "invalid x-match" messages and for the comparisons RabbitMQ makes:

- argument equivalence (`values_equal`, then `same_term`): the type classes match (every integer type and
  decimal are one class, float and double another, each other type its own) and the values are equal
  (RabbitMQ's `type_class` and `==`): I 1 equals l 1 and b 1; failing that, the decoded values are the same
  Erlang term (assert_field_equivalence's match): I 5 equals T 5 and S "a" equals x "a", never t true,
  d 1.0 or D 1;
- headers-exchange matching (`header_values_equal`): Erlang's `==` on the decoded values, whatever their
  types: I 1 equals l 1, d 1.0 and T 1, S "a" equals x "a"; but t true is an atom and a decimal a
  {scale, unscaled} pair, so neither equals any number (Python's True == 1 == Decimal(1) must not leak);
- inside tables and arrays, types must match exactly and tables keep their order (Erlang's `==` on the
  decoded terms, which carry their types there).

Values nest as deep as a client's frame allows (tens of thousands of tables), so nothing here recurses:
comparison and text rendering walk containers with an explicit stack.
"""

from __future__ import annotations

import datetime
import decimal
import reprlib
from typing import Any, Mapping


def field_type_name(value: Any) -> str:
    """RabbitMQ's name for the AMQP field type a value has on the wire."""
    named = getattr(type(value), "field_type", None)
    if named is not None:
        return named
    if value is None:
        return "void"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "signedint" if -(2**31) <= value < 2**31 else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "longstr"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "binary"
    if isinstance(value, decimal.Decimal):
        return "decimal"
    if isinstance(value, datetime.datetime):
        return "timestamp"
    if isinstance(value, Mapping):
        return "table"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


_TYPE_CLASSES = {
    "byte": "int", "unsignedbyte": "int", "short": "int", "unsignedshort": "int", "signedint": "int",
    "unsignedint": "int", "long": "int", "decimal": "int", "float": "float", "double": "float",
}


def type_class(value: Any) -> str:
    """RabbitMQ's type class: 'int' for every integer type and decimal, 'float' for float and double."""
    name = field_type_name(value)
    return _TYPE_CLASSES.get(name, name)


def _scalar_key(value: Any) -> Any:
    """A scalar as RabbitMQ compares it within its type: a decimal as (scale, unscaled), strings as bytes."""
    if isinstance(value, decimal.Decimal):
        sign, digits, exponent = value.as_tuple()
        unscaled = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
        if isinstance(exponent, int) and exponent > 0:
            unscaled, exponent = unscaled * 10**exponent, 0
        return ("decimal", exponent, unscaled)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    return value


def typed_key(value: Any) -> Any:
    """A hashable image of a scalar that is equal only for the same type and value (binding identity)."""
    return (field_type_name(value), _scalar_key(value))


def as_text(value: Any) -> Any:
    """Strings arrive as str or bytes depending on the codec; compare them as str."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return value


_CONTAINERS = (Mapping, list, tuple)


def values_equal(a: Any, b: Any) -> bool:
    """RabbitMQ's equality of two field values at the top of a table (see the module docstring)."""
    kind = type_class(a)
    if kind != type_class(b):
        return False
    if isinstance(a, _CONTAINERS):
        return _exactly_equal(a, b)
    if kind == "int" and isinstance(a, decimal.Decimal) != isinstance(b, decimal.Decimal):
        return False  # decimal {Scale, Value} is never == an integer
    return _scalar_key(a) == _scalar_key(b)


def header_values_equal(a: Any, b: Any) -> bool:
    """A headers-exchange binding value against a message header value (see the module docstring)."""
    if isinstance(a, _CONTAINERS) or isinstance(b, _CONTAINERS):
        if not isinstance(a, _CONTAINERS) or not isinstance(b, _CONTAINERS):
            return False
        # An empty table and an empty array are both Erlang's [] (found by the fuzzer).
        return (not a and not b) or _exactly_equal(a, b)
    return _erlang_value(a) == _erlang_value(b)


def same_term(a: Any, b: Any) -> bool:
    """Whether two decoded values are the same Erlang term whatever their AMQP types: integers of any type
    (timestamps included) by value, strings and byte arrays by bytes; 5 and 5.0 differ, and so do true
    and 1. Containers carry their types inside, so they compare exactly (an empty table and an empty array
    are both [])."""
    if isinstance(a, _CONTAINERS) or isinstance(b, _CONTAINERS):
        if not isinstance(a, _CONTAINERS) or not isinstance(b, _CONTAINERS):
            return False
        return (not a and not b) or _exactly_equal(a, b)
    return _term_key(a) == _term_key(b)


def _term_key(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return ("atom", value)
    if isinstance(value, decimal.Decimal):
        return _scalar_key(value)
    if isinstance(value, int):
        return ("integer", int(value))
    if isinstance(value, float):
        return ("float", value)
    if isinstance(value, datetime.datetime):
        return ("integer", int(value.timestamp()))
    return ("binary", _scalar_key(value))


def _erlang_value(value: Any) -> Any:
    """A scalar as the Erlang term RabbitMQ decodes it to, for `==`: numbers stay numbers (1 == 1.0)."""
    if isinstance(value, bool) or value is None:
        return ("atom", value)
    if isinstance(value, (int, float)):
        return value
    return _scalar_key(value)


def _exactly_equal(a: Any, b: Any) -> bool:
    """Equality inside tables and arrays: same types at every level, tables in the same order."""
    pending = [(a, b)]
    pop, extend = pending.pop, pending.extend
    while pending:
        x, y = pop()
        if field_type_name(x) != field_type_name(y):
            return False
        if isinstance(x, Mapping):
            if len(x) != len(y) or list(x) != list(y):
                return False
            extend(zip(x.values(), y.values()))
        elif isinstance(x, (list, tuple)):
            if len(x) != len(y):
                return False
            extend(zip(x, y))
        elif _scalar_key(x) != _scalar_key(y):
            return False
    return True


def erlang_binary(value: Any) -> str:
    """A string or byte string as Erlang's `~p` prints a binary in RabbitMQ's texts: `<<"all">>` when every
    byte is printable ASCII, `<<>>` when empty, else its bytes as numbers (`<<255,1>>`)."""
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)
    if all(32 <= byte < 127 for byte in raw):
        escaped = raw.decode("ascii").replace("\\", "\\\\").replace('"', '\\"')
        return f'<<"{escaped}">>' if raw else "<<>>"
    return "<<" + ",".join(map(str, raw)) + ">>"


def erlang_term(value: Any) -> str:
    """A scalar as Erlang's `~p` prints RabbitMQ's decoded value of it in error texts."""
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return erlang_binary(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "undefined"
    if isinstance(value, decimal.Decimal):
        _, exponent, unscaled = _scalar_key(value)
        if -(2**31) <= unscaled < 0:
            unscaled += 2**32  # RabbitMQ decodes the wire's unscaled value as unsigned (found by the fuzzer)
        return f"{{{-exponent},{unscaled}}}"
    if isinstance(value, int):
        return str(int(value))  # a timestamp prints as its number, as in RabbitMQ (not leveret's repr)
    return short_text(value)


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




class _Missing:
    """Marker for an argument that is not present (distinct from a void value)."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()
MISSING: Any = _MISSING


def _shown(value: Any) -> Any:
    if value is None:
        return "undefined"  # a void value is Erlang's 'undefined' (found by the fuzzer, QueueArguments 1700029)
    if isinstance(value, decimal.Decimal):
        return erlang_term(value)  # {Scale,Unscaled}, as RabbitMQ prints it (found by the fuzzer)
    shown = as_text(value)
    if isinstance(shown, bool):
        return "true" if shown else "false"
    if isinstance(shown, int):
        return int(shown)  # a timestamp prints as its number, as RabbitMQ 3.10 does (found by the fuzzer)
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

    Texts are RabbitMQ's (rabbit_misc:assert_args_equivalence1): two values print bare ('11' vs '10',
    '5.0' vs '5', whatever their types: found by the fuzzer); where one side is absent, the other is
    "the value 'v' of type 't'" and it "none". `defaults` are values equivalent to absence
    (x-queue-type: classic); they decide equivalence only, the texts show what was sent (RabbitMQ 3.10:
    "received the value 'quorum' of type 'longstr' but current is none", found by the fuzzer).
    """
    defaults = defaults or {}
    for key in keys:
        old = current.get(key, _MISSING)
        new = requested.get(key, _MISSING)
        if key in defaults:
            filled_old = defaults[key] if old is _MISSING else old
            filled_new = defaults[key] if new is _MISSING else new
            if type_class(filled_old) == type_class(filled_new) and values_equal(filled_old, filled_new):
                continue
        if old is _MISSING and new is _MISSING:
            continue
        if old is not _MISSING and new is not _MISSING:
            if (type_class(old) == type_class(new) and values_equal(old, new)) or same_term(old, new):
                continue
            return key, f"'{_shown(new)}'", f"'{_shown(old)}'"
        return key, describe_value(new), describe_value(old)
    return None
