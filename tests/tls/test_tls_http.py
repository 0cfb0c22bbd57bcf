"""The management API over HTTPS (http_ssl), with the amqps listener's certificate settings."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request

import pytest

from leveret.config import SettingsError, load_settings
from leveret.embedded import EmbeddedBroker
from tests.tls.conftest import client_context, tls_settings

# A refused connection, as urllib reports it: during the handshake, or (TLS 1.3 refuses a client certificate
# after the client's side of the handshake) as a hang-up before the response.
REFUSED = (urllib.error.URLError, ConnectionError, ssl.SSLError)
GUEST = "Basic " + base64.b64encode(b"guest:guest").decode()


def _get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": GUEST})
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_the_management_api_over_https(pki):
    with EmbeddedBroker(**tls_settings(pki, http_ssl=True)) as broker:
        status, overview = _get(f"https://localhost:{broker.server.http_port}/api/overview", client_context(pki))
        assert status == 200 and "object_totals" in overview
        # A client certificate is verified as for AMQP (verify_peer): an untrusted one fails the handshake.
        with pytest.raises(REFUSED):
            _get(f"https://localhost:{broker.server.http_port}/api/overview", client_context(pki, untrusted=True))
        # Plain HTTP on the HTTPS port gets no answer from the API.
        with pytest.raises(REFUSED):
            _get(f"http://127.0.0.1:{broker.server.http_port}/api/overview")
        # AMQP (plain and amqps) is unaffected.
        assert broker.server.amqp_listener is not None and broker.ssl_port


def test_https_alone_without_an_amqps_listener(pki):
    settings = tls_settings(pki, http_ssl=True, ssl_port=-1, kafka_port=-1)
    with EmbeddedBroker(**settings) as broker:
        assert broker.ssl_port is None and len(broker.server.listeners) == 2  # AMQP and HTTPS
        status, _ = _get(f"https://localhost:{broker.server.http_port}/api/vhosts", client_context(pki))
        assert status == 200


def test_https_is_off_by_default_and_needs_a_certificate():
    assert load_settings(environ={}).http_ssl is False
    with pytest.raises(SettingsError) as error:
        load_settings(environ={"LEVERET_HTTP_SSL": "on"})
    assert str(error.value) == ("Invalid value for ssl_certfile (http_ssl is on): the management API's HTTPS "
                                "needs it (a PEM file)")
