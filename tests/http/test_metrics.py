"""/metrics, /metrics/per-object and /metrics/detailed against an embedded broker, read back with
prometheus-client's parser: rabbitmq_prometheus's names, types and labels, the figures of real queues,
channels and connections, and every metric the stock RabbitMQ-Overview Grafana dashboard queries."""

from __future__ import annotations

import time
import urllib.request
from typing import Any, Iterator

import pika
import pytest
from prometheus_client.parser import text_string_to_metric_families

from leveret.embedded import EmbeddedBroker

from .api_client import api, call

# Every metric name the queries of RabbitMQ 3.10.8's RabbitMQ-Overview dashboard use (rabbitmq-server,
# deps/rabbitmq_prometheus/docker/grafana/dashboards/RabbitMQ-Overview.json at v3.10.8; also grafana.com
# dashboard 10991), each joined with rabbitmq_identity_info on the scrape's instance.
OVERVIEW_DASHBOARD_METRICS = (
    "rabbitmq_build_info", "rabbitmq_channel_consumers", "rabbitmq_channels", "rabbitmq_channels_closed_total",
    "rabbitmq_channels_opened_total", "rabbitmq_connections", "rabbitmq_connections_closed_total",
    "rabbitmq_connections_opened_total", "rabbitmq_consumers", "rabbitmq_disk_space_available_bytes",
    "rabbitmq_global_messages_acknowledged_total", "rabbitmq_global_messages_confirmed_total",
    "rabbitmq_global_messages_delivered_consume_auto_ack_total",
    "rabbitmq_global_messages_delivered_consume_manual_ack_total",
    "rabbitmq_global_messages_delivered_get_auto_ack_total", "rabbitmq_global_messages_delivered_get_manual_ack_total",
    "rabbitmq_global_messages_get_empty_total", "rabbitmq_global_messages_received_confirm_total",
    "rabbitmq_global_messages_received_total", "rabbitmq_global_messages_redelivered_total",
    "rabbitmq_global_messages_routed_total", "rabbitmq_global_messages_unroutable_dropped_total",
    "rabbitmq_global_messages_unroutable_returned_total", "rabbitmq_identity_info", "rabbitmq_process_max_fds",
    "rabbitmq_process_max_tcp_sockets", "rabbitmq_process_open_fds", "rabbitmq_process_open_tcp_sockets",
    "rabbitmq_process_resident_memory_bytes", "rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked",
    "rabbitmq_queues", "rabbitmq_queues_created_total", "rabbitmq_queues_declared_total",
    "rabbitmq_queues_deleted_total", "rabbitmq_resident_memory_limit_bytes",
)


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture
def connection(broker: EmbeddedBroker) -> Iterator[pika.BlockingConnection]:
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        yield conn
    finally:
        conn.close()


def scrape(broker: EmbeddedBroker, path: str) -> dict[str, Any]:
    """The families of one scrape (no credentials, as Prometheus scrapes), by name; each sample's labels
    and value as `samples`."""
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.server.http_port}{path}", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    families = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in families, f"{family.name} written twice"
        families[family.name] = family
    return families


def value(families: dict[str, Any], name: str, **labels: str) -> float:
    """The one sample of `name` with exactly `labels`."""
    family = families[name.removesuffix("_total")]
    found = [s.value for s in family.samples if s.name == name and s.labels == labels]
    assert len(found) == 1, (name, labels, family.samples)
    return found[0]


def test_every_metric_the_overview_dashboard_queries_is_there(broker: EmbeddedBroker) -> None:
    names = {sample.name for family in scrape(broker, "/metrics").values() for sample in family.samples}
    assert sorted(set(OVERVIEW_DASHBOARD_METRICS) - names) == []


def test_identity_and_build_info_carry_rabbitmq_prometheus_labels(broker: EmbeddedBroker) -> None:
    families = scrape(broker, "/metrics")
    identity = families["rabbitmq_identity_info"]
    assert identity.type == "unknown"  # untyped, as rabbitmq_prometheus declares it
    (sample,) = identity.samples
    assert set(sample.labels) == {"rabbitmq_node", "rabbitmq_cluster", "rabbitmq_cluster_permanent_id"}
    assert sample.value == 1
    (build,) = families["rabbitmq_build_info"].samples
    assert set(build.labels) == {"rabbitmq_version", "prometheus_plugin_version", "prometheus_client_version",
                                 "erlang_version"}


def test_per_object_labels_each_queue_channel_and_connection(broker: EmbeddedBroker,
                                                             connection: pika.BlockingConnection) -> None:
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("per-object-q")
    for body in (b"a", b"b", b"c"):
        channel.basic_publish("", "per-object-q", body)
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume("per-object-q", lambda *args: None)  # holds one unacked message
    connection.process_data_events(0)
    method, _, _ = channel.basic_get("per-object-q")  # a second one, unacked on the same channel
    assert method is not None

    families = scrape(broker, "/metrics/per-object")
    queue = {"vhost": "/", "queue": "per-object-q"}
    assert value(families, "rabbitmq_queue_messages_ready", **queue) == 1
    assert value(families, "rabbitmq_queue_messages_unacked", **queue) == 2
    assert value(families, "rabbitmq_queue_messages", **queue) == 3
    assert value(families, "rabbitmq_queue_consumers", **queue) == 1
    (connection_sample,) = families["rabbitmq_connection_channels"].samples
    assert connection_sample.value == 1
    name = connection_sample.labels["channel"]  # RabbitMQ's label for a connection's figures too
    assert value(families, "rabbitmq_channel_consumers", channel=f"{name} (1)") == 1
    assert value(families, "rabbitmq_channel_messages_unacked", channel=f"{name} (1)") == 2
    assert value(families, "rabbitmq_consumer_prefetch", channel=f"{name} (1)") == 1
    assert value(families, "rabbitmq_connections") == 1
    assert value(families, "rabbitmq_channels") == 1
    assert value(families, "rabbitmq_global_consumers", protocol="amqp091") == 1


def test_metrics_sums_over_the_node_without_object_labels(broker: EmbeddedBroker,
                                                          connection: pika.BlockingConnection) -> None:
    channel = connection.channel()
    channel.confirm_delivery()
    for name in ("sum-a", "sum-b"):
        channel.queue_declare(name)
        channel.basic_publish("", name, b"x")
    before = scrape(broker, "/metrics/per-object")
    per_queue = [s.value for s in before["rabbitmq_queue_messages_ready"].samples]
    families = scrape(broker, "/metrics")
    assert value(families, "rabbitmq_queue_messages_ready") == sum(per_queue) >= 2
    assert value(families, "rabbitmq_queues") == len(per_queue)
    assert value(families, "rabbitmq_connections") == 1
    assert value(families, "rabbitmq_channel_consumers") == 0


def test_detailed_gives_the_families_asked_for_in_the_vhosts_asked_for(broker: EmbeddedBroker,
                                                                      connection: pika.BlockingConnection) -> None:
    assert call(api(broker), "PUT", "/vhosts/detailed-v").status == 201
    other = pika.BlockingConnection(pika.URLParameters(broker.url.rsplit("/", 1)[0] + "/detailed-v"))
    try:
        other.channel().queue_declare("in-detailed-v")
    finally:
        other.close()
    families = scrape(broker, "/metrics/detailed?family=queue_consumer_count&vhost=detailed-v")
    assert [s.labels for s in families["rabbitmq_detailed_queue_consumers"].samples] == [
        {"vhost": "detailed-v", "queue": "in-detailed-v"}]
    assert "rabbitmq_detailed_queue_messages_ready" not in families
    assert "rabbitmq_identity_info" in families
    nothing_asked = scrape(broker, "/metrics/detailed")
    assert sorted(nothing_asked) == ["rabbitmq_build_info", "rabbitmq_identity_info"]


def test_node_resources_and_leveret_figures(broker: EmbeddedBroker) -> None:
    families = scrape(broker, "/metrics")
    assert value(families, "rabbitmq_process_open_fds") > 0
    assert value(families, "rabbitmq_process_max_fds") >= value(families, "rabbitmq_process_open_fds")
    assert value(families, "rabbitmq_resident_memory_limit_bytes") == broker.server.memory_alarm.limit
    assert families["rabbitmq_alarms_memory_used_watermark"].type == "unknown"
    assert value(families, "leveret_memory_budget_limit_bytes") == broker.settings.memory_budget


def test_global_message_counters_count_what_clients_did(broker: EmbeddedBroker,
                                                        connection: pika.BlockingConnection) -> None:
    def counter(families: dict[str, Any], name: str) -> float:
        return sum(s.value for s in families[name.removesuffix("_total")].samples if s.name == name)

    names = ("rabbitmq_global_messages_received_total", "rabbitmq_global_messages_routed_total",
             "rabbitmq_global_messages_delivered_consume_manual_ack_total",
             "rabbitmq_global_messages_delivered_get_auto_ack_total", "rabbitmq_global_messages_get_empty_total",
             "rabbitmq_global_messages_acknowledged_total", "rabbitmq_global_messages_delivered_total")
    before = scrape(broker, "/metrics")
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("counted", arguments={"x-queue-type": "quorum"}, durable=True)
    for body in (b"1", b"2", b"3"):
        channel.basic_publish("", "counted", body)
    channel.basic_publish("", "no-such-queue", b"dropped")  # received, not routed
    assert channel.basic_get("counted", auto_ack=True)[0] is not None
    delivered = []
    channel.basic_consume("counted", lambda ch, method, props, body: delivered.append(method.delivery_tag))
    while len(delivered) < 2:
        connection.process_data_events(1)
    channel.basic_ack(delivered[-1], multiple=True)
    assert channel.basic_get("counted", auto_ack=True)[0] is None
    after = scrape(broker, "/metrics")
    assert {name: counter(after, name) - counter(before, name) for name in names} == {
        "rabbitmq_global_messages_received_total": 4, "rabbitmq_global_messages_routed_total": 3,
        "rabbitmq_global_messages_delivered_consume_manual_ack_total": 2,
        "rabbitmq_global_messages_delivered_get_auto_ack_total": 1, "rabbitmq_global_messages_get_empty_total": 1,
        "rabbitmq_global_messages_acknowledged_total": 2, "rabbitmq_global_messages_delivered_total": 3}
    assert value(after, "rabbitmq_global_messages_acknowledged_total", protocol="amqp091",
                 queue_type="rabbit_quorum_queue") >= 2


def test_connections_channels_queues_confirms_and_unroutable_publishes_are_counted(broker: EmbeddedBroker) -> None:
    names = ("rabbitmq_connections_opened_total", "rabbitmq_connections_closed_total",
             "rabbitmq_channels_opened_total", "rabbitmq_channels_closed_total", "rabbitmq_queues_declared_total",
             "rabbitmq_queues_created_total", "rabbitmq_queues_deleted_total",
             "rabbitmq_global_messages_received_confirm_total", "rabbitmq_global_messages_confirmed_total",
             "rabbitmq_global_messages_unroutable_dropped_total", "rabbitmq_global_messages_unroutable_returned_total")

    def counts() -> dict[str, float]:
        families = scrape(broker, "/metrics")
        return {name: sum(s.value for s in families[name.removesuffix("_total")].samples if s.name == name)
                for name in names}

    before = counts()
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    channel = conn.channel()
    channel.confirm_delivery()
    channel.queue_declare("lifecycle-q")
    channel.queue_declare("lifecycle-q")  # declared again, not created
    channel.basic_publish("", "lifecycle-q", b"x")
    channel.basic_publish("", "nowhere", b"dropped")
    with pytest.raises(pika.exceptions.UnroutableError):
        channel.basic_publish("", "nowhere", b"returned", mandatory=True)
    open_now = counts()  # the open channel's confirms are read live
    channel.queue_delete("lifecycle-q")
    conn.channel().close()
    conn.close()
    deadline = time.monotonic() + 10
    while counts()["rabbitmq_connections_closed_total"] == before["rabbitmq_connections_closed_total"]:
        assert time.monotonic() < deadline, "the closed connection was not counted"
        time.sleep(0.05)
    after = counts()
    assert open_now["rabbitmq_global_messages_confirmed_total"] - before["rabbitmq_global_messages_confirmed_total"] == 3
    assert {name: after[name] - before[name] for name in names} == {
        "rabbitmq_connections_opened_total": 1, "rabbitmq_connections_closed_total": 1,
        "rabbitmq_channels_opened_total": 2, "rabbitmq_channels_closed_total": 2,
        "rabbitmq_queues_declared_total": 2, "rabbitmq_queues_created_total": 1, "rabbitmq_queues_deleted_total": 1,
        "rabbitmq_global_messages_received_confirm_total": 3, "rabbitmq_global_messages_confirmed_total": 3,
        "rabbitmq_global_messages_unroutable_dropped_total": 1,
        "rabbitmq_global_messages_unroutable_returned_total": 1}


def test_group_commits_are_timed_and_their_batches_counted(broker: EmbeddedBroker,
                                                           connection: pika.BlockingConnection) -> None:
    before = scrape(broker, "/metrics")
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("durable-q", durable=True)
    for body in (b"1", b"2", b"3"):
        channel.basic_publish("", "durable-q", body, pika.BasicProperties(delivery_mode=2))  # each waits its fsync
    after = scrape(broker, "/metrics")
    assert after["leveret_commit_seconds"].type == "histogram"

    def count(families: dict[str, Any], name: str, suffix: str, **labels: str) -> float:
        (found,) = [s.value for s in families[name].samples if s.name == name + suffix and s.labels == labels]
        return found

    commits = count(after, "leveret_commit_seconds", "_count") - count(before, "leveret_commit_seconds", "_count")
    assert commits >= 3  # one confirmed publish at a time: a commit each, at least
    released = (count(after, "leveret_commit_batch_publishes", "_sum")
                - count(before, "leveret_commit_batch_publishes", "_sum"))
    assert released == 3
    assert (count(after, "leveret_commit_seconds", "_bucket", le="+Inf")
            == count(after, "leveret_commit_seconds", "_count"))
