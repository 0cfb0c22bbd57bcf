"""More client scenarios: aiokafka, keyed order across partitions, retention and auto.offset.reset,
idempotent duplicates and gaps at the protocol level, codecs that are not installed."""

from __future__ import annotations

import asyncio
import struct

import pytest
from crc32c import crc32c

from leveret.kafka import apis, errors
from leveret.kafka.records import encode_batch, encode_record
from tests.kafka.rawclient import RawClient

kafka = pytest.importorskip("kafka")

WAIT = 15.0


def test_aiokafka_produces_and_a_group_consumes(kafka_bootstrap: str) -> None:
    aiokafka = pytest.importorskip("aiokafka")

    async def scenario() -> list:
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for i in range(30):
                await producer.send("aio", key=b"k", value=b"m%d" % i)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = aiokafka.AIOKafkaConsumer("aio", bootstrap_servers=kafka_bootstrap, group_id="aio-group",
                                             auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            got = []
            while len(got) < 30:
                batches = await asyncio.wait_for(consumer.getmany(timeout_ms=500), WAIT)
                for messages in batches.values():
                    got.extend(messages)
            await consumer.commit()
            committed = await consumer.committed(aiokafka.TopicPartition("aio", 0))
            return [m.value for m in got] + [committed]
        finally:
            await consumer.stop()

    assert asyncio.run(scenario()) == [b"m%d" % i for i in range(30)] + [30]


def test_keyed_messages_keep_their_order_within_each_partition(kafka_bootstrap: str) -> None:
    admin = kafka.KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([kafka.admin.NewTopic("keyed", 4, 1)])
    admin.close()
    producer = kafka.KafkaProducer(bootstrap_servers=kafka_bootstrap, acks=1)
    for i in range(200):
        producer.send("keyed", key=b"user-%d" % (i % 10), value=b"%d" % i)
    producer.flush(WAIT)
    producer.close()
    consumer = kafka.KafkaConsumer(bootstrap_servers=kafka_bootstrap, consumer_timeout_ms=int(WAIT * 1000))
    consumer.assign([kafka.TopicPartition("keyed", p) for p in range(4)])
    consumer.seek_to_beginning()
    got = [next(consumer) for _ in range(200)]
    consumer.close()
    partition_of: dict = {}
    per_key: dict = {}
    for message in got:
        assert partition_of.setdefault(message.key, message.partition) == message.partition  # a key, a partition
        per_key.setdefault(message.key, []).append(int(message.value))
    assert len({m.partition for m in got}) > 1
    for key, values in per_key.items():
        assert values == sorted(values), key


def test_retention_drops_old_segments_and_consumers_below_it_reset(kafka_bootstrap: str) -> None:
    admin = kafka.KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([kafka.admin.NewTopic("short", 1, 1, topic_configs={
        "segment.bytes": "4096", "retention.bytes": "8192"})])
    admin.close()
    producer = kafka.KafkaProducer(bootstrap_servers=kafka_bootstrap, acks=1, linger_ms=0)
    for i in range(100):
        producer.send("short", value=b"%03d" % i + b"x" * 500).get(WAIT)
    producer.close()
    tp = kafka.TopicPartition("short", 0)
    for reset, expected in (("earliest", None), ("latest", 100)):
        consumer = kafka.KafkaConsumer(bootstrap_servers=kafka_bootstrap, auto_offset_reset=reset,
                                       consumer_timeout_ms=int(WAIT * 1000))
        consumer.assign([tp])
        first = consumer.beginning_offsets([tp])[tp]
        assert 0 < first < 100  # old segments are gone
        consumer.seek(tp, 0)  # below retention: OFFSET_OUT_OF_RANGE, then the reset policy
        if reset == "earliest":
            message = next(consumer)
            assert (message.offset, message.value[:3]) == (first, b"%03d" % first)
        else:
            for _ in range(50):  # bounded: the fetch, its OFFSET_OUT_OF_RANGE, the ListOffsets of the reset
                assert consumer.poll(timeout_ms=100) == {}
                if consumer.position(tp) == expected:
                    break
            assert consumer.position(tp) == expected
        consumer.close()


def _batch(values: list[bytes], producer_id: int, epoch: int, sequence: int, codec: int = 0) -> bytes:
    body = bytearray()
    for i, value in enumerate(values):
        encode_record(body, i, 0, None, value, [])
    plain = encode_batch(0, 0, 0, len(values), len(values) - 1, body)
    after_crc = struct.pack(">hiqqqhii", codec, len(values) - 1, 0, 0, producer_id, epoch, sequence,
                            len(values)) + plain[61:]
    return struct.pack(">qiibI", 0, len(after_crc) + 9, 0, 2, crc32c(after_crc)) + after_crc


def _produce(client: RawClient, data: bytes) -> dict:
    answer = client.call(apis.PRODUCE, 8, {"acks": -1, "timeout_ms": 5000, "transactional_id": None, "topics": [
        {"name": "idem-raw", "partitions": [{"index": 0, "records": data}]}]})
    return answer["topics"][0]["partitions"][0]


def test_a_retried_batch_is_acknowledged_once_and_a_gap_refused(kafka_bootstrap: str) -> None:
    client = RawClient(kafka_bootstrap)
    try:
        pid = client.call(apis.INIT_PRODUCER_ID, 1, {"transactional_id": None,
                                                      "transaction_timeout_ms": 1000})["producer_id"]
        assert _produce(client, _batch([b"a", b"b"], pid, 0, 0))["base_offset"] == 0
        assert _produce(client, _batch([b"c"], pid, 0, 2))["base_offset"] == 2
        again = _produce(client, _batch([b"a", b"b"], pid, 0, 0))  # the response was lost; the client retries
        assert (again["error_code"], again["base_offset"]) == (0, 0)
        gap = _produce(client, _batch([b"e"], pid, 0, 9))
        assert gap["error_code"] == errors.OUT_OF_ORDER_SEQUENCE_NUMBER
        listed = client.call(apis.LIST_OFFSETS, 1, {"replica_id": -1, "topics": [
            {"name": "idem-raw", "partitions": [{"partition_index": 0, "timestamp": -1}]}]})
        assert listed["topics"][0]["partitions"][0]["offset"] == 3  # a, b, c: nothing written twice
    finally:
        client.close()


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def test_a_codec_that_is_not_installed_is_kafkas_unsupported_compression(kafka_bootstrap: str) -> None:
    if _has("zstandard"):
        pytest.skip("zstandard is installed here")
    client = RawClient(kafka_bootstrap)
    try:
        answer = _produce(client, _batch([b"z"], -1, -1, -1, codec=4))
        assert answer["error_code"] == errors.UNSUPPORTED_COMPRESSION_TYPE
    finally:
        client.close()
