"""Bounded output: what a connection owes its client is capped by no longer reading that client."""

from __future__ import annotations

import time

import pika

from bench.loadgen.neverreader import NeverReadingPublisher
from leveret.embedded import EmbeddedBroker

LIMIT = 256 * 1024
# One read of the socket (at most 256 KiB of publishes) can earn about as much output again before the
# next flush checks the limit; returns are a few bytes longer than the publishes that caused them.
ONE_READ_OF_OUTPUT = 320 * 1024


def wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_client_that_never_reads_its_returns_and_confirms_stops_being_read_and_others_carry_on() -> None:
    with EmbeddedBroker(max_output_buffer=LIMIT, send_timeout=0) as broker:
        server = broker.server
        flood = NeverReadingPublisher(broker.url, body_size=4096).start()
        try:
            # The broker stopped reading the flood once its unsent output passed the limit.
            assert wait_for(lambda: server.output_pauses >= 1)
            assert flood.error is None

            # A bystander publishes with confirms and consumes meanwhile.
            conn = pika.BlockingConnection(pika.URLParameters(broker.url))
            ch = conn.channel()
            ch.confirm_delivery()
            ch.queue_declare("bystander")
            for i in range(200):
                ch.basic_publish("", "bystander", b"m%d" % i)
            got = []
            for method, _props, body in ch.consume("bystander", inactivity_timeout=10):
                assert method is not None, "the bystander's messages did not arrive"
                ch.basic_ack(method.delivery_tag)
                got.append(body)
                if len(got) == 200:
                    break
            ch.cancel()
            assert got == [b"m%d" % i for i in range(200)]
            conn.close()

            # However long the flood goes on, it is held at the limit plus what one read can earn.
            assert server.output_pauses >= 1
            assert LIMIT < server.peak_output <= LIMIT + ONE_READ_OF_OUTPUT
        finally:
            flood.stop()


def test_a_client_that_takes_none_of_its_output_for_send_timeout_is_closed() -> None:
    with EmbeddedBroker(max_output_buffer=LIMIT, send_timeout=0.5) as broker:
        server = broker.server
        flood = NeverReadingPublisher(broker.url, body_size=4096).start()
        try:
            assert wait_for(lambda: server.output_pauses >= 1)
            # The broker gives up on it: the connection is gone from the broker and the flood's socket breaks.
            assert wait_for(lambda: len(server.connections) == 0)
            assert wait_for(lambda: flood.error is not None)
        finally:
            flood.stop()


def test_a_blocked_publisher_is_not_closed_for_heartbeats_we_did_not_read() -> None:
    # The disk alarm is on from the start (no disk has this much free); heartbeats every second, so a
    # connection we did not hear from for two seconds would count as dead.
    with EmbeddedBroker(disk_free_limit=2**62) as broker:
        params = pika.URLParameters(broker.url)
        params.heartbeat = 1
        conn = pika.BlockingConnection(params)
        events: list[str] = []
        conn.add_on_connection_blocked_callback(lambda _c, frame: events.append(frame.method.reason))
        conn.add_on_connection_unblocked_callback(lambda _c, _frame: events.append("unblocked"))
        ch = conn.channel()
        ch.queue_declare("held")
        ch.basic_publish("", "held", b"first")
        deadline = time.monotonic() + 10
        while not events and time.monotonic() < deadline:
            conn.process_data_events(0.05)
        assert events == ["low on disk"]
        # Three heartbeat timeouts' worth of blocking: pika's heartbeats wait unread in the kernel meanwhile.
        until = time.monotonic() + 3.5
        while time.monotonic() < until:
            conn.process_data_events(0.1)
        assert len(broker.server.connections) == 1 and conn.is_open

        def clear() -> None:
            broker.server.disk_alarm.limit = 0
            broker.server.disk_alarm.check()

        broker._loop.call_soon_threadsafe(clear)
        deadline = time.monotonic() + 10
        while "unblocked" not in events and time.monotonic() < deadline:
            conn.process_data_events(0.05)
        assert events == ["low on disk", "unblocked"]
        assert ch.queue_declare("held", passive=True).method.message_count == 1
        conn.close()


def test_with_heartbeats_a_client_that_takes_none_of_its_output_is_closed_after_the_heartbeat_timeout() -> None:
    # No send_timeout: only the negotiated heartbeat (1 s, so a 2 s timeout) can end it.
    with EmbeddedBroker(max_output_buffer=LIMIT, send_timeout=0) as broker:
        server = broker.server
        flood = NeverReadingPublisher(broker.url, body_size=4096, heartbeat=1).start()
        try:
            assert wait_for(lambda: server.output_pauses >= 1)
            assert wait_for(lambda: len(server.connections) == 0)
            assert wait_for(lambda: flood.error is not None)
        finally:
            flood.stop()
