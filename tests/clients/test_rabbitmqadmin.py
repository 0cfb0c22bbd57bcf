"""Debian's packaged rabbitmqadmin (RabbitMQ 3.10's, unchanged) against leveret's management API:
list, show overview, declare/delete of queues, exchanges and bindings, publish, get and purge.

Skipped where rabbitmqadmin is not installed (.ci/run installs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any, Iterator

import pika
import pytest

from leveret.embedded import EmbeddedBroker

RABBITMQADMIN = shutil.which("rabbitmqadmin") or "/usr/bin/rabbitmqadmin"

pytestmark = pytest.mark.skipif(shutil.which(RABBITMQADMIN) is None, reason="rabbitmqadmin is not installed")


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def admin(broker: EmbeddedBroker, *args: str) -> str:
    """Run rabbitmqadmin against `broker`; its standard output (the test fails on a non-zero exit)."""
    done = subprocess.run([RABBITMQADMIN, "-H", "127.0.0.1", "-P", str(broker.server.http_port), *args],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"rabbitmqadmin {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def listed(broker: EmbeddedBroker, *args: str) -> Any:
    """A listing's JSON (`-f raw_json`)."""
    return json.loads(admin(broker, "-f", "raw_json", *args))


def test_declare_publish_get_purge_and_delete(broker: EmbeddedBroker) -> None:
    admin(broker, "declare", "queue", "name=jobs", "durable=true", 'arguments={"x-max-length": 100}')
    admin(broker, "declare", "exchange", "name=work", "type=topic")
    admin(broker, "declare", "binding", "source=work", "destination=jobs", "routing_key=job.*")

    queue = next(q for q in listed(broker, "list", "queues") if q["name"] == "jobs")
    assert queue["durable"] is True and queue["arguments"] == {"x-max-length": 100}
    assert {"name": "work", "type": "topic"} in [{"name": x["name"], "type": x["type"]}
                                                 for x in listed(broker, "list", "exchanges")]
    bindings = listed(broker, "list", "bindings")
    assert {"source": "work", "destination": "jobs", "routing_key": "job.*"} in [
        {k: b[k] for k in ("source", "destination", "routing_key")} for b in bindings]

    assert "Message published" in admin(broker, "publish", "exchange=work", "routing_key=job.a", "payload=one")
    assert "NOT routed" in admin(broker, "publish", "exchange=work", "routing_key=other", "payload=lost")
    admin(broker, "publish", "exchange=amq.default", "routing_key=jobs", "payload=two")

    first = listed(broker, "get", "queue=jobs", "ackmode=ack_requeue_true")
    assert [(m["payload"], m["redelivered"], m["message_count"]) for m in first] == [("one", False, 1)]
    again = listed(broker, "get", "queue=jobs", "count=2", "ackmode=ack_requeue_false")
    assert [(m["payload"], m["redelivered"]) for m in again] == [("one", True), ("two", False)]
    assert listed(broker, "get", "queue=jobs", "ackmode=ack_requeue_false") == []

    admin(broker, "publish", "exchange=work", "routing_key=job.b", "payload=three")
    admin(broker, "purge", "queue", "name=jobs")
    assert next(q for q in listed(broker, "list", "queues") if q["name"] == "jobs")["messages"] == 0

    admin(broker, "delete", "binding", "source=work", "destination_type=queue", "destination=jobs",
          "properties_key=job.*")
    assert [b for b in listed(broker, "list", "bindings") if b["source"] == "work"] == []
    admin(broker, "delete", "exchange", "name=work")
    admin(broker, "delete", "queue", "name=jobs")
    assert "jobs" not in [q["name"] for q in listed(broker, "list", "queues")]


def test_lists_connections_channels_consumers_and_the_overview(broker: EmbeddedBroker) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        channel = conn.channel()
        channel.basic_qos(prefetch_count=5)
        channel.queue_declare("watched")
        tag = channel.basic_consume("watched", lambda *args: None)
        local_port = conn._impl._transport._sock.getsockname()[1]  # the client's end: the connection's name

        connections = listed(broker, "list", "connections")
        name = f"127.0.0.1:{local_port} -> 127.0.0.1:{broker.server.port}"
        assert [(c["name"], c["user"], c["channels"]) for c in connections] == [(name, "guest", 1)]
        channels = listed(broker, "list", "channels")
        assert [(c["name"], c["prefetch_count"], c["consumer_count"]) for c in channels] == [(f"{name} (1)", 5, 1)]
        consumers = listed(broker, "list", "consumers")
        assert [(c["consumer_tag"], c["queue"]["name"], c["channel_details"]["name"]) for c in consumers] == [
            (tag, "watched", f"{name} (1)")]
        assert "127.0.0.1:" in admin(broker, "list", "connections")  # the table form too

        overview = listed(broker, "show", "overview")[0]
        assert overview["rabbitmq_version"] == "3.10.8"
        assert overview["object_totals"]["connections"] == 1
        assert overview["object_totals"]["queues"] == 1
        assert [v["name"] for v in listed(broker, "list", "vhosts")] == ["/"]
        assert [u["name"] for u in listed(broker, "list", "users")] == ["guest"]
        assert "leveret@" in admin(broker, "list", "nodes")
    finally:
        conn.close()
