"""The ssl_* settings: off by default, checked strictly, and a wrong file fails the start in one line."""

from __future__ import annotations

import pytest

from leveret.config import SettingsError, load_settings
from leveret.embedded import EmbeddedBroker
from tests.tls.conftest import tls_settings


def test_tls_is_off_by_default_and_verifies_nobody_unless_told():
    settings = load_settings(environ={})
    assert (settings.ssl_port, settings.ssl_verify, settings.ssl_min_version) == (-1, "verify_none", "tlsv1.2")
    assert settings.ssl_fail_if_no_peer_cert is False


def test_the_settings_load_from_the_environment(tmp_path):
    settings = load_settings(environ={
        "LEVERET_SSL_PORT": "5671", "LEVERET_SSL_CERTFILE": "s.pem", "LEVERET_SSL_KEYFILE": "s.key",
        "LEVERET_SSL_CACERTFILE": "ca.pem", "LEVERET_SSL_VERIFY": "VERIFY_PEER",
        "LEVERET_SSL_FAIL_IF_NO_PEER_CERT": "true", "LEVERET_SSL_MIN_VERSION": "TLSv1.3",
    })
    assert (settings.ssl_port, settings.ssl_verify, settings.ssl_min_version) == (5671, "verify_peer", "tlsv1.3")
    assert settings.ssl_fail_if_no_peer_cert is True


@pytest.mark.parametrize("environ, message", [
    ({"LEVERET_SSL_VERIFY": "maybe"},
     "Invalid value for ssl_verify (environment variable LEVERET_SSL_VERIFY): 'maybe' is not one of verify_peer, "
     "verify_none"),
    ({"LEVERET_SSL_MIN_VERSION": "sslv3"},
     "Invalid value for ssl_min_version (environment variable LEVERET_SSL_MIN_VERSION): 'sslv3' is not one of "
     "tlsv1.2, tlsv1.3"),
    ({"LEVERET_SSL_PORT": "65536"},
     "Invalid value for ssl_port (environment variable LEVERET_SSL_PORT): '65536' is above the maximum 65535"),
    ({"LEVERET_SSL_PORT": "5671"},
     "Invalid value for ssl_certfile (ssl_port is set): the amqps listener needs it (a PEM file)"),
    ({"LEVERET_SSL_PORT": "5671", "LEVERET_SSL_CERTFILE": "s.pem"},
     "Invalid value for ssl_keyfile (ssl_port is set): the amqps listener needs it (a PEM file)"),
    ({"LEVERET_SSL_PORT": "5671", "LEVERET_SSL_CERTFILE": "s.pem", "LEVERET_SSL_KEYFILE": "s.key",
      "LEVERET_SSL_VERIFY": "verify_peer"},
     "Invalid value for ssl_cacertfile (ssl_verify is verify_peer): client certificates are verified against it "
     "(a PEM file of CA certificates)"),
])
def test_a_bad_or_incomplete_setting_is_one_line(environ, message):
    with pytest.raises(SettingsError) as error:
        load_settings(environ=environ)
    assert str(error.value) == message


def test_a_missing_certificate_fails_the_start_naming_the_files(pki, tmp_path):
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(RuntimeError) as error:
        EmbeddedBroker(**tls_settings(pki, ssl_certfile=missing)).start()
    cause = error.value.__cause__
    assert isinstance(cause, SettingsError) and cause.name == "ssl_certfile/ssl_keyfile"
    assert str(cause).startswith(f"Invalid value for ssl_certfile/ssl_keyfile ({missing}, {pki.server.key}): "
                                 "not a PEM certificate and its private key (")


def test_a_ca_bundle_that_is_not_one_fails_the_start(pki):
    with pytest.raises(RuntimeError) as error:
        EmbeddedBroker(**tls_settings(pki, ssl_cacertfile=pki.server.key)).start()
    cause = error.value.__cause__
    assert isinstance(cause, SettingsError) and cause.name == "ssl_cacertfile"
    assert "\n" not in str(cause)


def test_a_key_that_does_not_match_the_certificate_fails_the_start(pki):
    with pytest.raises(RuntimeError) as error:
        EmbeddedBroker(**tls_settings(pki, ssl_keyfile=pki.clients["alice"].key)).start()
    assert isinstance(error.value.__cause__, SettingsError)
