"""Durable queues and persistent messages across restarts, through pika, on the real file store."""

from __future__ import annotations

import time

import pika
import pytest

from leveret.embedded import EmbeddedBroker

PERSISTENT = pika.BasicProperties(delivery_mode=2)
TRANSIENT = pika.BasicProperties(delivery_mode=1)


def _connect(broker: EmbeddedBroker) -> tuple[pika.BlockingConnection, "pika.adapters.blocking_connection.BlockingChannel"]:
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    return conn, conn.channel()


def test_persistent_messages_in_a_durable_queue_survive_a_restart(tmp_path) -> None:
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _connect(broker)
        ch.queue_declare("jobs", durable=True)
        ch.confirm_delivery()
        for i in range(20):
            ch.basic_publish("", "jobs", b"job-%d" % i, PERSISTENT)
        conn.close()
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _connect(broker)
        assert ch.queue_declare("jobs", passive=True).method.message_count == 20
        bodies = []
        for _ in range(20):
            method, _props, body = ch.basic_get("jobs", auto_ack=True)
            assert method.redelivered is False  # never delivered before the clean shutdown
            bodies.append(body)
        assert bodies == [b"job-%d" % i for i in range(20)]
        conn.close()


def test_transient_messages_and_non_durable_queues_vanish_on_restart(tmp_path) -> None:
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _connect(broker)
        ch.queue_declare("durable-q", durable=True)
        ch.queue_declare("transient-q", durable=False)
        ch.confirm_delivery()
        ch.basic_publish("", "durable-q", b"transient-body", TRANSIENT)
        ch.basic_publish("", "durable-q", b"persistent-body", PERSISTENT)
        ch.basic_publish("", "transient-q", b"lost", PERSISTENT)
        conn.close()
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _connect(broker)
        assert ch.queue_declare("durable-q", passive=True).method.message_count == 1
        assert ch.basic_get("durable-q", auto_ack=True)[2] == b"persistent-body"
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
            ch.queue_declare("transient-q", passive=True)
        assert closed.value.reply_code == 404
        conn.close()


def test_unacked_messages_come_back_redelivered_and_acked_ones_do_not(tmp_path) -> None:
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _connect(broker)
        ch.queue_declare("work", durable=True)
        ch.confirm_delivery()
        for body in (b"acked", b"unacked", b"untouched"):
            ch.basic_publish("", "work", body, PERSISTENT)
        first = ch.basic_get("work")
        ch.basic_ack(first[0].delivery_tag)
        second = ch.basic_get("work")
        assert second[2] == b"unacked"
        # shut down with `unacked` still unacknowledged
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _connect(broker)
        got = [ch.basic_get("work", auto_ack=True) for _ in range(2)]
        assert [(m.redelivered, body) for m, _p, body in got] == [(True, b"unacked"), (False, b"untouched")]
        assert ch.basic_get("work", auto_ack=True) == (None, None, None)
        conn.close()


def test_durable_exchanges_and_bindings_survive_and_route_after_restart(tmp_path) -> None:
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _connect(broker)
        ch.exchange_declare("events", "topic", durable=True)
        ch.exchange_declare("scratch", "fanout", durable=False)
        ch.queue_declare("audit", durable=True)
        ch.queue_bind("audit", "events", "user.#")
        conn.close()
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _connect(broker)
        ch.confirm_delivery()
        ch.basic_publish("events", "user.created", b"hello", PERSISTENT, mandatory=True)
        assert ch.basic_get("audit", auto_ack=True)[2] == b"hello"
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
            ch.exchange_declare("scratch", "fanout", passive=True)
        assert closed.value.reply_code == 404
        conn.close()


def test_a_deleted_durable_queue_stays_deleted_with_its_messages(tmp_path) -> None:
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _connect(broker)
        ch.queue_declare("gone", durable=True)
        ch.confirm_delivery()
        ch.basic_publish("", "gone", b"x", PERSISTENT)
        ch.queue_delete("gone")
        ch.queue_declare("gone", durable=True)
        conn.close()
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _connect(broker)
        assert ch.queue_declare("gone", passive=True).method.message_count == 0
        conn.close()


@pytest.mark.parametrize("dlx_declared_first", [True, False], ids=["dlx-first", "dlx-last"])
def test_messages_that_expire_while_the_broker_is_down_are_dead_lettered_at_restart(tmp_path, dlx_declared_first) -> None:
    # Regression: they expired during recovery before the dead-letter exchange's bindings were back,
    # were routed nowhere and dropped, even on a clean restart.
    def declare_dlx(ch) -> None:
        ch.exchange_declare("dlx", "fanout", durable=True)
        ch.queue_declare("dead", durable=True)
        ch.queue_bind("dead", "dlx")

    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _connect(broker)
        if dlx_declared_first:
            declare_dlx(ch)
        ch.queue_declare("work", durable=True, arguments={"x-message-ttl": 200, "x-dead-letter-exchange": "dlx"})
        if not dlx_declared_first:
            declare_dlx(ch)
        ch.confirm_delivery()
        for i in range(30):
            ch.basic_publish("", "work", b"m-%d" % i, PERSISTENT)
        expired_at = time.time() + 0.2  # every TTL has run out by then: the last publish was just confirmed
        conn.close()
    # The TTL runs out while no broker is running: wait out what the shutdown did not already take.
    time.sleep(max(0.0, expired_at - time.time()) + 0.01)
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _connect(broker)
        assert ch.queue_declare("work", passive=True).method.message_count == 0
        assert ch.queue_declare("dead", passive=True).method.message_count == 30
        bodies = []
        for _ in range(30):
            method, props, body = ch.basic_get("dead", auto_ack=True)
            assert props.headers["x-death"][0]["reason"] == "expired"
            bodies.append(body)
        assert bodies == [b"m-%d" % i for i in range(30)]
        conn.close()
