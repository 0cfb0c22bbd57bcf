"""The node-wide connection limit (RabbitMQ's connection_max, leveret's max_connections) against RabbitMQ.

The shared RabbitMQ must not be reconfigured, so a private node (tests/rabbitnode.py) runs with
`connection_max = 2` beside a leveret with `max_connections = 2`; each scenario opens two connections and
then tries a third. RabbitMQ 3.10 hands connection_max to its TCP acceptor, which stops counting a
connection once its AMQP handshake starts, so it never refuses an AMQP connection for it; leveret
refuses the third connection.open with the text of the later RabbitMQ releases that enforce the limit
(docs/security.md, differences). This module pins both observations, so a RabbitMQ that changes shows here.
"""

from __future__ import annotations

import urllib.parse

import pika
import pytest

from leveret.embedded import EmbeddedBroker
from tests.rabbitnode import RabbitNode, require_rabbitmq_install

LIMIT = 2


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory: pytest.TempPathFactory):
    require_rabbitmq_install()
    with RabbitNode(tmp_path_factory.mktemp("rabbit-limit"), config=[f"connection_max = {LIMIT}"]) as node:
        node.ctl("add_vhost", "closed")  # a vhost guest has no permissions in
        yield node


@pytest.fixture(scope="module")
def leveret():
    with EmbeddedBroker(max_connections=LIMIT) as broker:
        broker.server.put_vhost("closed")
        yield broker


def _outcome(port: int, vhost: str = "/", password: str = "guest") -> tuple[str, pika.BlockingConnection | None]:
    parameters = pika.ConnectionParameters("127.0.0.1", port, virtual_host=vhost, connection_attempts=1,
                                           credentials=pika.PlainCredentials("guest", password), socket_timeout=10)
    try:
        return "open", pika.BlockingConnection(parameters)
    except pika.exceptions.AMQPConnectionError as exc:
        return f"{type(exc).__name__}: {exc}", None


def _third_connection(port: int, **third: str) -> str:
    """Open LIMIT connections, then one more as `third` says; close them all; what the third one met."""
    held = [_outcome(port)[1] for _ in range(LIMIT)]
    assert all(held)
    try:
        outcome, extra = _outcome(port, **third)
        if extra is not None:
            extra.close()
        return outcome
    finally:
        for connection in held:
            connection.close()


LIMIT_TEXT = "NOT_ALLOWED - connection refused: node connection limit (2) is reached"


@pytest.mark.parametrize("third, on_rabbitmq, on_leveret", [
    ({}, "open", LIMIT_TEXT),
    ({"vhost": "missing"}, "NOT_ALLOWED - vhost missing not found", LIMIT_TEXT),
    ({"vhost": "closed"}, "NOT_ALLOWED - access to vhost 'closed' refused for user 'guest'", LIMIT_TEXT),
    ({"password": "wrong"}, "ACCESS_REFUSED", "ACCESS_REFUSED"),
], ids=["same-vhost", "missing-vhost", "vhost-without-permissions", "bad-password"])
def test_the_connection_over_the_limit(third, on_rabbitmq, on_leveret, rabbit, leveret):
    # On leveret the limit is checked after the login and before every vhost check; on RabbitMQ 3.10 only
    # the ordinary checks apply to the third connection.
    assert on_rabbitmq in _third_connection(rabbit.amqp_port, **third)
    assert on_leveret in _third_connection(leveret.port, **third)
