"""The management HTTP API against an embedded broker: RabbitMQ's shapes, delayed counts, auth, metrics."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

import pika
import pytest

from leveret.embedded import EmbeddedBroker
from leveret.http.encoding import jsonable


def get(broker: EmbeddedBroker, path: str, auth: tuple[str, str] | None = ("guest", "guest")):
    """(status, headers, body bytes) of GET path on the broker's HTTP port."""
    request = urllib.request.Request(f"http://127.0.0.1:{broker.server.http_port}{path}")
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def get_json(broker: EmbeddedBroker, path: str) -> Any:
    status, _, body = get(broker, path)
    assert status == 200, body
    return json.loads(body)


def by_name(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(r for r in rows if r["name"] == name)


def publish_delayed(channel: Any, exchange: str, n: int) -> None:
    channel.exchange_declare(exchange, "x-delayed-message", arguments={"x-delayed-type": "direct"})
    channel.confirm_delivery()  # each publish returns once the broker has taken it
    for _ in range(n):
        channel.basic_publish(exchange, "key", b"later", pika.BasicProperties(headers={"x-delay": 60000}))


def test_embedded_broker_serves_http_on_an_ephemeral_port(broker: EmbeddedBroker) -> None:
    assert broker.server.http_port not in (None, 0, 15672)


def test_queues_report_ready_unacked_and_consumers_in_rabbitmq_fields(broker, channel) -> None:
    channel.queue_declare("work", durable=True, arguments={"x-max-length": 10})
    channel.confirm_delivery()
    for body in (b"a", b"b", b"c"):
        channel.basic_publish("", "work", body)
    method, _, _ = channel.basic_get("work", auto_ack=False)
    assert method is not None
    channel.basic_consume("work", lambda *a: None, auto_ack=False)

    rows = get_json(broker, "/api/queues")
    work = by_name(rows, "work")
    assert work["vhost"] == "/" and work["durable"] is True and work["auto_delete"] is False
    assert work["exclusive"] is False and work["type"] == "classic"
    assert work["arguments"] == {"x-max-length": 10}
    assert work["consumers"] == 1
    # the consumer may already hold the two ready ones: the total and the unacked floor are fixed
    assert work["messages"] == 3
    assert work["messages_ready"] + work["messages_unacknowledged"] == 3
    assert work["messages_unacknowledged"] >= 1


def test_queues_of_one_vhost_use_the_url_encoded_name(broker, channel) -> None:
    channel.queue_declare("only-here")
    assert [r["name"] for r in get_json(broker, "/api/queues/%2F")] == ["only-here"]


def test_unknown_vhost_is_not_found(broker: EmbeddedBroker) -> None:
    status, _, body = get(broker, "/api/queues/nowhere")
    assert status == 404
    assert json.loads(body)["error"] == "Object Not Found"


def test_delayed_exchange_reports_pending_messages(broker, channel) -> None:
    publish_delayed(channel, "later", 4)
    rows = get_json(broker, "/api/exchanges/%2F")
    later = by_name(rows, "later")
    assert later["type"] == "x-delayed-message"
    assert later["arguments"] == {"x-delayed-type": "direct"}
    assert later["delayed_messages"] == 4
    # only delayed exchanges carry the extension field
    assert "delayed_messages" not in by_name(rows, "amq.direct")


def test_exchanges_list_the_default_exchange_with_an_empty_name(broker: EmbeddedBroker) -> None:
    rows = get_json(broker, "/api/exchanges")
    default = by_name(rows, "")
    assert (default["type"], default["durable"], default["internal"]) == ("direct", True, False)


def test_overview_totals_count_objects_and_messages(broker, channel) -> None:
    channel.queue_declare("q")
    channel.confirm_delivery()
    channel.basic_publish("", "q", b"x")
    publish_delayed(channel, "later", 2)

    overview = get_json(broker, "/api/overview")
    assert overview["product_name"] == "leveret"
    assert overview["object_totals"]["queues"] == 1
    assert overview["object_totals"]["connections"] == 1
    assert overview["object_totals"]["channels"] == 1
    totals = overview["queue_totals"]
    assert (totals["messages"], totals["messages_ready"], totals["messages_unacknowledged"]) == (1, 1, 0)
    assert overview["delayed_messages"] == 2
    assert overview["memory_budget"] == {"limit": broker.settings.memory_budget, "used": 1}
    http = [l for l in overview["listeners"] if l["protocol"] == "http"]
    assert http[0]["port"] == broker.server.http_port


@pytest.mark.parametrize("auth", [None, ("guest", "wrong"), ("nobody", "guest")])
def test_api_refuses_missing_or_wrong_credentials_with_401(broker: EmbeddedBroker, auth) -> None:
    status, headers, body = get(broker, "/api/overview", auth=auth)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic ")
    if auth is None:
        assert body == b""  # as RabbitMQ: the challenge alone
    else:
        assert json.loads(body)["error"] == "not_authorized"


def test_user_without_management_tag_is_refused(broker: EmbeddedBroker) -> None:
    broker.server.users.add_user("app", "secret", ())
    assert get(broker, "/api/queues", auth=("app", "secret"))[0] == 401


def test_metrics_expose_prometheus_gauges(broker, channel) -> None:
    channel.queue_declare('odd"name')
    channel.confirm_delivery()
    channel.basic_publish("", 'odd"name', b"x")
    publish_delayed(channel, "later", 3)

    status, headers, body = get(broker, "/metrics/per-object", auth=None)  # like rabbitmq_prometheus: no login
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert "# TYPE rabbitmq_queue_messages gauge" in text
    assert 'rabbitmq_queue_messages{vhost="/",queue="odd\\"name"} 1' in text
    assert 'rabbitmq_queue_consumers{vhost="/",queue="odd\\"name"} 0' in text
    assert 'leveret_exchange_delayed_messages{vhost="/",exchange="later"} 3' in text
    assert "rabbitmq_connections 1" in text.splitlines()
    assert "leveret_memory_budget_used_bytes 1" in text.splitlines()
    assert f"leveret_memory_budget_limit_bytes {broker.settings.memory_budget}" in text.splitlines()


def test_table_values_become_json_values() -> None:
    assert jsonable({"b": b"\xff", "d": Decimal("1.5"), "i": Decimal("2"), "l": [b"x", {"n": None}]}) == {
        "b": "\ufffd", "d": 1.5, "i": 2, "l": ["x", {"n": None}],
    }


def test_http_port_below_zero_disables_the_api() -> None:
    with EmbeddedBroker(http_port=-1) as b:
        assert b.server.http_port is None
