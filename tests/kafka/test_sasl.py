"""SASL/PLAIN on the Kafka listener (kafka_sasl), against leveret's users: kafka-python and confluent-kafka
produce and consume with a user that has a permission row in the vhost; a wrong password, an unknown user and
a user without permissions are refused with SASL_AUTHENTICATION_FAILED and the connection closed; a request
before authentication closes the connection; without kafka_sasl a SaslHandshake is ILLEGAL_SASL_STATE."""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator

import pytest

from leveret.embedded import EmbeddedBroker
from leveret.kafka import apis, errors
from tests.kafka.rawclient import RawClient

kafka = pytest.importorskip("kafka")

WAIT = 15.0


def management(broker: EmbeddedBroker, method: str, path: str, body: dict) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{broker.server.http_port}{path}", method=method,
                                     data=json.dumps(body).encode(), headers={
                                         "content-type": "application/json",
                                         "authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})
    with urllib.request.urlopen(request, timeout=WAIT) as answer:
        assert answer.status in (201, 204)


@pytest.fixture(scope="module")
def sasl_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(kafka_sasl=True) as broker:
        management(broker, "PUT", "/api/users/alice", {"password": "s3cret", "tags": ""})
        management(broker, "PUT", "/api/permissions/%2F/alice", {"configure": ".*", "write": ".*", "read": ".*"})
        management(broker, "PUT", "/api/users/nobody", {"password": "s3cret", "tags": ""})  # no permissions
        yield broker


def sasl_config(user: str, password: str) -> dict:
    return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_plain_username": user,
            "sasl_plain_password": password}


def test_kafka_python_produces_and_consumes_as_a_user(sasl_broker: EmbeddedBroker) -> None:
    producer = kafka.KafkaProducer(bootstrap_servers=sasl_broker.kafka_bootstrap, acks="all",
                                   **sasl_config("alice", "s3cret"))
    for i in range(5):
        producer.send("secured", b"v%d" % i)
    producer.flush(WAIT)
    producer.close()
    consumer = kafka.KafkaConsumer("secured", bootstrap_servers=sasl_broker.kafka_bootstrap,
                                   auto_offset_reset="earliest", consumer_timeout_ms=int(WAIT * 1000),
                                   **sasl_config("alice", "s3cret"))
    try:
        got = [next(consumer).value for _ in range(5)]
    finally:
        consumer.close()
    assert got == [b"v%d" % i for i in range(5)]


@pytest.mark.parametrize("user,password", [("alice", "wrong"), ("mallory", "s3cret"), ("nobody", "s3cret")])
def test_bad_credentials_are_refused_and_the_connection_closed(sasl_broker: EmbeddedBroker, user: str,
                                                               password: str) -> None:
    client = RawClient(sasl_broker.kafka_bootstrap)
    try:
        shake = client.call(apis.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
        assert shake == {"error_code": 0, "mechanisms": ["PLAIN"]}
        answer = client.call(apis.SASL_AUTHENTICATE, 1, {"auth_bytes": b"\0" + user.encode() + b"\0" + password.encode()})
        assert answer["error_code"] == errors.SASL_AUTHENTICATION_FAILED
        assert client.closed_by_broker()  # closed after the answer
    finally:
        client.close()


def test_only_plain_is_offered_and_nothing_is_served_before_authentication(sasl_broker: EmbeddedBroker) -> None:
    client = RawClient(sasl_broker.kafka_bootstrap)
    try:
        shake = client.call(apis.SASL_HANDSHAKE, 1, {"mechanism": "SCRAM-SHA-256"})
        assert shake == {"error_code": errors.UNSUPPORTED_SASL_MECHANISM, "mechanisms": ["PLAIN"]}
        client.send(apis.METADATA, 1, 7, {"topics": None})
        assert client.closed_by_broker()
    finally:
        client.close()
    confluent_kafka = pytest.importorskip("confluent_kafka")
    producer = confluent_kafka.Producer({"bootstrap.servers": sasl_broker.kafka_bootstrap,
                                         "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                                         "sasl.username": "alice", "sasl.password": "s3cret"})
    delivered: list = []
    producer.produce("secured-ck", b"hello", on_delivery=lambda err, msg: delivered.append(err))
    assert producer.flush(WAIT) == 0 and delivered == [None]


def test_without_kafka_sasl_a_handshake_is_illegal(kafka_bootstrap: str) -> None:
    client = RawClient(kafka_bootstrap)
    try:
        shake = client.call(apis.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
        assert shake["error_code"] == errors.ILLEGAL_SASL_STATE
    finally:
        client.close()
