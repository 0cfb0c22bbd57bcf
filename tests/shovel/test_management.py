"""Shovels managed as in RabbitMQ: the `shovel` runtime parameter, GET /api/shovels, restart, /metrics, the
CLI, and shovels that survive a restart of the broker they run in."""

from __future__ import annotations

import urllib.request

import pytest
from click.testing import CliRunner

from leveret.cli import main
from leveret.embedded import EmbeddedBroker
from tests.http.api_client import api, call
from tests.shovel.helpers import drain, publish, queue_length, settled, wait_for

pytestmark = pytest.mark.timeout(60)

LOCAL = {"src-uri": "amqp://", "src-queue": "in", "dest-uri": "amqp://", "dest-queue": "out"}


def shovels(broker: EmbeddedBroker, vhost: str | None = None) -> list[dict]:
    path = "/shovels" if vhost is None else f"/shovels/{vhost}"
    answer = call(api(broker), "GET", path)
    assert answer.status == 200
    return answer.body


def running(broker: EmbeddedBroker, name: str) -> dict:
    return wait_for(lambda: next((row for row in shovels(broker) if row["name"] == name
                                  and row["state"] == "running"), None), 20, f"shovel {name} to run")


def test_a_parameter_defines_a_shovel_listed_in_the_plugins_shape(leveret_broker) -> None:
    broker = leveret_broker
    base = api(broker)
    assert call(base, "PUT", "/parameters/shovel/%2F/s", {"value": LOCAL}).status == 201
    row = running(broker, "s")
    assert set(row) == {"node", "timestamp", "name", "vhost", "type", "state", "src_uri", "src_protocol",
                        "dest_protocol", "dest_uri", "src_queue", "dest_queue", "forwarded"}
    assert (row["vhost"], row["type"], row["src_protocol"], row["src_uri"]) == ("/", "dynamic", "amqp091", "amqp://")
    assert [r["name"] for r in shovels(broker, "%2F")] == ["s"]
    assert call(base, "GET", "/shovels/nosuchvhost").status == 404
    publish(broker.url, "in", 20, declare=False)
    assert len(drain(broker.url, "out", 20)) == 20
    settled(broker, 20)  # counted once confirmed, which can be after the delivery

    metrics = urllib.request.urlopen(f"http://127.0.0.1:{broker.server.http_port}/metrics", timeout=10).read().decode()
    assert 'leveret_shovels{state="running"} 1' in metrics
    assert "leveret_shovel_messages_moved_total 20" in metrics

    assert call(base, "DELETE", "/shovels/vhost/%2F/s/restart").status == 204
    running(broker, "s")
    assert call(base, "DELETE", "/shovels/vhost/%2F/nope/restart").status == 404

    assert call(base, "DELETE", "/parameters/shovel/%2F/s").status == 204
    wait_for(lambda: shovels(broker) == [], 10, "the shovel to go")
    publish(broker.url, "in", 3, declare=False)
    assert queue_length(broker.url, "in") == 3  # nothing consumes it any more


def test_a_refused_value_is_rabbitmqs_400(leveret_broker) -> None:
    answer = call(api(leveret_broker), "PUT", "/parameters/shovel/%2F/bad", {"value": {**LOCAL, "ack-mode": "x"}})
    assert answer.status == 400
    assert answer.body["reason"].startswith("Validation failed\n\nack-mode should be one of")
    assert shovels(leveret_broker) == []


def test_a_finished_shovel_deletes_its_parameter(leveret_broker) -> None:
    broker = leveret_broker
    publish(broker.url, "in", 40)
    value = {**LOCAL, "src-delete-after": "queue-length"}
    assert call(api(broker), "PUT", "/parameters/shovel/%2F/once", {"value": value}).status == 201
    wait_for(lambda: call(api(broker), "GET", "/parameters/shovel/%2F/once").status == 404, 20,
             "the parameter to be deleted")
    assert queue_length(broker.url, "out") == 40


def test_shovels_survive_a_restart_of_their_broker(tmp_path) -> None:
    data = str(tmp_path / "data")
    with EmbeddedBroker(data_dir=data) as broker:
        assert call(api(broker), "PUT", "/parameters/shovel/%2F/keep", {"value": LOCAL}).status == 201
        running(broker, "keep")
    with EmbeddedBroker(data_dir=data) as broker:
        running(broker, "keep")
        publish(broker.url, "in", 10, declare=False)
        assert len(drain(broker.url, "out", 10)) == 10


def test_the_cli_adds_lists_restarts_and_deletes(leveret_broker) -> None:
    broker = leveret_broker
    url = ["--url", f"http://127.0.0.1:{broker.server.http_port}"]

    def cli(*args: str):
        return CliRunner().invoke(main, ["shovels", *args, *url])

    added = cli("add", "c", "--src-uri", "amqp://", "--src-queue", "in", "--dest-uri", "amqp://",
                "--dest-exchange", "amq.topic", "--dest-exchange-key", "k", "--forward-headers")
    assert added.exit_code == 0, added.output
    assert call(api(broker), "GET", "/parameters/shovel/%2F/c").body["value"] == {
        "src-uri": "amqp://", "src-queue": "in", "dest-uri": "amqp://", "dest-exchange": "amq.topic",
        "dest-exchange-key": "k", "dest-add-forward-headers": True}
    running(broker, "c")
    listed = cli("list")
    assert listed.exit_code == 0
    assert "c" in listed.output and "running" in listed.output and "exchange amq.topic (k)" in listed.output
    assert cli("restart", "c").exit_code == 0
    refused = cli("add", "d", "--src-uri", "amqp://", "--src-queue", "in", "--dest-uri", "amqp://",
                  "--src-delete-after", "sometimes")
    assert refused.exit_code == 1 and "src-delete-after should be" in refused.output
    assert cli("delete", "c").exit_code == 0
    missing = cli("delete", "c")
    assert missing.exit_code == 1 and "shovel 'c' does not exist in vhost '/'" in missing.output
