"""broker/policies.py: which policy applies (priority, apply-to, pattern, the queue type's keys), operator
policies' lower values, a policy against the queue's own arguments, and changes applied at once."""

from __future__ import annotations

import pytest

from leveret.broker.policy_definitions import PolicyInvalid, erlang_term


def bodies(vhost, name):
    return [e.message.body for e in vhost.queues[name].ready]


def test_the_highest_priority_matching_policy_wins_whole(broker, vhost):
    broker.policies.put("/", "low", "^q", {"message-ttl": 1000, "max-length": 9}, "queues", 0)
    broker.policies.put("/", "high", "q", {"max-length": 2}, "queues", 5)
    broker.policies.put("/", "other", "^x", {"max-length": 1}, "queues", 9)
    broker.policies.put("/", "exchanges", ".*", {"max-length": 1}, "exchanges", 10)
    queue, _, _ = vhost.declare_queue("q1")
    assert (queue.applied_policy.policy, queue.applied_policy.definition) == ("high", {"max-length": 2})
    assert queue.settings.max_length == 2 and queue.settings.message_ttl is None  # nothing merged from "low"
    assert vhost.declare_queue("aq")[0].applied_policy.policy == "high"  # unanchored, as RabbitMQ's re:run
    broker.policies.put("/", "tie", "q", {"max-length": 3}, "all", 5)
    assert queue.applied_policy.policy == "high"  # equal priorities: the lowest name


def test_a_policy_with_a_key_the_queue_type_lacks_does_not_apply(broker, vhost):
    broker.policies.put("/", "quorum-only", ".*", {"delivery-limit": 3, "message-ttl": 100}, "queues", 1)
    broker.policies.put("/", "fallback", ".*", {"message-ttl": 200}, "queues", 0)
    classic = vhost.declare_queue("c")[0]
    quorum = vhost.declare_queue("qq", durable=True, arguments={"x-queue-type": "quorum"})[0]
    assert (classic.applied_policy.policy, classic.settings.message_ttl) == ("fallback", 200)
    assert (quorum.applied_policy.policy, quorum.settings.delivery_limit) == ("quorum-only", 3)
    broker.policies.put("/", "streams-only", ".*", {"max-age": "1h"}, "streams", 9)
    broker.policies.put("/", "classic-only", "^c$", {"max-length": 1}, "classic_queues", 9)
    assert classic.applied_policy.policy == "classic-only" and quorum.applied_policy.policy == "quorum-only"


def test_operator_policies_take_the_lower_value(broker, vhost):
    broker.policies.put("/", "p", ".*", {"max-length": 5, "message-ttl": 1000, "overflow": "reject-publish"})
    broker.policies.put("/", "o", ".*", {"max-length": 3, "message-ttl": 9000, "expires": 60000}, operator=True)
    queue = vhost.declare_queue("q")[0]
    assert queue.applied_policy == ("p", "o", {"max-length": 3, "message-ttl": 1000, "overflow": "reject-publish",
                                               "expires": 60000})
    assert (queue.settings.max_length, queue.settings.message_ttl, queue.settings.expires) == (3, 1000, 60000)


def test_the_lower_of_argument_and_policy_wins_for_ttl_expires_and_lengths(broker, vhost):
    broker.policies.put("/", "p", ".*", {"message-ttl": 500, "expires": 90000, "max-length": 4,
                                         "max-length-bytes": 100})
    low = vhost.declare_queue("low", arguments={"x-message-ttl": 100, "x-expires": 5000, "x-max-length": 1,
                                                "x-max-length-bytes": 10})[0]
    high = vhost.declare_queue("high", arguments={"x-message-ttl": 900, "x-expires": 99000, "x-max-length": 9,
                                                  "x-max-length-bytes": 999})[0]
    settings = [(q.settings.message_ttl, q.settings.expires, q.settings.max_length, q.settings.max_length_bytes)
                for q in (low, high)]
    assert settings == [(100, 5000, 1, 10), (500, 90000, 4, 100)]


def test_the_argument_wins_for_dead_lettering_and_overflow(broker, vhost, session):
    broker.policies.put("/", "p", "^q", {"dead-letter-exchange": "pol", "dead-letter-routing-key": "pol-key",
                                         "overflow": "reject-publish", "max-length": 1})
    own = vhost.declare_queue("q-own", arguments={"x-dead-letter-exchange": "arg", "x-overflow": "drop-head"})[0]
    bare = vhost.declare_queue("q-bare")[0]
    assert (own.settings.dead_letter_exchange, own.settings.dead_letter_routing_key, own.settings.overflow) == (
        "arg", "pol-key", "drop-head")
    assert (bare.settings.dead_letter_exchange, bare.settings.overflow) == ("pol", "reject-publish")
    for body in "ab":
        session.publish("q-own", body)
        session.publish("q-bare", body)
    assert bodies(vhost, "q-own") == [b"b"] and bodies(vhost, "q-bare") == [b"a"]


def test_changes_apply_to_existing_queues_at_once_and_a_deleted_policy_leaves_the_arguments(broker, vhost, session):
    vhost.declare_queue("dead")
    queue = vhost.declare_queue("q", arguments={"x-max-length": 10, "x-dead-letter-exchange": "",
                                                "x-dead-letter-routing-key": "dead"})[0]
    for body in "abcde":
        session.publish("q", body)
    assert broker.policies.put("/", "p", "^q$", {"max-length": 2}) is True
    assert bodies(vhost, "q") == [b"d", b"e"] and bodies(vhost, "dead") == [b"a", b"b", b"c"]
    assert broker.policies.put("/", "p", "^q$", {"max-length": 3}) is False
    assert broker.policies.delete("/", "p") is True and broker.policies.delete("/", "p") is False
    assert queue.settings.max_length == 10 and queue.applied_policy.policy is None
    for body in "fgh":
        session.publish("q", body)
    assert bodies(vhost, "q") == [b"d", b"e", b"f", b"g", b"h"]


def test_a_policy_ttl_expires_new_messages_and_expires_deletes_an_unused_queue(broker, vhost, session, tick):
    vhost.declare_queue("q")
    session.publish("q", "before")
    broker.policies.put("/", "p", "^q$", {"message-ttl": 1000, "expires": 5000})
    session.publish("q", "after")
    tick(1.5)
    assert bodies(vhost, "q") == [b"before", b"after"]  # only a head expires, and "before" has no TTL
    session.channel.get("q", no_ack=True)
    tick(0.1)
    assert bodies(vhost, "q") == []
    tick(5)
    assert "q" not in vhost.queues


def test_an_exchange_takes_its_policy_alternate_exchange_unless_it_has_its_own(broker, vhost, session):
    vhost.declare_queue("caught")
    vhost.declare_exchange("ae", "fanout")
    vhost.bind_queue("caught", "ae")
    vhost.declare_exchange("x-plain", "direct")
    vhost.declare_exchange("x-own", "direct", arguments={"alternate-exchange": "elsewhere"})
    broker.policies.put("/", "p", "^x", {"alternate-exchange": "ae"}, "exchanges")
    assert vhost.exchanges["x-plain"].policy == "p" and vhost.exchanges["x-own"].alternate_exchange == "elsewhere"
    assert vhost.exchanges[""].policy is None and vhost.exchanges["amq.direct"].policy is None
    session.publish("nowhere", "one", exchange="x-plain")
    session.publish("nowhere", "two", exchange="x-own")
    assert bodies(vhost, "caught") == [b"one"]
    vhost.declare_exchange("x-later", "direct")
    assert vhost.exchanges["x-later"].policy_alternate == "ae"


@pytest.mark.parametrize("definition, text", [
    ({"message-ttl": -1}, "-1 is not a valid message TTL"),
    ({"expires": 0}, "0 is not a valid queue expiry"),
    ({"max-length": "x"}, '<<"x">> is not a valid maximum length'),
    ({"overflow": "foo"}, '<<"foo">> is not a valid overflow value'),
    ({"message-ttl": -1, "expires": 0}, "0 is not a valid queue expiry"),
    ({"bogus": 1, "message-ttl": -1}, "-1 is not a valid message TTL"),
    ({"bogus": 1, "zz": {"a": [1, "b"]}}, '[{<<"bogus">>,1},{<<"zz">>,#{<<"a">> => [1,<<"b">>]}}] are not '
                                           'recognised policy settings'),
    ({"single-active-consumer": True}, '[{<<"single-active-consumer">>,true}] are not recognised policy settings'),
    ({}, "no policy provided"),
])
def test_refused_definitions_are_rabbitmqs(broker, definition, text):
    with pytest.raises(PolicyInvalid) as refused:
        broker.policies.put("/", "p", ".*", definition)
    assert refused.value.text == text
    assert broker.policies.list() == []


def test_operator_policies_take_only_numeric_limits(broker):
    with pytest.raises(PolicyInvalid) as refused:
        broker.policies.put("/", "o", ".*", {"overflow": "drop-head"}, operator=True)
    assert refused.value.text == '[{<<"overflow">>,<<"drop-head">>}] are not recognised policy settings'


def test_pattern_apply_to_and_priority_are_checked(broker):
    for args, text in (
        (("(", {"expires": 1}), 'pattern should be regular expression but is invalid: {"missing ), unterminated '
                                'subpattern",0}'),
        ((1, {"expires": 1}), "pattern should be a binary but was 1"),
        ((".*", {"expires": 1}, "foo"), "apply-to 'foo' unrecognised; should be 'queues', 'exchanges' or 'all'"),
        ((".*", {"expires": 1}, "all", "5"), 'priority should be a number, actually was <<"5">>'),
    ):
        with pytest.raises(PolicyInvalid) as refused:
            broker.policies.put("/", "p", *args)
        assert refused.value.text == text


def test_erlang_terms_nest_without_recursion():
    deep: list = []
    value = deep
    for _ in range(5000):
        value.append([])
        value = value[0]
    assert erlang_term(deep) == "[" * 5001 + "]" * 5001
    assert erlang_term({"k": None, "f": 1.5, "t": False}) == '#{<<"k">> => null, <<"f">> => 1.5, <<"t">> => false}'
