"""Authentication attempts counted in /metrics under rabbitmq_prometheus's names."""

from __future__ import annotations

import logging
import re
import urllib.request
import pika
import pytest

from leveret.embedded import EmbeddedBroker

from .api_client import api, call


def counters(broker: EmbeddedBroker) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.server.http_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {m[1]: int(m[2]) for m in re.finditer(r"^(rabbitmq_auth_attempts\w*\{[^}]*\}) (\d+)$", text, re.M)}


def test_a_refused_http_login_is_logged_without_the_password(broker: EmbeddedBroker, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="leveret")
    assert call(api(broker), "GET", "/whoami", auth=("intruder", "s3cret-guess")).status == 401
    lines = [r.getMessage() for r in caplog.records if "HTTP login refused" in r.getMessage()]
    assert lines == ["HTTP login refused for user 'intruder' from 127.0.0.1"]
    assert not any("s3cret-guess" in r.getMessage() for r in caplog.records)


def test_failed_and_succeeded_logins_are_counted_per_protocol(broker: EmbeddedBroker) -> None:
    before = counters(broker)
    assert before['rabbitmq_auth_attempts_failed_total{protocol="amqp091"}'] == 0
    assert before['rabbitmq_auth_attempts_failed_total{protocol="http"}'] == 0
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(pika.URLParameters(f"amqp://guest:wrong@127.0.0.1:{broker.port}/%2F"))
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(pika.URLParameters(f"amqp://nobody:x@127.0.0.1:{broker.port}/%2F"))
    pika.BlockingConnection(pika.URLParameters(broker.url)).close()
    assert call(f"http://127.0.0.1:{broker.server.http_port}/api", "GET", "/whoami", auth=("guest", "bad")).status == 401
    after = counters(broker)
    assert after['rabbitmq_auth_attempts_failed_total{protocol="amqp091"}'] == 2
    assert after['rabbitmq_auth_attempts_succeeded_total{protocol="amqp091"}'] == 1
    assert after['rabbitmq_auth_attempts_total{protocol="amqp091"}'] == 3
    assert after['rabbitmq_auth_attempts_failed_total{protocol="http"}'] == 1
