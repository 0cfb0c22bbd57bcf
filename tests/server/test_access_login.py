"""Login and vhost access against the stored users: loopback-only guest, changes and new connections."""

from __future__ import annotations

import socket
import threading

import pika
import pytest

from leveret.embedded import EmbeddedBroker

REFUSED = "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile."


def _non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (where a "remote" client can come from)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def _connect(host: str, port: int, user: str, password: str, vhost: str = "/") -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.ConnectionParameters(
        host, port, vhost, pika.PlainCredentials(user, password), connection_attempts=1, socket_timeout=10))


def test_guest_may_only_log_in_from_loopback_and_other_users_from_anywhere():
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    with EmbeddedBroker(host="0.0.0.0") as broker:
        broker.server.users.add_user("remote", "pw")
        broker.server.users.set_permissions("remote", "/", ".*", ".*", ".*")
        _connect("127.0.0.1", broker.port, "guest", "guest").close()
        with pytest.raises(pika.exceptions.ProbableAuthenticationError) as refused:
            _connect(address, broker.port, "guest", "guest")
        assert REFUSED in str(refused.value)
        _connect(address, broker.port, "remote", "pw").close()


def test_a_password_change_applies_to_new_connections(leveret_broker):
    users = leveret_broker.server.users
    users.add_user("svc", "old")
    users.set_permissions("svc", "/", ".*", ".*", ".*")
    before = _connect("127.0.0.1", leveret_broker.port, "svc", "old")
    users.change_password("svc", "new")
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        _connect("127.0.0.1", leveret_broker.port, "svc", "old")
    before.channel().queue_declare("", exclusive=True)  # the open connection is left alone
    before.close()
    _connect("127.0.0.1", leveret_broker.port, "svc", "new").close()


def test_a_vhost_known_to_the_registry_and_the_model_admits_its_users(leveret_broker):
    server = leveret_broker.server
    server.users.add_vhost("team")
    server.broker.add_vhost("team")
    server.users.add_user("member", "pw")
    server.users.set_permissions("member", "team", ".*", ".*", ".*")
    _connect("127.0.0.1", leveret_broker.port, "member", "pw", "team").close()
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
        _connect("127.0.0.1", leveret_broker.port, "member", "pw", "/")
    server.users.delete_vhost("team")
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
        _connect("127.0.0.1", leveret_broker.port, "member", "pw", "team")


def test_a_permission_change_applies_to_the_next_operation_and_a_channel_keeps_what_it_was_allowed(
        leveret_broker):
    """RabbitMQ 3.10: permissions are read at each check; a channel remembers what it was allowed."""
    users = leveret_broker.server.users
    users.add_user("svc", "pw")
    users.set_permissions("svc", "/", ".*", ".+", ".*")  # not ".*" thrice: the channels decide and remember
    connection = _connect("127.0.0.1", leveret_broker.port, "svc", "pw")
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare("kept", exclusive=True)
    channel.basic_publish("", "kept", b"1")
    users.set_permissions("svc", "/", "", "", "")
    channel.basic_publish("", "kept", b"2")  # allowed on this channel before the change: still allowed
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.queue_declare("new-decision", exclusive=True)
    assert refused.value.reply_code == 403
    fresh = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        fresh.basic_publish("", "kept", b"3")  # a new channel decides again
        fresh.basic_qos(prefetch_count=1)  # (its reply shows whether the publish closed the channel)
    assert refused.value.reply_code == 403
    connection.close()


def _changes_applied(broker) -> None:
    """Wait (bounded) until the loop has run what the registry's change scheduled on it."""
    done = threading.Event()
    broker.server.loop.call_soon_threadsafe(done.set)
    assert done.wait(10)


def test_an_unrestricted_user_whose_permissions_shrink_decides_everything_again(leveret_broker):
    """Its handlers were unwrapped (nothing decided, nothing remembered): after the change its open
    channels check every operation under the new permissions (RabbitMQ would keep up to 12 decisions)."""
    users = leveret_broker.server.users
    users.add_user("svc", "pw")
    users.set_permissions("svc", "/", ".*", ".*", ".*")
    connection = _connect("127.0.0.1", leveret_broker.port, "svc", "pw")
    channel = connection.channel()
    channel.queue_declare("q1", exclusive=True)
    users.set_permissions("svc", "/", "^q2$", ".*", ".*")
    _changes_applied(leveret_broker)
    channel.queue_declare("q2", exclusive=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.queue_declare("q3", exclusive=True)
    assert refused.value.reply_code == 403
    users.set_permissions("svc", "/", ".*", ".*", ".*")  # and back: unwrapped again
    _changes_applied(leveret_broker)
    connection.channel().queue_declare("q3", exclusive=True)
    connection.close()


def test_a_stopped_server_no_longer_watches_the_registry():
    with EmbeddedBroker() as broker:
        users = broker.server.users
        assert len(users.on_change) == len(users.on_user_deleted) == 1
    assert users.on_change == users.on_user_deleted == []  # its loop is gone: nothing may call into it
