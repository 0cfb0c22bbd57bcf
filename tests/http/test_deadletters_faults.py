"""Confirm-then-ack when the disk refuses: a move whose copies cannot be made durable loses nothing.

The broker's file layer fails every fsync (tests/faults/faultyio.py): the store rolls the copies back, the
task fails with the reason, every source message is still in the dead-letter queue (flagged redelivered,
in order) and none is in the destination. Once the disk works again, a new task moves them all.
"""

from __future__ import annotations

import pika

from leveret.embedded import EmbeddedBroker
from tests.faults.faultyio import FaultyIO
from tests.http.api_client import api, call
from tests.http.test_deadletters_move import drain, wait_done

DEATH = {"count": 1, "reason": "rejected", "queue": "work", "exchange": "", "routing-keys": ["work"]}


def test_copies_that_cannot_be_made_durable_leave_their_sources_in_place() -> None:
    io = FaultyIO()
    with EmbeddedBroker(file_io=io) as broker:
        conn = pika.BlockingConnection(pika.URLParameters(broker.url))
        ch = conn.channel()
        ch.queue_declare("work", durable=True)
        ch.queue_declare("dlq", durable=True)
        ch.confirm_delivery()
        for i in range(20):
            ch.basic_publish("", "dlq", str(i).encode(), pika.BasicProperties(delivery_mode=2, headers={"x-death": [DEATH]}))
        io.arm("fsync", stay=True)
        task = call(api(broker), "POST", "/move-tasks", {"source": "dlq"}).body
        failed = wait_done(broker, task["id"])
        io.disarm()
        assert failed["state"] == "failed" and failed["moved"] == 0
        assert failed["reason"] == "the message store could not make the copies durable (see the broker log)"
        assert drain(ch, "work") == []
        back = drain(ch, "dlq")
        assert [(body, redelivered) for body, _, redelivered in back] == [(str(i).encode(), True) for i in range(20)]
        for i in range(20):
            ch.basic_publish("", "dlq", str(i).encode(), pika.BasicProperties(delivery_mode=2, headers={"x-death": [DEATH]}))
        done = wait_done(broker, call(api(broker), "POST", "/move-tasks", {"source": "dlq"}).body["id"])
        assert (done["state"], done["moved"]) == ("finished", 20)
        assert [body for body, _, _ in drain(ch, "work")] == [str(i).encode() for i in range(20)]
        conn.close()
