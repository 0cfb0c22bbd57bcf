"""Field values nested far past Python's recursion limit, as a client may send them: compared, frozen
into binding identities and rendered without recursion (broker/arguments.py, exchanges/base.py)."""

from __future__ import annotations

from leveret.broker.arguments import header_values_equal, short_text, value_text, values_equal
from leveret.broker.exchanges.base import freeze
from leveret.broker.exchanges.headers import compile_binding, headers_match

DEEP = 30_000


def deep(leaf="leaf", depth: int = DEEP):
    value = {"leaf": leaf}
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


def test_deep_values_compare_like_erlang_at_every_level():
    assert values_equal(deep(), deep())
    assert not values_equal(deep(), deep("other"))
    # Inside tables and arrays RabbitMQ compares types exactly: a byte array is no longstr, 1.0 no 1.
    assert not values_equal(deep(b"leaf"), deep("leaf"))
    assert not values_equal({"a": [1, {"b": 2.0}]}, {"a": [1.0, {"b": 2}]})
    assert values_equal({"a": [1, {"b": 2.0}]}, {"a": [1, {"b": 2.0}]})
    assert header_values_equal(deep(), deep()) and not header_values_equal(deep(b"leaf"), deep("leaf"))
    assert not values_equal({"a": 1}, {"a": 1, "b": 2}) and not values_equal([1], [[1]]) and not values_equal([], {})


def test_freeze_is_order_independent_and_distinguishes_structure():
    assert freeze({"a": 1, "b": [2, {"c": 3, "d": 4}]}) == freeze({"b": [2, {"d": 4, "c": 3}], "a": 1})
    assert freeze({"a": [1, 2]}) != freeze({"a": [[1], 2]}) != freeze({"a": [1], "b": 2})
    assert freeze({"a": "b"}) != freeze({"a": {"b": None}})
    assert freeze(deep()) == freeze(deep()) and hash(freeze(deep())) == hash(freeze(deep()))
    assert freeze(deep()) != freeze(deep("other"))


def test_headers_binding_with_deep_values_matches_only_equal_headers():
    match_all, pairs = compile_binding({"x-match": "all", "deep": deep()})
    assert headers_match(match_all, pairs, {"deep": deep(), "other": 1})
    assert not headers_match(match_all, pairs, {"deep": deep("other")})


def test_value_text_is_python_str_for_shallow_values_and_works_for_deep_ones():
    for value in ({"a": [1, b"x", None, (2,), ()]}, [], {}, "s", 3):
        assert value_text(value) == str(value)
    assert value_text(deep()).count("{'k': [") == DEEP // 2
    assert len(short_text(deep())) < 100
