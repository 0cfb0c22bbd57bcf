"""Consumer groups with real clients: three confluent-kafka consumers share six partitions, a member leaves
and another joins (rebalances), and committed offsets with their metadata strings survive a broker restart and
a kill -9 (and offsets files written before metadata was stored read as empty metadata)."""

from __future__ import annotations

import os
import re
import time

import pytest

from leveret.embedded import EmbeddedBroker
from leveret.store.filestore import STREAMS_DIR, queue_dir_name
from leveret.store.stream import OFFSETS_FILE, FileStreamStore
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


def committed_with_metadata(bootstrap: str, group: str, topic: str) -> tuple[int, str | None]:
    """What confluent-kafka's committed() (OffsetFetch) answers for partition 0: offset and metadata (librdkafka
    reports empty metadata as None or as "", read here as "")."""
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        (answer,) = consumer.committed([confluent_kafka.TopicPartition(topic, 0)], timeout=WAIT)
        assert answer.error is None, answer.error
        return answer.offset, answer.metadata or ""
    finally:
        consumer.close()


def committed_by_kafka_python(bootstrap: str, group: str, topic: str) -> tuple[int, str]:
    """What kafka-python's committed() answers for partition 0: offset and metadata. Metadata kafka-python
    committed is read back with kafka-python: librdkafka reads a metadata string up to a NUL that only its own
    commits send, so it shows a stray byte after one committed without it (seen once in a few runs)."""
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        answer = consumer.committed(kafka.TopicPartition(topic, 0), metadata=True, timeout_ms=WAIT * 1000)
        return answer.offset, answer.metadata
    finally:
        consumer.close()


def produce_some(bootstrap: str, topic: str, count: int) -> None:
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(count):
        producer.send(topic, value=b"%d" % i)
    producer.flush(WAIT)
    producer.close()


def commit_some(bootstrap: str, group: str, topic: str, offset: int, metadata: str = "") -> None:
    """Produce a few records, then commit `offset` with `metadata` for `group` (kafka-python)."""
    produce_some(bootstrap, topic, offset + 5)
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        tp = kafka.TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.commit({tp: kafka.OffsetAndMetadata(offset, metadata, -1)})
    finally:
        consumer.close()


def commit_with_confluent(bootstrap: str, group: str, topic: str, offset: int, metadata: str) -> None:
    """Commit `offset` with `metadata` (confluent-kafka: it sends the metadata with a NUL after it, and reads
    back up to the first NUL, so a metadata string comes back as it went)."""
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        (answer,) = consumer.commit(offsets=[confluent_kafka.TopicPartition(topic, 0, offset, metadata=metadata)],
                                    asynchronous=False)
        assert answer.error is None, answer.error
    finally:
        consumer.close()


def test_committed_offsets_survive_a_restart(tmp_path) -> None:
    data_dir = str(tmp_path / "data")
    with EmbeddedBroker(data_dir=data_dir) as broker:
        commit_some(broker.kafka_bootstrap, "durable", "kept", 7, "kafka-python's note")
        commit_with_confluent(broker.kafka_bootstrap, "librdkafka", "kept", 3, "librdkafka's note \u00e9")
        commit_some(broker.kafka_bootstrap, "plain", "kept", 2)
        assert committed(broker.kafka_bootstrap, "durable", "kept") == 7
        assert committed(broker.kafka_bootstrap, "never-committed", "kept") is None
        assert committed_by_kafka_python(broker.kafka_bootstrap, "durable", "kept") == (7, "kafka-python's note")
    with EmbeddedBroker(data_dir=data_dir) as broker:
        assert committed(broker.kafka_bootstrap, "durable", "kept") == 7
        assert committed_by_kafka_python(broker.kafka_bootstrap, "durable", "kept") == (7, "kafka-python's note")
        assert committed_with_metadata(broker.kafka_bootstrap, "librdkafka", "kept") == (3, "librdkafka's note \u00e9")
        assert committed_with_metadata(broker.kafka_bootstrap, "plain", "kept") == (2, "")
        # A later commit replaces the metadata, an empty one included.
        commit_with_confluent(broker.kafka_bootstrap, "durable", "kept", 8, "")
        commit_with_confluent(broker.kafka_bootstrap, "plain", "kept", 2, "now noted")
    with EmbeddedBroker(data_dir=data_dir) as broker:
        assert committed_with_metadata(broker.kafka_bootstrap, "durable", "kept") == (8, "")
        assert committed_with_metadata(broker.kafka_bootstrap, "plain", "kept") == (2, "now noted")


def test_committed_offsets_survive_kill_9(tmp_path) -> None:
    data_dir = str(tmp_path / "data")
    os.makedirs(data_dir)

    def bootstrap(process: BrokerProcess) -> str:
        assert wait_until(lambda: any("Kafka clients on" in line for line in process.log), WAIT)
        line = next(line for line in process.log if "Kafka clients on" in line)
        return "127.0.0.1:" + re.search(r":(\d+)\s*$", line).group(1)  # type: ignore[union-attr]

    with BrokerProcess(data_dir) as process:
        commit_some(bootstrap(process), "crash", "survivor", 4, "before the crash")
        commit_with_confluent(bootstrap(process), "crash-too", "survivor", 2, "librdkafka's, before the crash")
        process.kill()  # the commits were answered: they were fsynced, metadata and all
    with BrokerProcess(data_dir) as process:
        assert committed(bootstrap(process), "crash", "survivor") == 4
        assert committed_by_kafka_python(bootstrap(process), "crash", "survivor") == (4, "before the crash")
        assert committed_with_metadata(bootstrap(process), "crash-too", "survivor") == (
            2, "librdkafka's, before the crash")
        process.stop()


# offsets.log of a stream as leveret wrote it before metadata was stored (encode_record(KIND_RAW, 0, offset, 0,
# name) each): "kafka:old-group" at 7, then an AMQP consumer's server-side tracked offset, "reader" at 3.
OLD_OFFSETS_LOG = bytes.fromhex(
    "a70102000f000000070000000000000000000000000000002e504fba6b61666b613a6f6c642d67726f7570fa21058e"
    "a7010200060000000300000000000000000000000000000061c0fbf472656164657282fcb14a")


def test_offsets_written_before_metadata_was_stored_read_as_empty_metadata(tmp_path) -> None:
    data_dir = str(tmp_path / "data")
    with EmbeddedBroker(data_dir=data_dir) as broker:
        produce_some(broker.kafka_bootstrap, "legacy", 10)
    directory = os.path.join(data_dir, "messages", STREAMS_DIR, queue_dir_name("/", "legacy-0"))
    with open(os.path.join(directory, OFFSETS_FILE), "wb") as f:
        f.write(OLD_OFFSETS_LOG)
    with EmbeddedBroker(data_dir=data_dir) as broker:
        assert committed_with_metadata(broker.kafka_bootstrap, "old-group", "legacy") == (7, "")
        commit_with_confluent(broker.kafka_bootstrap, "old-group", "legacy", 9, "after the upgrade")
    with EmbeddedBroker(data_dir=data_dir) as broker:
        assert committed_with_metadata(broker.kafka_bootstrap, "old-group", "legacy") == (9, "after the upgrade")
    # The AMQP consumer's offset in the same file is as it was.
    store = FileStreamStore(directory)
    try:
        assert store.tracked_offset("reader") == 3
        assert store.tracked_metadata("reader") == ""
    finally:
        store.close()


def test_metadata_longer_than_kafkas_limit_is_refused(kafka_bootstrap: str) -> None:
    produce_some(kafka_bootstrap, "noted", 3)
    # confluent-kafka sends a metadata string with its C terminator (one NUL more), so 4,095 characters are
    # Kafka's offset.metadata.max.bytes of 4,096 on the wire.
    commit_with_confluent(kafka_bootstrap, "limits", "noted", 1, "x" * 4095)
    consumer = confluent_kafka.Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "limits"})
    try:
        with pytest.raises(confluent_kafka.KafkaException) as refused:
            consumer.commit(offsets=[confluent_kafka.TopicPartition("noted", 0, 2, metadata="x" * 4096)],
                            asynchronous=False)
        assert refused.value.args[0].code() == confluent_kafka.KafkaError.OFFSET_METADATA_TOO_LARGE
    finally:
        consumer.close()
    assert committed_with_metadata(kafka_bootstrap, "limits", "noted") == (1, "x" * 4095)
