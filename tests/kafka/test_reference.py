"""The same librdkafka scenarios against leveret and the reference broker (conftest.py's librdkafka mock)."""

from __future__ import annotations

import time

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

WAIT = 15.0


def test_produce_consume_commit_behave_alike(any_bootstrap: str) -> None:
    # Auto-created (the mock does not answer another client's CreateTopics): 1 partition on leveret, 4 on the mock.
    producer = confluent_kafka.Producer({"bootstrap.servers": any_bootstrap, "acks": "all", "linger.ms": 5,
                                         "enable.idempotence": True})
    reports: list = []
    for i in range(90):
        producer.produce("same", key=b"k%d" % (i % 5), value=b"%d" % i,
                         on_delivery=lambda err, msg: reports.append((err, msg.partition(), msg.offset())))
    assert producer.flush(WAIT) == 0
    assert all(err is None for err, _, _ in reports)
    consumer = confluent_kafka.Consumer({"bootstrap.servers": any_bootstrap, "group.id": "same-group",
                                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe(["same"])
        got: list = []
        deadline = time.monotonic() + WAIT
        while len(got) < 90 and time.monotonic() < deadline:
            got += [m for m in consumer.consume(100, 0.2) if m.error() is None]
        assert sorted(int(m.value()) for m in got) == list(range(90))
        assert {(m.partition(), m.offset()) for m in got} == {(p, o) for _, p, o in reports}
        consumer.commit(asynchronous=False)
        partitions = sorted(consumer.list_topics("same", timeout=WAIT).topics["same"].partitions)
        committed = consumer.committed([confluent_kafka.TopicPartition("same", p) for p in partitions], timeout=WAIT)
        counts = {p: sum(1 for _, q, _ in reports if q == p) for p in partitions}
        counts = {p: n for p, n in counts.items() if n}  # librdkafka commits only the partitions it consumed
        assert {tp.partition: tp.offset for tp in committed if tp.offset >= 0} == counts
        low, high = consumer.get_watermark_offsets(confluent_kafka.TopicPartition("same", 0), timeout=WAIT)
        assert (low, high) == (0, counts.get(0, 0))
    finally:
        consumer.close()
