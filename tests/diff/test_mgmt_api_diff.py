"""The management API's queues, exchanges, bindings, connections, channels, consumers, overview, nodes and
health checks against RabbitMQ 3.10's: the same scenario in a fresh vhost on both, then every endpoint's
status code, JSON keys and value types compared, and error bodies compared whole.

Leveret may leave out only the keys in OMITTED (each with its reason in docs/compatibility.md); names,
ports, counts of RabbitMQ's own objects and the like differ by nature, so values are compared only where
both brokers must agree (error bodies, the envelope of a paged listing). Skipped when RabbitMQ's
management API (127.0.0.1:15672) is not reachable.
"""

from __future__ import annotations

import time
import urllib.parse
import uuid
from typing import Any, Iterator

import pika
import pytest

from leveret.embedded import EmbeddedBroker
from tests.http.api_client import RABBITMQ_API, call, rabbitmq_api_up

RABBITMQ_AMQP = "amqp://guest:guest@127.0.0.1:5672/"

# Keys RabbitMQ shows that leveret leaves out, by the kind of object (docs/compatibility.md says why).
ERLANG = {"garbage_collection", "reductions", "reductions_details"}
OMITTED = {
    "queue": ERLANG | {"backing_queue_status", "memory", "message_bytes", "message_bytes_paged_out",
                       "message_bytes_persistent", "message_bytes_ram", "message_bytes_ready",
                       "message_bytes_unacknowledged", "messages_paged_out", "messages_persistent",
                       "messages_ram", "messages_ready_ram", "messages_unacknowledged_ram"},
    "connection": ERLANG | {"recv_cnt", "recv_oct", "recv_oct_details", "send_cnt", "send_oct",
                            "send_oct_details", "connected_at"},
    "channel": ERLANG | {"idle_since", "message_stats"},
    "overview": {"churn_rates", "erlang_full_version", "erlang_version", "release_series_support_status"},
    "message_stats": {"confirm", "confirm_details", "return_unroutable", "return_unroutable_details",
                      "drop_unroutable", "drop_unroutable_details", "disk_reads", "disk_reads_details",
                      "disk_writes", "disk_writes_details"},
    "listener": {"socket_opts"},
    "context": {"ssl_opts", "cowboy_opts"},
}


pytestmark = pytest.mark.skipif(not rabbitmq_api_up(), reason="RabbitMQ's management API is not reachable")


class Side:
    """One broker in the comparison: its API, an AMQP connection with a consumer, and the vhost used."""

    def __init__(self, api: str, amqp: str, vhost: str) -> None:
        self.api, self.vhost = api, vhost
        self.v = urllib.parse.quote(vhost, safe="")
        assert call(api, "PUT", f"/vhosts/{self.v}", {}).status == 201
        assert call(api, "PUT", f"/permissions/{self.v}/guest", {"configure": ".*", "write": ".*", "read": ".*"}
                    ).status in (201, 204)
        self.ok("PUT", "/queues/{v}/q1", {"durable": True, "arguments": {"x-max-length": 10}})
        self.ok("PUT", "/exchanges/{v}/x1", {"type": "topic"})
        self.ok("POST", "/bindings/{v}/e/x1/q/q1", {"routing_key": "a.b", "arguments": {"k": "v"}})
        self.ok("POST", "/exchanges/{v}/x1/publish", {"routing_key": "a.b", "payload": "hello",
                                                       "payload_encoding": "string",
                                                       "properties": {"delivery_mode": 2, "headers": {"h": 1}}})
        # No heartbeats: this connection is read only while waiting for RabbitMQ's statistics, and on a loaded
        # machine the module can outlast two heartbeat intervals, after which each broker would drop the
        # consumer at its own moment and the listings of q2 would differ.
        self.connection = pika.BlockingConnection(pika.URLParameters(amqp + self.v + "?heartbeat=0"))
        channel = self.connection.channel()
        channel.basic_qos(prefetch_count=3)
        channel.queue_declare("q2")
        channel.basic_consume("q2", lambda *args: None)
        channel.basic_publish("", "q2", b"x")
        # A round trip after the publish: the broker has routed it when the answer comes (a publish has no
        # answer of its own, and leveret's side, set up last, is not waited for otherwise).
        channel.queue_declare("q2", passive=True)
        self.connection.process_data_events(time_limit=0.2)

    def path(self, template: str) -> str:
        return template.format(v=self.v)

    def ok(self, method: str, template: str, body: Any = None) -> Any:
        answer = call(self.api, method, self.path(template), body)
        assert answer.status in (200, 201, 204), (template, answer)
        return answer.body

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()
        call(self.api, "DELETE", f"/vhosts/{self.v}")


def _wait_for_stats(side: Side) -> None:
    """RabbitMQ fills in a queue's figures on its next statistics emission (every 5 s): wait for them."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        queue, q1 = side.ok("GET", "/queues/{v}/q2"), side.ok("GET", "/queues/{v}/q1")
        # Every figure a listing compares: the queues' own emissions (messages, consumers) and the channels'
        # (message_stats) come at different moments, for q1 and q2 apart.
        if (queue.get("message_stats", {}).get("publish") == 1 and queue.get("consumers") == 1
                and q1.get("messages") == 1 and q1.get("message_stats", {}).get("publish") == 1):
            channels = side.ok("GET", "/vhosts/{v}/channels")
            if channels and "message_stats" in channels[0]:
                return
        side.connection.process_data_events(time_limit=0.5)
    raise AssertionError("RabbitMQ did not emit statistics within 20 s")


@pytest.fixture(scope="module")
def sides() -> Iterator[tuple[Side, Side]]:
    vhost = f"mgmt-diff-{uuid.uuid4().hex[:8]}"
    with EmbeddedBroker() as broker:
        leveret_api = f"http://127.0.0.1:{broker.server.http_port}/api"
        rabbit = leveret = None
        try:
            rabbit = Side(RABBITMQ_API, RABBITMQ_AMQP, vhost)
            leveret = Side(leveret_api, f"amqp://guest:guest@127.0.0.1:{broker.server.port}/", vhost)
            _wait_for_stats(rabbit)
            yield leveret, rabbit
        finally:
            for side in (leveret, rabbit):
                if side is not None:
                    side.close()


def _kind(path: str, key: str) -> str | None:
    """Which OMITTED set applies to the object under `key` at `path`."""
    if key == "message_stats":
        return "message_stats"
    return {"listeners": "listener", "contexts": "context"}.get(key)


def shape_differences(mine: Any, theirs: Any, kind: str | None, path: str = "") -> list[str]:
    """Where `mine` (leveret's) lacks keys of `theirs` (RabbitMQ's) beyond OMITTED[kind], or a value's JSON
    type differs; lists are compared by their first items."""
    if theirs is None or mine is None:
        return []  # null on either side: RabbitMQ shows null for many "not applicable" values
    if isinstance(theirs, bool) or isinstance(mine, bool):
        return [] if type(theirs) is type(mine) else [f"{path}: {type(mine).__name__} vs {type(theirs).__name__}"]
    if isinstance(theirs, (int, float)) and isinstance(mine, (int, float)):
        return [] if isinstance(theirs, float) == isinstance(mine, float) else [
            f"{path}: {mine!r} vs {theirs!r} (int/float)"]
    if type(theirs) is not type(mine):
        return [f"{path}: {type(mine).__name__} vs {type(theirs).__name__}"]
    if isinstance(theirs, list):
        if theirs and mine:
            return shape_differences(mine[0], theirs[0], kind, path + "[0]")
        return []
    if not isinstance(theirs, dict):
        return []
    found = [f"{path}.{key} missing" for key in sorted(set(theirs) - set(mine) - OMITTED.get(kind or "", set()))]
    for key in sorted(set(theirs) & set(mine)):
        found += shape_differences(mine[key], theirs[key], _kind(path, key), f"{path}.{key}")
    return found


ENDPOINTS = [  # (path, the kind of object it shows)
    ("/overview", "overview"),
    ("/queues/{v}", "queue"),
    ("/queues/{v}/q1", "queue"),
    ("/queues/{v}/q2", "queue"),
    ("/queues/{v}/q1/bindings", None),
    ("/exchanges/{v}", None),
    ("/exchanges/{v}/x1", None),
    ("/exchanges/{v}/amq.default", None),
    ("/exchanges/{v}/x1/bindings/source", None),
    ("/exchanges/{v}/x1/bindings/destination", None),
    ("/bindings/{v}", None),
    ("/bindings/{v}/e/x1/q/q1", None),
    ("/vhosts/{v}/connections", "connection"),
    ("/vhosts/{v}/channels", "channel"),
    ("/consumers/{v}", None),
    ("/cluster-name", None),
    ("/extensions", None),
    ("/health/checks/alarms", None),
    ("/health/checks/local-alarms", None),
    # (/health/checks/virtual-hosts is not compared: the shared RabbitMQ reports other tests' vhosts
    # being created or deleted as down; tests/http/test_mgmt_objects.py checks leveret's answer)
    ("/health/checks/protocol-listener/amqp", None),
    ("/aliveness-test/{v}", None),
    ("/queues/{v}?page=1&page_size=1&name=q&columns=name", None),
    ("/queues/{v}?columns=name,messages&sort=name&sort_reverse=true", None),
]


@pytest.mark.parametrize("template,kind", ENDPOINTS, ids=[path for path, _ in ENDPOINTS])
def test_endpoint_has_rabbitmqs_status_keys_and_types(sides: tuple[Side, Side], template: str, kind: str) -> None:
    leveret, rabbit = sides
    mine, theirs = call(leveret.api, "GET", leveret.path(template)), call(rabbit.api, "GET", rabbit.path(template))
    assert mine.status == theirs.status, (mine, theirs)
    assert shape_differences(mine.body, theirs.body, kind) == []


def test_connection_and_channel_details_match(sides: tuple[Side, Side]) -> None:
    leveret, rabbit = sides
    for side in sides:
        name = side.ok("GET", "/vhosts/{v}/connections")[0]["name"]
        side.one = side.ok("GET", "/connections/" + urllib.parse.quote(name, safe=""))  # type: ignore[attr-defined]
        side.channel = side.ok("GET", "/channels/" + urllib.parse.quote(f"{name} (1)", safe=""))  # type: ignore
    assert shape_differences(leveret.one, rabbit.one, "connection") == []  # type: ignore[attr-defined]
    assert shape_differences(leveret.channel, rabbit.channel, "channel") == []  # type: ignore[attr-defined]
    assert (leveret.channel["prefetch_count"], leveret.channel["consumer_count"]) == (3, 1)  # type: ignore


def test_node_has_rabbitmqs_resource_fields(sides: tuple[Side, Side]) -> None:
    leveret, rabbit = sides
    mine, theirs = leveret.ok("GET", "/nodes")[0], rabbit.ok("GET", "/nodes")[0]
    shared = ("name", "type", "running", "os_pid", "processors", "mem_used", "mem_limit", "mem_alarm",
              "mem_calculation_strategy", "disk_free", "disk_free_limit", "disk_free_alarm", "partitions",
              "uptime", "rates_mode", "exchange_types", "auth_mechanisms")
    assert shape_differences({k: mine.get(k) for k in shared}, {k: theirs.get(k) for k in shared}, None) == []
    assert all(key in mine for key in shared)


ERRORS = [  # (method, path, body): answered with the same status and body by both
    ("PUT", "/queues/{v}/q1", {"durable": False}),
    ("PUT", "/queues/{v}/amq.q", {}),
    ("PUT", "/queues/{v}/q3", {"durable": "yes"}),
    ("PUT", "/queues/{v}/q3", {"arguments": {"x-max-length": "abc"}}),
    ("PUT", "/exchanges/{v}/x1", {"type": "direct"}),
    ("PUT", "/exchanges/{v}/amq.foo", {"type": "direct"}),
    ("DELETE", "/exchanges/{v}/amq.direct", None),
    ("DELETE", "/exchanges/{v}/x1?if-unused=true", None),
    ("DELETE", "/exchanges/{v}/nope", None),
    ("DELETE", "/queues/{v}/q1?if-empty=true", None),
    ("DELETE", "/queues/{v}/nope", None),
    ("DELETE", "/queues/{v}/nope/contents", None),
    ("GET", "/queues/{v}/nope", None),
    ("POST", "/queues/{v}/q1/get", {"ackmode": "ack_requeue_true", "encoding": "auto"}),
    ("POST", "/queues/{v}/q1/get", {"count": 1, "encoding": "auto"}),
    ("POST", "/queues/{v}/q1/get", {"count": 1, "ackmode": "ack_requeue_true", "encoding": "bogus"}),
    ("POST", "/queues/{v}/q1/actions", {"action": "bogus"}),
    ("POST", "/queues/{v}/q1/actions", {}),
    ("POST", "/exchanges/{v}/x1/publish", {"routing_key": "r", "payload": "p", "payload_encoding": "bogus",
                                           "properties": {}}),
    ("POST", "/exchanges/{v}/x1/publish", {"routing_key": "r", "payload": "p", "properties": {}}),
    ("POST", "/exchanges/{v}/x1/publish", {"routing_key": "r", "payload": "p", "payload_encoding": "string"}),
    ("POST", "/exchanges/{v}/x1/publish", {"routing_key": "r", "payload": "p", "payload_encoding": "string",
                                           "properties": {"delivery_mode": "x"}}),
    ("POST", "/exchanges/{v}/nope/publish", {"routing_key": "r", "payload": "p", "payload_encoding": "string",
                                             "properties": {}}),
    ("POST", "/bindings/{v}/e/nope/q/q1", {"routing_key": "z"}),
    ("POST", "/bindings/{v}/e/x1/q/nope", {"routing_key": "z"}),
    ("GET", "/bindings/{v}/e/x1/q/q1/a.b", None),
    ("DELETE", "/bindings/{v}/e/x1/q/q1/nothing", None),
    ("GET", "/connections/nope", None),
    ("GET", "/channels/nope", None),
    ("GET", "/consumers/nowhere-at-all", None),
    ("GET", "/aliveness-test/nowhere-at-all", None),
    ("GET", "/queues/{v}?page=0", None),
    ("GET", "/queues/{v}?page=abc", None),
    ("GET", "/queues/{v}?page=1&page_size=1000", None),
    ("GET", "/queues/{v}?page=99", None),
    ("GET", "/queues/{v}?page=1&name=(&use_regex=true", None),
]


@pytest.mark.parametrize("method,template,body", ERRORS, ids=[f"{m} {p} {b}" for m, p, b in ERRORS])
def test_refusal_matches_rabbitmq(sides: tuple[Side, Side], method: str, template: str, body: Any) -> None:
    leveret, rabbit = sides
    theirs = call(rabbit.api, method, rabbit.path(template), body)
    mine = call(leveret.api, method, leveret.path(template), body)
    assert (mine.status, mine.body) == (theirs.status, theirs.body)


LISTINGS = [  # answered with the same values by both (the scenario's queues: "aliveness-test" may be there too)
    "/queues/{v}?page=1&page_size=1&name=Q&columns=name",
    "/queues/{v}?page=2&page_size=1&name=^q[12]$&use_regex=true&columns=name,durable",
    "/queues/{v}?page=1&name=^q&use_regex=true&columns=name,arguments,consumers,messages_ready&sort=name"
    "&sort_reverse=true",
    "/queues/{v}?page=1&name=^q&use_regex=true&columns=name,message_stats.publish&sort=message_stats.publish",
    "/bindings/{v}/e/x1/q/q1?columns=source,destination,destination_type,routing_key,arguments",
    "/queues/{v}/q1/bindings?columns=source,destination,routing_key",
    "/queues/{v}/q1?columns=name,durable,arguments,messages",
    "/exchanges/{v}/x1?columns=name,type,durable",
]


@pytest.mark.parametrize("template", LISTINGS)
def test_listing_values_match(sides: tuple[Side, Side], template: str) -> None:
    leveret, rabbit = sides
    assert leveret.ok("GET", template) == rabbit.ok("GET", template)


def test_a_management_user_is_refused_as_rabbitmq(sides: tuple[Side, Side]) -> None:
    """A user tagged `management`, allowed to configure only names starting "own" in the scenario's vhost."""
    user = f"mgmt-diff-{uuid.uuid4().hex[:8]}"
    steps = [("PUT", "/queues/{v}/other", {}), ("PUT", "/queues/{v}/own1", {}), ("PUT", "/queues/%2F/x", {}),
             ("GET", "/queues/%2F", None), ("GET", "/bindings/%2F", None), ("GET", "/connections", None),
             ("DELETE", "/queues/{v}/q1", None), ("GET", "/nodes", None), ("PUT", "/cluster-name", {"name": "x"}),
             ("GET", "/aliveness-test/{v}", None), ("GET", "/health/checks/alarms", None),
             ("DELETE", "/queues/{v}/own1", None)]
    results = []
    for side in sides:
        call(side.api, "PUT", f"/users/{user}", {"password": "pw", "tags": "management"})
        call(side.api, "PUT", f"/permissions/{side.v}/{user}", {"configure": "^own", "write": ".*", "read": ".*"})
        try:
            answers = [call(side.api, method, side.path(path), body, auth=(user, "pw")) for method, path, body in steps]
            results.append([(answer.status, answer.body) for answer in answers])
        finally:
            call(side.api, "DELETE", f"/users/{user}")
    assert results[0] == results[1]
