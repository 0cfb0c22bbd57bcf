"""The listener at the protocol level, over a plain socket: request order, acks=0, long polls, bad input."""

from __future__ import annotations

import time

import pytest

from leveret.kafka import apis, errors
from leveret.kafka.records import BATCH_HEADER, batch_records, scan_batches
from leveret.kafka.wire import INT16, INT32, Reader, decode
from tests.kafka.rawclient import RawClient, batch


def produce(client: RawClient, topic: str, values: list[bytes], acks: int = 1, correlation_id: int = 1,
            partition: int = 0) -> dict:
    return client.call(apis.PRODUCE, 7, {"acks": acks, "timeout_ms": 5000, "topics": [
        {"name": topic, "partitions": [{"index": partition, "records": batch(values)}]}]}, correlation_id)


def fetch_body(topic: str, offset: int, max_wait_ms: int = 0, min_bytes: int = 1) -> dict:
    return {"replica_id": -1, "max_wait_ms": max_wait_ms, "min_bytes": min_bytes, "max_bytes": 1 << 20,
            "isolation_level": 0, "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": topic, "partitions": [{"partition": 0, "current_leader_epoch": -1,
                                                        "fetch_offset": offset, "log_start_offset": -1,
                                                        "partition_max_bytes": 1 << 20}]}],
            "forgotten_topics": []}


def fetch_partition(payload: bytes, version: int = 11) -> tuple[int, int, bytes]:
    """(error code, high watermark, records) of the first partition of a Fetch response."""
    reader = Reader(payload)
    decode(apis.FETCH_RESPONSE_HEAD, version, reader)
    assert reader.int32() == 1
    reader.string()
    assert reader.int32() == 1
    head = decode(apis.FETCH_PARTITION_HEAD, version, reader)
    return head["error_code"], head["high_watermark"], reader.nbytes() or b""


@pytest.fixture
def client(kafka_bootstrap: str):
    c = RawClient(kafka_bootstrap)
    yield c
    c.close()


def test_produce_then_fetch_and_list_offsets(client: RawClient) -> None:
    answer = produce(client, "raw", [b"a", b"b", b"c"])
    part = answer["topics"][0]["partitions"][0]
    assert (part["error_code"], part["base_offset"]) == (0, 0)
    assert produce(client, "raw", [b"d"], acks=-1)["topics"][0]["partitions"][0]["base_offset"] == 3
    client.send(apis.FETCH, 11, 2, fetch_body("raw", 1))
    code, high, records = fetch_partition(client.receive()[1])
    assert (code, high) == (0, 4)
    # Produced batches are served whole, as Kafka serves them: the one holding offset 1 starts at 0 (clients
    # skip what lies before their fetch offset), with the offsets the broker gave, then the next batch.
    served = [(BATCH_HEADER.unpack_from(records, b.start)[0], [r.value for r in batch_records(records[b.start:b.end])])
              for b in scan_batches(records)]
    assert served == [(0, [b"a", b"b", b"c"]), (3, [b"d"])]
    listed = client.call(apis.LIST_OFFSETS, 5, {"replica_id": -1, "isolation_level": 0, "topics": [
        {"name": "raw", "partitions": [{"partition_index": 0, "current_leader_epoch": -1, "timestamp": t}
                                       for t in (-2, -1)]}]})
    assert [p["offset"] for p in listed["topics"][0]["partitions"]] == [0, 4]
    client.send(apis.FETCH, 11, 3, fetch_body("raw", 5))
    assert fetch_partition(client.receive()[1])[0] == errors.OFFSET_OUT_OF_RANGE


def test_acks_0_gets_no_response_and_later_responses_keep_their_order(client: RawClient) -> None:
    client.send(apis.PRODUCE, 7, 1, {"acks": 0, "timeout_ms": 100, "topics": [
        {"name": "quiet", "partitions": [{"index": 0, "records": batch([b"x"])}]}]})
    client.send(apis.METADATA, 1, 2, {"topics": [{"name": "quiet"}]})
    correlation, payload = client.receive()
    assert correlation == 2
    metadata = decode(apis.METADATA_RESPONSE, 1, Reader(payload))
    assert metadata["topics"][0]["name"] == "quiet" and len(metadata["topics"][0]["partitions"]) == 1


def test_a_long_poll_holds_back_later_responses_until_data_arrives(client: RawClient, kafka_bootstrap: str) -> None:
    produce(client, "poll", [b"first"])
    started = time.monotonic()
    client.send(apis.FETCH, 11, 10, fetch_body("poll", 1, max_wait_ms=5000))
    client.send(apis.METADATA, 1, 11, {"topics": [{"name": "poll"}]})
    producer = RawClient(kafka_bootstrap)
    try:
        produce(producer, "poll", [b"second"])
    finally:
        producer.close()
    correlation, payload = client.receive()
    assert correlation == 10
    assert b"second" in fetch_partition(payload)[2]
    assert client.receive()[0] == 11
    assert time.monotonic() - started < 4  # answered by the append, not the timeout


def test_a_long_poll_without_data_answers_empty_at_max_wait(client: RawClient) -> None:
    produce(client, "idle", [b"x"])
    started = time.monotonic()
    client.send(apis.FETCH, 11, 5, fetch_body("idle", 1, max_wait_ms=300))
    code, high, records = fetch_partition(client.receive()[1])
    assert (code, high, records) == (0, 1, b"")
    assert 0.25 <= time.monotonic() - started < 3


def test_an_unknown_api_closes_only_that_connection(client: RawClient, kafka_bootstrap: str) -> None:
    produce(client, "kept", [b"kept"])
    bad = RawClient(kafka_bootstrap)
    payload = INT16.pack(999) + INT16.pack(0) + INT32.pack(1) + INT16.pack(-1)
    bad.send_raw(INT32.pack(len(payload)) + payload)
    assert bad.closed_by_broker()
    old = RawClient(kafka_bootstrap)
    payload = INT16.pack(apis.PRODUCE) + INT16.pack(2) + INT32.pack(1) + INT16.pack(-1)
    old.send_raw(INT32.pack(len(payload)) + payload)
    assert old.closed_by_broker()
    garbage = RawClient(kafka_bootstrap)
    payload = INT16.pack(apis.METADATA) + INT16.pack(1) + INT32.pack(1) + INT16.pack(-1) + INT32.pack(10**6)
    garbage.send_raw(INT32.pack(len(payload)) + payload)
    assert garbage.closed_by_broker()
    for c in (bad, old, garbage):
        c.close()
    client.send(apis.FETCH, 11, 2, fetch_body("kept", 0))
    assert b"kept" in fetch_partition(client.receive()[1])[2]


def test_a_corrupt_batch_is_refused_and_nothing_is_written(client: RawClient) -> None:
    good = batch([b"ok"])
    corrupt = good[:-1] + bytes([good[-1] ^ 0xFF])
    answer = client.call(apis.PRODUCE, 7, {"acks": 1, "timeout_ms": 100, "topics": [
        {"name": "crc", "partitions": [{"index": 0, "records": corrupt}]}]})
    assert answer["topics"][0]["partitions"][0]["error_code"] == errors.CORRUPT_MESSAGE
    assert produce(client, "crc", [b"ok"])["topics"][0]["partitions"][0]["base_offset"] == 0


def test_init_producer_id_refuses_transactions(client: RawClient) -> None:
    plain = client.call(apis.INIT_PRODUCER_ID, 1, {"transactional_id": None, "transaction_timeout_ms": 1000})
    assert plain["error_code"] == 0 and plain["producer_id"] >= 0
    tx = client.call(apis.INIT_PRODUCER_ID, 1, {"transactional_id": "tx", "transaction_timeout_ms": 1000})
    assert tx["error_code"] == errors.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
