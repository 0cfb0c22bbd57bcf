"""TLS against RabbitMQ: the same certificates, the same clients, the same answers.

The shared RabbitMQ has no amqps listener, so this module starts a private node (tests/rabbitnode.py) with
one, configured as docs/security.md tells a RabbitMQ user to configure theirs: verify_peer without
fail_if_no_peer_cert, the EXTERNAL mechanism of rabbitmq_auth_mechanism_ssl, and ssl_cert_login_from =
distinguished_name, the setting whose name format leveret had only from RabbitMQ's docs. A leveret with
the same settings and certificates runs beside it; each test asks both the same question.
"""

from __future__ import annotations

import json
import socket
import ssl
import urllib.parse
import urllib.request
from base64 import b64encode
from pathlib import Path

import pika
import pytest

from leveret.embedded import EmbeddedBroker
from leveret.server.tls import certificate_distinguished_name
from tests.rabbitnode import RabbitNode, free_port, require_rabbitmq_install
from tests.tls.certs import PKI, Identity, _signed
from tests.tls.conftest import client_context, tls_settings

# Subjects chosen for what the name format must get right: RDN order, attribute names, a multi-valued
# RDN, and every character RabbitMQ escapes (openssl -subj syntax: "\" escapes, "+" joins a multi-valued RDN).
SUBJECTS = {
    "ordered": "/C=GB/O=Acme/OU=eu/CN=billing",
    "comma": "/O=Acme\\, Inc./CN=orders",
    "multivalued": "/DC=com/CN=svc+UID=42",
    "specials": '/O=a"b\\+c;d<e>f\\\\g/CN=x3',
    "hash-and-spaces": "/O=#1/OU= padded /CN=x4",
    "utf8": "/O=café~/CN=x5",
}


def _rabbit_api(node: RabbitNode, method: str, path: str, body: object | None = None) -> None:
    request = urllib.request.Request(node.http_url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"content-type": "application/json",
                                              "authorization": "Basic " + b64encode(b"guest:guest").decode()})
    with urllib.request.urlopen(request, timeout=30):
        pass


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> dict[str, Identity]:
    """One client certificate per subject above, signed by the test CA (the pki fixture's)."""
    directory = tmp_path_factory.mktemp("dn-certs")
    ca = (pki.ca, str(Path(pki.ca).with_suffix(".key")))
    made = {}
    for label, subject in SUBJECTS.items():
        made[label] = _signed(directory, f"dn-{label}", subject, ca, "extendedKeyUsage=clientAuth\n",
                              options=("-utf8", "-multivalue-rdn"))
    return made


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory: pytest.TempPathFactory, pki: PKI):
    require_rabbitmq_install()
    ssl_port = free_port()
    node = RabbitNode(tmp_path_factory.mktemp("rabbit-tls"), plugins=(
        "rabbitmq_management", "rabbitmq_auth_mechanism_ssl"), config=[
        f"listeners.ssl.default = 127.0.0.1:{ssl_port}",
        f"ssl_options.cacertfile = {pki.ca}",
        f"ssl_options.certfile = {pki.server.cert}",
        f"ssl_options.keyfile = {pki.server.key}",
        "ssl_options.verify = verify_peer",
        "ssl_options.fail_if_no_peer_cert = false",
        "auth_mechanisms.1 = PLAIN",
        "auth_mechanisms.2 = AMQPLAIN",
        "auth_mechanisms.3 = EXTERNAL",
        "ssl_cert_login_from = distinguished_name",
    ])
    with node:
        node.ssl_port = ssl_port
        yield node


@pytest.fixture(scope="module")
def leveret(pki: PKI):
    with EmbeddedBroker(**tls_settings(pki, ssl_cert_login_from="distinguished_name")) as broker:
        yield broker


def _add_certificate_user(rabbit: RabbitNode, leveret: EmbeddedBroker, name: str) -> None:
    """A user without a password (certificate login only) with every right on "/", on both brokers."""
    quoted = urllib.parse.quote(name, safe="")
    _rabbit_api(rabbit, "PUT", f"/api/users/{quoted}", {"password_hash": "", "tags": ""})
    _rabbit_api(rabbit, "PUT", f"/api/permissions/%2F/{quoted}", {"configure": ".*", "write": ".*", "read": ".*"})
    leveret.server.users.add_user(name, None)
    leveret.server.users.set_permissions(name, "/", ".*", ".*", ".*")


def _external_login(port: int, context: ssl.SSLContext) -> str:
    """"ok" when an EXTERNAL login works and a queue can be declared, else what refused it."""
    try:
        connection = pika.BlockingConnection(pika.ConnectionParameters(
            "127.0.0.1", port, credentials=pika.credentials.ExternalCredentials(),
            ssl_options=pika.SSLOptions(context, "localhost"), connection_attempts=1, socket_timeout=10))
    except (pika.exceptions.ProbableAccessDeniedError, pika.exceptions.ProbableAuthenticationError) as exc:
        return f"refused: {exc}"
    except pika.exceptions.AMQPConnectionError as exc:
        return f"failed: {type(exc).__name__}"
    try:
        connection.channel().queue_declare("", exclusive=True)
        return "ok"
    finally:
        connection.close()


def _context_for(pki: PKI, identity: Identity) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki.ca)
    context.load_cert_chain(identity.cert, identity.key)
    return context


@pytest.mark.parametrize("label", sorted(SUBJECTS))
def test_external_logs_in_as_the_same_distinguished_name_on_both(label, pki, certificates, rabbit, leveret):
    identity = certificates[label]
    name = certificate_distinguished_name(ssl._ssl._test_decode_cert(identity.cert))
    _add_certificate_user(rabbit, leveret, name)
    context = _context_for(pki, identity)
    assert (_external_login(rabbit.ssl_port, context), _external_login(leveret.ssl_port, context)) == ("ok", "ok"), name


def test_a_certificate_whose_name_is_no_user_is_refused_alike(pki, rabbit, leveret):
    context = client_context(pki, "stranger")  # CN=stranger,O=leveret tests: no such user on either
    assert _external_login(rabbit.ssl_port, context) == _external_login(leveret.ssl_port, context)
    assert _external_login(leveret.ssl_port, context).startswith("refused")


def test_external_without_a_certificate_is_refused_alike(pki, rabbit, leveret):
    context = client_context(pki)
    assert _external_login(rabbit.ssl_port, context) == _external_login(leveret.ssl_port, context)
    assert "ACCESS_REFUSED - Login was refused using authentication mechanism EXTERNAL" in _external_login(
        leveret.ssl_port, context)


def _opening(port: int, context: ssl.SSLContext | None, greeting: bytes = b"AMQP\x00\x00\x09\x01") -> str:
    """What a client sees first: the mechanisms of connection.start, a TLS failure, or a hang-up."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            sock = context.wrap_socket(raw, server_hostname="localhost") if context is not None else raw
            sock.sendall(greeting)
            data = b""
            while len(data) < 7 or len(data) < 8 + int.from_bytes(data[3:7], "big"):
                chunk = sock.recv(65536)
                if not chunk:
                    return "closed" + (f" after {data!r}" if data else "")
                data += chunk
    except ssl.SSLError as exc:
        return f"tls error: {exc.reason or type(exc).__name__}"
    except ConnectionResetError:
        return "closed"  # RabbitMQ resets where leveret closes: the client sees a hang-up either way
    payload = data[7:7 + int.from_bytes(data[3:7], "big")]
    at = 4 + 2
    at += 4 + int.from_bytes(payload[at:at + 4], "big")
    size = int.from_bytes(payload[at:at + 4], "big")
    return "mechanisms: " + payload[at + 4:at + 4 + size].decode()


def test_external_is_offered_to_every_tls_connection_as_rabbitmq_offers_it(pki, rabbit, leveret):
    with_certificate = client_context(pki, "alice")
    without = client_context(pki)
    seen = {name: (_opening(port, with_certificate), _opening(port, without))
            for name, port in (("rabbitmq", rabbit.ssl_port), ("leveret", leveret.ssl_port))}
    assert seen["leveret"] == seen["rabbitmq"]
    assert seen["leveret"] == ("mechanisms: PLAIN AMQPLAIN EXTERNAL",) * 2


@pytest.mark.parametrize("which", ["untrusted", "expired"])
def test_a_bad_client_certificate_gets_no_amqp_on_either(which, pki, rabbit, leveret):
    # Both end the connection before any AMQP byte. RabbitMQ says why in a TLS alert (unknown_ca,
    # certificate_expired); leveret's TLS layer (asyncio's) drops the connection without sending the alert
    # OpenSSL made, so the client sees a hang-up (docs/security.md, differences).
    context = client_context(pki, untrusted=which == "untrusted", expired=which == "expired")
    alert = "TLSV1_ALERT_UNKNOWN_CA" if which == "untrusted" else "SSLV3_ALERT_CERTIFICATE_EXPIRED"
    on_rabbitmq, on_leveret = _opening(rabbit.ssl_port, context), _opening(leveret.ssl_port, context)
    # RabbitMQ's alert reaches the client as that alert, or (when the client's first write finds the
    # connection already gone) as a TLS error without a reason; leveret's close as a clean hang-up.
    assert on_rabbitmq in (f"tls error: {alert}", "tls error: SSLEOFError", "tls error: SSLZeroReturnError",
                           "closed"), on_rabbitmq
    assert on_leveret in ("closed", "tls error: SSLEOFError"), on_leveret


def test_plain_amqp_on_the_tls_port_is_hung_up_on_alike(rabbit, leveret):
    assert _opening(leveret.ssl_port, None) == _opening(rabbit.ssl_port, None)


def test_password_login_over_tls_works_alike(pki, rabbit, leveret):
    results = []
    for port in (rabbit.ssl_port, leveret.ssl_port):
        connection = pika.BlockingConnection(pika.ConnectionParameters(
            "127.0.0.1", port, credentials=pika.PlainCredentials("guest", "guest"),
            ssl_options=pika.SSLOptions(client_context(pki), "localhost"), connection_attempts=1, socket_timeout=10))
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.basic_publish("", queue, b"over tls")
        results.append(channel.basic_get(queue, auto_ack=True)[2])
        connection.close()
    assert results == [b"over tls", b"over tls"]
