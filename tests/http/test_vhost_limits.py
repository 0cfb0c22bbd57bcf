"""Vhost limits (max-connections, max-queues) through the management API, enforced with RabbitMQ's refusals,
durable across a restart."""

from __future__ import annotations

import pika
import pytest

from leveret.embedded import EmbeddedBroker

from .api_client import api, call


def connect(broker: EmbeddedBroker, vhost: str = "%2F") -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(f"amqp://guest:guest@127.0.0.1:{broker.port}/{vhost}"))


def test_limits_are_set_listed_and_cleared(broker: EmbeddedBroker) -> None:
    base = api(broker)
    assert call(base, "GET", "/vhost-limits").body == []
    assert call(base, "PUT", "/vhost-limits/%2F/max-queues", {"value": 5}).status == 204
    assert call(base, "PUT", "/vhost-limits/%2F/max-connections", {"value": -1}).status == 204
    expected = [{"vhost": "/", "value": {"max-queues": 5, "max-connections": -1}}]
    assert call(base, "GET", "/vhost-limits").body == expected
    assert call(base, "GET", "/vhost-limits/%2F").body == expected
    assert call(base, "DELETE", "/vhost-limits/%2F/max-queues").status == 204
    assert call(base, "DELETE", "/vhost-limits/%2F/max-queues").status == 204
    assert call(base, "GET", "/vhost-limits/%2F").body == [{"vhost": "/", "value": {"max-connections": -1}}]


def test_limit_refusals_are_rabbitmqs(broker: EmbeddedBroker) -> None:
    base = api(broker)
    assert call(base, "PUT", "/vhost-limits/%2F/max-queues", {}).body == {
        "error": "bad_request", "reason": "[{key_missing,value}]"}
    assert call(base, "PUT", "/vhost-limits/%2F/max-queues", {"value": "x"}).body == {
        "error": "bad_request", "reason": 'Validation failed\n\nmax-queues should be a number, actually was <<"x">>\n'}
    assert call(base, "PUT", "/vhost-limits/%2F/bogus", {"value": 1}).body == {
        "error": "bad_request", "reason": 'Validation failed\n\nUnrecognised terms [{<<"bogus">>,1}] in limits\n'}
    missing = call(base, "PUT", "/vhost-limits/nowhere/max-queues", {"value": 1})
    assert (missing.status, missing.body) == (404, {"error": "not_found", "reason": "vhost_not_found"})
    assert broker.server.users.vhosts["/"].limits == {}


def test_max_queues_refuses_a_new_queue_but_not_a_redeclare(broker: EmbeddedBroker) -> None:
    call(api(broker), "PUT", "/vhost-limits/%2F/max-queues", {"value": 1})
    connection = connect(broker)
    channel = connection.channel()
    channel.queue_declare("first")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.queue_declare("second")
    assert (refused.value.reply_code, refused.value.reply_text) == (
        406, "PRECONDITION_FAILED - cannot declare queue 'second': queue limit in vhost '/' (1) is reached")
    for arguments in ({"x-max-length": "abc"}, {"x-queue-type": "stream"}):  # the limit first, as RabbitMQ
        channel = connection.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.queue_declare("third", durable=True, arguments=arguments)
        assert refused.value.reply_text.endswith("queue limit in vhost '/' (1) is reached")
    channel = connection.channel()
    channel.queue_declare("first")
    channel.queue_declare("first", passive=True)
    call(api(broker), "DELETE", "/vhost-limits/%2F/max-queues")
    channel.queue_declare("second")
    connection.close()


def test_max_connections_refuses_the_next_connection_until_one_closes(broker: EmbeddedBroker) -> None:
    call(api(broker), "PUT", "/vhost-limits/%2F/max-connections", {"value": 1})
    first = connect(broker)
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as refused:
        connect(broker)
    assert "NOT_ALLOWED - access to vhost '/' refused for user 'guest': connection limit (1) is reached" in str(
        refused.value)
    first.close()
    connect(broker).close()
    call(api(broker), "PUT", "/vhost-limits/%2F/max-connections", {"value": 0})
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
        connect(broker)


def test_the_connection_limit_is_checked_before_the_users_access(broker: EmbeddedBroker) -> None:
    """As RabbitMQ 3.10 (checked against it): a user without a permission row in a vhost at its limit is told
    about the limit."""
    call(api(broker), "PUT", "/vhosts/full")
    call(api(broker), "DELETE", "/permissions/full/guest")
    call(api(broker), "PUT", "/vhost-limits/full/max-connections", {"value": 0})
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as refused:
        connect(broker, "full")
    assert "access to vhost 'full' refused for user 'guest': connection limit (0) is reached" in str(refused.value)
    call(api(broker), "DELETE", "/vhost-limits/full/max-connections")
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as refused:
        connect(broker, "full")
    assert "access to vhost 'full' refused for user 'guest'\"" in str(refused.value)


def test_limits_survive_a_restart(tmp_path) -> None:
    data_dir = str(tmp_path / "data")
    with EmbeddedBroker(data_dir=data_dir) as broker:
        call(api(broker), "PUT", "/vhost-limits/%2F/max-queues", {"value": 0})
        call(api(broker), "PUT", "/vhosts/%2F", {"description": "kept limits"})
    with EmbeddedBroker(data_dir=data_dir) as broker:
        assert broker.server.users.vhosts["/"].limits == {"max-queues": 0}
        channel = connect(broker).channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.queue_declare("none")
        assert refused.value.reply_code == 406
