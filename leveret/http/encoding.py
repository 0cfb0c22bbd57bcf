"""AMQP field-table values made JSON-serialisable, the way RabbitMQ's management API shows them.

Tables decode to bytes (non-UTF-8 longstr, byte arrays), Decimal and Timestamp/datetime values that
`json` cannot write; the management API shows strings, numbers and integer seconds instead.
"""

from __future__ import annotations

import calendar
import datetime
import json
from decimal import Decimal
from typing import Any


def jsonable(value: Any) -> Any:
    """`value` with every nested table value turned into something json.dumps accepts (no recursion:
    clients nest tables as deep as a frame allows)."""
    if not isinstance(value, (dict, list, tuple)):
        return _scalar(value)
    root: Any = {} if isinstance(value, dict) else []
    todo = [(value, root)]
    pop, push = todo.pop, todo.append
    while todo:
        source, target = pop()
        items = ((str(k), v) for k, v in source.items()) if isinstance(source, dict) else enumerate(source)
        for key, child in items:
            if isinstance(child, (dict, list, tuple)):
                converted: Any = {} if isinstance(child, dict) else []
                push((child, converted))
            else:
                converted = _scalar(child)
            if isinstance(target, dict):
                target[key] = converted
            else:
                target.append(converted)
    return root


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value  # Timestamp is an int subclass: seconds, as RabbitMQ shows timestamps
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return calendar.timegm(value.utctimetuple())
    return str(value)


def dumps(value: Any) -> str:
    """json.dumps for jsonable output of any depth (the json module recurses; this walks a stack).

    Handlers pass it to `web.json_response(..., dumps=dumps)` wherever arguments or headers appear.
    """
    if not isinstance(value, (dict, list)):
        return json.dumps(value)
    out: list[str] = []
    append = out.append
    # Work items: (True, literal text) or (False, value to write).
    todo: list[tuple[bool, Any]] = [(False, value)]
    pop, push = todo.pop, todo.append
    while todo:
        literal, item = pop()
        if literal:
            append(item)
        elif isinstance(item, dict):
            append("{")
            push((True, "}"))
            entries = list(item.items())
            for index in range(len(entries) - 1, -1, -1):
                key, child = entries[index]
                push((False, child))
                push((True, (", " if index else "") + json.dumps(str(key)) + ": "))
        elif isinstance(item, list):
            append("[")
            push((True, "]"))
            for index in range(len(item) - 1, -1, -1):
                push((False, item[index]))
                if index:
                    push((True, ", "))
        else:
            append(json.dumps(item))
    return "".join(out)
