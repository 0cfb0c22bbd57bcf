"""A declaration or a transaction the store cannot write: 541, and neither the model nor the disk keeps half of it."""

from __future__ import annotations

import errno

import pika
import pika.exceptions
import pytest

from tests.faults.faultyio import FaultyIO
from tests.faults.inprocess import InProcessBroker

DEFINITIONS_WRITE = "leveret/store/definitions.py:_write"


def connect(url: str) -> tuple[pika.BlockingConnection, object]:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    return conn, conn.channel()


def exists(url: str, queue: str) -> bool:
    conn, ch = connect(url)
    try:
        ch.queue_declare(queue, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == 404
        return False
    finally:
        if conn.is_open:
            conn.close()


@pytest.mark.parametrize("what", ["queue", "exchange", "binding"])
def test_a_declaration_that_cannot_be_written_closes_with_541_and_is_undone(tmp_path, what):
    io = FaultyIO()
    broker = InProcessBroker(str(tmp_path), io).start()
    try:
        conn, ch = connect(broker.url)
        ch.exchange_declare("x", "direct", durable=True)
        ch.queue_declare("q", durable=True)
        bystander, by_ch = connect(broker.url)
        io.arm("write", DEFINITIONS_WRITE)
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
            if what == "queue":
                ch.queue_declare("new-q", durable=True)
            elif what == "exchange":
                ch.exchange_declare("new-x", "fanout", durable=True)
            else:
                ch.queue_bind("q", "x", "rk")
        assert closed.value.reply_code == 541
        by_ch.queue_declare("q", passive=True)  # the bystander's connection is untouched

        # The model does not have it: a publish along the binding is returned, the queue/exchange is absent.
        conn, ch = connect(broker.url)
        ch.confirm_delivery()
        if what == "queue":
            assert not exists(broker.url, "new-q")
        elif what == "exchange":
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as missing:
                ch.exchange_declare("new-x", "fanout", passive=True)
            assert missing.value.reply_code == 404
            ch = conn.channel()
        else:
            with pytest.raises(pika.exceptions.UnroutableError):
                ch.basic_publish("x", "rk", b"m", mandatory=True)
        # ... and the same declaration works now that the disk does.
        ch.queue_declare("later", durable=True)
        conn.close()
        bystander.close()
    finally:
        broker.stop()
    broker = InProcessBroker(str(tmp_path)).start()  # the disk does not have it either
    try:
        definitions = broker.call(lambda: broker.server.definition_store.load())
        assert ("/", "new-q") not in definitions.queues
        assert ("/", "new-x") not in definitions.exchanges
        assert not [b for b in definitions.bindings if b[1] == "x" and b[3] == "rk"] if what == "binding" else True
        assert ("/", "later") in definitions.queues
    finally:
        broker.stop()


@pytest.mark.parametrize("what", ["queue", "exchange", "binding"])
def test_a_deletion_that_cannot_be_written_closes_with_541_and_changes_nothing(tmp_path, what):
    """The record's deletion is written before the model changes: a refused write leaves the queue with its
    messages, the exchange, the binding, in memory and on disk; before, the model forgot what the disk kept,
    and it came back at the next start."""
    io = FaultyIO()
    broker = InProcessBroker(str(tmp_path), io).start()
    try:
        conn, ch = connect(broker.url)
        ch.exchange_declare("x", "direct", durable=True)
        ch.queue_declare("q", durable=True)
        ch.queue_bind("q", "x", "rk")
        ch.confirm_delivery()
        ch.basic_publish("x", "rk", b"kept", pika.BasicProperties(delivery_mode=2))
        io.arm("write", DEFINITIONS_WRITE)
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
            if what == "queue":
                ch.queue_delete("q")
            elif what == "exchange":
                ch.exchange_delete("x")
            else:
                ch.queue_unbind("q", "x", "rk")
        assert closed.value.reply_code == 541
        conn, ch = connect(broker.url)
        ch.confirm_delivery()
        ch.basic_publish("x", "rk", b"routed", pika.BasicProperties(delivery_mode=2), mandatory=True)
        assert ch.queue_declare("q", passive=True).method.message_count == 2
        conn.close()
    finally:
        broker.stop()
    broker = InProcessBroker(str(tmp_path)).start()  # the disk has all of it, and the delete works now
    try:
        conn, ch = connect(broker.url)
        ch.confirm_delivery()
        ch.basic_publish("x", "rk", b"after restart", pika.BasicProperties(delivery_mode=2), mandatory=True)
        assert ch.queue_declare("q", passive=True).method.message_count == 3
        if what == "queue":
            ch.queue_delete("q")
            assert not exists(broker.url, "q")
        elif what == "exchange":
            ch.exchange_delete("x")
        else:
            ch.queue_unbind("q", "x", "rk")
            with pytest.raises(pika.exceptions.UnroutableError):
                ch.basic_publish("x", "rk", b"unrouted", mandatory=True)
        conn.close()
    finally:
        broker.stop()


@pytest.mark.parametrize("kind", ["write", "fsync"])
def test_a_transaction_the_store_refuses_is_not_applied_at_all(tmp_path, kind):
    io = FaultyIO()
    broker = InProcessBroker(str(tmp_path), io).start()
    try:
        conn, ch = connect(broker.url)
        ch.queue_declare("q", durable=True)
        ch.confirm_delivery()
        ch.basic_publish("", "q", b"old", pika.BasicProperties(delivery_mode=2))
        tx_conn, tx = connect(broker.url)
        tx.tx_select()
        method, _props, body = tx.basic_get("q")
        assert body == b"old"
        tx.basic_ack(method.delivery_tag)
        for i in range(3):
            tx.basic_publish("", "q", b"new%d" % i, pika.BasicProperties(delivery_mode=2))
        io.arm(kind, "leveret/store/segment.py:flush" if kind == "write" else "leveret/store/commit.py:run",
               errno.EIO)
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
            tx.tx_commit()
        assert closed.value.reply_code == 541
        assert io.fired
        # Neither its publishes nor its ack: "old" is back (redelivered), no "new" is in the queue.
        conn2, ch2 = connect(broker.url)
        got = []
        while True:
            method, _props, body = ch2.basic_get("q", auto_ack=False)
            if method is None:
                break
            got.append(body)
        assert got == [b"old"]
        conn2.close()
        conn.close()
    finally:
        broker.crash()
    broker = InProcessBroker(str(tmp_path)).start()
    try:
        conn, ch = connect(broker.url)
        method, _props, body = ch.basic_get("q", auto_ack=True)
        assert body == b"old"
        assert ch.basic_get("q", auto_ack=True)[0] is None
        conn.close()
    finally:
        broker.stop()


def test_a_publish_whose_routing_dead_letters_into_a_refusing_store_is_nacked_not_confirmed(tmp_path):
    """expiration "0": the message expires while it is routed, and its dead-lettered copy's write fails. The
    store rolls back its open batch, the publish's own record with it: the publisher must hear a nack."""
    io = FaultyIO()
    broker = InProcessBroker(str(tmp_path), io).start()
    try:
        conn, ch = connect(broker.url)
        ch.confirm_delivery()
        ch.queue_declare("dlq", durable=True)
        ch.queue_declare("src", durable=True, arguments={"x-dead-letter-exchange": "",
                                                          "x-dead-letter-routing-key": "dlq"})
        big = b"x" * (128 * 1024)  # written at once, not buffered: the second write is the copy's
        io.arm("write", "leveret/store/segment.py:flush", skip=1)
        with pytest.raises(pika.exceptions.NackError):
            ch.basic_publish("", "src", big, pika.BasicProperties(delivery_mode=2, expiration="0"))
        assert io.fired
        ch.basic_publish("", "src", b"later", pika.BasicProperties(delivery_mode=2, expiration="0"))
        conn.close()
    finally:
        broker.crash()
    broker = InProcessBroker(str(tmp_path)).start()
    try:
        conn, ch = connect(broker.url)
        assert ch.basic_get("src", auto_ack=True)[0] is None
        method, _props, body = ch.basic_get("dlq", auto_ack=True)
        assert body == b"later"
        assert ch.basic_get("dlq", auto_ack=True)[0] is None
        conn.close()
    finally:
        broker.stop()
