"""Argument values walked without recursion: flatten/unflatten, deep copies, depth checks, and the
definitions' JSON form of values nested far deeper than Python's recursion limit."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from leveret.store.api import BindingDef, Definitions, QueueDef
from leveret.store.definitions import decode_value, encode_value
from leveret.store.values import copy_value, deeper_than, flatten, unflatten

DEEP = 30_000

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=10),
                    st.binary(max_size=10), st.floats(allow_nan=False))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=5), inner, max_size=4)),
                      max_leaves=20)


def deep(depth: int = DEEP, leaf=b"\xff"):
    value = {"leaf": leaf}
    for level in range(depth):
        value = {"k": value} if level % 2 else [value, level]
    return value


def same(a, b) -> bool:
    # Python's == recurses, so deep values are compared through their flat form.
    return flatten(a) == flatten(b)


@settings(max_examples=100, deadline=None)
@given(values)
def test_flatten_and_unflatten_round_trip(value):
    assert unflatten(flatten(value)) == value
    assert unflatten(json.loads(json.dumps(flatten(value, scalar=encode_value))), scalar=decode_value) == value


def test_deep_values_flatten_copy_and_measure_without_recursion():
    value = deep()
    assert same(unflatten(flatten(value)), value)
    copied = copy_value(value)
    assert same(copied, value) and copied is not value
    assert deeper_than(value, DEEP) and not deeper_than(value, DEEP + 1)
    assert not deeper_than({"a": [1, {"b": 2}]}, 3) and deeper_than({"a": [1, {"b": 2}]}, 2)


def test_shallow_values_keep_their_readable_json_and_deep_ones_are_flat():
    shallow = {"x-args": [1, {"b": b"\x00", "d": Decimal("1.5"), "t": datetime.datetime(2024, 1, 2)}]}
    assert "$flat" not in json.dumps(encode_value(shallow))
    assert decode_value(json.loads(json.dumps(encode_value(shallow)))) == shallow
    encoded = json.dumps(encode_value(deep()))
    assert encoded.startswith('{"$flat": ')
    assert same(decode_value(json.loads(encoded)), deep())
    # A real table that looks like the tag is not mistaken for it.
    assert decode_value(json.loads(json.dumps(encode_value({"$flat": [1]})))) == {"$flat": [1]}


def test_deep_binding_arguments_give_a_stable_key_and_definitions_copy_deeply():
    binding = BindingDef("/", "x", "q", "queue", "", {"deep": deep()})
    assert binding.key() == BindingDef("/", "x", "q", "queue", "", {"deep": deep()}).key()
    assert binding.key() != BindingDef("/", "x", "q", "queue", "", {"deep": deep(leaf=b"other")}).key()
    shallow = BindingDef("/", "x", "q", "queue", "", {"b": 1, "a": [2]})
    assert shallow.key()[-1] == '{"a": [2], "b": 1}'  # unchanged format: keys written by earlier versions still match
    defs = Definitions()
    defs.apply_put(binding)
    defs.apply_put(QueueDef("/", "q", arguments={"deep": deep()}))
    copied = defs.copy()
    assert same(copied.queues[("/", "q")].arguments, defs.queues[("/", "q")].arguments)
    assert copied.queues[("/", "q")].arguments is not defs.queues[("/", "q")].arguments
    assert list(copied.bindings) == list(defs.bindings)
