"""TLS on the Kafka listener (kafka_ssl, with the ssl_* settings' certificate): kafka-python over SSL, and
confluent-kafka over SASL_SSL (kafka_sasl too) as a user; a plaintext client gets nothing from it."""

from __future__ import annotations

import socket

import pytest

from leveret.embedded import EmbeddedBroker
from tests.tls.certs import PKI, make_pki
from tests.tls.conftest import client_context

kafka = pytest.importorskip("kafka")

WAIT = 15.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("kafka-pki"), ())


def kafka_tls_settings(pki: PKI, **changes: object) -> dict:
    settings = dict(kafka_ssl=True, ssl_certfile=pki.server.cert, ssl_keyfile=pki.server.key,
                    ssl_cacertfile=pki.ca)
    settings.update(changes)
    return settings


def test_kafka_python_over_tls(pki: PKI) -> None:
    with EmbeddedBroker(**kafka_tls_settings(pki)) as broker:
        context = client_context(pki)
        producer = kafka.KafkaProducer(bootstrap_servers=broker.kafka_bootstrap, security_protocol="SSL",
                                       ssl_context=context, acks="all")
        producer.send("tls-topic", b"over tls")
        producer.flush(WAIT)
        producer.close()
        consumer = kafka.KafkaConsumer("tls-topic", bootstrap_servers=broker.kafka_bootstrap,
                                       security_protocol="SSL", ssl_context=context, auto_offset_reset="earliest",
                                       consumer_timeout_ms=int(WAIT * 1000))
        try:
            assert next(consumer).value == b"over tls"
        finally:
            consumer.close()
        # A plaintext Kafka request is not a TLS handshake: the broker answers nothing and hangs up.
        host, port = broker.kafka_bootstrap.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=WAIT) as plain:
            plain.sendall(b"\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x01\x00\x00")
            received = b""
            try:
                while chunk := plain.recv(4096):
                    received += chunk
            except ConnectionResetError:
                pass
            assert not received.startswith(b"\x00\x00\x00")  # no Kafka response frame


def test_confluent_kafka_over_sasl_ssl(pki: PKI) -> None:
    confluent_kafka = pytest.importorskip("confluent_kafka")
    with EmbeddedBroker(**kafka_tls_settings(pki, kafka_sasl=True)) as broker:
        producer = confluent_kafka.Producer({
            "bootstrap.servers": broker.kafka_bootstrap, "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
            "sasl.username": "guest", "sasl.password": "guest", "ssl.ca.location": pki.ca,
            "ssl.endpoint.identification.algorithm": "none"})
        delivered: list = []
        producer.produce("sasl-ssl", b"both", on_delivery=lambda err, msg: delivered.append(err))
        assert producer.flush(WAIT) == 0 and delivered == [None]
