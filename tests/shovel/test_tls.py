"""amqps shovel ends: leveret's own TLS settings (its CA bundle) by default, RabbitMQ's URI query parameters
(cacertfile, certfile, keyfile, verify, server_name_indication) per shovel. The far end is a leveret amqps
listener of a throwaway PKI (tests/tls/certs.py) that asks for client certificates."""

from __future__ import annotations

import pytest

from leveret.embedded import EmbeddedBroker
from tests.shovel.helpers import drain, on_loop, publish, shovel_state, wait_for
from tests.tls.certs import PKI, make_pki

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("shovel-pki"), ("alice",))


@pytest.fixture
def far(pki: PKI):
    """A broker whose amqps listener presents a certificate of the test CA and asks clients for theirs."""
    with EmbeddedBroker(ssl_port=0, ssl_certfile=pki.server.cert, ssl_keyfile=pki.server.key,
                        ssl_cacertfile=pki.ca, ssl_verify="verify_peer") as broker:
        yield broker


def far_uri(broker: EmbeddedBroker, host: str = "localhost", **query: str) -> str:
    params = "&".join(f"{key}={value}" for key, value in query.items())
    return f"amqps://guest:guest@{host}:{broker.ssl_port}/%2F" + (f"?{params}" if params else "")


def run_shovel(broker: EmbeddedBroker, name: str, dest_uri: str) -> dict:
    """Apply a local-queue-to-`dest_uri` shovel; its first settled state (running, or terminated and why)."""
    on_loop(broker, broker.server.broker.parameters.set, "/", "shovel", name,
            {"src-uri": "amqp://", "src-queue": "edge", "dest-uri": dest_uri, "dest-queue": "central",
             "reconnect-delay": 0.2})
    return wait_for(lambda: (row := shovel_state(broker, "/", name)) and row["state"] != "starting" and row,
                    20, f"shovel {name} to start or fail")


def test_an_amqps_end_trusts_leverets_ca_bundle(pki: PKI, far: EmbeddedBroker) -> None:
    with EmbeddedBroker(ssl_cacertfile=pki.ca) as edge:
        publish(edge.url, "edge", 50)
        assert run_shovel(edge, "tls", far_uri(far))["state"] == "running"
        assert [body for _, body in drain(far.url, "central", 50)] == [str(i).encode() for i in range(50)]


def test_without_leverets_ca_the_system_store_refuses_the_private_pki(far: EmbeddedBroker) -> None:
    with EmbeddedBroker() as edge:
        row = run_shovel(edge, "untrusted", far_uri(far))
        assert row["state"] == "terminated" and "CERTIFICATE_VERIFY_FAILED" in row["reason"]


def test_uri_parameters_name_the_ca_and_client_certificate(pki: PKI, far: EmbeddedBroker) -> None:
    alice = pki.clients["alice"]
    with EmbeddedBroker() as edge:
        publish(edge.url, "edge", 10)
        uri = far_uri(far, cacertfile=pki.ca, certfile=alice.cert, keyfile=alice.key)
        assert run_shovel(edge, "params", uri)["state"] == "running"
        assert len(drain(far.url, "central", 10)) == 10
        # The far end saw alice's certificate on the shovel's connection.
        peers = [conn.session.certificate_user for conn in list(far.server.connections)
                 if getattr(conn.session, "certificate_user", None)]
        assert "alice" in peers


def test_verify_none_and_server_name_indication_are_honoured(pki: PKI, far: EmbeddedBroker) -> None:
    with EmbeddedBroker(ssl_cacertfile=pki.ca) as edge:
        # 127.0.0.1 is in the certificate; a name that is not fails the hostname check...
        row = run_shovel(edge, "wrong-name", far_uri(far, host="127.0.0.1", server_name_indication="other.example"))
        assert row["state"] == "terminated" and "CERTIFICATE_VERIFY_FAILED" in row["reason"]
        # ...the one it names passes, whatever host the URI connects to.
        assert run_shovel(edge, "right-name", far_uri(far, host="127.0.0.1",
                                                      server_name_indication="localhost"))["state"] == "running"
    with EmbeddedBroker() as edge:
        assert run_shovel(edge, "unverified", far_uri(far, verify="verify_none"))["state"] == "running"
