"""Direct, fanout and default exchanges, plus binding bookkeeping shared by all types."""

from leveret.broker.exchanges import EXCHANGE_TYPES, exchange_class
from leveret.broker.exchanges.direct import DefaultExchange, DirectExchange
from leveret.broker.exchanges.fanout import FanoutExchange


def test_direct_routes_exact_key_only():
    x = DirectExchange("d")
    x.bind("q1", "k")
    x.bind("q2", "k")
    x.bind("q3", "other")
    assert list(x.route("k", None)) == ["q1", "q2"]
    assert list(x.route("K", None)) == []


def test_bind_is_idempotent_and_unbind_of_missing_binding_reports_false():
    x = DirectExchange("d")
    assert x.bind("q", "k") is True
    assert x.bind("q", "k") is False
    assert x.binding_count == 1
    assert x.unbind("q", "nope") is False
    assert x.unbind("q", "k") is True
    assert not x.has_bindings


def test_bindings_differing_in_arguments_are_distinct():
    x = DirectExchange("d")
    x.bind("q", "k", {"a": 1})
    x.bind("q", "k", {"a": 2})
    assert x.binding_count == 2
    assert list(x.route("k", None)) == ["q"]


def test_remove_destination_drops_all_its_bindings():
    x = DirectExchange("d")
    x.bind("q", "a")
    x.bind("q", "b")
    x.bind("r", "a")
    assert x.remove_destination("q") == 2
    assert list(x.route("a", None)) == ["r"]
    assert list(x.route("b", None)) == []


def test_fanout_ignores_routing_key_and_routes_each_destination_once():
    x = FanoutExchange("f")
    x.bind("q1", "a")
    x.bind("q1", "b")
    x.bind("q2", "")
    assert list(x.route("whatever", None)) == ["q1", "q2"]


def test_default_exchange_routes_by_queue_name():
    queues = {"q": "Q"}
    x = DefaultExchange(queues)
    assert list(x.route("q", None)) == ["Q"]
    assert list(x.route("nope", None)) == []


def test_registry_knows_the_four_standard_types():
    assert set(EXCHANGE_TYPES) >= {"direct", "fanout", "topic", "headers"}
    assert exchange_class("x-nope") is None
