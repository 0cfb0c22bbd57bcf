"""The promise of `leveret migrate --to`: the same client code works on the target as on the source.

One leveret vhost is defined for five client scenarios (a work queue, publish/subscribe, a dead-letter
queue, message TTL, publisher confirms), holds a backlog (a work queue's tasks and dead letters with
x-death), and is migrated to a fresh vhost on the local RabbitMQ. The backlog must arrive whole, x-death
intact; then every scenario runs, with the same assertions, against the source leveret and against the
RabbitMQ target. Skipped when RabbitMQ is not running; its vhost is deleted afterwards.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pika
import pytest
from click.testing import CliRunner

from leveret.cli import main
from leveret.embedded import EmbeddedBroker
from tests.conftest import pika_parameters
from tests.http.api_client import api, call
from tests.shovel.helpers import drain, rabbit_api

pytestmark = pytest.mark.timeout(120)

RABBITMQ_MANAGEMENT = "http://guest:guest@127.0.0.1:15672"
SIDES = ("leveret", "rabbitmq")
WAIT = 10.0  # seconds any one expected delivery may take


def declare_definitions(channel) -> None:
    """What the scenarios need, declared on the source only: the target gets it from the migration."""
    channel.queue_declare("tasks", durable=True)
    channel.exchange_declare("broadcast", "fanout", durable=True)
    channel.exchange_declare("dlx", "direct", durable=True)
    channel.queue_declare("orders", durable=True, arguments={"x-dead-letter-exchange": "dlx",
                                                             "x-dead-letter-routing-key": "dead"})
    channel.queue_declare("dead-letters", durable=True)
    channel.queue_bind("dead-letters", "dlx", "dead")
    channel.queue_declare("expiring", durable=True, arguments={"x-message-ttl": 100, "x-dead-letter-exchange": "dlx",
                                                               "x-dead-letter-routing-key": "expired"})
    channel.queue_declare("expired", durable=True)
    channel.queue_bind("expired", "dlx", "expired")
    channel.queue_declare("receipts", durable=True)


def x_deaths(url: str, queue: str) -> list:
    """The x-death header of each message in `queue`, read without settling (closing puts them back)."""
    connection = pika.BlockingConnection(pika_parameters(url))
    try:
        channel = connection.channel()
        found = []
        while (got := channel.basic_get(queue))[0] is not None:
            found.append(got[1].headers["x-death"])
        return found
    finally:
        connection.close()


@pytest.fixture(scope="module")
def sides(_rabbitmq_up: bool) -> Iterator[dict[str, str]]:
    """The AMQP URL of the source leveret's vhost and of the RabbitMQ vhost it was migrated to, both with the
    same definitions and empty queues once the migrated backlog was checked and consumed."""
    if not _rabbitmq_up:
        pytest.skip("RabbitMQ is not reachable on 127.0.0.1:5672")
    vhost = f"clients-{uuid.uuid4().hex[:10]}"
    with EmbeddedBroker() as broker:
        base = api(broker)
        assert call(base, "PUT", f"/vhosts/{vhost}", {}).status == 201
        assert call(base, "PUT", f"/permissions/{vhost}/guest",
                    {"configure": ".*", "write": ".*", "read": ".*"}).status in (201, 204)
        source = broker.url.rsplit("/", 1)[0] + "/" + vhost
        target = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
        try:
            connection = pika.BlockingConnection(pika_parameters(source))
            channel = connection.channel()
            declare_definitions(channel)
            channel.confirm_delivery()
            for n in range(5):
                channel.basic_publish("", "tasks", f"task {n}".encode(), pika.BasicProperties(delivery_mode=2))
            for n in range(3):
                channel.basic_publish("", "orders", f"order {n}".encode(), pika.BasicProperties(delivery_mode=2))
            for _ in range(3):
                method, _, _ = channel.basic_get("orders")
                channel.basic_reject(method.delivery_tag, requeue=False)
            connection.close()
            deaths = x_deaths(source, "dead-letters")
            assert len(deaths) == 3

            moved = CliRunner().invoke(main, ["migrate", "--to", RABBITMQ_MANAGEMENT, "--vhost", vhost, "--timeout",
                                              "60", "--url", f"http://127.0.0.1:{broker.server.http_port}"])
            assert moved.exit_code == 0, moved.output
            assert x_deaths(target, "dead-letters") == deaths
            assert [body for _, body in drain(target, "tasks", 5)] == [f"task {n}".encode() for n in range(5)]
            assert len(drain(target, "dead-letters", 3)) == 3
            yield {"leveret": source, "rabbitmq": target}
        finally:
            rabbit_api("DELETE", f"/api/vhosts/{vhost}")


@pytest.fixture(params=SIDES)
def url(request: pytest.FixtureRequest, sides: dict[str, str]) -> str:
    return sides[request.param]


def confirming_channel(connection: pika.BlockingConnection):
    channel = connection.channel()
    channel.confirm_delivery()
    return channel


def collect(connection: pika.BlockingConnection, got: list, expected: int) -> None:
    """Run the connection's consumer callbacks until `got` holds `expected` items, bounded in time."""
    deadline = time.monotonic() + WAIT
    while len(got) < expected and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.05)


def test_a_work_queue_shares_tasks_between_competing_consumers(url: str) -> None:
    connection = pika.BlockingConnection(pika_parameters(url))
    try:
        got: list[tuple[int, bytes]] = []
        for worker in (1, 2):
            channel = connection.channel()
            channel.basic_qos(prefetch_count=1)

            def work(channel, method, _properties, body, worker=worker) -> None:
                got.append((worker, body))
                channel.basic_ack(method.delivery_tag)

            channel.basic_consume("tasks", work)
        publisher = confirming_channel(connection)
        for n in range(10):
            publisher.basic_publish("", "tasks", f"job {n}".encode(), pika.BasicProperties(delivery_mode=2))
        collect(connection, got, 10)
        assert sorted(body for _, body in got) == sorted(f"job {n}".encode() for n in range(10))
        assert {worker for worker, _ in got} == {1, 2}  # round robin: both workers had work
    finally:
        connection.close()


def test_publish_subscribe_gives_every_subscriber_every_message_in_order(url: str) -> None:
    connection = pika.BlockingConnection(pika_parameters(url))
    try:
        channel = connection.channel()
        got: dict[str, list[bytes]] = {}
        for _ in range(2):
            queue = channel.queue_declare("", exclusive=True).method.queue
            channel.queue_bind(queue, "broadcast")
            got[queue] = []
            channel.basic_consume(queue, lambda _c, _m, _p, body, queue=queue: got[queue].append(body), auto_ack=True)
        publisher = confirming_channel(connection)
        for n in range(3):
            publisher.basic_publish("broadcast", "ignored", f"news {n}".encode())
        deadline = time.monotonic() + WAIT
        while sum(map(len, got.values())) < 6 and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.05)
        assert list(got.values()) == [[f"news {n}".encode() for n in range(3)]] * 2
    finally:
        connection.close()


def dead_letter(connection: pika.BlockingConnection, queue: str) -> tuple[pika.spec.Basic.Deliver,
                                                                          pika.BasicProperties, bytes]:
    """The next message dead-lettered into `queue`, acked."""
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1)
    got: list = []
    channel.basic_consume(queue, lambda c, m, p, b: (got.append((m, p, b)), c.basic_ack(m.delivery_tag)))
    collect(connection, got, 1)
    channel.close()  # its consumer would take the next dead letter meant for the next call
    assert got, f"nothing was dead-lettered into {queue} within {WAIT} s"
    return got[0]


def test_a_rejected_message_is_dead_lettered_with_its_history(url: str) -> None:
    connection = pika.BlockingConnection(pika_parameters(url))
    try:
        channel = confirming_channel(connection)
        channel.basic_publish("", "orders", b"bad order", pika.BasicProperties(delivery_mode=2, headers={"id": 7}))
        method, _, _ = channel.basic_get("orders")
        channel.basic_reject(method.delivery_tag, requeue=False)
        method, properties, body = dead_letter(connection, "dead-letters")
        assert (body, method.exchange, method.routing_key) == (b"bad order", "dlx", "dead")
        headers = properties.headers
        assert headers["id"] == 7
        [death] = headers["x-death"]
        assert {key: death[key] for key in ("count", "reason", "queue", "exchange", "routing-keys")} == {
            "count": 1, "reason": "rejected", "queue": "orders", "exchange": "", "routing-keys": ["orders"]}
        assert (headers["x-first-death-reason"], headers["x-first-death-queue"]) == ("rejected", "orders")
    finally:
        connection.close()


def test_expired_messages_are_dead_lettered_by_queue_and_message_ttl(url: str) -> None:
    connection = pika.BlockingConnection(pika_parameters(url))
    try:
        channel = confirming_channel(connection)
        channel.basic_publish("", "expiring", b"queue ttl")
        first = dead_letter(connection, "expired")
        channel.basic_publish("", "expiring", b"message ttl", pika.BasicProperties(expiration="20"))
        second = dead_letter(connection, "expired")
        for (method, properties, body), sent in ((first, b"queue ttl"), (second, b"message ttl")):
            [death] = properties.headers["x-death"]
            assert (body, method.routing_key, death["reason"], death["queue"]) == (sent, "expired", "expired",
                                                                                   "expiring")
        # The message's own expiration moves into its x-death entry: it does not expire again downstream.
        assert second[1].expiration is None
        assert second[1].headers["x-death"][0]["original-expiration"] == "20"
    finally:
        connection.close()


def test_publisher_confirms_acknowledge_route_and_refuse_as_on_rabbitmq(url: str) -> None:
    vhost = url.rsplit("/", 1)[1]
    connection = pika.BlockingConnection(pika_parameters(url))
    try:
        channel = confirming_channel(connection)
        channel.basic_publish("", "receipts", b"kept", pika.BasicProperties(delivery_mode=2))  # acked: no error
        with pytest.raises(pika.exceptions.UnroutableError):
            channel.basic_publish("", "no-such-queue", b"lost", mandatory=True)
        assert channel.queue_declare("receipts", passive=True).method.message_count == 1
        channel.basic_get("receipts", auto_ack=True)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.basic_publish("no-such-exchange", "k", b"nowhere")
        assert (refused.value.reply_code, refused.value.reply_text) == (
            404, f"NOT_FOUND - no exchange 'no-such-exchange' in vhost '{vhost}'")
    finally:
        connection.close()
