"""Operations tools that read RabbitMQ's management API, run against leveret (and, where reachable, the local
RabbitMQ with the same requests, for the differences):

- Celery Flower: its own broker client (`flower.utils.broker.Broker`, what its Broker page, its
  `/api/queues/length` and its queue metrics call) reads queue depths from `GET /api/queues/{vhost}`;
- KEDA's RabbitMQ scaler in HTTP mode: the two requests it builds (kedacore/keda
  pkg/scalers/rabbitmq_scaler.go, `getQueueInfoViaHTTP`: one queue, or `use_regex=true` with a page whose
  `page_count` it checks) and the fields it decodes from them (`messages`, `messages_ready`,
  `message_stats.publish_details.rate`, `message_stats.deliver_get_details.rate`). KEDA itself needs
  Kubernetes, so the test makes its requests.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import uuid
from typing import Any, Iterator

import pytest

from leveret.embedded import EmbeddedBroker
from tests.http.api_client import RABBITMQ_API, api, call, rabbitmq_api_up


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def populate(base: str, vhost: str) -> None:
    """Vhost `vhost` (guest allowed) with 'celery' (3 messages), 'celery.low' (2) and 'other' (1)."""
    v = urllib.parse.quote(vhost, safe="")
    assert call(base, "PUT", f"/vhosts/{v}").status in (201, 204)
    assert call(base, "PUT", f"/permissions/{v}/guest", {"configure": ".*", "write": ".*", "read": ".*"}).status in (201, 204)
    for queue, count in (("celery", 3), ("celery.low", 2), ("other", 1)):
        assert call(base, "PUT", f"/queues/{v}/{queue}", {"durable": True}).status in (201, 204)
        for i in range(count):
            published = call(base, "POST", f"/exchanges/{v}/amq.default/publish",
                             {"routing_key": queue, "payload": str(i), "payload_encoding": "string", "properties": {}})
            assert published.body == {"routed": True}


def counted(base: str, vhost: str, timeout: float = 20.0) -> None:
    """Wait (bounded) until the API shows every queue's depth: RabbitMQ's statistics reach its management
    API on their emission interval (5 s), leveret's at once."""
    v = urllib.parse.quote(vhost, safe="")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        depths = {q["name"]: q.get("messages") for q in call(base, "GET", f"/queues/{v}").body}
        if depths == {"celery": 3, "celery.low": 2, "other": 1}:
            return
        time.sleep(0.2)
    raise AssertionError(f"queue depths not shown after {timeout} s: {depths}")


@pytest.fixture(scope="module")
def vhost(broker: EmbeddedBroker) -> Iterator[str]:
    """A vhost of the test's own, populated on leveret and (when reachable) on the local RabbitMQ."""
    name = f"ops-tools-{uuid.uuid4().hex[:8]}"
    bases = [api(broker)] + ([RABBITMQ_API] if rabbitmq_api_up() else [])
    try:
        for base in bases:
            populate(base, name)
        for base in bases:
            counted(base, name)
        yield name
    finally:
        for base in bases:
            call(base, "DELETE", f"/vhosts/{urllib.parse.quote(name, safe='')}")


def flower_queues(amqp_url: str, http_api: str, names: list[str]) -> list[dict[str, Any]]:
    from flower.utils.broker import Broker

    return asyncio.run(Broker(amqp_url, http_api=http_api).queues(names))


def test_flower_reads_queue_depths(broker: EmbeddedBroker, vhost: str) -> None:
    port = broker.server.http_port
    queues = flower_queues(f"amqp://guest:guest@127.0.0.1:{broker.server.port}/{vhost}",
                           f"http://guest:guest@127.0.0.1:{port}/api/", ["celery", "celery.low"])
    assert sorted((q["name"], q["messages"], q["messages_ready"], q["messages_unacknowledged"]) for q in queues) == [
        ("celery", 3, 3, 0), ("celery.low", 2, 2, 0)]
    if rabbitmq_api_up():
        reference = flower_queues(f"amqp://guest:guest@127.0.0.1:5672/{vhost}", "http://guest:guest@127.0.0.1:15672/api/",
                                  ["celery", "celery.low"])
        assert sorted((q["name"], q["messages"]) for q in reference) == [("celery", 3), ("celery.low", 2)]


def test_flower_on_the_default_vhost_gets_rabbitmqs_404_and_shows_nothing(broker: EmbeddedBroker) -> None:
    """For vhost "/" Flower asks for /api/queues// (its URL join), which RabbitMQ 3.10 answers with a JSON 404;
    leveret answers the same, and Flower logs the failure and lists no queue, as it does with RabbitMQ."""
    answer = call(api(broker), "GET", "/queues//")
    assert (answer.status, answer.body) == (404, {"error": "Object Not Found", "reason": "Not Found"})
    if rabbitmq_api_up():
        reference = call(RABBITMQ_API, "GET", "/queues//")
        assert (reference.status, reference.body) == (answer.status, answer.body)
    assert flower_queues(f"amqp://guest:guest@127.0.0.1:{broker.server.port}//",
                         f"http://guest:guest@127.0.0.1:{broker.server.http_port}/api/", ["celery"]) == []


def keda_fields(info: dict[str, Any]) -> tuple[Any, ...]:
    """What KEDA's queueInfo struct decodes (a missing field decodes as zero)."""
    stats = info.get("message_stats") or {}
    return (info["name"], info["messages"], info["messages_ready"],
            (stats.get("publish_details") or {}).get("rate", 0.0),
            (stats.get("deliver_get_details") or {}).get("rate", 0.0))


@pytest.mark.parametrize("target", ["leveret", "rabbitmq"])
def test_keda_rabbitmq_scaler_requests(broker: EmbeddedBroker, vhost: str, target: str) -> None:
    if target == "rabbitmq" and not rabbitmq_api_up():
        pytest.skip("RabbitMQ's management API is not reachable")
    base = api(broker) if target == "leveret" else RABBITMQ_API
    v = "/" + urllib.parse.quote_plus(vhost)  # KEDA: "/" + url.QueryEscape(vhostName)
    one = call(base, "GET", f"/queues{v}/{urllib.parse.quote_plus('celery')}")
    assert one.status == 200 and keda_fields(one.body)[:3] == ("celery", 3, 3)
    assert all(isinstance(rate, (int, float)) and not isinstance(rate, bool) for rate in keda_fields(one.body)[3:])

    regex = urllib.parse.quote_plus("^celery")
    paged = call(base, "GET", f"/queues{v}?page=1&use_regex=true&pagination=false&name={regex}&page_size=100")
    assert paged.status == 200 and paged.body["page_count"] == 1  # KEDA refuses more than one page
    assert sorted(keda_fields(q)[:3] for q in paged.body["items"]) == [("celery", 3, 3), ("celery.low", 2, 2)]
