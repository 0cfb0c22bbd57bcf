"""Fixtures of the TLS tests: one throwaway PKI per session, brokers with an amqps listener, client contexts."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator

import pytest

from leveret.embedded import EmbeddedBroker
from tests.tls.certs import PKI, make_pki

CLIENT_NAMES = ("alice", "nopass", "guest", "stranger")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"), CLIENT_NAMES)


def tls_settings(pki: PKI, **changes: object) -> dict:
    """An embedded broker's settings for an amqps listener on a free port that verifies client certificates."""
    settings = dict(ssl_port=0, ssl_certfile=pki.server.cert, ssl_keyfile=pki.server.key,
                    ssl_cacertfile=pki.ca, ssl_verify="verify_peer")
    settings.update(changes)
    return settings


@pytest.fixture
def tls_broker(pki: PKI) -> Iterator[EmbeddedBroker]:
    """A broker with both listeners: plain AMQP and amqps (verify_peer, a certificate optional)."""
    with EmbeddedBroker(**tls_settings(pki)) as broker:
        yield broker


def client_context(pki: PKI, identity: str | None = None, *, untrusted: bool = False,
                   expired: bool = False) -> ssl.SSLContext:
    """A client's context trusting the test CA, presenting the named client certificate (or the untrusted or
    the expired one)."""
    context = ssl.create_default_context(cafile=pki.ca)
    chosen = (pki.untrusted if untrusted else pki.expired if expired else pki.clients[identity] if identity
              else None)
    if chosen is not None:
        context.load_cert_chain(chosen.cert, chosen.key)
    return context


def logged_in_users(broker: EmbeddedBroker, expected: list[str], timeout: float = 10.0) -> list[str]:
    """The users of the broker's open connections, once they are `expected` (or whatever they are after
    `timeout`): a refused client hears its connection.close before the broker has dropped the connection."""
    deadline = time.monotonic() + timeout
    while True:
        users = sorted(conn.session.username for conn in list(broker.server.connections))
        if users == expected or time.monotonic() > deadline:
            return users
        time.sleep(0.005)  # polling a condition, bounded by the deadline
