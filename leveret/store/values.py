"""Argument values (field-table values: tables, arrays, scalars) walked without recursion.

A client may nest tables in queue, exchange and binding arguments as deep as its frame allows (tens of
thousands of levels), and durable definitions keep those arguments. Python's `json` and `copy.deepcopy`
recurse, so deep values are handled here with explicit stacks:

* `deeper_than(value, limit)`: whether nesting exceeds `limit` (shallow values keep their readable JSON);
* `flatten(value)` / `unflatten(tokens)`: a preorder list of tokens that JSON writes at constant depth.
  A table is the marker ``{"$table": n}`` followed by n (key, value) pairs, an array ``{"$array": n}``
  followed by n values; scalars go through the caller's `scalar` function (definitions.py tags bytes,
  decimals and datetimes as ``{"$bytes": ...}`` and the like, which never collide with the markers);
* `copy_value(value)`: a deep copy of the tables and arrays in a value (tuples and scalars are shared:
  they are immutable here).
"""

from __future__ import annotations

from typing import Any, Callable

TABLE = "$table"
ARRAY = "$array"


def _same(value: Any) -> Any:
    return value


def deeper_than(value: Any, limit: int) -> bool:
    """True when tables and arrays nest more than `limit` levels in value (a scalar has depth 0)."""
    todo = [(value, 0)]
    pop, push = todo.pop, todo.append
    while todo:
        item, depth = pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        depth += 1
        if depth > limit:
            return True
        for child in children:
            if isinstance(child, (dict, list, tuple)):
                push((child, depth))
    return False


def flatten(value: Any, scalar: Callable[[Any], Any] = _same, sort_keys: bool = False) -> list:
    """value as a flat token list (see the module docstring); `sort_keys` gives tables a canonical order."""
    out: list = []
    append = out.append
    todo: list = [(False, value)]
    pop, push = todo.pop, todo.append
    while todo:
        is_key, item = pop()
        if is_key:
            append(item)
        elif isinstance(item, dict):
            append({TABLE: len(item)})
            entries = sorted(item.items(), key=lambda kv: str(kv[0])) if sort_keys else list(item.items())
            for key, child in reversed(entries):
                push((False, child))
                push((True, str(key)))
        elif isinstance(item, (list, tuple)):
            append({ARRAY: len(item)})
            for index in range(len(item) - 1, -1, -1):
                push((False, item[index]))
        else:
            append(scalar(item))
    return out


def unflatten(tokens: list, scalar: Callable[[Any], Any] = _same) -> Any:
    """The value `flatten` turned into tokens; ValueError when the tokens do not describe one value."""
    root: list = []
    # Open containers: [container, values still to come, key waiting for its value (tables)].
    open_: list[list] = [[root, 1, None]]
    index = 0
    count = len(tokens)
    while open_:
        frame = open_[-1]
        if frame[1] == 0:
            open_.pop()
            continue
        if index >= count:
            raise ValueError("flattened value ends early")
        container = frame[0]
        if isinstance(container, dict) and frame[2] is None:
            key = tokens[index]
            index += 1
            if not isinstance(key, str):
                raise ValueError("flattened table key is not a string")
            frame[2] = key
            continue
        token = tokens[index]
        index += 1
        child: Any
        size = None
        if isinstance(token, dict) and len(token) == 1 and (TABLE in token or ARRAY in token):
            child = {} if TABLE in token else []
            size = token.get(TABLE, token.get(ARRAY))
            if not isinstance(size, int) or size < 0:
                raise ValueError("flattened container has a bad size")
        else:
            child = scalar(token)
        if isinstance(container, dict):
            container[frame[2]] = child
            frame[2] = None
        else:
            container.append(child)
        frame[1] -= 1
        if size is not None:
            open_.append([child, size, None])
    if index != count:
        raise ValueError("flattened value has trailing tokens")
    return root[0]


def copy_value(value: Any) -> Any:
    """A copy of value in which every table (dict) and array (list) is new."""
    if not isinstance(value, (dict, list)):
        return value
    root = {} if isinstance(value, dict) else []
    todo = [(value, root)]
    pop, push = todo.pop, todo.append
    while todo:
        source, target = pop()
        if isinstance(source, dict):
            for key, child in source.items():
                if isinstance(child, (dict, list)):
                    copied: Any = {} if isinstance(child, dict) else []
                    push((child, copied))
                    target[key] = copied
                else:
                    target[key] = child
        else:
            for child in source:
                if isinstance(child, (dict, list)):
                    copied = {} if isinstance(child, dict) else []
                    push((child, copied))
                    target.append(copied)
                else:
                    target.append(child)
    return root
