"""Debian's packaged rabbitmqadmin (RabbitMQ 3.10's, unchanged) against leveret's management API:
list, show overview, declare/delete of queues, exchanges and bindings, publish, get and purge, and
export/import of definitions between two leverets and from the local RabbitMQ (skipped where its
management API is not reachable).

Skipped where rabbitmqadmin is not installed (.ci/run installs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any, Iterator

import pika
import pytest

from leveret.embedded import EmbeddedBroker
from tests.http.api_client import RABBITMQ_API, api, call, rabbitmq_api_up

RABBITMQADMIN = shutil.which("rabbitmqadmin") or "/usr/bin/rabbitmqadmin"

pytestmark = pytest.mark.skipif(shutil.which(RABBITMQADMIN) is None, reason="rabbitmqadmin is not installed")


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def admin(broker: EmbeddedBroker | int, *args: str) -> str:
    """Run rabbitmqadmin against `broker` (or the management API on that port); its standard output (the
    test fails on a non-zero exit)."""
    port = broker if isinstance(broker, int) else broker.server.http_port
    done = subprocess.run([RABBITMQADMIN, "-H", "127.0.0.1", "-P", str(port), *args],
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


def populate(port: int, vhost: str, user: str) -> None:
    """One of each kind of definition in `vhost` through rabbitmqadmin: a user with a permission, queues
    (one with arguments), an exchange, bindings to a queue and to an exchange, a policy."""
    admin(port, "declare", "vhost", f"name={vhost}")
    admin(port, "declare", "user", f"name={user}", "password=exported-pw", "tags=management")
    admin(port, "declare", "permission", f"vhost={vhost}", f"user={user}", "configure=^q", "write=.*", "read=.*")
    admin(port, "-V", vhost, "declare", "queue", "name=q1", "durable=true",
          'arguments={"x-max-length": 5, "x-message-ttl": 60000}')
    admin(port, "-V", vhost, "declare", "queue", "name=q2", "durable=true")
    admin(port, "-V", vhost, "declare", "exchange", "name=x1", "type=topic")
    admin(port, "-V", vhost, "declare", "exchange", "name=x2", "type=fanout")
    admin(port, "-V", vhost, "declare", "binding", "source=x1", "destination=q1", "routing_key=a.#")
    admin(port, "-V", vhost, "declare", "binding", "source=x1", "destination_type=exchange", "destination=x2",
          "routing_key=b")
    admin(port, "-V", vhost, "declare", "policy", "name=short", "pattern=^q", "apply-to=queues", "priority=2",
          'definition={"max-length": 3, "dead-letter-exchange": "x1"}')


def objects(base: str, vhost: str, user: str) -> dict[str, Any]:
    """What `populate` made, read back through the management API, in a form both brokers agree on."""
    v = vhost.replace("/", "%2F")
    keep = {"queues": ("name", "durable", "auto_delete", "arguments"),
            "exchanges": ("name", "type", "durable", "auto_delete", "internal", "arguments"),
            "bindings": ("source", "destination", "destination_type", "routing_key", "arguments"),
            "policies": ("name", "pattern", "apply-to", "priority", "definition")}
    found = {kind: sorted(({k: item[k] for k in fields} for item in call(base, "GET", f"/{kind}/{v}").body
                           if not str(item.get("name", item.get("source", "x"))).startswith("amq.")
                           and item.get("source", "x") != ""),
                          key=lambda item: json.dumps(item, sort_keys=True))
             for kind, fields in keep.items()}
    found["permissions"] = [{k: p[k] for k in ("user", "configure", "write", "read")}
                            for p in call(base, "GET", f"/vhosts/{v}/permissions").body if p["user"] == user]
    found["user_tags"] = call(base, "GET", f"/users/{user}").body["tags"]
    return found


def test_export_then_import_into_a_fresh_leveret(broker: EmbeddedBroker, tmp_path: Path) -> None:
    vhost, user = "exported", "exporter"
    populate(broker.server.http_port, vhost, user)
    exported = tmp_path / "definitions.json"
    assert "Exported definitions" in admin(broker, "export", str(exported))
    document = json.loads(exported.read_text())
    assert {q["name"] for q in document["queues"] if q["vhost"] == vhost} == {"q1", "q2"}
    try:
        with EmbeddedBroker() as fresh:
            assert "Uploaded definitions" in admin(fresh, "import", str(exported))
            assert objects(api(fresh), vhost, user) == objects(api(broker), vhost, user)
            assert [q["policy"] for q in call(api(fresh), "GET", f"/queues/{vhost}").body] == ["short", "short"]
            # The password moved as its hash: the user logs in to the new broker with the old password.
            assert call(api(fresh), "GET", "/whoami", auth=(user, "exported-pw")).body["name"] == user
            # and the second export is the first one (same objects, same order).
            again = tmp_path / "again.json"
            admin(fresh, "export", str(again))
            assert json.loads(again.read_text()) == document

            # One vhost's definitions (`-V`): exported from one vhost, imported into another.
            scoped = tmp_path / "vhost.json"
            admin(broker, "-V", vhost, "export", str(scoped))
            assert "users" not in json.loads(scoped.read_text())
            admin(fresh, "declare", "vhost", "name=copy")
            admin(fresh, "-V", "copy", "import", str(scoped))
            copied = objects(api(fresh), "copy", user)
            original = objects(api(broker), vhost, user)
            assert {k: copied[k] for k in ("queues", "exchanges", "bindings", "policies")} == {
                k: original[k] for k in ("queues", "exchanges", "bindings", "policies")}
    finally:
        admin(broker, "delete", "vhost", f"name={vhost}")
        admin(broker, "delete", "user", f"name={user}")


@pytest.mark.skipif(not rabbitmq_api_up(), reason="RabbitMQ's management API is not reachable")
def test_import_a_file_exported_by_rabbitmq(tmp_path: Path) -> None:
    """The whole of the local RabbitMQ's export (other tests' vhosts included), unchanged, into a fresh
    leveret: this test's own vhost and user come out as RabbitMQ has them, and the password works."""
    vhost, user = f"admin-export-{uuid.uuid4().hex[:8]}", f"admin-export-{uuid.uuid4().hex[:8]}"
    try:
        populate(15672, vhost, user)
        exported = tmp_path / "rabbitmq.json"
        admin(15672, "export", str(exported))
        assert json.loads(exported.read_text())["product_name"] == "RabbitMQ"
        with EmbeddedBroker() as fresh:
            assert "Uploaded definitions" in admin(fresh, "import", str(exported))
            assert objects(api(fresh), vhost, user) == objects(RABBITMQ_API, vhost, user)
            assert call(api(fresh), "GET", "/whoami", auth=(user, "exported-pw")).body["name"] == user
    finally:
        call(RABBITMQ_API, "DELETE", f"/vhosts/{vhost}")
        call(RABBITMQ_API, "DELETE", f"/users/{user}")
