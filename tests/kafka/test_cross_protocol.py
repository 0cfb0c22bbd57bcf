"""One topic, two protocols: pika publishes to the topic's exchange and kafka-python reads the partition, and
kafka-python produces and pika consumes the partition's stream queue (docs/kafka.md's mapping table)."""

from __future__ import annotations

import time

import pika
import pytest

kafka = pytest.importorskip("kafka")

WAIT = 15.0


def admin_create(bootstrap: str, topic: str, partitions: int) -> None:
    admin = kafka.KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        admin.create_topics([kafka.admin.NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


def test_pika_publishes_to_the_topic_exchange_and_kafka_python_reads(leveret_broker, kafka_bootstrap: str) -> None:
    admin_create(kafka_bootstrap, "orders", 2)
    connection = pika.BlockingConnection(pika.URLParameters(leveret_broker.url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for i in range(10):
            channel.basic_publish("orders", str(i % 2), f"order {i}".encode(), pika.BasicProperties(
                headers={"region": "eu", "n": i}, content_type="text/plain", timestamp=1_700_000_000 + i))
    finally:
        connection.close()
    consumer = kafka.KafkaConsumer(bootstrap_servers=kafka_bootstrap, consumer_timeout_ms=int(WAIT * 1000))
    try:
        consumer.assign([kafka.TopicPartition("orders", 1)])
        consumer.seek_to_beginning()
        got = [next(consumer) for _ in range(5)]
    finally:
        consumer.close()
    assert [m.value for m in got] == [f"order {i}".encode() for i in (1, 3, 5, 7, 9)]
    assert [m.offset for m in got] == list(range(5))
    assert [m.key for m in got] == [b"1"] * 5  # the routing key
    assert [m.timestamp for m in got] == [(1_700_000_000 + i) * 1000 for i in (1, 3, 5, 7, 9)]
    headers = dict(got[0].headers)
    assert headers["region"] == b"eu" and headers["n"] == b"1" and headers["amqp.content_type"] == b"text/plain"


def test_kafka_python_produces_and_pika_consumes_the_partition_stream(leveret_broker, kafka_bootstrap: str) -> None:
    admin_create(kafka_bootstrap, "events", 1)
    producer = kafka.KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    sent_at = int(time.time() * 1000)
    for i in range(10):
        producer.send("events", key=b"user-%d" % (i % 3), value=b"event %d" % i, timestamp_ms=sent_at + i,
                      headers=[("trace", b"t%d" % i), ("amqp.content_type", b"application/json")])
    producer.send("events", key=b"\xff\x00", value=b"binary key")
    producer.flush(WAIT)
    producer.close()
    connection = pika.BlockingConnection(pika.URLParameters(leveret_broker.url))
    got: list = []
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=100)
        channel.basic_consume("events-0", lambda ch, method, props, body: got.append((method, props, body)),
                              arguments={"x-stream-offset": "first"})
        deadline = time.monotonic() + WAIT
        while len(got) < 11 and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.2)
    finally:
        connection.close()
    assert [body for _, _, body in got] == [b"event %d" % i for i in range(10)] + [b"binary key"]
    assert [m.routing_key for m, _, _ in got[:10]] == ["user-%d" % (i % 3) for i in range(10)]
    assert {m.exchange for m, _, _ in got} == {"events"}
    props = got[4][1]
    assert props.headers["trace"] == "t4" and props.headers["timestamp_in_ms"] == sent_at + 4
    assert props.content_type == "application/json" and props.timestamp == (sent_at + 4) // 1000
    assert [p.headers["x-stream-offset"] for _, p, _ in got] == list(range(11))
    assert got[10][0].routing_key == "" and got[10][1].headers["x-kafka-key"] == b"\xff\x00"
