"""Policies and operator policies through the management API: RabbitMQ 3.10's shapes, codes and texts, the
queue and exchange fields, who may change them, and durability across a restart."""

from __future__ import annotations

import pika

from leveret.embedded import EmbeddedBroker

from .api_client import api, call

POLICY = {"pattern": "^q", "definition": {"max-length": 2, "message-ttl": 5000}, "apply-to": "queues", "priority": 3}


def test_policies_are_set_listed_read_and_deleted(broker: EmbeddedBroker) -> None:
    base = api(broker)
    assert call(base, "PUT", "/policies/%2F/p", POLICY).status == 201
    assert call(base, "PUT", "/policies/%2F/p", {**POLICY, "priority": 1.5}).status == 204
    assert call(base, "PUT", "/policies/%2F/a", {"pattern": "x", "definition": {"expires": 9}}).status == 201
    shown = {"vhost": "/", "name": "p", "pattern": "^q", "apply-to": "queues",
             "definition": {"max-length": 2, "message-ttl": 5000}, "priority": 1.5}
    a = {"vhost": "/", "name": "a", "pattern": "x", "apply-to": "all", "definition": {"expires": 9}, "priority": 0}
    assert call(base, "GET", "/policies/%2F/p").body == shown
    assert call(base, "GET", "/policies").body == [a, shown]  # by priority, then name
    assert call(base, "GET", "/policies/%2F").body == [a, shown]
    assert call(base, "GET", "/operator-policies").body == []
    assert call(base, "GET", "/policies/%2F/nope").status == 404
    assert call(base, "GET", "/policies/nowhere").status == 404
    assert call(base, "DELETE", "/policies/%2F/a").status == 204
    assert call(base, "DELETE", "/policies/%2F/a").body == {"error": "Object Not Found", "reason": "Not Found"}
    assert call(base, "GET", "/policies").body == [shown]


def test_policy_refusals_are_rabbitmqs(broker: EmbeddedBroker) -> None:
    base = api(broker)
    for body, reason in (
        ({"definition": {"expires": 1}}, "[{key_missing,pattern}]"),
        ({"pattern": "x"}, "[{key_missing,definition}]"),
        ({"pattern": "x", "definition": {"max-length": "x"}},
         "Validation failed\n\n&lt;&lt;\"x\"&gt;&gt; is not a valid maximum length\n"),
        ({"pattern": "x", "definition": {"expires": 1}, "apply-to": "foo"},
         "Validation failed\n\napply-to 'foo' unrecognised; should be 'queues', 'exchanges' or 'all'\n"),
    ):
        assert call(base, "PUT", "/policies/%2F/p", body).body == {"error": "bad_request", "reason": reason}
    assert call(base, "PUT", "/operator-policies/%2F/o", {"pattern": "x", "definition": {"bogus": 1}}).body == {
        "error": "bad_request", "reason": 'Validation failed\n\n[{<<"bogus">>,1}] are not recognised policy settings\n'}
    missing = call(base, "PUT", "/policies/nowhere/p", {"pattern": "x", "definition": {"expires": 1}})
    assert (missing.status, missing.body) == (404, {"error": "not_found", "reason": "vhost_not_found"})
    assert call(base, "GET", "/policies").body == [] and call(base, "GET", "/operator-policies").body == []


def test_queues_and_exchanges_show_their_policies(broker: EmbeddedBroker) -> None:
    base = api(broker)
    call(base, "PUT", "/queues/%2F/q1", {"arguments": {"x-max-length": 1}})
    call(base, "PUT", "/queues/%2F/zz", {})
    call(base, "PUT", "/policies/%2F/p", POLICY)
    call(base, "PUT", "/operator-policies/%2F/o", {"pattern": ".*", "definition": {"message-ttl": 1000},
                                                     "apply-to": "queues"})
    call(base, "PUT", "/policies/%2F/x", {"pattern": "^amq\\.direct$", "definition": {"alternate-exchange": "ae"},
                                          "apply-to": "exchanges"})
    queue = call(base, "GET", "/queues/%2F/q1").body
    assert (queue["policy"], queue["operator_policy"], queue["effective_policy_definition"]) == (
        "p", "o", {"max-length": 2, "message-ttl": 1000})
    listed = {q["name"]: (q["policy"], q["operator_policy"], q["effective_policy_definition"])
              for q in call(base, "GET", "/queues/%2F").body}
    assert listed["zz"] == (None, "o", {"message-ttl": 1000})
    assert call(base, "GET", "/exchanges/%2F/amq.direct").body["policy"] == "x"
    assert "policy" not in call(base, "GET", "/exchanges/%2F/amq.topic").body
    assert broker.server.broker.vhosts["/"].queues["q1"].settings.max_length == 1  # its own argument is lower


def test_who_may_change_policies(broker: EmbeddedBroker) -> None:
    base = api(broker)
    call(base, "PUT", "/vhosts/theirs")
    call(base, "PUT", "/users/maker", {"password": "p", "tags": "policymaker"})
    call(base, "PUT", "/users/viewer", {"password": "p", "tags": "management"})
    call(base, "PUT", "/permissions/theirs/maker", {"configure": ".*", "write": ".*", "read": ".*"})
    call(base, "PUT", "/policies/%2F/root", POLICY)
    body = {"pattern": "x", "definition": {"expires": 5}}
    maker, viewer = ("maker", "p"), ("viewer", "p")
    assert call(base, "PUT", "/policies/theirs/p", body, auth=viewer).body == {
        "error": "not_authorised", "reason": "User not authorised to access object"}
    assert call(base, "GET", "/policies", auth=viewer).body == []
    assert call(base, "GET", "/policies/%2F", auth=viewer).body == {
        "error": "not_authorised", "reason": "User not authorised to access virtual host"}
    assert call(base, "PUT", "/policies/theirs/p", body, auth=maker).status == 201
    assert [p["name"] for p in call(base, "GET", "/policies", auth=maker).body] == ["p"]
    assert call(base, "PUT", "/operator-policies/theirs/o", body, auth=maker).body == {
        "error": "not_authorised", "reason": "Not administrator user"}
    assert call(base, "DELETE", "/policies/theirs/p", auth=maker).status == 204


def test_policies_survive_a_restart_and_apply_to_recovered_queues(tmp_path) -> None:
    data_dir = str(tmp_path / "data")
    with EmbeddedBroker(data_dir=data_dir) as broker:
        base = api(broker)
        call(base, "PUT", "/queues/%2F/q-kept", {"durable": True})
        call(base, "PUT", "/policies/%2F/p", POLICY)
        call(base, "PUT", "/policies/%2F/gone", POLICY)
        call(base, "DELETE", "/policies/%2F/gone")
        call(base, "PUT", "/operator-policies/%2F/p", {"pattern": ".*", "definition": {"max-length": 1}})
        call(base, "PUT", "/policies/%2F/x", {"pattern": "^amq\\.topic$", "definition": {"alternate-exchange": "ae"}})
    with EmbeddedBroker(data_dir=data_dir) as broker:
        base = api(broker)
        assert [p["name"] for p in call(base, "GET", "/policies").body] == ["x", "p"]
        assert [p["name"] for p in call(base, "GET", "/operator-policies").body] == ["p"]
        assert call(base, "GET", "/parameters/operator_policy").body == [{
            "value": {"pattern": ".*", "definition": {"max-length": 1}, "priority": 0, "apply-to": "all"},
            "vhost": "/", "component": "operator_policy", "name": "p"}]
        queue = broker.server.broker.vhosts["/"].queues["q-kept"]
        assert (queue.applied_policy.policy, queue.applied_policy.operator_policy, queue.settings.max_length) == (
            "p", "p", 1)
        assert broker.server.broker.vhosts["/"].exchanges["amq.topic"].policy == "x"


def test_a_stream_keeps_the_lower_of_its_retention_and_the_policys(broker: EmbeddedBroker) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        connection.channel().queue_declare("s1", durable=True, arguments={"x-queue-type": "stream",
                                                                           "x-max-length-bytes": 5_000_000})
    finally:
        connection.close()
    base = api(broker)
    call(base, "PUT", "/policies/%2F/s", {"pattern": "^s", "definition": {"max-age": "1h", "max-length-bytes": 9_000_000,
                                                                          "delivery-limit": 1}, "priority": 1})
    call(base, "PUT", "/policies/%2F/streams", {"pattern": "^s", "definition": {"max-age": "1h",
                                                                                "max-length-bytes": 9_000_000}})
    stream = broker.server.broker.vhosts["/"].queues["s1"]
    assert stream.applied_policy.policy == "streams"  # "s" holds delivery-limit, which streams lack
    assert (stream.stream_store.max_age_ms, stream.stream_store.max_bytes) == (3_600_000, 5_000_000)
    call(base, "DELETE", "/policies/%2F/streams")
    assert (stream.stream_store.max_age_ms, stream.stream_store.max_bytes) == (None, 5_000_000)
