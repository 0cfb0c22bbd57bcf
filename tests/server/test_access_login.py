"""Login and vhost access against the stored users: loopback-only guest, changes and new connections."""

from __future__ import annotations

import socket

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


def test_permission_changes_apply_to_new_connections_only(leveret_broker):
    users = leveret_broker.server.users
    users.add_user("svc", "pw")
    users.set_permissions("svc", "/", ".*", ".*", ".*")
    before = _connect("127.0.0.1", leveret_broker.port, "svc", "pw")
    users.set_permissions("svc", "/", "", "", "")
    # The open connection keeps the rights it opened with (RabbitMQ's semantics).
    before.channel().queue_declare("still-allowed", exclusive=True)
    before.close()
    after = _connect("127.0.0.1", leveret_broker.port, "svc", "pw")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        after.channel().queue_declare("now-refused", exclusive=True)
    assert refused.value.reply_code == 403
    after.close()


def test_an_unrestricted_user_gets_the_handlers_unwrapped_and_a_restricted_one_a_guard():
    from leveret.access import Grants, Permission
    from leveret.server.permissions import PermissionChecks

    table = {object: lambda ch, m: None}

    def publish(*args):
        return None

    free = PermissionChecks(Grants("u", "/", Permission()), vhost=None)
    assert free.wrap(table, publish) == (table, publish)
    limited = PermissionChecks(Grants("u", "/", Permission(write="^x$")), vhost=None)
    from leveret.amqp import spec

    wrapped, checked_publish = limited.wrap({method: publish for method in (
        spec.ExchangeDeclare, spec.ExchangeDelete, spec.ExchangeBind, spec.ExchangeUnbind, spec.QueueBind,
        spec.QueueUnbind, spec.QueuePurge, spec.QueueDelete, spec.BasicConsume, spec.BasicGet)}, publish)
    assert checked_publish is not publish and wrapped[spec.BasicGet] is not publish
