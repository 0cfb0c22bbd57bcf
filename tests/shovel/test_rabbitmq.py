"""Shovels between leveret and a real RabbitMQ, both ways, and RabbitMQ's own shovel pulling from leveret.

Against the shared RabbitMQ on 127.0.0.1:5672, each test in a fresh vhost of its own (deleted after), and
skipped when it is not running. The suite moves SUITE_COUNT messages each way; bench/bench_shovel.py moves
100,000 (docs/benchmarks.md has its figures). A test that stops RabbitMQ uses a private node
(tests/rabbitnode.py), never the shared one.
"""

from __future__ import annotations

import os

import pytest

from leveret.embedded import EmbeddedBroker
from tests.crash.broker_process import BrokerProcess
from tests.http.api_client import api, call
from tests.rabbitnode import RabbitNode, require_rabbitmq_install
from tests.shovel.helpers import drain, publish, queue_length, rabbit_api, wait_for

SUITE_COUNT = int(os.environ.get("LEVERET_SHOVEL_TEST_COUNT", "2000"))
# Each move of SUITE_COUNT may take a minute, plus a second per 250 messages (a loaded machine moves about
# 1,000 a second), so LEVERET_SHOVEL_TEST_COUNT=100000 runs the 100,000 each way within its bounds.
MOVE_SECONDS = 60.0 + SUITE_COUNT / 250

pytestmark = pytest.mark.timeout(int(60 + 3 * MOVE_SECONDS))


def bodies(got) -> list[int]:
    return sorted(int(body) for _, body in got)


def set_shovel(base: str, name: str, value: dict, vhost: str = "%2F") -> None:
    answer = call(base, "PUT", f"/parameters/shovel/{vhost}/{name}", {"value": value})
    assert answer.status in (201, 204), answer


def test_leveret_to_rabbitmq_and_back_on_confirm_none_lost_or_duplicated(rabbit_vhost) -> None:
    _, rabbit = rabbit_vhost
    with EmbeddedBroker() as broker:
        publish(broker.url, "outbound", SUITE_COUNT)
        set_shovel(api(broker), "to-rabbit", {"src-uri": "amqp://", "src-queue": "outbound", "dest-uri": rabbit,
                                              "dest-queue": "central", "src-delete-after": "queue-length"})
        wait_for(lambda: call(api(broker), "GET", "/parameters/shovel/%2F/to-rabbit").status == 404, MOVE_SECONDS,
                 "the shovel to RabbitMQ to finish")
        assert queue_length(rabbit, "central") == SUITE_COUNT
        # And back: a shovel in leveret pulling from RabbitMQ.
        set_shovel(api(broker), "from-rabbit", {"src-uri": rabbit, "src-queue": "central", "dest-uri": "amqp://",
                                                "dest-queue": "inbound", "src-delete-after": "queue-length"})
        wait_for(lambda: call(api(broker), "GET", "/parameters/shovel/%2F/from-rabbit").status == 404, MOVE_SECONDS,
                 "the shovel from RabbitMQ to finish")
        got = drain(broker.url, "inbound", SUITE_COUNT, MOVE_SECONDS)
        assert bodies(got) == list(range(SUITE_COUNT))  # none lost, none twice
        assert all(properties.delivery_mode == 2 for properties, _ in got)
        assert queue_length(rabbit, "central") == 0


def test_a_sigkilled_leveret_resumes_its_shovel_and_loses_nothing(rabbit_vhost, tmp_path) -> None:
    _, rabbit = rabbit_vhost
    count = 2000
    data = str(tmp_path / "data")
    settings = {"http_port": 0}
    with BrokerProcess(data, settings=settings) as first:
        publish(first.url, "edge", count)
        base = f"http://127.0.0.1:{first.http_port}/api"
        set_shovel(base, "fwd", {"src-uri": "amqp://", "src-queue": "edge", "dest-uri": rabbit,
                                 "dest-queue": "central", "src-prefetch-count": 100})
        wait_for(lambda: queue_length(rabbit, "central", missing=0) > 0, 30, "the shovel to start moving")
        first.kill()
    moved_before_restart = queue_length(rabbit, "central")
    assert moved_before_restart < count, "the shovel finished before the kill: nothing was tested"
    with BrokerProcess(data, settings=settings) as second:
        # Every message at RabbitMQ (a duplicate counts too: at-least-once), then nothing left at the source.
        wait_for(lambda: queue_length(rabbit, "central") >= count, 60, "the restarted shovel to move the rest")
        second.stop()
    got = drain(rabbit, "central", count)
    assert set(bodies(got)) == set(range(count))  # nothing lost; at-least-once allows a duplicate


def test_rabbitmq_stopped_mid_shovel_is_survived(tmp_path) -> None:
    require_rabbitmq_install()
    count = 1000
    with RabbitNode(tmp_path, plugins=()) as node, EmbeddedBroker() as broker:
        publish(broker.url, "edge", count)
        set_shovel(api(broker), "fwd", {"src-uri": "amqp://", "src-queue": "edge", "dest-uri": node.amqp_url,
                                        "dest-queue": "central", "src-prefetch-count": 50, "reconnect-delay": 0.5})
        wait_for(lambda: queue_length(node.amqp_url, "central", missing=0) > 0, 30, "the shovel to start moving")
        node.stop_app()
        wait_for(lambda: broker.server.shovels.status()[0]["state"] != "running", 20, "the shovel to notice")
        # Stored at the edge while the far side is away, forwarded once it is back.
        publish(broker.url, "edge", count, body=lambda i: str(count + i).encode(), declare=False)
        node.start_app()
        wait_for(lambda: queue_length(node.amqp_url, "central") >= 2 * count, 60, "the shovel to move the rest")
        assert broker.server.shovels.status()[0]["state"] == "running"
        assert broker.server.shovels.totals()["reconnects"] >= 1
        got = drain(node.amqp_url, "central", 2 * count)
        assert set(bodies(got)) == set(range(2 * count))  # nothing lost; at-least-once allows a duplicate


def test_rabbitmqs_own_shovel_drains_a_leveret_queue_with_queue_length(rabbit_vhost) -> None:
    vhost, rabbit = rabbit_vhost
    with EmbeddedBroker() as broker:
        publish(broker.url, "backlog", 1000)
        answer = rabbit_api("PUT", f"/api/parameters/shovel/{vhost}/drain", {"value": {
            "src-uri": broker.url, "src-queue": "backlog", "dest-uri": f"amqp:///{vhost}", "dest-queue": "drained",
            "src-delete-after": "queue-length"}})
        assert answer.status == 201, answer
        wait_for(lambda: rabbit_api("GET", f"/api/parameters/shovel/{vhost}/drain").status == 404, 60,
                 "RabbitMQ's shovel to finish")
        assert queue_length(broker.url, "backlog") == 0
        assert bodies(drain(rabbit, "drained", 1000)) == list(range(1000))
