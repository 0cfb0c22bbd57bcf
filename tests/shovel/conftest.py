"""Fixtures of the shovel tests."""

from __future__ import annotations

import uuid

import pytest

from leveret.embedded import EmbeddedBroker
from tests.shovel.helpers import rabbit_api


@pytest.fixture
def two_brokers():
    # The destination is entered first so that it stops last: the source's shovel closes its connections
    # before its destination goes away.
    with EmbeddedBroker() as destination, EmbeddedBroker() as source:
        yield source, destination


@pytest.fixture
def rabbit_vhost(rabbitmq_url: str):
    """A fresh vhost on the shared RabbitMQ (guest has every right in it), deleted with all it holds after
    the test: (its name, its AMQP URL)."""
    name = f"shovel-test-{uuid.uuid4().hex[:10]}"
    assert rabbit_api("PUT", f"/api/vhosts/{name}").status in (201, 204)
    assert rabbit_api("PUT", f"/api/permissions/{name}/guest",
                      {"configure": ".*", "write": ".*", "read": ".*"}).status in (201, 204)
    try:
        yield name, f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        rabbit_api("DELETE", f"/api/vhosts/{name}")
