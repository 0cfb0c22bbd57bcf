"""The disk alarm: publishers are blocked (connection.blocked) instead of writes failing, then released."""

from __future__ import annotations

import threading
import time

import pika

from leveret.embedded import EmbeddedBroker


def _count(url: str, queue: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


def test_low_disk_blocks_publishers_and_recovery_unblocks_them() -> None:
    # A limit no disk can meet switches the alarm on at start.
    with EmbeddedBroker(disk_free_limit=2**62) as broker:
        conn = pika.BlockingConnection(pika.URLParameters(broker.url))
        events: list[str] = []
        conn.add_on_connection_blocked_callback(lambda _c, frame: events.append(frame.method.reason))
        conn.add_on_connection_unblocked_callback(lambda _c, _frame: events.append("unblocked"))
        ch = conn.channel()
        ch.queue_declare("held")
        # As in RabbitMQ, a connection is blocked when it publishes during the alarm.
        ch.basic_publish("", "held", b"first")
        deadline = time.monotonic() + 10
        while not events and time.monotonic() < deadline:
            conn.process_data_events(0.05)
        assert events == ["low on disk"]
        for i in range(9):
            ch.basic_publish("", "held", b"m%d" % i)
        conn.process_data_events(0.2)
        # The first publish went in; the broker stopped reading this connection after it.
        assert _count(broker.url, "held") == 1

        cleared = threading.Event()

        def clear() -> None:
            broker.server.disk_alarm.limit = 0
            broker.server.disk_alarm.check()
            cleared.set()

        broker._loop.call_soon_threadsafe(clear)
        assert cleared.wait(5)
        deadline = time.monotonic() + 10
        while "unblocked" not in events and time.monotonic() < deadline:
            conn.process_data_events(0.05)
        assert events == ["low on disk", "unblocked"]
        deadline = time.monotonic() + 10
        while _count(broker.url, "held") < 10 and time.monotonic() < deadline:
            conn.process_data_events(0.05)
        assert _count(broker.url, "held") == 10
        conn.close()


def test_a_consumer_that_stops_reading_stops_receiving_and_its_messages_stay_queued() -> None:
    import socket

    from leveret.amqp import serializer, spec
    from leveret.amqp.parser import FrameParser

    with EmbeddedBroker() as broker:
        publisher = pika.BlockingConnection(pika.URLParameters(broker.url))
        ch = publisher.channel()
        ch.queue_declare("firehose")
        # A raw client that subscribes without acks, then never reads its socket again.
        sock = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
        parser = FrameParser()

        def expect(kind):
            while True:
                for frame_type, _channel, payload in parser.feed(sock.recv(65536)):
                    if frame_type == 1:
                        method = spec.decode_method(bytes(payload))
                        if isinstance(method, kind):
                            return method

        sock.sendall(serializer.PROTOCOL_HEADER)
        expect(spec.ConnectionStart)
        sock.sendall(serializer.method_frame(0, spec.ConnectionStartOk(
            client_properties={}, mechanism="PLAIN", response=b"\x00guest\x00guest", locale="en_US")))
        tune = expect(spec.ConnectionTune)
        sock.sendall(serializer.method_frame(0, spec.ConnectionTuneOk(
            channel_max=tune.channel_max, frame_max=tune.frame_max, heartbeat=0)))
        sock.sendall(serializer.method_frame(0, spec.ConnectionOpen(virtual_host="/")))
        expect(spec.ConnectionOpenOk)
        sock.sendall(serializer.method_frame(1, spec.ChannelOpen()))
        expect(spec.ChannelOpenOk)
        sock.sendall(serializer.method_frame(1, spec.BasicConsume(queue="firehose", no_ack=True)))
        expect(spec.BasicConsumeOk)

        ch.confirm_delivery()
        body = b"z" * 16384
        for _ in range(3000):  # 48 MB: far more than the kernel's socket buffers hold
            ch.basic_publish("", "firehose", body)
        left = ch.queue_declare("firehose", passive=True).method.message_count
        # Deliveries stopped once the socket backed up: the rest waits in the queue, not in our memory.
        assert left > 0
        sock.close()
        publisher.close()
