"""Definitions through the management API: RabbitMQ's JSON exported, imported (JSON body or the UI's form
upload) with its refusals, a round trip between two brokers with passwords intact, and load_definitions."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import pika
import pytest

from leveret.config import SettingsError
from leveret.embedded import EmbeddedBroker

from .api_client import api, call

FULL = {"configure": ".*", "write": ".*", "read": ".*"}


def populate(base: str) -> None:
    """A vhost with one of everything definitions carry, and a user with a password."""
    call(base, "PUT", "/vhosts/v1", {"description": "orders", "tags": "a,b"})
    call(base, "PUT", "/users/alice", {"password": "secret", "tags": "management"})
    call(base, "PUT", "/permissions/v1/alice", FULL)
    call(base, "PUT", "/topic-permissions/v1/alice", {"exchange": "amq.topic", "write": "^a", "read": ".*"})
    call(base, "PUT", "/queues/v1/q1", {"durable": True, "arguments": {"x-max-length": 5}})
    call(base, "PUT", "/queues/v1/q2", {"durable": False, "auto_delete": True})
    call(base, "PUT", "/exchanges/v1/x1", {"type": "topic", "durable": True})
    call(base, "PUT", "/exchanges/v1/x2", {"type": "fanout", "durable": True, "internal": True})
    call(base, "POST", "/bindings/v1/e/x1/q/q1", {"routing_key": "a.#", "arguments": {"k": 1}})
    call(base, "POST", "/bindings/v1/e/x1/e/x2", {"routing_key": "b"})
    call(base, "PUT", "/policies/v1/p", {"pattern": "^q", "definition": {"max-length": 3}, "priority": 2})
    call(base, "PUT", "/operator-policies/v1/o", {"pattern": "^q", "definition": {"expires": 600000}})
    call(base, "PUT", "/vhost-limits/v1/max-queues", {"value": 10})
    call(base, "PUT", "/global-parameters/g", {"value": {"k": [1, "two"]}})


def test_a_vhost_exports_as_rabbitmq_does(broker: EmbeddedBroker) -> None:
    base = api(broker)
    populate(base)
    connection = pika.BlockingConnection(pika.URLParameters(broker.url.rstrip("/") + "/v1"))
    try:
        connection.channel().queue_declare("mine", exclusive=True)
        exported = call(base, "GET", "/definitions/v1").body
    finally:
        connection.close()
    assert list(exported) == ["rabbit_version", "parameters", "policies", "queues", "exchanges", "bindings"]
    assert exported["queues"] == [{"name": "q1", "durable": True, "auto_delete": False, "arguments": {"x-max-length": 5}},
                                  {"name": "q2", "durable": False, "auto_delete": True, "arguments": {}}]
    assert [x["name"] for x in exported["exchanges"]] == ["x1", "x2"]  # not "" nor amq.*
    assert exported["bindings"] == [
        {"source": "x1", "destination": "q1", "destination_type": "queue", "routing_key": "a.#", "arguments": {"k": 1}},
        {"source": "x1", "destination": "x2", "destination_type": "exchange", "routing_key": "b", "arguments": {}}]
    assert sorted(p["component"] for p in exported["parameters"]) == ["operator_policy", "vhost-limits"]
    assert exported["policies"] == [{"vhost": "v1", "name": "p", "pattern": "^q", "apply-to": "all",
                                     "definition": {"max-length": 3}, "priority": 2}]
    assert call(base, "GET", "/definitions/nowhere").status == 404


def test_everything_round_trips_into_a_fresh_broker_with_passwords_intact(broker: EmbeddedBroker) -> None:
    base = api(broker)
    populate(base)
    exported = call(base, "GET", "/definitions").body
    assert list(exported)[:4] == ["rabbit_version", "rabbitmq_version", "product_name", "product_version"]
    alice = next(u for u in exported["users"] if u["name"] == "alice")
    assert alice["password_hash"] and alice["tags"] == ["management"]
    with EmbeddedBroker() as other:
        other_base = api(other)
        assert call(other_base, "POST", "/definitions", exported).status == 204
        again = call(other_base, "GET", "/definitions").body
        guest = next(u for u in exported["users"] if u["name"] == "guest")
        assert next(u for u in again["users"] if u["name"] == "guest") == guest  # the hash, not a new one
        assert again == exported
        assert call(other_base, "GET", "/whoami", auth=("alice", "secret")).body["name"] == "alice"
        queue = other.server.broker.vhosts["v1"].queues["q1"]
        assert queue.applied_policy.policy == "p" and queue.settings.max_length == 3


def test_refused_imports_answer_as_rabbitmq_and_stop_there(broker: EmbeddedBroker) -> None:
    base = api(broker)
    call(base, "PUT", "/vhosts/v2")
    for document, reason in (
        ({"queues": [{"name": "z", "vhost": "v2", "durable": True, "auto_delete": False,
                      "arguments": {"x-max-length": "bad"}}]},
         'precondition_failed: invalid arg \'x-max-length\' for queue \'z\' in vhost \'v2\': "expected integer, '
         'got longstr"'),
        ({"queues": [{"name": "z", "vhost": "nope", "durable": True}]}, ["no_such_vhost", "nope"]),
        ({"policies": [{"vhost": "v2", "name": "bad", "pattern": "x", "definition": {"max-length": -1}}]},
         "Validation failed\n\n-1 is not a valid maximum length\n (v2/bad)"),
        (b"[]", "failed_to_parse_json"),
        (b"{nope", "failed_to_parse_json"),
    ):
        assert call(base, "POST", "/definitions", document).body == {"error": "bad_request", "reason": reason}
    partial = {"queues": [{"name": "first", "vhost": "v2", "durable": True},
                          {"name": "second", "vhost": "v2", "durable": True, "arguments": {"x-expires": 0}}],
               "bindings": [{"source": "missing", "vhost": "v2", "destination": "first", "destination_type": "queue",
                             "routing_key": ""}]}
    assert call(base, "POST", "/definitions", partial).status == 400
    assert sorted(broker.server.broker.vhosts["v2"].queues) == ["first"]  # what came before the refusal stays
    del partial["queues"][1]
    assert call(base, "POST", "/definitions", partial).status == 204  # a binding whose source is missing: skipped
    missing = call(base, "POST", "/definitions/nowhere", {"queues": []})
    assert (missing.status, missing.body) == (404, {"error": "not_found", "reason": "vhost_not_found"})
    call(base, "PUT", "/users/viewer", {"password": "p", "tags": "management"})
    assert call(base, "GET", "/definitions", auth=("viewer", "p")).status == 401


def test_rabbitmqs_transient_parameters_are_skipped(broker: EmbeddedBroker) -> None:
    """RabbitMQ's export can catch its own bookkeeping (an exchange being deleted marks itself with an
    exchange-delete-in-progress parameter): an import skips it and imports the rest."""
    base = api(broker)
    call(base, "PUT", "/vhosts/v3")
    document = {"parameters": [{"vhost": "v3", "component": "exchange-delete-in-progress", "name": "x",
                                "value": "true"}],
                "queues": [{"name": "after", "vhost": "v3", "durable": True}]}
    assert call(base, "POST", "/definitions", document).status == 204
    assert sorted(broker.server.broker.vhosts["v3"].queues) == ["after"]


def test_the_management_uis_form_upload_imports(broker: EmbeddedBroker) -> None:
    document = {"vhosts": [{"name": "uploaded"}], "queues": [{"name": "q", "vhost": "uploaded", "durable": True}]}

    async def upload() -> int:
        form = aiohttp.FormData()
        form.add_field("file", json.dumps(document).encode(), filename="defs.json", content_type="application/json")
        guest = "Basic " + base64.b64encode(b"guest:guest").decode()
        async with aiohttp.ClientSession(headers={"Authorization": guest}) as session:
            async with session.post(f"{api(broker)}/definitions", data=form) as response:
                return response.status

    assert asyncio.run(upload()) == 204
    assert "q" in broker.server.broker.vhosts["uploaded"].queues


def test_load_definitions_imports_a_file_at_start(tmp_path) -> None:
    path = tmp_path / "definitions.json"
    path.write_text(json.dumps({
        "users": [{"name": "ops", "password_hash": "", "tags": "administrator"}],
        "vhosts": [{"name": "boot"}],
        "permissions": [{"user": "ops", "vhost": "boot", "configure": ".*", "write": ".*", "read": ".*"}],
        "queues": [{"name": "ready", "vhost": "boot", "durable": True, "auto_delete": False, "arguments": {}}],
        "policies": [{"vhost": "boot", "name": "cap", "pattern": ".*", "definition": {"max-length": 7}}],
    }))
    with EmbeddedBroker(load_definitions=str(path)) as broker:
        queue = broker.server.broker.vhosts["boot"].queues["ready"]
        assert queue.settings.max_length == 7 and ("ops", "boot") in broker.server.users.permissions
    path.write_text(json.dumps({"queues": [{"name": "q", "vhost": "missing", "durable": True}]}))
    with pytest.raises(RuntimeError) as refused:
        EmbeddedBroker(load_definitions=str(path)).start()
    assert isinstance(refused.value.__cause__, SettingsError)
    assert str(refused.value.__cause__) == f"Invalid value for load_definitions ({path}): ['no_such_vhost', 'missing']"
