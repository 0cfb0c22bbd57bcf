"""`leveret migrate --to` the local RabbitMQ: definitions and a backlog across 20 queues, a dead-letter
queue's x-death headers intact, the plan of --dry-run, and warnings for what RabbitMQ cannot hold.

Only a fresh vhost of the test's own is moved (`--vhost`), and deleted from RabbitMQ afterwards.
"""

from __future__ import annotations

import uuid

import pika
import pytest
from click.testing import CliRunner

from leveret.cli import main
from tests.conftest import pika_parameters
from tests.http.api_client import api, call
from tests.shovel.helpers import drain, publish_confirmed, queue_length, rabbit_api

pytestmark = pytest.mark.timeout(120)

PLAIN_QUEUES = 18


def x_death(url: str, queue: str) -> list:
    """The x-death headers of every message in `queue`, read and put back."""
    connection = pika.BlockingConnection(pika_parameters(url))
    try:
        channel = connection.channel()
        found = []
        while True:
            method, properties, _ = channel.basic_get(queue)
            if method is None:
                break
            found.append(properties.headers["x-death"])
        connection.close()
        return found
    finally:
        if connection.is_open:
            connection.close()


@pytest.fixture
def source(leveret_broker, rabbitmq_url):
    """A leveret vhost with 18 plain queues holding 5, 15, ... messages, a work queue dead-lettering into
    a DLQ (3 messages with x-death), a topic exchange and its binding; its name, and the RabbitMQ vhost is
    deleted after the test."""
    vhost = f"migrate-{uuid.uuid4().hex[:10]}"
    base = api(leveret_broker)
    assert call(base, "PUT", f"/vhosts/{vhost}", {}).status == 201
    assert call(base, "PUT", f"/permissions/{vhost}/guest", {"configure": ".*", "write": ".*", "read": ".*"}).status in (201, 204)
    url = leveret_broker.url.rsplit("/", 1)[0] + "/" + vhost
    connection = pika.BlockingConnection(pika_parameters(url))
    channel = connection.channel()
    channel.exchange_declare("events", "topic", durable=True)
    channel.exchange_declare("dlx", "fanout", durable=True)
    for i in range(PLAIN_QUEUES):
        channel.queue_declare(f"q{i:02d}", durable=True)
        for n in range(5 + 10 * i):
            channel.basic_publish("", f"q{i:02d}", f"{i}.{n}".encode(), pika.BasicProperties(delivery_mode=2))
    channel.queue_bind("q00", "events", "orders.#")
    channel.queue_declare("work", durable=True, arguments={"x-dead-letter-exchange": "dlx"})
    channel.queue_declare("dlq", durable=True)
    channel.queue_bind("dlq", "dlx", "")
    for n in range(3):
        channel.basic_publish("", "work", f"failed.{n}".encode(), pika.BasicProperties(delivery_mode=2))
    for _ in range(3):
        method, _, _ = channel.basic_get("work")
        channel.basic_reject(method.delivery_tag, requeue=False)
    channel.queue_declare("dlq", passive=True)
    connection.close()
    try:
        yield vhost, url
    finally:
        rabbit_api("DELETE", f"/api/vhosts/{vhost}")


def run(broker, *args: str):
    return CliRunner().invoke(main, ["migrate", *args, "--url", f"http://127.0.0.1:{broker.server.http_port}"])


def test_migrate_to_rabbitmq_moves_definitions_and_every_backlog(leveret_broker, source) -> None:
    vhost, url = source
    rabbit = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    deaths = x_death(url, "dlq")
    assert len(deaths) == 3

    planned = run(leveret_broker, "--to", "http://guest:guest@127.0.0.1:15672", "--vhost", vhost, "--dry-run")
    assert planned.exit_code == 0, planned.output
    assert "1 vhosts, 2 exchanges, 20 queues, 2 bindings" in planned.output
    total = sum(5 + 10 * i for i in range(PLAIN_QUEUES)) + 3
    assert f"{total} messages in 19 queues, one shovel each" in planned.output
    assert rabbit_api("GET", f"/api/vhosts/{vhost}").status == 404  # a dry run changes nothing

    moved = run(leveret_broker, "--to", "http://guest:guest@127.0.0.1:15672", "--vhost", vhost)
    assert moved.exit_code == 0, moved.output
    assert f"Moved {total} messages in 19 queues." in moved.output
    for i in range(PLAIN_QUEUES):
        assert queue_length(rabbit, f"q{i:02d}") == 5 + 10 * i
        assert queue_length(url, f"q{i:02d}") == 0
    assert x_death(rabbit, "dlq") == deaths  # every field of every x-death entry, as leveret had it
    bindings = rabbit_api("GET", f"/api/bindings/{vhost}/e/events/q/q00").body
    assert [b["routing_key"] for b in bindings] == ["orders.#"]
    work = rabbit_api("GET", f"/api/queues/{vhost}/work").body
    assert work["arguments"] == {"x-dead-letter-exchange": "dlx"}
    # The client's view on the target: the moved messages in order, and dead-lettering works there too.
    assert [body for _, body in drain(rabbit, "q01", 15)] == [f"1.{n}".encode() for n in range(15)]


def test_what_rabbitmq_cannot_hold_is_a_warning(leveret_broker, source) -> None:
    vhost, url = source
    connection = pika.BlockingConnection(pika_parameters(url))
    channel = connection.channel()
    channel.queue_declare("retry", durable=True, arguments={"x-requeue-delay": 1000})
    channel.queue_declare("log", durable=True, arguments={"x-queue-type": "stream"})
    channel.basic_publish("", "log", b"entry")
    connection.close()
    planned = run(leveret_broker, "--to", "http://guest:guest@127.0.0.1:15672", "--vhost", vhost, "--dry-run")
    assert planned.exit_code == 0, planned.output
    assert "warning: queue 'retry'" in planned.output and "x-requeue-delay has no RabbitMQ equivalent" in planned.output
    assert "warning: stream 'log'" in planned.output and "its messages are not moved" in planned.output


def test_migrate_from_rabbitmq_to_leveret(leveret_broker, rabbit_vhost) -> None:
    vhost, rabbit = rabbit_vhost
    for i in range(3):  # confirmed: each queue holds all 50 before the move counts them
        publish_confirmed(rabbit, f"r{i}", [f"{i}.{n}".encode() for n in range(50)], **{"x-max-length": 1000})
    moved = run(leveret_broker, "--from", "http://guest:guest@127.0.0.1:15672", "--vhost", vhost, "--timeout", "60")
    assert moved.exit_code == 0, moved.output
    local = leveret_broker.url.rsplit("/", 1)[0] + "/" + vhost
    for i in range(3):
        assert [body for _, body in drain(local, f"r{i}", 50)] == [f"{i}.{n}".encode() for n in range(50)]
    assert call(api(leveret_broker), "GET", f"/queues/{vhost}/r0").body["arguments"] == {"x-max-length": 1000}
