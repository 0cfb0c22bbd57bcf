"""The memory alarm: over memory_high_watermark publishers are blocked (connection.blocked), consumers go on."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pika
import psutil
import pytest

from leveret.config import Settings
from leveret.embedded import EmbeddedBroker
from leveret.server.memory_alarm import watermark_bytes
from tests.crash.broker_process import BrokerProcess


def run_on_loop(broker: EmbeddedBroker, fn) -> None:
    """Run `fn` on the broker's loop and wait for it."""
    done = threading.Event()

    def call() -> None:
        try:
            fn()
        finally:
            done.set()

    broker._loop.call_soon_threadsafe(call)
    assert done.wait(5)


def set_watermark(broker: EmbeddedBroker, limit: int) -> None:
    def change() -> None:
        alarm = broker.server.memory_alarm
        alarm.limit = limit
        alarm.check()

    run_on_loop(broker, change)


class Watched:
    """A pika connection that records connection.blocked reasons and "unblocked"."""

    def __init__(self, url: str) -> None:
        self.conn = pika.BlockingConnection(pika.URLParameters(url))
        self.events: list[str] = []
        self.conn.add_on_connection_blocked_callback(lambda _c, frame: self.events.append(frame.method.reason))
        self.conn.add_on_connection_unblocked_callback(lambda _c, _frame: self.events.append("unblocked"))
        self.channel = self.conn.channel()

    def wait_events(self, count: int, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            self.conn.process_data_events(0.05)
        return self.events


def message_count(url: str, queue: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


def http_get(broker: EmbeddedBroker, path: str) -> bytes:
    return http_get_port(broker.server.http_port, path)


def http_get_port(port: int, path: str) -> bytes:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Authorization": "Basic Z3Vlc3Q6Z3Vlc3Q="})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


@pytest.mark.parametrize(("value", "expected"), [
    ("0.4", int(0.4 * 8 * 2**30)), (0.5, 4 * 2**30), ("1.0", 8 * 2**30), ("512MiB", 512 * 2**20),
    ("512M", 512 * 2**20), ("2GB", 2 * 10**9), ("1.5GiB", 3 * 2**29), ("100kB", 100_000), (2_000_000, 2_000_000),
    ("3000000", 3_000_000),
])
def test_the_watermark_is_a_fraction_of_ram_up_to_one_and_an_amount_above_or_with_a_unit(value, expected) -> None:
    assert watermark_bytes(value, 8 * 2**30) == expected


@pytest.mark.parametrize("value", ["lots", "5 parsecs", "-1", ""])
def test_a_malformed_watermark_is_refused(value) -> None:
    with pytest.raises(ValueError, match="memory_high_watermark"):
        watermark_bytes(value, 2**30)


def test_over_the_watermark_publishers_are_blocked_while_a_consumer_keeps_consuming() -> None:
    with EmbeddedBroker(memory_monitor_interval=60_000) as broker:
        publisher = Watched(broker.url)
        publisher.channel.queue_declare("work")
        publisher.channel.confirm_delivery()
        for i in range(100):
            publisher.channel.basic_publish("", "work", b"m%d" % i)
        consumer = pika.BlockingConnection(pika.URLParameters(broker.url))
        cch = consumer.channel()

        set_watermark(broker, 1024 * 1024)  # far under what any Python process uses
        nodes = json.loads(http_get(broker, "/api/nodes"))
        assert nodes[0]["mem_alarm"] is True and nodes[0]["mem_limit"] == 1024 * 1024
        assert nodes[0]["mem_used"] > nodes[0]["mem_limit"]
        assert json.loads(http_get(broker, "/api/overview"))["mem_alarm"] is True
        assert "rabbitmq_alarms_memory_used_watermark 1\n" in http_get(broker, "/metrics").decode()

        # A publish during the alarm blocks its connection; nothing after it is read.
        publisher.channel.basic_publish("", "work", b"during")
        assert publisher.wait_events(1) == ["low on memory"]

        # The consumer never published, so it is not blocked: it drains the queue meanwhile.
        got = []
        for method, _props, body in cch.consume("work", auto_ack=True, inactivity_timeout=10):
            assert method is not None, "the consumer stopped receiving during the memory alarm"
            got.append(body)
            if len(got) == 101:
                break
        cch.cancel()
        assert got == [b"m%d" % i for i in range(100)] + [b"during"]

        set_watermark(broker, 2**62)
        assert publisher.wait_events(2) == ["low on memory", "unblocked"]
        assert json.loads(http_get(broker, "/api/nodes"))[0]["mem_alarm"] is False
        publisher.channel.basic_publish("", "work", b"after")
        assert message_count(broker.url, "work") == 1
        consumer.close()
        publisher.conn.close()


def test_with_disk_and_memory_alarms_on_the_reason_names_both_and_unblocked_waits_for_both() -> None:
    with EmbeddedBroker(disk_free_limit=2**62, memory_high_watermark="1MiB") as broker:
        publisher = Watched(broker.url)
        publisher.channel.queue_declare("held")
        publisher.channel.basic_publish("", "held", b"first")
        assert publisher.wait_events(1) == ["low on disk & memory"]

        set_watermark(broker, 2**62)  # memory clears; the disk alarm still holds the publisher
        publisher.conn.process_data_events(0.3)
        assert publisher.events == ["low on disk & memory"]

        def clear_disk() -> None:
            broker.server.disk_alarm.limit = 0
            broker.server.disk_alarm.check()

        run_on_loop(broker, clear_disk)
        assert publisher.wait_events(2) == ["low on disk & memory", "unblocked"]
        deadline = time.monotonic() + 10
        while message_count(broker.url, "held") < 1 and time.monotonic() < deadline:
            publisher.conn.process_data_events(0.05)
        assert message_count(broker.url, "held") == 1
        publisher.conn.close()


def test_memory_that_really_grows_past_the_watermark_blocks_and_draining_it_unblocks(tmp_path) -> None:
    """Real resident memory: in-memory queue windows (which no squeeze of the budget can page out) grow the
    process past the watermark; consuming frees them, the allocator is trimmed, the publisher goes on.

    The broker runs in its own process (as `leveret serve`), so what is measured is the broker's memory
    alone, not a test process whose heap earlier tests have grown and fragmented."""
    queues = [f"window{i}" for i in range(8)]
    # What a fresh broker process holds once these clients and queues exist; the watermark is that plus a
    # margin the windows (8 queues x up to 8 MiB of bodies) overrun.
    with BrokerProcess(str(tmp_path / "measure")) as probe:
        baseline_client = pika.BlockingConnection(pika.URLParameters(probe.url))
        for name in queues:
            baseline_client.channel().queue_declare(name)
        baseline = psutil.Process(probe.proc.pid).memory_info().rss
        baseline_client.close()
    watermark = baseline + 48 * 2**20
    settings = {"memory_high_watermark": watermark, "memory_monitor_interval": 50, "http_port": 0}
    with BrokerProcess(str(tmp_path / "data"), settings=settings) as broker:
        publisher = Watched(broker.url)
        for name in queues:
            publisher.channel.queue_declare(name)
        body = b"x" * 65536
        sent = 0
        while not publisher.events and sent < 2000:
            publisher.channel.basic_publish("", queues[sent % len(queues)], body)
            sent += 1
            publisher.conn.process_data_events(0)
        assert publisher.wait_events(1) == ["low on memory"], f"not blocked after {sent} x 64 KiB"
        overview = json.loads(http_get_port(broker.http_port, "/api/overview"))
        assert overview["mem_alarm"] is True and overview["mem_used"] > watermark
        budget = overview["memory_budget"]
        assert budget["limit"] < Settings().memory_budget  # squeezed: past half the watermark

        consumer = pika.BlockingConnection(pika.URLParameters(broker.url))
        cch = consumer.channel()
        deadline = time.monotonic() + 20
        while publisher.events == ["low on memory"] and time.monotonic() < deadline:
            for name in queues:
                while cch.basic_get(name, auto_ack=True)[0] is not None:
                    pass
            publisher.conn.process_data_events(0.1)
        assert publisher.events == ["low on memory", "unblocked"]
        consumer.close()
        publisher.conn.close()
