"""leveret's Prometheus endpoints against RabbitMQ 3.10's rabbitmq_prometheus (127.0.0.1:15692): every family
leveret writes under a rabbitmq_* (or process_*) name is one RabbitMQ writes on the same endpoint, with the
same type and the same label names; leveret's own figures are leveret_*.

Skipped when RabbitMQ's Prometheus endpoint is not reachable. RabbitMQ is only read here.
"""

from __future__ import annotations

import socket
import time
import urllib.request
import uuid
from typing import Any, Iterator

import pika
import pytest
from prometheus_client.parser import text_string_to_metric_families

from leveret.embedded import EmbeddedBroker
from tests.http.api_client import call

RABBITMQ_PROMETHEUS = "http://127.0.0.1:15692"
RABBITMQ_API = "http://127.0.0.1:15672/api"


def _reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 15692), timeout=1).close()
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _reachable(), reason="RabbitMQ's Prometheus endpoint is not reachable")


def scenario(conn: pika.BlockingConnection) -> None:
    """A queue holding a message and a consumer on an open channel, so every family has samples."""
    channel = conn.channel()
    channel.confirm_delivery()
    channel.queue_declare("metrics-diff")
    channel.basic_publish("", "metrics-diff", b"x")
    channel.basic_consume("metrics-diff", lambda *args: None)
    conn.process_data_events(0)


@pytest.fixture(scope="module")
def leveret() -> Iterator[EmbeddedBroker]:
    """leveret with the scenario."""
    with EmbeddedBroker() as broker:
        conn = pika.BlockingConnection(pika.URLParameters(broker.url))
        try:
            scenario(conn)
            yield broker
        finally:
            conn.close()


@pytest.fixture(scope="module")
def rabbitmq() -> Iterator[str]:
    """RabbitMQ with the same scenario in a vhost of this test's own, once its channel figures are out
    (RabbitMQ emits them every collect_statistics_interval, 5 s by default); the vhost is deleted after."""
    vhost = f"metrics-diff-{uuid.uuid4().hex[:8]}"
    assert call(RABBITMQ_API, "PUT", f"/vhosts/{vhost}").status == 201
    try:
        assert call(RABBITMQ_API, "PUT", f"/permissions/{vhost}/guest",
                    {"configure": ".*", "write": ".*", "read": ".*"}).status in (201, 204)
        conn = pika.BlockingConnection(pika.URLParameters(f"amqp://guest:guest@127.0.0.1:5672/{vhost}"))
        try:
            scenario(conn)
            deadline = time.monotonic() + 20
            while not families(RABBITMQ_PROMETHEUS + "/metrics/per-object")["rabbitmq_channel_consumers"].samples:
                assert time.monotonic() < deadline, "RabbitMQ wrote no channel figures within 20 s"
                conn.process_data_events(0.5)
            yield RABBITMQ_PROMETHEUS
        finally:
            conn.close()
    finally:
        call(RABBITMQ_API, "DELETE", f"/vhosts/{vhost}")


def families(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def label_names(family: Any) -> set[frozenset[str]]:
    return {frozenset(sample.labels) for sample in family.samples}


@pytest.mark.parametrize("path", ["/metrics", "/metrics/per-object"])
def test_rabbitmq_named_families_match_rabbitmq(leveret: EmbeddedBroker, rabbitmq: str, path: str) -> None:
    ours = families(f"http://127.0.0.1:{leveret.server.http_port}{path}")
    theirs = families(rabbitmq + path)
    compared = 0
    for name, family in ours.items():
        if name.startswith("leveret_"):
            continue
        assert name in theirs, f"{name} is not a name RabbitMQ writes on {path}"
        assert family.type == theirs[name].type, name
        if family.samples and theirs[name].samples:
            assert label_names(family) == label_names(theirs[name]), name
            compared += 1
    # The queue, channel, connection, node and info families all had samples on both sides.
    assert compared >= 25


def test_detailed_families_match_rabbitmq(leveret: EmbeddedBroker) -> None:
    query = "/metrics/detailed?family=queue_coarse_metrics&family=queue_consumer_count"
    ours = families(f"http://127.0.0.1:{leveret.server.http_port}{query}")
    theirs = families(RABBITMQ_PROMETHEUS + query)
    assert {"rabbitmq_detailed_queue_messages_ready", "rabbitmq_detailed_queue_messages_unacked",
            "rabbitmq_detailed_queue_messages", "rabbitmq_detailed_queue_consumers"} <= set(ours)
    for name, family in ours.items():  # RabbitMQ has one more: its queue processes' reductions
        assert name in theirs, name
        assert family.type == theirs[name].type, name
