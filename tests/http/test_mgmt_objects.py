"""The management API's queues, exchanges, bindings, connections and checks against an embedded broker,
driven by pika clients: what each endpoint changes and answers (RabbitMQ's shapes are compared in
tests/diff/test_mgmt_api_diff.py)."""

from __future__ import annotations

import urllib.parse
from typing import Any, Iterator

import pika
import pytest

from leveret.broker.vhost import Broker
from leveret.clock import ManualClock
from leveret.embedded import EmbeddedBroker
from leveret.http.rates import IDLE_AFTER, Rates
from tests.http.api_client import api, call


@pytest.fixture
def connection(broker: EmbeddedBroker) -> Iterator[Any]:
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        yield conn
    finally:
        if conn.is_open:
            conn.close()


def ok(broker: EmbeddedBroker, method: str, path: str, body: Any = None) -> Any:
    answer = call(api(broker), method, path, body)
    assert answer.status in (200, 201, 204), answer
    return answer.body


def test_message_stats_count_what_the_broker_did(broker: EmbeddedBroker, connection: Any) -> None:
    channel = connection.channel()
    channel.confirm_delivery()
    channel.exchange_declare("in", "fanout")
    channel.queue_declare("counted")
    channel.queue_bind("counted", "in")
    for _ in range(3):
        channel.basic_publish("in", "", b"m")
    channel.basic_publish("", "nowhere", b"lost")
    method, _, _ = channel.basic_get("counted")
    channel.basic_ack(method.delivery_tag)
    method, _, _ = channel.basic_get("counted")
    channel.basic_nack(method.delivery_tag, requeue=True)
    method, _, _ = channel.basic_get("counted", auto_ack=True)
    assert channel.basic_get("counted")[0] is not None  # the requeued one, redelivered; left unacked

    stats = ok(broker, "GET", "/queues/%2F/counted")["message_stats"]
    counts = {k: v for k, v in stats.items() if not k.endswith("_details")}
    assert counts == {"publish": 3, "deliver": 0, "deliver_no_ack": 0, "get": 3, "get_no_ack": 1,
                      "get_empty": 0, "ack": 1, "redeliver": 1, "deliver_get": 4}
    assert stats["publish_details"] == {"rate": 0.0}
    exchange = ok(broker, "GET", "/exchanges/%2F/in")["message_stats"]
    assert (exchange["publish_in"], exchange["publish_out"]) == (3, 3)
    overview = ok(broker, "GET", "/overview")["message_stats"]
    assert (overview["publish"], overview["get"], overview["ack"]) == (4, 3, 1)
    # a deleted queue's counts stay in the totals
    channel.queue_delete("counted")
    assert ok(broker, "GET", "/overview")["message_stats"]["ack"] == 1


def test_rates_are_the_difference_of_two_samples_per_second() -> None:
    clock = ManualClock()
    broker = Broker(clock)
    vhost = broker.vhosts["/"]
    queue, _, _ = vhost.declare_queue("q")
    rates = Rates(broker)
    rates.sample()
    for _ in range(10):
        vhost.publish("", "q", message())
    clock.advance(5)
    rates.sample()
    stats = rates.message_stats(("queue", "/", "q"), queue.stats, ("publish",))
    assert stats == {"publish": 10, "publish_details": {"rate": 2.0}}
    depth = rates.depth_details(("queue", "/", "q"), (10, 10, 0))
    assert depth["messages_details"] == {"rate": 2.0}
    assert rates.rates(("queue", "/", "unknown")) is None


def message() -> Any:
    from leveret.amqp.properties import BasicProperties
    from leveret.broker.message import Message

    return Message("", "q", BasicProperties(), b"x")


def test_queue_put_delete_and_purge_answer_as_rabbitmq(broker: EmbeddedBroker, connection: Any) -> None:
    base = api(broker)
    assert call(base, "PUT", "/queues/%2F/work", {"durable": "false", "arguments": {"x-max-length": 5}}).status == 201
    assert call(base, "PUT", "/queues/%2F/work", {"durable": False, "arguments": {"x-max-length": 5}}).status == 204
    refused = call(base, "PUT", "/queues/%2F/work", {"durable": True})
    assert refused.status == 400
    assert refused.body["reason"] == ("inequivalent arg 'durable' for queue 'work' in vhost '/': "
                                      "received 'true' but current is 'false'")
    assert call(base, "PUT", "/queues/%2F/amq.mine", {}).body == {"error": "not_authorised", "reason": "Access refused."}
    assert call(base, "PUT", "/queues/%2F/x", {"durable": "yes"}).body["reason"] == ["not_boolean", "yes"]

    channel = connection.channel()
    for n in range(5):
        channel.basic_publish("", "work", str(n).encode())
    in_use = call(base, "DELETE", "/queues/%2F/work?if-empty=true")
    assert in_use.body == {"error": "bad_request", "reason": "queue 'work' in vhost '/' not empty"}
    assert call(base, "DELETE", "/queues/%2F/work/contents?count=2").status == 204
    assert [m["payload"] for m in ok(broker, "POST", "/queues/%2F/work/get",
                                     {"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto"})] == ["2", "3", "4"]
    assert call(base, "DELETE", "/queues/%2F/work/contents").status == 204
    assert ok(broker, "GET", "/queues/%2F/work")["messages"] == 0
    assert call(base, "DELETE", "/queues/%2F/work?if-empty=true").status == 204
    assert call(base, "DELETE", "/queues/%2F/work").status == 404


def test_get_ackmodes_encodings_and_dead_lettering(broker: EmbeddedBroker, connection: Any) -> None:
    channel = connection.channel()
    channel.queue_declare("dead")
    channel.queue_declare("live", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"})
    props = pika.BasicProperties(headers={"h": 1}, delivery_mode=2, correlation_id="c")
    channel.basic_publish("", "live", b"\xff\x00binary", props)
    channel.basic_publish("", "live", b"hello world", props)
    get = "/queues/%2F/live/get"
    first = ok(broker, "POST", get, {"count": "1", "ackmode": "reject_requeue_true", "encoding": "auto"})
    assert first[0]["payload_encoding"] == "base64" and first[0]["payload_bytes"] == 8
    assert first[0]["properties"] == {"headers": {"h": 1}, "delivery_mode": 2, "correlation_id": "c"}
    cut = ok(broker, "POST", get, {"count": 2, "ackmode": "ack_requeue_true", "encoding": "base64", "truncate": 2})
    assert [(m["payload"], m["redelivered"], m["message_count"]) for m in cut] == [("/wA=", True, 1), ("aGU=", False, 0)]
    ok(broker, "POST", get, {"count": 1, "ackmode": "reject_requeue_false", "encoding": "auto"})
    dead = ok(broker, "GET", "/queues/%2F/dead")
    assert dead["messages"] == 1
    assert call(api(broker), "POST", get, {"count": 1, "ackmode": "ack_requeue_true", "encoding": "x"}).body == {
        "error": "bad_request", "reason": "Unsupported encoding. Please use auto or base64."}
    assert call(api(broker), "POST", get, {"ackmode": "ack_requeue_true"}).body["reason"] == "[{key_missing,count}]"


def test_bindings_post_list_and_delete_by_properties_key(broker: EmbeddedBroker) -> None:
    base = api(broker)
    ok(broker, "PUT", "/queues/%2F/bq", {})
    ok(broker, "PUT", "/exchanges/%2F/bx", {"type": "direct"})
    posted = call(base, "POST", "/bindings/%2F/e/bx/q/bq", {"routing_key": "a b~", "arguments": {"k": "v"}})
    assert posted.status == 201
    row = ok(broker, "GET", "/bindings/%2F/e/bx/q/bq")[0]
    assert row["properties_key"].startswith("a+b%7E~")
    assert posted.headers["Location"] == "bq/" + urllib.parse.quote(row["properties_key"], safe="")
    one = "/bindings/%2F/e/bx/q/bq/" + urllib.parse.quote(row["properties_key"], safe="")
    assert ok(broker, "GET", one) == row
    assert ok(broker, "GET", "/exchanges/%2F/bx/bindings/source") == [row]
    assert [b["source"] for b in ok(broker, "GET", "/queues/%2F/bq/bindings")] == ["", "bx"]
    assert call(base, "DELETE", one).status == 204
    assert call(base, "DELETE", one).status == 404
    assert call(base, "POST", "/bindings/%2F/e/nope/q/bq", {}).body == {
        "error": "not_found", "reason": "no exchange 'nope' in vhost '/'"}


def test_exchange_publish_routes_and_refuses_as_rabbitmq(broker: EmbeddedBroker) -> None:
    base = api(broker)
    ok(broker, "PUT", "/queues/%2F/target", {"durable": True})
    publish = {"routing_key": "target", "payload": "aGk=", "payload_encoding": "base64",
               "properties": {"delivery_mode": 2, "headers": {"x": "y"}}}
    assert ok(broker, "POST", "/exchanges/%2F/amq.default/publish", publish) == {"routed": True}
    assert ok(broker, "POST", "/exchanges/%2F/amq.direct/publish", publish) == {"routed": False}
    got = ok(broker, "POST", "/queues/%2F/target/get", {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"})
    assert (got[0]["payload"], got[0]["properties"]["headers"]) == ("hi", {"x": "y"})
    assert call(base, "POST", "/exchanges/%2F/amq.default/publish", {**publish, "payload_encoding": "x"}).body[
        "reason"] == ["unsupported_encoding", "x"]
    assert call(base, "POST", "/exchanges/%2F/amq.default/publish",
                {**publish, "properties": {"delivery_mode": "x"}}).body["reason"] == ["not_int", "delivery_mode"]
    assert call(base, "DELETE", "/exchanges/%2F/amq.direct").status == 401


def test_deleting_a_connection_closes_it_with_the_reason(broker: EmbeddedBroker, connection: Any) -> None:
    name = ok(broker, "GET", "/connections")[0]["name"]
    quoted = urllib.parse.quote(name, safe="")
    assert ok(broker, "GET", f"/connections/{quoted}")["user"] == "guest"
    assert [c["name"] for c in ok(broker, "GET", f"/connections/{quoted}/channels")] == []
    connection.channel()
    assert [c["number"] for c in ok(broker, "GET", "/vhosts/%2F/channels")] == [1]
    assert ok(broker, "GET", "/channels/" + urllib.parse.quote(f"{name} (1)", safe=""))["number"] == 1
    closing = call(api(broker), "DELETE", f"/connections/{quoted}", None)
    assert closing.status == 204
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
        connection.process_data_events(time_limit=5)
    assert (closed.value.reply_code, closed.value.reply_text) == (320, "CONNECTION_FORCED - Closed via management plugin")


def test_paged_listing_columns_and_sorting(broker: EmbeddedBroker) -> None:
    for name in ("b1", "a2", "c3"):
        ok(broker, "PUT", f"/queues/%2F/{name}", {})
    page = ok(broker, "GET", "/queues/%2F?page=2&page_size=1&columns=name&sort=name&sort_reverse=true")
    assert page == {"filtered_count": 3, "item_count": 1, "items": [{"name": "b1"}], "page": 2, "page_count": 3,
                    "page_size": 1, "total_count": 3}
    assert ok(broker, "GET", "/queues?page=1&name=^[ab]&use_regex=true&columns=name")["items"] == [
        {"name": "a2"}, {"name": "b1"}]
    assert ok(broker, "GET", "/queues?columns=name,message_stats.publish") == [
        {"name": n, "message_stats": {"publish": 0}} for n in ("a2", "b1", "c3")]
    base = api(broker)
    assert call(base, "GET", "/queues?page=0").body == {
        "error": "invalid_pagination_parameters",
        "reason": "Invalid pagination parameters: page number 0, page size undefined"}
    assert call(base, "GET", "/queues?page=9").body["error"] == "page_out_of_range"
    assert call(base, "GET", "/queues?page=x").body == {"error": "bad_request",
                                                          "reason": "Pagination parameters are invalid"}


def test_health_checks_aliveness_and_cluster_name(broker: EmbeddedBroker) -> None:
    base = api(broker)
    for check in ("alarms", "local-alarms", "virtual-hosts", "protocol-listener/amqp",
                  f"port-listener/{broker.server.port}"):
        assert call(base, "GET", f"/health/checks/{check}").status == 200, check
    missing = call(base, "GET", "/health/checks/protocol-listener/stomp")
    assert (missing.status, missing.body["missing"]) == (503, "stomp")
    assert ok(broker, "GET", "/aliveness-test/%2F") == {"status": "ok"}
    assert call(base, "GET", "/aliveness-test/nowhere").status == 404
    assert call(base, "PUT", "/cluster-name", {"name": "rabbit-ish"}).status == 204
    assert ok(broker, "GET", "/cluster-name") == {"name": "rabbit-ish"}
    assert ok(broker, "GET", "/overview")["cluster_name"] == "rabbit-ish"
    assert ok(broker, "GET", "/extensions") == []


def test_a_management_user_sees_only_its_own_connections(broker: EmbeddedBroker, connection: Any) -> None:
    ok(broker, "PUT", "/users/watcher", {"password": "pw", "tags": "management"})
    ok(broker, "PUT", "/permissions/%2F/watcher", {"configure": ".*", "write": ".*", "read": ".*"})
    assert call(api(broker), "GET", "/connections", auth=("watcher", "pw")).body == []
    assert len(ok(broker, "GET", "/connections")) == 1


def test_sampling_stops_while_nobody_reads_rates() -> None:
    clock = ManualClock()
    broker = Broker(clock)
    vhost = broker.vhosts["/"]
    vhost.declare_queue("q")
    rates = Rates(broker)
    rates.sample()
    clock.advance(IDLE_AFTER + 1)
    assert not rates.watched  # the timer's tick takes no sample now
    vhost.publish("", "q", message())
    rates.used()  # a request after the idle spell samples afresh: no rate across the gap
    assert rates.watched and rates.rates(("queue", "/", "q")) is None
    clock.advance(5)
    rates.sample()
    assert rates.rates(("queue", "/", "q")) is not None
