"""Consumer groups with real clients: three confluent-kafka consumers share six partitions, a member leaves
and another joins (rebalances), and committed offsets survive a broker restart and a kill -9."""

from __future__ import annotations

import os
import re
import time

import pytest

from leveret.embedded import EmbeddedBroker
from tests.crash.broker_process import BrokerProcess, wait_until

confluent_kafka = pytest.importorskip("confluent_kafka")
kafka = pytest.importorskip("kafka")

WAIT = 20.0
TOPIC = "shared"


def make_consumer(bootstrap: str, name: str):
    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": bootstrap, "group.id": "sharing", "client.id": name, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 100,
        "partition.assignment.strategy": "range",
    })
    consumer.subscribe([TOPIC])
    return consumer


def produce(bootstrap: str, start: int, count: int) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + count):
        producer.produce(TOPIC, key=b"key-%d" % (i % 13), value=b"%d" % i)
    assert producer.flush(WAIT) == 0


def run_until(consumers: dict, seen: dict, total: int, partitions_each: int | None) -> None:
    """Poll every consumer round-robin (committing after each batch) until `total` messages were consumed and,
    when given, every consumer holds `partitions_each` partitions."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for name, consumer in consumers.items():
            messages = [m for m in consumer.consume(100, 0.05) if m.error() is None]
            if not messages:
                continue
            batch = [(m.partition(), m.offset()) for m in messages]
            for where in batch:
                assert where not in seen, f"{where} consumed and committed by {seen.get(where)}, then given to {name}"
            try:
                consumer.commit(asynchronous=False)
            except confluent_kafka.KafkaException as exc:
                # A commit during a rebalance is refused (27) or comes from the old generation (22), as in Kafka:
                # these were not consumed in this generation and go to the partitions' next owners.
                assert exc.args[0].code() in (confluent_kafka.KafkaError.REBALANCE_IN_PROGRESS,
                                              confluent_kafka.KafkaError.ILLEGAL_GENERATION), exc
                continue
            seen.update((where, name) for where in batch)
        assigned = [len(c.assignment()) for c in consumers.values()]
        if len(seen) >= total and (partitions_each is None or assigned == [partitions_each] * len(consumers)):
            return
    raise AssertionError(f"{len(seen)} of {total} consumed; assignments {assigned}")


def test_three_consumers_share_six_partitions_through_two_rebalances(kafka_bootstrap: str) -> None:
    admin = kafka.KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([kafka.admin.NewTopic(TOPIC, 6, 1)])
    admin.close()
    produce(kafka_bootstrap, 0, 300)
    consumers = {name: make_consumer(kafka_bootstrap, name) for name in ("one", "two", "three")}
    seen: dict = {}
    try:
        run_until(consumers, seen, 300, 2)
        assignment = [tp.partition for c in consumers.values() for tp in c.assignment()]
        assert sorted(assignment) == list(range(6))
        assert len(set(seen.values())) == 3  # the work was shared
        consumers.pop("three").close()  # leaves the group: the other two take its partitions
        produce(kafka_bootstrap, 300, 150)
        run_until(consumers, seen, 450, 3)
        consumers["four"] = make_consumer(kafka_bootstrap, "four")  # joins: back to two partitions each
        produce(kafka_bootstrap, 450, 150)
        run_until(consumers, seen, 600, 2)
    finally:
        for consumer in consumers.values():
            consumer.close()
    assert len(seen) == 600  # none lost, none consumed twice (run_until asserts that on every message)
    assert {partition for partition, _ in seen} == set(range(6))


def committed(bootstrap: str, group: str, topic: str) -> int:
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return consumer.committed(kafka.TopicPartition(topic, 0))
    finally:
        consumer.close()


def commit_some(bootstrap: str, group: str, topic: str, offset: int) -> None:
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(offset + 5):
        producer.send(topic, value=b"%d" % i)
    producer.flush(WAIT)
    producer.close()
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        tp = kafka.TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.commit({tp: kafka.OffsetAndMetadata(offset, "", -1)})
    finally:
        consumer.close()


def test_committed_offsets_survive_a_restart(tmp_path) -> None:
    data_dir = str(tmp_path / "data")
    with EmbeddedBroker(data_dir=data_dir) as broker:
        commit_some(broker.kafka_bootstrap, "durable", "kept", 7)
        assert committed(broker.kafka_bootstrap, "durable", "kept") == 7
        assert committed(broker.kafka_bootstrap, "never-committed", "kept") is None
    with EmbeddedBroker(data_dir=data_dir) as broker:
        assert committed(broker.kafka_bootstrap, "durable", "kept") == 7


def test_committed_offsets_survive_kill_9(tmp_path) -> None:
    data_dir = str(tmp_path / "data")
    os.makedirs(data_dir)

    def bootstrap(process: BrokerProcess) -> str:
        assert wait_until(lambda: any("Kafka clients on" in line for line in process.log), WAIT)
        line = next(line for line in process.log if "Kafka clients on" in line)
        return "127.0.0.1:" + re.search(r":(\d+)\s*$", line).group(1)  # type: ignore[union-attr]

    with BrokerProcess(data_dir) as process:
        commit_some(bootstrap(process), "crash", "survivor", 4)
        process.kill()
    with BrokerProcess(data_dir) as process:
        assert committed(bootstrap(process), "crash", "survivor") == 4
        process.stop()
