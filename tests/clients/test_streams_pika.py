"""Stream queues through pika's BlockingConnection, end to end (10,000 messages: test_streams_aio_pika.py).

Scenarios run against `amqp_url` (an in-process leveret, or `--amqp-url`); the restart and kill -9
scenarios need leveret itself (a data directory that outlives the broker) and start their own.
Waits are bounded loops over `process_data_events`, never sleeps.
"""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import time

import pika
import pytest


def pika_parameters(url: str) -> pika.URLParameters:
    """Short, bounded timeouts: a hung broker must fail a test, not stall it."""
    params = pika.URLParameters(url)
    params.socket_timeout = 5
    params.stack_timeout = 10
    params.blocked_connection_timeout = 10
    params.connection_attempts = 1
    return params

WAIT = 10.0
STREAM = {"x-queue-type": "stream"}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pump(connections, until, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the broker")
        for connection in connections:
            connection.process_data_events(time_limit=0.02)


def declare_stream(channel, name: str, **arguments) -> None:
    channel.queue_declare(name, durable=True, arguments={**STREAM, **arguments})


def publish_confirmed(channel, name: str, bodies) -> None:
    """Publish with confirms (pika's blocking channel waits for each confirm)."""
    channel.confirm_delivery()
    for body in bodies:
        channel.basic_publish("", name, body)


def read(url: str, name: str, n: int, offset, prefetch: int = 100, tag: str = "", extra=None, timeout=WAIT):
    """Consume `n` messages from `offset` on a fresh connection; [(x-stream-offset, body)].

    Acks free credit, so exactly n - prefetch messages are acked and the broker delivers exactly n:
    pika rejects deliveries that arrive while it cancels, and streams answer a reject with 540.
    """
    prefetch = min(prefetch, n)
    connection = pika.BlockingConnection(pika_parameters(url))
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=prefetch)
        got: list = []

        def on_message(ch, method, properties, body):
            got.append((properties.headers["x-stream-offset"], body))
            if len(got) <= n - prefetch:
                ch.basic_ack(method.delivery_tag)

        arguments = {"x-stream-offset": offset, **(extra or {})}
        channel.basic_consume(name, on_message, consumer_tag=tag or None, arguments=arguments)
        pump([connection], lambda: len(got) >= n, timeout)
        return got
    finally:
        connection.close()


@pytest.fixture
def stream(amqp_url, unique, cleanup, connect):
    name = cleanup.queue(amqp_url, unique("stream"))
    channel = connect(amqp_url).channel()
    declare_stream(channel, name)
    return name, channel


def test_each_x_stream_offset_form_starts_at_the_right_message(amqp_url, stream):
    name, channel = stream
    publish_confirmed(channel, name, [b"m%d" % i for i in range(5)])
    moment = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(seconds=1)
    # The timestamp form has one-second resolution: publish the rest once the clock has passed `moment`.
    deadline = time.monotonic() + 3
    while datetime.datetime.now(datetime.timezone.utc) < moment and time.monotonic() < deadline:
        channel.connection.process_data_events(time_limit=0.05)
    publish_confirmed(channel, name, [b"m%d" % i for i in range(5, 10)])
    assert read(amqp_url, name, 1, "first")[0] == (0, b"m0")
    assert read(amqp_url, name, 1, "last")[0] == (9, b"m9")
    assert read(amqp_url, name, 1, 4)[0] == (4, b"m4")
    assert read(amqp_url, name, 1, moment.replace(tzinfo=None))[0] == (5, b"m5")
    assert read(amqp_url, name, 1, "1h")[0] == (0, b"m0")
    # "next" (and no argument at all) only sees what is published after the consumer started
    connection = pika.BlockingConnection(pika_parameters(amqp_url))
    ch = connection.channel()
    ch.basic_qos(prefetch_count=10)
    got: list = []
    ch.basic_consume(name, lambda c, m, p, b: got.append(p.headers["x-stream-offset"]),
                     arguments={"x-stream-offset": "next"})
    ch.basic_consume(name, lambda c, m, p, b: got.append(p.headers["x-stream-offset"]))
    connection.process_data_events(time_limit=0.1)
    assert got == []
    publish_confirmed(channel, name, [b"late"])
    pump([connection], lambda: len(got) >= 2)
    assert got == [10, 10]
    connection.close()


def test_acks_do_not_remove_messages(amqp_url, stream):
    name, channel = stream
    publish_confirmed(channel, name, [b"a", b"b"])
    assert [b for _, b in read(amqp_url, name, 2, "first")] == [b"a", b"b"]
    assert [b for _, b in read(amqp_url, name, 2, "first")] == [b"a", b"b"]


def test_refusals_close_with_rabbitmq_codes(amqp_url, stream, connect):
    name, channel = stream
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        channel.basic_consume(name, lambda *a: None)
    assert err.value.reply_code == 406
    channel = connect(amqp_url).channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as err:
        channel.basic_get(name)
    assert err.value.reply_code == 540
    channel = connect(amqp_url).channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        channel.queue_declare(name + ".x", durable=False, arguments=STREAM)
    assert err.value.reply_code == 406 and "non-durable" in err.value.reply_text


def test_retention_by_size_drops_whole_segments_while_a_consumer_keeps_reading(amqp_url, unique, cleanup, connect):
    name = cleanup.queue(amqp_url, unique("stream"))
    channel = connect(amqp_url).channel()
    declare_stream(channel, name, **{"x-max-length-bytes": 20_000, "x-stream-max-segment-size-bytes": 5_000})
    reader = pika.BlockingConnection(pika_parameters(amqp_url))
    rch = reader.channel()
    rch.basic_qos(prefetch_count=5)
    got: list = []
    bodies: list = []
    pending: list = []

    def on_message(c, method, properties, body):
        got.append(properties.headers["x-stream-offset"])
        bodies.append(body[:4])
        pending.append(method.delivery_tag)

    # The first message goes in before the reader attaches (RabbitMQ 3.10 sometimes never wakes a
    # "first" reader that attached to a still empty stream).
    publish_confirmed(channel, name, [b"%04d" % i + b"z" * 200 for i in range(1)])
    rch.basic_consume(name, on_message, arguments={"x-stream-offset": "first"})
    pump([reader], lambda: len(got) == 1)
    publish_confirmed(channel, name, [b"%04d" % i + b"z" * 200 for i in range(1, 600)])  # ~130 KB >> 20 KB kept
    while bodies[-1] != b"0599":  # (RabbitMQ's offsets are not dense: wait for the last body)
        rch.basic_ack(pending.pop(), multiple=True)
        pending.clear()
        pump([reader], lambda: pending)
    reader.close()
    assert got == sorted(got) and got[0] == 0
    assert len(got) < 600 and bodies == sorted(bodies)  # the reader skipped what retention dropped...
    kept = read(amqp_url, name, 1, "first")[0][0]
    assert kept > 0 and kept in got  # ...and went on from a segment boundary still on disk


def test_retention_by_age_drops_old_segments(amqp_url, unique, cleanup, connect):
    """(Against RabbitMQ 3.10 itself this scenario ends in 541 INTERNAL_ERROR: a "first" consumer that
    attaches right after age retention dropped segments crashes its channel process there.)"""
    name = cleanup.queue(amqp_url, unique("stream"))
    channel = connect(amqp_url).channel()
    declare_stream(channel, name, **{"x-max-age": "1s", "x-stream-max-segment-size-bytes": 2_000})
    publish_confirmed(channel, name, [b"old" + b"z" * 200 for _ in range(30)])
    # Age needs wall time to pass; keep publishing (each segment roll applies retention) until the head goes.
    deadline = time.monotonic() + 15
    first = (0, b"old")
    while first[1].startswith(b"old"):
        assert time.monotonic() < deadline, "old segments were never dropped"
        publish_confirmed(channel, name, [b"new" + b"z" * 200 for _ in range(10)])
        channel.connection.process_data_events(time_limit=0.2)
        first = read(amqp_url, name, 1, "first")[0]
    assert first[0] > 0  # whole old segments went, offsets were not renumbered


@pytest.mark.parametrize("offset", ["first", 3, None])
def test_server_side_offset_tracking_resumes_a_named_consumer(leveret_broker, connect, offset):
    """leveret only (an extension): automatic tracking with any start, or x-stream-offset null (void)."""
    url = leveret_broker.url
    name = "tracked-stream"
    channel = connect(url).channel()
    declare_stream(channel, name)
    publish_confirmed(channel, name, [b"m%d" % i for i in range(8)])
    extra = {"x-stream-automatic-offset-tracking": True} if offset is not None else {}
    got = read(url, name, 3, offset, prefetch=1, tag="tracked", extra=extra)  # acks the first two
    start = 3 if offset == 3 else 0
    assert [o for o, _ in got] == [start, start + 1, start + 2]
    again = read(url, name, 1, offset, prefetch=1, tag="tracked", extra=extra)
    assert again[0][0] == start + 2  # right after the last acked offset, whatever x-stream-offset says


def _start_server(data_dir: str):
    proc = subprocess.Popen(
        [sys.executable, "-m", "leveret", "serve", "--port", "0", "--data-dir", data_dir],
        cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "listening on" in line:
            port = int(line.strip().rsplit(":", 1)[1])
            return proc, f"amqp://guest:guest@127.0.0.1:{port}/%2F"
        if not line and proc.poll() is not None:
            break
    proc.kill()
    proc.wait(5)
    raise AssertionError("leveret did not start")


def test_restart_keeps_every_confirmed_message_and_its_offset(tmp_path):
    from leveret.embedded import EmbeddedBroker

    data = str(tmp_path / "data")
    with EmbeddedBroker(data_dir=data) as broker:
        connection = pika.BlockingConnection(pika_parameters(broker.url))
        channel = connection.channel()
        declare_stream(channel, "s")
        publish_confirmed(channel, "s", [b"m%d" % i for i in range(100)])
        read(broker.url, "s", 10, "first", prefetch=1, tag="t", extra={"x-stream-automatic-offset-tracking": True})
        connection.close()
    with EmbeddedBroker(data_dir=data) as broker:
        got = read(broker.url, "s", 100, "first")
        assert got == [(i, b"m%d" % i) for i in range(100)]
        assert read(broker.url, "s", 1, "first", tag="t", extra={"x-stream-automatic-offset-tracking": True})[0][0] == 9


def test_kill_9_keeps_every_confirmed_message(tmp_path):
    data = str(tmp_path / "data")
    proc, url = _start_server(data)
    try:
        connection = pika.BlockingConnection(pika_parameters(url))
        channel = connection.channel()
        declare_stream(channel, "s")
        publish_confirmed(channel, "s", [b"c%d" % i for i in range(500)])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stderr.close()
    proc, url = _start_server(data)
    try:
        got = read(url, "s", 500, "first", prefetch=200)
        assert got == [(i, b"c%d" % i) for i in range(500)]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        proc.stderr.close()
