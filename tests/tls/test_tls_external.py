"""The EXTERNAL mechanism: a verified client certificate's common name is the user, offered only to TLS
connections that presented one; the user must exist (a user without a password is for this)."""

from __future__ import annotations

import asyncio
import socket
import ssl

import aio_pika
import kombu
import pika
import pytest

from leveret.embedded import EmbeddedBroker
from tests.tls.conftest import client_context, logged_in_users, tls_settings

REFUSED = "ACCESS_REFUSED - Login was refused using authentication mechanism EXTERNAL. For details see the broker logfile."


@pytest.fixture
def broker(pki):
    with EmbeddedBroker(**tls_settings(pki)) as broker:
        users = broker.server.users
        users.add_user("alice", "alice-password")
        users.set_permissions("alice", "/", ".*", ".*", ".*")
        users.add_user("nopass", None)  # may only log in by certificate
        users.set_permissions("nopass", "/", ".*", ".*", ".*")
        yield broker


def _external(port: int, context: ssl.SSLContext) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", port, credentials=pika.credentials.ExternalCredentials(),
        ssl_options=pika.SSLOptions(context, "localhost"), connection_attempts=1, socket_timeout=10))


def _offered_mechanisms(port: int, context: ssl.SSLContext | None) -> list[str]:
    """The mechanisms of the broker's connection.start, read off the wire."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        sock = context.wrap_socket(raw, server_hostname="localhost") if context is not None else raw
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        data = b""
        while len(data) < 7 or len(data) < 8 + int.from_bytes(data[3:7], "big"):
            chunk = sock.recv(65536)
            assert chunk, "the broker hung up before connection.start"
            data += chunk
    payload = data[7:7 + int.from_bytes(data[3:7], "big")]
    # class, method, version major/minor, then the server-properties table, then mechanisms (a long string).
    at = 4 + 2
    at += 4 + int.from_bytes(payload[at:at + 4], "big")
    size = int.from_bytes(payload[at:at + 4], "big")
    return payload[at + 4:at + 4 + size].decode().split()


def test_pika_logs_in_as_the_certificate_common_name(pki, broker):
    connection = _external(broker.ssl_port, client_context(pki, "alice"))
    assert logged_in_users(broker, ["alice"]) == ["alice"]
    channel = connection.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_publish("", queue, b"as alice")
    assert channel.basic_get(queue, auto_ack=True)[2] == b"as alice"
    connection.close()


def test_a_user_without_a_password_logs_in_by_certificate_only(pki, broker):
    _external(broker.ssl_port, client_context(pki, "nopass")).close()
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(pika.ConnectionParameters(
            "127.0.0.1", broker.ssl_port, credentials=pika.PlainCredentials("nopass", ""),
            ssl_options=pika.SSLOptions(client_context(pki, "nopass"), "localhost"), connection_attempts=1))


def test_a_certificate_naming_no_user_is_refused_with_rabbitmqs_text(pki, broker):
    bystander = _external(broker.ssl_port, client_context(pki, "alice"))
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as refused:
        _external(broker.ssl_port, client_context(pki, "stranger"))
    assert REFUSED in str(refused.value)
    assert logged_in_users(broker, ["alice"]) == ["alice"]
    bystander.channel().queue_declare("", exclusive=True)
    bystander.close()


def test_external_is_offered_on_every_tls_connection_and_never_on_plain_ones(pki, broker):
    # As RabbitMQ 3.10 (rabbit_auth_mechanism_ssl offers it to a TLS socket with or without a peer
    # certificate; tests/tls/test_tls_diff.py compares the two). `broker` verifies peers.
    assert _offered_mechanisms(broker.ssl_port, client_context(pki, "alice")) == ["PLAIN", "AMQPLAIN", "EXTERNAL"]
    assert _offered_mechanisms(broker.ssl_port, client_context(pki)) == ["PLAIN", "AMQPLAIN", "EXTERNAL"]
    assert _offered_mechanisms(broker.port, None) == ["PLAIN", "AMQPLAIN"]


def test_external_without_a_certificate_is_refused_with_rabbitmqs_text(pki, broker):
    with pytest.raises(pika.exceptions.ProbableAuthenticationError, match="EXTERNAL"):
        _external(broker.ssl_port, client_context(pki))
    assert logged_in_users(broker, []) == []


def test_a_listener_that_verifies_no_peers_never_offers_external(pki):
    with EmbeddedBroker(**tls_settings(pki, ssl_verify="verify_none")) as broker:
        assert _offered_mechanisms(broker.ssl_port, client_context(pki, "alice")) == ["PLAIN", "AMQPLAIN"]


def test_aio_pika_logs_in_with_external(pki, broker):
    async def run() -> list[str]:
        connection = await aio_pika.connect(f"amqps://localhost:{broker.ssl_port}/?auth=external",
                                            ssl_context=client_context(pki, "alice"), timeout=10)
        async with connection:
            channel = await connection.channel()
            await channel.declare_queue("", exclusive=True)
            return logged_in_users(broker, ["alice"])

    assert asyncio.run(run()) == ["alice"]


def test_kombu_logs_in_with_external(pki, broker):
    nopass = pki.clients["nopass"]
    ssl_options = {"ca_certs": pki.ca, "certfile": nopass.cert, "keyfile": nopass.key,
                   "cert_reqs": ssl.CERT_REQUIRED, "server_hostname": "localhost"}
    with kombu.Connection(f"amqp://127.0.0.1:{broker.ssl_port}//", ssl=ssl_options, login_method="EXTERNAL",
                          connect_timeout=10) as connection:
        connection.connect()
        assert logged_in_users(broker, ["nopass"]) == ["nopass"]


def test_guest_by_certificate_is_still_a_loopback_user(pki, broker):
    # From loopback, as here, the guest certificate logs in; the loopback rule is the same as for PLAIN
    # (tests/server/test_access_login.py covers a remote address).
    _external(broker.ssl_port, client_context(pki, "guest")).close()
    assert broker.server.users.authenticate_certificate("guest", from_loopback=False) is None
    assert broker.server.users.authenticate_certificate("guest", from_loopback=True) is not None


def test_a_connection_we_close_goes_even_when_its_client_is_not_reading(pki, broker):
    # pika's blocking connection reads only when called: it will not answer the broker's TLS close_notify.
    idle = _external(broker.ssl_port, client_context(pki, "alice"))
    assert logged_in_users(broker, ["alice"]) == ["alice"]
    broker.server.users.delete_user("alice")  # RabbitMQ closes a deleted user's connections (320)
    assert logged_in_users(broker, [], timeout=10) == []  # asyncio's own wait for close_notify is 30 s
    with pytest.raises(pika.exceptions.ConnectionClosed):
        idle.channel()
