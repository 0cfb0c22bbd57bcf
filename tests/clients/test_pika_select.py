"""Scenarios through pika's asynchronous SelectConnection, driven by its ioloop.

This is the style long-running services use: every step is a callback, confirms and returns arrive
as events, and their relative order is observable. Each scenario is a small chain of callbacks
that records what happened into a list and stops the ioloop; a timer on the same ioloop stops it
after a bounded deadline so a silent broker fails the test instead of hanging it.
"""

from __future__ import annotations

import functools

import pika
import pytest

DEADLINE = 10.0


class Scenario:
    """Runs one callback chain on a fresh SelectConnection and collects its observations."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list = []
        self.error: str | None = None
        self.connection: pika.SelectConnection | None = None

    def run(self, on_channel) -> list:
        """Open a connection and a channel, call `on_channel(self, channel)`, loop until `finish()`."""
        def on_open(connection):
            connection.channel(on_open_callback=functools.partial(on_channel, self))

        def on_open_error(_connection, exc):
            self.error = f"connection failed: {exc!r}"
            self.connection.ioloop.stop()

        def on_closed(_connection, _exc):
            self.connection.ioloop.stop()

        self.connection = pika.SelectConnection(
            pika.URLParameters(self.url),
            on_open_callback=on_open,
            on_open_error_callback=on_open_error,
            on_close_callback=on_closed,
        )
        timer = self.connection.ioloop.call_later(DEADLINE, self._timeout)
        self.connection.ioloop.start()
        self.connection.ioloop.remove_timeout(timer)
        if not self.connection.is_closed:
            # Close cleanly, giving the broker a bounded chance to answer close-ok.
            self.connection.close()
            self.connection.ioloop.call_later(DEADLINE, self.connection.ioloop.stop)
            self.connection.ioloop.start()
        assert self.error is None, self.error
        return self.events

    def _timeout(self) -> None:
        self.error = f"deadline passed; events so far: {self.events}"
        self.connection.ioloop.stop()

    def finish(self) -> None:
        self.connection.ioloop.stop()


def test_mandatory_return_precedes_the_confirm_of_the_same_publish(amqp_url):
    def on_channel(s, channel):
        channel.add_on_return_callback(
            lambda _ch, method, _props, body: s.events.append(("return", method.reply_code, method.reply_text, body)))

        def on_ack(frame):
            s.events.append(("ack", frame.method.delivery_tag, frame.method.multiple))
            s.finish()

        def on_confirm_select_ok(_frame):
            channel.basic_publish("", "no-such-queue-for-sure-4c1d", b"lost", mandatory=True)

        channel.confirm_delivery(on_ack, callback=on_confirm_select_ok)

    events = Scenario(amqp_url).run(on_channel)
    assert events[:2] == [("return", 312, "NO_ROUTE", b"lost"), ("ack", 1, False)]


def test_publisher_confirms_cover_every_publish_exactly_once(amqp_url):
    count = 50

    def on_channel(s, channel):
        def on_confirm(frame):
            s.events.append((type(frame.method).__name__, frame.method.delivery_tag, frame.method.multiple))
            if frame.method.delivery_tag == count:
                s.finish()

        def on_declared(frame):
            queue = frame.method.queue
            channel.confirm_delivery(on_confirm, callback=lambda _f: publish(queue))

        def publish(queue):
            for i in range(count):
                channel.basic_publish("", queue, str(i).encode())

        channel.queue_declare("", exclusive=True, callback=on_declared)

    events = Scenario(amqp_url).run(on_channel)
    assert all(kind == "Ack" for kind, _tag, _multiple in events)
    tags = [tag for _kind, tag, _multiple in events]
    assert tags == sorted(tags) and len(set(tags)) == len(tags)
    covered: list[int] = []
    for _kind, tag, multiple in events:
        start = covered[-1] + 1 if (multiple and covered) else (1 if multiple else tag)
        covered.extend(range(start, tag + 1))
    assert covered == list(range(1, count + 1))


def test_work_queue_with_three_consumers_on_one_connection_acks_everything(amqp_url):
    total = 30

    def on_channel(s, channel):
        per_consumer: dict[str, int] = {}

        def on_message(ch, method, _props, body):
            per_consumer[method.consumer_tag] = per_consumer.get(method.consumer_tag, 0) + 1
            s.events.append(body)
            ch.basic_ack(method.delivery_tag)
            if len(s.events) == total:
                s.events.append(per_consumer)
                s.finish()

        def on_declared(frame):
            queue = frame.method.queue
            channel.basic_qos(prefetch_count=1, callback=lambda _f: start(queue))

        def start(queue):
            for _ in range(3):
                channel.basic_consume(queue, on_message)
            for i in range(total):
                channel.basic_publish("", queue, f"{i:02d}".encode())

        channel.queue_declare("", exclusive=True, callback=on_declared)

    events = Scenario(amqp_url).run(on_channel)
    bodies, per_consumer = events[:-1], events[-1]
    assert sorted(bodies) == [f"{i:02d}".encode() for i in range(total)]
    assert len(per_consumer) == 3 and sum(per_consumer.values()) == total


def test_queue_delete_sends_basic_cancel_to_its_consumer(amqp_url):
    def on_channel(s, channel):
        def on_cancelled(frame):
            s.events.append(("cancel", frame.method.consumer_tag))
            s.finish()

        def on_declared(frame):
            queue = frame.method.queue
            channel.add_on_cancel_callback(on_cancelled)
            tag = channel.basic_consume(queue, lambda *a: None)
            s.events.append(("consuming", tag))
            channel.queue_delete(queue)

        channel.queue_declare("", exclusive=True, callback=on_declared)

    events = Scenario(amqp_url).run(on_channel)
    assert events == [("consuming", events[0][1]), ("cancel", events[0][1])]


def test_prefetch_one_delivers_the_next_message_only_after_the_ack(amqp_url):
    def on_channel(s, channel):
        def on_message(ch, method, _props, body):
            s.events.append(("deliver", body))
            if body == b"c":
                s.finish()
                return
            # Before acking, ask the queue how many are ready: exactly the undelivered remainder.
            ch.queue_declare(method.routing_key, passive=True,
                             callback=lambda f: after_count(ch, method, f.method.message_count))

        def after_count(ch, method, ready):
            s.events.append(("ready", ready))
            ch.basic_ack(method.delivery_tag)

        def on_declared(frame):
            queue = frame.method.queue

            def on_confirm(ack):
                # Ready counts are exact only for confirmed messages: consume once the last one is
                # acked (confirms arrive in order, possibly several at once with multiple=true).
                if ack.method.delivery_tag == 3:
                    channel.basic_qos(prefetch_count=1, callback=lambda _f: channel.basic_consume(queue, on_message))

            def publish(_frame):
                for body in (b"a", b"b", b"c"):
                    channel.basic_publish("", queue, body)

            channel.confirm_delivery(on_confirm, callback=publish)

        channel.queue_declare("", exclusive=True, callback=on_declared)

    events = Scenario(amqp_url).run(on_channel)
    assert events == [("deliver", b"a"), ("ready", 2), ("deliver", b"b"), ("ready", 1), ("deliver", b"c")]


def test_channel_error_is_reported_to_the_channel_close_callback(amqp_url):
    def on_channel(s, channel):
        def on_closed(_ch, reason):
            s.events.append((reason.reply_code, reason.reply_text))
            s.finish()

        channel.add_on_close_callback(on_closed)
        channel.exchange_declare("no-such-exchange-for-sure-77ab", passive=True)

    events = Scenario(amqp_url).run(on_channel)
    assert events == [(404, "NOT_FOUND - no exchange 'no-such-exchange-for-sure-77ab' in vhost '/'")]


@pytest.mark.parametrize("size", [0, 1, 131_072 - 8, 131_072, 1_000_000])
def test_bodies_of_any_size_round_trip_across_frame_boundaries(amqp_url, size):
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)

    def on_channel(s, channel):
        def on_message(_ch, _method, props, body):
            s.events.append((props.message_id, body))
            s.finish()

        def on_declared(frame):
            queue = frame.method.queue
            channel.basic_consume(queue, on_message, auto_ack=True)
            channel.basic_publish("", queue, payload, pika.BasicProperties(message_id=str(size)))

        channel.queue_declare("", exclusive=True, callback=on_declared)

    [(message_id, body)] = Scenario(amqp_url).run(on_channel)
    assert message_id == str(size) and body == payload
