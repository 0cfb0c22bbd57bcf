"""Real Kafka clients against a leveret started by the test: kafka-python, confluent-kafka (its bundled
librdkafka) and Debian's kcat (librdkafka 2.0.2; skipped where it is not installed)."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

kafka = pytest.importorskip("kafka")
confluent_kafka = pytest.importorskip("confluent_kafka")

WAIT = 15.0


def kp_producer(bootstrap: str, **options):
    return kafka.KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=10000, max_block_ms=10000, **options)


def kp_consume(bootstrap: str, topic: str, count: int, **options) -> list:
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=int(WAIT * 1000), **options)
    try:
        if "group_id" in options:
            consumer.subscribe([topic])
        else:
            partitions = [kafka.TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [0])]
            consumer.assign(partitions)
            if options.get("auto_offset_reset") != "latest":
                consumer.seek_to_beginning()
        got = []
        for message in consumer:
            got.append(message)
            if len(got) == count:
                break
        return got
    finally:
        consumer.close()


@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_kafka_python_produces_with_every_acks_and_reads_back_in_order(kafka_bootstrap: str, acks) -> None:
    producer = kp_producer(kafka_bootstrap, acks=acks)
    futures = [producer.send("kp", key=b"key-%d" % (i % 3), value=b"value-%d" % i, headers=[("n", b"%d" % i)])
               for i in range(50)]
    producer.flush(WAIT)
    if acks != 0:
        assert [f.get(WAIT).offset for f in futures] == list(range(50))
    producer.close()
    got = kp_consume(kafka_bootstrap, "kp", 50, auto_offset_reset="earliest")
    assert [m.value for m in got] == [b"value-%d" % i for i in range(50)]
    assert [m.offset for m in got] == list(range(50))
    assert got[4].key == b"key-1" and got[4].headers == [("n", b"4")]


def test_kafka_python_idempotent_producer(kafka_bootstrap: str) -> None:
    producer = kp_producer(kafka_bootstrap, acks="all", enable_idempotence=True)
    futures = [producer.send("idem", value=b"%d" % i) for i in range(20)]
    producer.flush(WAIT)
    assert [f.get(WAIT).offset for f in futures] == list(range(20))
    producer.close()


def test_kafka_python_seeks_by_time_and_from_latest(kafka_bootstrap: str) -> None:
    producer = kp_producer(kafka_bootstrap, acks=1)
    for i in range(5):
        producer.send("times", value=b"old-%d" % i)
    producer.flush(WAIT)
    time.sleep(0.01)  # the store's timestamps are milliseconds: the next record must be stamped later
    middle = int(time.time() * 1000)
    time.sleep(0.01)
    for i in range(5):
        producer.send("times", value=b"new-%d" % i)
    producer.flush(WAIT)
    consumer = kafka.KafkaConsumer(bootstrap_servers=kafka_bootstrap, consumer_timeout_ms=int(WAIT * 1000))
    try:
        tp = kafka.TopicPartition("times", 0)
        consumer.assign([tp])
        found = consumer.offsets_for_times({tp: middle})[tp]
        assert found.offset == 5
        consumer.seek(tp, found.offset)
        assert next(consumer).value == b"new-0"
        consumer.seek_to_end(tp)
        assert consumer.position(tp) == 10
    finally:
        consumer.close()
    producer.close()


def test_confluent_kafka_produces_and_a_group_consumes(kafka_bootstrap: str) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all", "linger.ms": 5,
                                         "enable.idempotence": True})
    reports = []
    for i in range(200):
        producer.produce("ck", key=b"k%d" % (i % 7), value=b"v%d" % i,
                         on_delivery=lambda err, msg: reports.append((err, msg.offset())))
    assert producer.flush(WAIT) == 0
    assert [err for err, _ in reports] == [None] * 200
    assert sorted(offset for _, offset in reports) == list(range(200))
    consumer = confluent_kafka.Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "ck-group",
                                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe(["ck"])
        got = []
        deadline = time.monotonic() + WAIT
        while len(got) < 200 and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                got.append(message)
        assert [m.value() for m in got] == [b"v%d" % i for i in range(200)]
        consumer.commit(asynchronous=False)
        (committed,) = consumer.committed([confluent_kafka.TopicPartition("ck", 0)], timeout=WAIT)
        assert committed.offset == 200
    finally:
        consumer.close()


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed (apt-get install kcat)")
def test_kcat_produces_and_consumes(kafka_bootstrap: str) -> None:
    lines = "\n".join(f"k{i}:line {i}" for i in range(10)) + "\n"
    subprocess.run(["kcat", "-b", kafka_bootstrap, "-P", "-t", "kc", "-K:"], input=lines.encode(), check=True,
                   timeout=WAIT)
    out = subprocess.run(["kcat", "-b", kafka_bootstrap, "-C", "-t", "kc", "-o", "beginning", "-e", "-f", "%k=%s@%o\n"],
                         capture_output=True, check=True, timeout=WAIT)
    assert out.stdout.decode().splitlines() == [f"k{i}=line {i}@{i}" for i in range(10)]
    listing = subprocess.run(["kcat", "-b", kafka_bootstrap, "-L", "-t", "kc"], capture_output=True, check=True,
                             timeout=WAIT)
    assert b'topic "kc" with 1 partitions' in listing.stdout
