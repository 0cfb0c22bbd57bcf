"""A failed commit takes its batch's ack records with it; the messages they named are in the running broker
again at once, not only on disk until a restart.

A dead-lettering (or a delayed release) writes the new copy and acks the old one in the same batch. When
that batch's fsync fails, both are rolled back: on disk the message is where it was. Before, memory did not
follow: the message was in neither queue until the broker restarted, so a consumer waited for it forever.
(A consumer's ack rolled back the same way brings its message back, flagged redelivered: the store's side
of that is tests/store/test_fsio.py; through a socket the ack's own commit usually wins the race.)
"""

from __future__ import annotations

import errno
import time

import pika
import pika.exceptions
import pytest

from tests.faults.faultyio import FaultyIO
from tests.faults.inprocess import InProcessBroker

PERSISTENT = pika.BasicProperties(delivery_mode=2)
COMMIT_FSYNC = "leveret/store/commit.py:run"


@pytest.fixture
def broker(tmp_path):
    io = FaultyIO()
    running = InProcessBroker(str(tmp_path / "data"), io).start()
    running.io = io
    yield running
    running.stop()


def fail_next_commit(broker: InProcessBroker, conn, ch) -> None:
    """Arm one fsync failure and make the broker read something (dead-lettering and releases do not start a
    commit of their own; every read does): the commit of what is pending fails and is rolled back."""
    broker.io.arm("fsync", COMMIT_FSYNC, errno.EIO)
    ch.queue_declare("other", durable=True, passive=True)
    deadline = time.monotonic() + 10.0
    while not broker.io.fired and time.monotonic() < deadline:
        conn.process_data_events(0.02)
    assert broker.io.fired == [("fsync", COMMIT_FSYNC)]


def wait_for_ready(broker: InProcessBroker, conn, counts: dict[str, int], timeout: float = 10.0) -> None:
    """Wait until the named queues hold these many ready messages, looked at inside the broker: a passive
    declare would be a read on the connection, and every read starts a commit of what is pending."""
    def ready() -> dict[str, int]:
        queues = broker.server.broker.vhosts["/"].queues
        return {name: queues[name].message_count for name in counts}

    deadline = time.monotonic() + timeout
    while broker.call(ready) != counts and time.monotonic() < deadline:
        conn.process_data_events(0.02)
    assert broker.call(ready) == counts


def get_within(conn, ch, queues: list[str], timeout: float) -> dict[str, bytes]:
    """The first message found in any of `queues` within `timeout` (acked)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name in queues:
            method, _props, body = ch.basic_get(name, auto_ack=True)
            if method is not None:
                return {name: body}
        conn.process_data_events(0.05)
    return {}


def drain(conn, ch, queue: str, count: int, timeout: float) -> list[bytes]:
    """Up to `count` bodies taken (acked) from `queue` within `timeout`."""
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        method, _props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            conn.process_data_events(0.05)
        else:
            got.append(body)
    return got


def test_a_dead_lettering_whose_commit_fails_leaves_the_message_in_the_running_broker(broker) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare("dlq", durable=True)
    ch.queue_declare("src", durable=True, arguments={
        "x-message-ttl": 200, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"})
    ch.queue_declare("other", durable=True)
    ch.basic_publish("", "src", b"m1", PERSISTENT)
    wait_for_ready(broker, conn, {"src": 0, "dlq": 1})  # dead-lettered; its copy and ack not yet committed

    fail_next_commit(broker, conn, ch)
    # Back in src (where the rolled-back batch left it on disk), it expires again: dead-lettered for good.
    assert get_within(conn, ch, ["src", "dlq"], 10.0) == {"dlq": b"m1"}
    conn.close()


def test_a_delayed_release_whose_commit_fails_is_released_again(broker) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    ch = conn.channel()
    ch.confirm_delivery()
    ch.exchange_declare("later", "x-delayed-message", durable=True, arguments={"x-delayed-type": "direct"})
    ch.queue_declare("due", durable=True)
    ch.queue_bind("due", "later", "k")
    ch.queue_declare("other", durable=True)
    ch.basic_publish("later", "k", b"d1", pika.BasicProperties(delivery_mode=2, headers={"x-delay": 200}))
    wait_for_ready(broker, conn, {"due": 1})  # released; the copy and the delayed ack not yet committed

    fail_next_commit(broker, conn, ch)
    assert get_within(conn, ch, ["due"], 10.0) == {"due": b"d1"}
    conn.close()



def test_on_a_disk_that_stays_full_put_back_messages_wait_their_turn_and_the_broker_keeps_serving(broker) -> None:
    """Expired messages are dead-lettered one after another: the copies fill the DLQ's 64 KiB write buffer,
    its write is refused, and that rolls back the acks of the copies before it, so those are put back and
    dead-lettered again later. The broker keeps serving, and every message reaches the DLQ once space
    returns."""
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare("dlq", durable=True)
    # The TTL is long enough for the publishes and the arming to finish on a loaded machine before the first
    # message expires (with 300 ms every message had sometimes expired before the disk was "full").
    ch.queue_declare("src", durable=True, arguments={
        "x-message-ttl": 3000, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"})
    bodies = [b"%03d" % i + b"." * 4096 for i in range(40)]
    for body in bodies:
        ch.basic_publish("", "src", body, PERSISTENT)
    broker.io.arm("write", stay=True)
    broker.io.arm("open", stay=True)
    assert ch.queue_declare("src", passive=True).method.message_count == len(bodies), "expired before the arming"
    deadline = time.monotonic() + 15.0
    while not broker.io.fired and time.monotonic() < deadline:  # expiry; dead-lettering fills the buffer, refused
        conn.process_data_events(0.05)
    assert broker.io.fired

    started = time.monotonic()
    bystander = pika.BlockingConnection(pika.URLParameters(broker.url))
    bystander.channel().queue_declare("", exclusive=True)  # answered: the loop is not stuck in the timers
    bystander.close()
    assert time.monotonic() - started < 5.0

    broker.io.disarm()
    assert sorted(drain(conn, ch, "dlq", len(bodies), 15.0)) == bodies
    conn.close()



def test_restarted_on_a_full_disk_with_delayed_messages_all_due_the_broker_comes_up_and_serves(tmp_path) -> None:
    """Recovered past their due time onto a full disk, the delayed messages are released at once: their copies
    fill the queue's write buffer, the write is refused and the releases before it are rolled back and done
    again later. The broker must come up, serve, and deliver every message once space returns."""
    data_dir = str(tmp_path / "data")
    first = InProcessBroker(data_dir).start()
    try:
        conn = pika.BlockingConnection(pika.URLParameters(first.url))
        ch = conn.channel()
        ch.confirm_delivery()
        ch.exchange_declare("later", "x-delayed-message", durable=True, arguments={"x-delayed-type": "direct"})
        ch.queue_declare("due", durable=True)
        ch.queue_bind("due", "later", "k")
        bodies = [b"%03d" % i + b"." * 4096 for i in range(40)]
        for body in bodies:
            ch.basic_publish("later", "k", body, pika.BasicProperties(delivery_mode=2, headers={"x-delay": 100}))
        conn.close()
    finally:
        first.crash()
    time.sleep(0.2)  # a measured wait, not synchronisation: every message is past due when the broker is back

    io = FaultyIO()
    io.arm("write", stay=True)
    second = InProcessBroker(data_dir, io).start()  # raises if it never gets to listen
    try:
        conn = pika.BlockingConnection(pika.URLParameters(second.url))
        ch = conn.channel()
        ch.queue_declare("", exclusive=True)  # served while the disk is still full
        assert io.fired
        io.disarm()
        assert sorted(drain(conn, ch, "due", len(bodies), 15.0)) == bodies
        conn.close()
    finally:
        second.stop()
