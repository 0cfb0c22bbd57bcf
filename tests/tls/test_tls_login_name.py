"""Who a client certificate logs in as (ssl_cert_login_from): its CN, or its subject as RabbitMQ writes it."""

from __future__ import annotations

import pika
import pytest

from leveret.embedded import EmbeddedBroker
from leveret.server.tls import certificate_common_name, certificate_distinguished_name, certificate_user
from tests.tls.conftest import client_context, logged_in_users, tls_settings


def _cert(*rdns: tuple[tuple[str, str], ...]) -> dict:
    return {"subject": rdns}  # the shape of SSLSocket.getpeercert()


def test_the_distinguished_name_is_written_last_rdn_first_with_rabbitmqs_attribute_names():
    cert = _cert((("countryName", "GB"),), (("organizationName", "Acme"),), (("organizationalUnitName", "eu"),),
                 (("commonName", "billing"),))
    assert certificate_distinguished_name(cert) == "CN=billing,OU=eu,O=Acme,C=GB"
    assert certificate_common_name(cert) == "billing"


def test_a_multi_valued_rdn_is_joined_with_plus_and_unknown_attributes_keep_pythons_name():
    cert = _cert((("domainComponent", "com"),), (("commonName", "svc"), ("userId", "42"), ("role", "x")))
    assert certificate_distinguished_name(cert) == "CN=svc+UID=42+role=x,DC=com"


@pytest.mark.parametrize("value, written", [
    ("Acme, Inc.", "Acme\\, Inc."),
    ('a"b+c;d<e>f\\g', 'a\\"b\\+c\\;d\\<e\\>f\\\\g'),
    ("#1", "\\#1"),
    (" padded ", "\\ padded\\ "),
    ("a=b#c", "a=b#c"),  # = and an inner # need no escape in RabbitMQ's writing
    ("tab\there", "tab\\09here"),
    ("café~", "caf\\C3\\A9\\7E"),  # non-ASCII as its UTF-8 bytes; RabbitMQ escapes ~ (126) too
])
def test_values_are_escaped_as_rabbitmq_escapes_them(value, written):
    assert certificate_distinguished_name(_cert((("organizationName", value),))) == f"O={written}"


def test_no_verified_certificate_names_no_user():
    for cert in (None, {}):
        assert certificate_user(cert, "common_name") is None
        assert certificate_user(cert, "distinguished_name") is None
    assert certificate_user(_cert((("organizationName", "no cn"),)), "common_name") is None


def test_external_logs_in_as_the_distinguished_name_when_told_to(pki):
    with EmbeddedBroker(**tls_settings(pki, ssl_cert_login_from="distinguished_name")) as broker:
        name = "CN=alice,O=leveret tests"  # the test certificates' subject is /O=leveret tests/CN=alice
        broker.server.users.add_user(name, None)
        broker.server.users.set_permissions(name, "/", ".*", ".*", ".*")
        connection = pika.BlockingConnection(pika.ConnectionParameters(
            "127.0.0.1", broker.ssl_port, credentials=pika.credentials.ExternalCredentials(),
            ssl_options=pika.SSLOptions(client_context(pki, "alice"), "localhost"), connection_attempts=1))
        assert logged_in_users(broker, [name]) == [name]
        connection.close()
