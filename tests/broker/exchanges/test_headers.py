"""Headers exchange matching, as observed on RabbitMQ 3.10."""

import pytest

from leveret.broker.errors import PreconditionFailed
from leveret.broker.exchanges.headers import HeadersExchange

CASES = [{}, {"a": 1}, {"a": "x"}, {"a": 1, "b": "two"}, {"b": "two"}, {"x-foo": "bar"}, {"a": 1, "b": b"two"}]


def matched(arguments: dict) -> list[dict]:
    x = HeadersExchange("h")
    x.bind("q", "", arguments)
    return [h for h in CASES if list(x.route("", h))]


def test_all_with_void_value_matches_presence():
    assert matched({"x-match": "all", "a": None}) == [{"a": 1}, {"a": "x"}, {"a": 1, "b": "two"}, {"a": 1, "b": b"two"}]


def test_any_with_no_keys_matches_nothing_and_all_with_no_keys_matches_everything():
    assert matched({"x-match": "any"}) == []
    assert matched({"x-match": "all"}) == CASES


def test_x_keys_are_ignored_unless_with_x():
    assert matched({"x-match": "all", "x-foo": "bar"}) == CASES
    assert matched({"x-match": "any", "x-foo": "bar"}) == []
    assert matched({"x-match": "all-with-x", "x-foo": "bar"}) == [{"x-foo": "bar"}]
    assert matched({"x-match": "any-with-x", "x-foo": "bar"}) == [{"x-foo": "bar"}]


def test_any_matches_one_key_and_all_needs_every_key():
    assert matched({"x-match": "any", "a": 1, "b": "two"}) == [{"a": 1}, {"a": 1, "b": "two"}, {"b": "two"}, {"a": 1, "b": b"two"}]
    assert matched({"a": 1, "b": "two"}) == [{"a": 1, "b": "two"}, {"a": 1, "b": b"two"}]


def test_message_without_headers_matches_only_empty_all():
    x = HeadersExchange("h")
    x.bind("q1", "", {"x-match": "all"})
    x.bind("q2", "", {"a": 1})
    assert list(x.route("", None)) == ["q1"]


def test_invalid_x_match_is_refused_with_rabbitmq_texts():
    x = HeadersExchange("h")
    with pytest.raises(PreconditionFailed) as e:
        x.bind("q", "", {"x-match": "foo"})
    assert e.value.text == 'Invalid x-match field value <<"foo">>; expected all, any, all-with-x, or any-with-x'
    with pytest.raises(PreconditionFailed) as e:
        x.bind("q", "", {"x-match": 1})
    assert e.value.text == "Invalid x-match field type signedint (value 1); expected longstr"
    assert not x.has_bindings


def test_unbind_removes_only_that_binding():
    x = HeadersExchange("h")
    x.bind("q", "", {"a": 1})
    x.bind("q", "", {"b": 2})
    x.unbind("q", "", {"a": 1})
    assert list(x.route("", {"a": 1})) == []
    assert list(x.route("", {"b": 2})) == ["q"]
