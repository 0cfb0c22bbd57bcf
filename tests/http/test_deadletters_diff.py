"""Peek answers what RabbitMQ 3.10's `POST .../get` answers: the same dead-lettered message, published and
rejected the same way on both, shows the same JSON (x-death's time aside), field for field.

Skipped when RabbitMQ (AMQP on 5672, its management API on 15672) is not reachable; RabbitMQ's side runs in
a vhost of its own, deleted afterwards.
"""

from __future__ import annotations

import socket
import uuid
from typing import Any

import pika
import pytest

from leveret.embedded import EmbeddedBroker
from tests.http.api_client import api, call

RABBITMQ_API = "http://127.0.0.1:15672/api"


def _reachable() -> bool:
    try:
        for port in (5672, 15672):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _reachable(), reason="RabbitMQ is not reachable")


def _dead_letter(url: str) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.exchange_declare("dlx", "fanout")
    ch.queue_declare("dlq")
    ch.queue_bind("dlq", "dlx")
    ch.queue_declare("work", arguments={"x-dead-letter-exchange": "dlx"})
    props = pika.BasicProperties(delivery_mode=2, priority=3, content_type="text/plain", message_id="m-1",
                                 correlation_id="c-1", timestamp=1700000000, expiration="60000",
                                 headers={"CC": ["other"], "n": 1, "s": "x", "nested": {"deep": [1, "two"]}})
    ch.basic_publish("", "work", "héllo".encode(), props)
    ch.basic_publish("", "work", b"\xff\x00 binary")
    for _ in range(2):
        method, _, _ = ch.basic_get("work")
        ch.basic_reject(method.delivery_tag, requeue=False)
    conn.close()


def _without_time(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        for death in row["properties"].get("headers", {}).get("x-death", []):
            assert isinstance(death.pop("time"), int)
    return rows


def test_peek_shows_a_dead_letter_as_rabbitmqs_get_does() -> None:
    vhost = f"leveret-peek-{uuid.uuid4().hex[:8]}"
    assert call(RABBITMQ_API, "PUT", f"/vhosts/{vhost}").status in (201, 204)
    try:
        call(RABBITMQ_API, "PUT", f"/permissions/{vhost}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
        _dead_letter(f"amqp://guest:guest@127.0.0.1:5672/{vhost}")
        theirs = call(RABBITMQ_API, "POST", f"/queues/{vhost}/dlq/get",
                      {"count": 2, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 50000})
        assert theirs.status == 200 and len(theirs.body) == 2
    finally:
        call(RABBITMQ_API, "DELETE", f"/vhosts/{vhost}")
    with EmbeddedBroker() as broker:
        _dead_letter(broker.url)
        ours = call(api(broker), "GET", "/queues/%2F/dlq/peek?count=2&encoding=auto&truncate=50000")
    assert ours.status == 200
    assert _without_time(ours.body) == _without_time(theirs.body)
