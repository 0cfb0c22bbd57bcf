"""User limits (RabbitMQ's max-connections and max-channels per user): enforced at connection.open and
channel.open with RabbitMQ's texts, counted over all the user's connections, durable across a restart.
tests/diff/test_user_limits_diff.py compares the same with RabbitMQ."""

from __future__ import annotations

import pika
import pytest

from leveret.embedded import EmbeddedBroker


def _connect(broker: EmbeddedBroker, user: str = "limited") -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", broker.port, credentials=pika.PlainCredentials(user, "pw"), connection_attempts=1))


def _limited_user(broker: EmbeddedBroker, **limits: int) -> None:
    users = broker.server.users
    users.add_user("limited", "pw")
    users.set_permissions("limited", "/", ".*", ".*", ".*")
    for limit, value in limits.items():
        users.set_user_limit("limited", limit.replace("_", "-"), value)


def test_a_connection_over_the_users_limit_is_refused_and_others_are_not(tmp_path):
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        _limited_user(broker, max_connections=1)
        first = _connect(broker)
        with pytest.raises(pika.exceptions.ProbableAccessDeniedError,
                           match="connection refused for user 'limited': user connection limit \\(1\\) is reached"):
            _connect(broker)
        bystander = pika.BlockingConnection(pika.URLParameters(broker.url))  # guest has no limit
        assert first.is_open and bystander.is_open
        first.close()
        _connect(broker).close()  # the slot is free again
        bystander.close()
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:  # the limit is durable
        assert broker.server.users.user_limit("limited", "max-connections") == 1


def test_the_channel_limit_counts_every_connection_of_the_user_and_closes_the_one_over_it():
    with EmbeddedBroker() as broker:
        _limited_user(broker, max_channels=2)
        one, two = _connect(broker), _connect(broker)
        one.channel()
        two.channel()
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker,
                           match="number of channels opened for user 'limited' has reached the maximum allowed "
                                 "user limit of \\(2\\)"):
            two.channel()
        assert one.is_open and not two.is_open
        broker.server.users.set_user_limit("limited", "max-channels", -1)  # negative: no limit
        one.channel()
        one.close()


def test_a_user_update_keeps_its_limits():
    with EmbeddedBroker() as broker:
        _limited_user(broker, max_connections=4)
        broker.server.users.change_password("limited", "other")
        broker.server.users.set_tags("limited", ["management"])
        broker.server.users.add_user("limited", "third")  # a PUT of the whole user, as /api/users does
        assert broker.server.users.users["limited"].limits == {"max-connections": 4}
