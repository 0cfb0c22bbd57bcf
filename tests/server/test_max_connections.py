"""The broker-wide max_connections setting (RabbitMQ's connection_max) refuses one connection too many."""

from __future__ import annotations

import pika
import pytest

from leveret.embedded import EmbeddedBroker


def test_one_connection_over_max_connections_is_refused_with_rabbitmqs_text() -> None:
    with EmbeddedBroker(max_connections=2) as broker:
        broker.server.put_vhost("other")
        broker.server.users.set_permissions("guest", "other", ".*", ".*", ".*")
        first = pika.BlockingConnection(pika.URLParameters(broker.url))
        second = pika.BlockingConnection(pika.URLParameters(broker.url.rsplit("/", 1)[0] + "/other"))
        with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as refused:
            pika.BlockingConnection(pika.URLParameters(broker.url))
        assert "NOT_ALLOWED - connection refused: node connection limit (2) is reached" in str(refused.value)
        second.close()
        pika.BlockingConnection(pika.URLParameters(broker.url)).close()
        first.close()
