"""Runtime parameters and global parameters through the management API, in RabbitMQ 3.10's shapes, codes
and texts (each checked against it), durable across a restart."""

from __future__ import annotations

import concurrent.futures
from typing import Any, Callable

from leveret.broker.errors import PreconditionFailed
from leveret.embedded import EmbeddedBroker

from .api_client import api, call


class Needs:
    """A test component: a value must be an object with key `ok`; records what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def validate(self, vhost: str, name: str, value: Any) -> None:
        if not isinstance(value, dict) or "ok" not in value:
            raise PreconditionFailed("Key \"ok\" not found in " + name)

    def applied(self, vhost: str, name: str, value: Any) -> None:
        self.events.append(("applied", vhost, name, value))

    def cleared(self, vhost: str, name: str) -> None:
        self.events.append(("cleared", vhost, name))


def on_loop(broker: EmbeddedBroker, fn: Callable[[], Any]) -> Any:
    """Run `fn` on the broker's event loop (where components are called) and return its result."""
    done: concurrent.futures.Future = concurrent.futures.Future()

    def run() -> None:
        try:
            done.set_result(fn())
        except BaseException as exc:
            done.set_exception(exc)

    broker._loop.call_soon_threadsafe(run)
    return done.result(timeout=10)


def register(broker: EmbeddedBroker, name: str = "test-component") -> Needs:
    component = Needs()
    on_loop(broker, lambda: broker.server.broker.parameters.register(name, component))
    return component


def test_parameters_are_set_listed_read_and_deleted(broker: EmbeddedBroker) -> None:
    component = register(broker)
    base = api(broker)
    assert call(base, "PUT", "/vhosts/pv").status == 201
    path = "/parameters/test-component/pv/p1"
    assert call(base, "PUT", path, {"value": {"ok": 1}}).status == 201
    assert call(base, "PUT", path, {"value": {"ok": 2}, "component": "test-component"}).status == 204
    row = {"value": {"ok": 2}, "vhost": "pv", "component": "test-component", "name": "p1"}
    assert call(base, "GET", path).body == row
    assert call(base, "GET", "/parameters").body == [row]
    assert call(base, "GET", "/parameters/test-component").body == [row]
    assert call(base, "GET", "/parameters/test-component/pv").body == [row]
    assert call(base, "GET", "/parameters/test-component/%2F").body == []
    assert call(base, "GET", "/parameters/other").body == []
    assert call(base, "GET", "/parameters/test-component/nowhere").status == 404
    assert call(base, "GET", "/parameters/test-component/pv/nothing").body == {
        "error": "Object Not Found", "reason": "Not Found"}
    assert component.events == [("applied", "pv", "p1", {"ok": 1}), ("applied", "pv", "p1", {"ok": 2})]
    assert call(base, "DELETE", path).status == 204
    assert call(base, "DELETE", path).status == 404
    assert component.events[-1] == ("cleared", "pv", "p1")
    assert call(base, "GET", "/parameters").body == []


def test_parameter_refusals_are_rabbitmqs(broker: EmbeddedBroker) -> None:
    register(broker)
    base = api(broker)
    unknown = call(base, "PUT", "/parameters/foo/%2F/x", {"value": {"a": 1}})
    assert (unknown.status, unknown.body) == (400, {
        "error": "bad_request", "reason": "Validation failed\n\ncomponent foo not found\n"})
    refused = call(base, "PUT", "/parameters/test-component/%2F/x", {"value": {"a": 1}})
    assert (refused.status, refused.body) == (400, {
        "error": "bad_request", "reason": 'Validation failed\n\nKey "ok" not found in x\n'})
    no_vhost = call(base, "PUT", "/parameters/foo/nope/x", {"value": {"a": 1}})
    assert (no_vhost.status, no_vhost.body) == (404, {"error": "not_found", "reason": "vhost_not_found"})
    assert call(base, "PUT", "/parameters/test-component/%2F/x", {"component": "x"}).body == {
        "error": "bad_request", "reason": "[{key_missing,value}]"}
    assert call(base, "PUT", "/parameters/test-component/%2F/x", b"nonjson").body == {
        "error": "bad_request", "reason": "not_json"}
    assert call(base, "DELETE", "/parameters/foo/%2F/x").status == 404
    assert call(base, "GET", "/parameters").body == []


def test_vhost_limits_are_the_vhost_limits_parameter(broker: EmbeddedBroker) -> None:
    base = api(broker)
    call(base, "PUT", "/vhost-limits/%2F/max-queues", {"value": 5})
    row = {"value": {"max-queues": 5}, "vhost": "/", "component": "vhost-limits", "name": "limits"}
    assert call(base, "GET", "/parameters").body == [row]
    assert call(base, "GET", "/parameters/vhost-limits/%2F/limits").body == row
    # A PUT replaces them all, as RabbitMQ's does.
    assert call(base, "PUT", "/parameters/vhost-limits/%2F/limits", {"value": {"max-connections": 3}}).status == 204
    assert call(base, "GET", "/vhost-limits/%2F").body == [{"vhost": "/", "value": {"max-connections": 3}}]
    unrecognised = 'Validation failed\n\nUnrecognised terms [{&lt;&lt;"max-x"&gt;&gt;,3}] in limits\n'
    assert call(base, "PUT", "/parameters/vhost-limits/%2F/limits", {"value": {"max-x": 3}}).body == {
        "error": "bad_request", "reason": unrecognised}
    assert call(base, "PUT", "/parameters/vhost-limits/%2F/limits", {"value": "x"}).body == {
        "error": "bad_request", "reason": 'Validation failed\n\nlimits not a list &lt;&lt;"x"&gt;&gt;\n'}
    assert call(base, "DELETE", "/parameters/vhost-limits/%2F/limits").status == 204
    assert call(base, "GET", "/vhost-limits").body == [] and call(base, "GET", "/parameters").body == []


def test_global_parameters_take_any_value(broker: EmbeddedBroker) -> None:
    base = api(broker)
    assert call(base, "PUT", "/global-parameters/g1", {"value": {"a": 1}}).status == 201
    assert call(base, "PUT", "/global-parameters/g1", {"value": {"a": 2}}).status == 204
    assert call(base, "PUT", "/global-parameters/g0", {"value": "text"}).status == 201
    assert call(base, "GET", "/global-parameters/g1").body == {"value": {"a": 2}, "name": "g1"}
    assert call(base, "GET", "/global-parameters").body == [{"name": "g0", "value": "text"},
                                                            {"name": "g1", "value": {"a": 2}}]
    assert call(base, "PUT", "/global-parameters/g2", {"name": "g2"}).body == {
        "error": "bad_request", "reason": "[{key_missing,value}]"}
    assert call(base, "DELETE", "/global-parameters/g1").status == 204
    assert call(base, "DELETE", "/global-parameters/g1").body == {"error": "Object Not Found", "reason": "Not Found"}
    assert call(base, "GET", "/global-parameters/g1").status == 404


def test_only_policymakers_and_administrators_reach_parameters(broker: EmbeddedBroker) -> None:
    register(broker)
    base = api(broker)
    call(base, "PUT", "/vhosts/theirs")
    call(base, "PUT", "/parameters/test-component/%2F/p", {"value": {"ok": 1}})
    call(base, "PUT", "/users/maker", {"password": "p", "tags": "policymaker"})
    call(base, "PUT", "/users/viewer", {"password": "p", "tags": "management"})
    call(base, "PUT", "/permissions/theirs/maker", {"configure": ".*", "write": ".*", "read": ".*"})
    refused = {"error": "not_authorised", "reason": "User not authorised to access object"}
    for path in ("/parameters", "/global-parameters", "/parameters/test-component/theirs"):
        assert call(base, "GET", path, auth=("viewer", "p")).body == refused
    assert call(base, "GET", "/parameters", auth=("maker", "p")).body == []  # not the one in "/"
    assert call(base, "GET", "/parameters/test-component/%2F", auth=("maker", "p")).body == refused
    assert call(base, "PUT", "/parameters/test-component/theirs/q", {"value": {"ok": 1}},
                auth=("maker", "p")).status == 201
    assert call(base, "PUT", "/global-parameters/g", {"value": 1}, auth=("maker", "p")).status == 201


def test_parameters_survive_a_restart_and_reach_a_component_registered_after(tmp_path) -> None:
    data_dir = str(tmp_path / "data")
    with EmbeddedBroker(data_dir=data_dir) as broker:
        register(broker)
        base = api(broker)
        call(base, "PUT", "/vhosts/doomed")
        call(base, "PUT", "/parameters/test-component/%2F/kept", {"value": {"ok": [1, {"$bytes": "x"}]}})
        call(base, "PUT", "/parameters/test-component/doomed/gone", {"value": {"ok": 1}})
        call(base, "PUT", "/parameters/test-component/%2F/cleared", {"value": {"ok": 1}})
        call(base, "DELETE", "/parameters/test-component/%2F/cleared")
        call(base, "PUT", "/global-parameters/g", {"value": [1, "two"]})
        assert call(base, "DELETE", "/vhosts/doomed").status == 204
    with EmbeddedBroker(data_dir=data_dir) as broker:
        base = api(broker)
        kept = {"value": {"ok": [1, {"$bytes": "x"}]}, "vhost": "/", "component": "test-component", "name": "kept"}
        assert call(base, "GET", "/parameters").body == [kept]
        assert call(base, "GET", "/global-parameters").body == [{"name": "g", "value": [1, "two"]}]
        component = register(broker)
        assert component.events == [("applied", "/", "kept", {"ok": [1, {"$bytes": "x"}]})]
        call(base, "PUT", "/vhosts/doomed")
        assert call(base, "GET", "/parameters/test-component/doomed").body == []


def test_the_cluster_name_is_the_global_parameter_cluster_name_and_survives_a_restart(tmp_path) -> None:
    # As RabbitMQ 3.10: PUT /api/cluster-name stores the global parameter "cluster_name", and a PUT of that
    # parameter renames the cluster; deleting it gives the node name back.
    data_dir = str(tmp_path / "data")
    with EmbeddedBroker(data_dir=data_dir) as broker:
        base = api(broker)
        node = call(base, "GET", "/cluster-name").body["name"]
        assert call(base, "PUT", "/cluster-name", {"name": "edge-1"}).status == 204
        assert call(base, "GET", "/global-parameters").body == [{"name": "cluster_name", "value": "edge-1"}]
    with EmbeddedBroker(data_dir=data_dir) as broker:
        base = api(broker)
        assert call(base, "GET", "/cluster-name").body == {"name": "edge-1"}
        assert call(base, "GET", "/overview").body["cluster_name"] == "edge-1"
        assert call(base, "PUT", "/global-parameters/cluster_name", {"value": "edge-2"}).status == 204
        assert call(base, "GET", "/cluster-name").body == {"name": "edge-2"}
        assert call(base, "DELETE", "/global-parameters/cluster_name").status == 204
        assert call(base, "GET", "/cluster-name").body == {"name": node}
