"""connection.start's server-properties: the cluster name a client is told is the one the management API shows,
and a new name applies to the connections opened after it is set (as RabbitMQ's reader reads it per connection)."""

from __future__ import annotations

import uuid

import pika
import pytest

from leveret.broker.cluster_name import node_name
from leveret.embedded import EmbeddedBroker
from tests.http.api_client import RABBITMQ_API, api, call, rabbitmq_api_up

RABBITMQ_AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"


def announced_cluster_name(url: str) -> str:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return connection._impl.server_properties["cluster_name"]
    finally:
        connection.close()


def test_connection_start_announces_the_cluster_name_set_before_the_connection_opened() -> None:
    with EmbeddedBroker() as broker:
        assert announced_cluster_name(broker.url) == node_name()  # unset: the node's name
        assert call(api(broker), "GET", "/cluster-name").body == {"name": node_name()}
        renamed = f"leveret-{uuid.uuid4().hex[:8]}"
        opened_before = pika.BlockingConnection(pika.URLParameters(broker.url))
        try:
            assert call(api(broker), "PUT", "/cluster-name", {"name": renamed}).status == 204
            assert announced_cluster_name(broker.url) == renamed
            assert opened_before._impl.server_properties["cluster_name"] == node_name()
        finally:
            opened_before.close()


@pytest.mark.skipif(not rabbitmq_api_up(), reason="RabbitMQ's management API is not reachable")
def test_rabbitmq_announces_the_cluster_name_its_api_shows_as_leveret_does() -> None:
    # Read-only on the shared RabbitMQ: its name is not ours to change.
    assert announced_cluster_name(RABBITMQ_AMQP) == call(RABBITMQ_API, "GET", "/cluster-name").body["name"]
    with EmbeddedBroker() as broker:
        assert announced_cluster_name(broker.url) == call(api(broker), "GET", "/cluster-name").body["name"]
