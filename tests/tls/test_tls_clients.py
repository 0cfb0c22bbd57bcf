"""Real clients over the amqps listener (pika, aio-pika, kombu), with and without a client certificate, and
the ways a TLS connection fails: each fails cleanly and costs nothing else (a bystander keeps working)."""

from __future__ import annotations

import asyncio
import socket
import ssl

import aio_pika
import kombu
import pika
import pytest

from leveret.embedded import EmbeddedBroker
from tests.tls.conftest import client_context, tls_settings

# How pika reports a connection the broker's TLS side refused: as an AMQP connection error, or (when the
# refusal arrives during its own handshake) as the ssl error itself.
FAILED_CONNECTION = (pika.exceptions.AMQPConnectionError, ssl.SSLError)


def _pika(port: int, context: ssl.SSLContext | None, hostname: str = "localhost",
          credentials: pika.credentials.PlainCredentials | pika.credentials.ExternalCredentials | None = None,
          ) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", port, credentials=credentials or pika.PlainCredentials("guest", "guest"),
        ssl_options=pika.SSLOptions(context, hostname) if context is not None else None,
        connection_attempts=1, socket_timeout=10, blocked_connection_timeout=10))


def _round_trip(connection: pika.BlockingConnection, body: bytes) -> None:
    channel = connection.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_publish("", queue, body)
    _, _, got = channel.basic_get(queue, auto_ack=True)
    assert got == body


def test_pika_over_tls_without_a_client_certificate(pki, tls_broker):
    connection = _pika(tls_broker.ssl_port, client_context(pki))
    _round_trip(connection, b"over tls")
    connection.close()


def test_pika_over_tls_with_a_client_certificate_and_a_password(pki, tls_broker):
    connection = _pika(tls_broker.ssl_port, client_context(pki, "alice"))
    _round_trip(connection, b"with a certificate")
    connection.close()


def test_a_large_message_crosses_tls_in_many_records(pki, tls_broker):
    connection = _pika(tls_broker.ssl_port, client_context(pki))
    _round_trip(connection, bytes(range(256)) * 4096)  # 1 MiB: many TLS records and AMQP frames
    connection.close()


def test_aio_pika_over_tls(pki, tls_broker):
    async def run() -> bytes:
        connection = await aio_pika.connect(f"amqps://guest:guest@localhost:{tls_broker.ssl_port}/",
                                            ssl_context=client_context(pki, "alice"), timeout=10)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue("", exclusive=True)
            await channel.default_exchange.publish(aio_pika.Message(b"aio over tls"), routing_key=queue.name)
            message = await queue.get(timeout=10)
            await message.ack()
            return message.body

    assert asyncio.run(run()) == b"aio over tls"


def test_kombu_over_tls(pki, tls_broker):
    alice = pki.clients["alice"]
    ssl_options = {"ca_certs": pki.ca, "certfile": alice.cert, "keyfile": alice.key,
                   "cert_reqs": ssl.CERT_REQUIRED, "server_hostname": "localhost"}
    with kombu.Connection(f"amqp://guest:guest@127.0.0.1:{tls_broker.ssl_port}//", ssl=ssl_options,
                          connect_timeout=10) as connection:
        queue = kombu.Queue("kombu-tls", exclusive=True)
        with connection.Producer() as producer:
            producer.publish({"over": "tls"}, routing_key="kombu-tls", declare=[queue], serializer="json")
        with connection.SimpleQueue(queue) as simple:
            message = simple.get(timeout=10)
            message.ack()
    assert message.payload == {"over": "tls"}


def test_the_plain_listener_keeps_serving_beside_the_tls_one(tls_broker):
    connection = pika.BlockingConnection(pika.URLParameters(tls_broker.url))
    _round_trip(connection, b"plain")
    connection.close()


@pytest.fixture
def bystander(pki, tls_broker):
    """An open TLS connection whose channel must still work after someone else's failed attempt."""
    connection = _pika(tls_broker.ssl_port, client_context(pki))
    yield connection
    _round_trip(connection, b"still here")
    assert len(tls_broker.server.connections) == 1  # the failed attempt left no connection behind
    connection.close()


def test_a_plain_text_client_on_the_tls_port_fails_cleanly(tls_broker, bystander):
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        _pika(tls_broker.ssl_port, None)


def test_an_untrusted_client_certificate_is_refused(pki, tls_broker, bystander):
    with pytest.raises(FAILED_CONNECTION):
        # TLS 1.3 tells the client of the refusal only after its side of the handshake: it may fail there
        # or at its first read, and either is a failed connection.
        _pika(tls_broker.ssl_port, client_context(pki, untrusted=True))


def test_an_expired_client_certificate_is_refused(pki, tls_broker, bystander):
    with pytest.raises(FAILED_CONNECTION):
        _pika(tls_broker.ssl_port, client_context(pki, expired=True))


def test_a_wrong_hostname_fails_on_the_client(pki, tls_broker, bystander):
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _pika(tls_broker.ssl_port, client_context(pki), hostname="not-the-broker.example")


def test_a_garbage_client_is_hung_up_on_and_costs_nothing(pki, tls_broker, bystander):
    with socket.create_connection(("127.0.0.1", tls_broker.ssl_port), timeout=10) as raw:
        raw.sendall(b"\x16\x03\x01\x00\x05hello" + b"\x00" * 64)  # a TLS record header, then nonsense
        received = [raw.recv(4096)]  # perhaps an alert first; then the server hangs up (or the timeout fails us)
        while received[-1]:
            received.append(raw.recv(4096))


def test_a_silent_client_is_hung_up_on_after_the_handshake_timeout(pki):
    with EmbeddedBroker(**tls_settings(pki, handshake_timeout=0.2)) as broker:
        with socket.create_connection(("127.0.0.1", broker.ssl_port), timeout=10) as silent:
            assert silent.recv(4096) == b""  # before the 10 s socket timeout, which would fail the test


def test_fail_if_no_peer_cert_refuses_a_client_without_one(pki):
    with EmbeddedBroker(**tls_settings(pki, ssl_fail_if_no_peer_cert=True)) as broker:
        with pytest.raises(FAILED_CONNECTION):
            _pika(broker.ssl_port, client_context(pki))
        connection = _pika(broker.ssl_port, client_context(pki, "alice"))
        _round_trip(connection, b"with the certificate it asked for")
        connection.close()


def test_verify_none_asks_for_no_certificate(pki):
    with EmbeddedBroker(**tls_settings(pki, ssl_verify="verify_none", ssl_cacertfile="")) as broker:
        connection = _pika(broker.ssl_port, client_context(pki, untrusted=True))  # not looked at
        _round_trip(connection, b"no peer verification")
        connection.close()


def test_the_minimum_version_refuses_older_clients(pki):
    with EmbeddedBroker(**tls_settings(pki, ssl_min_version="tlsv1.3")) as broker:
        old = client_context(pki)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(FAILED_CONNECTION):
            _pika(broker.ssl_port, old)
        connection = _pika(broker.ssl_port, client_context(pki))
        _round_trip(connection, b"tls 1.3")
        connection.close()


def test_amqps_only_when_the_plain_listener_is_off(pki):
    with EmbeddedBroker(**tls_settings(pki, port=-1, kafka_port=-1)) as broker:
        assert broker.server.amqp_listener is None and len(broker.server.listeners) == 2  # amqps and HTTP
        assert broker.ssl_url == f"amqps://guest:guest@127.0.0.1:{broker.ssl_port}/%2F"
        connection = _pika(broker.ssl_port, client_context(pki))
        _round_trip(connection, b"amqps only")
        connection.close()
