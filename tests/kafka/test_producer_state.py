"""Idempotent producers' states: rebuilt from the stored batches after a restart (a retry across the restart
is still a duplicate, a gap still refused), from the snapshots a clean stop and each new segment write
however many segments came after the producer's last batch (after a kill -9: the newest snapshot and the log
after it), never from a snapshot the log does not match; and expired after producer.id.expiration.ms unused (an
injected clock, no sleeps)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from leveret.embedded import EmbeddedBroker
from leveret.store.filestore import STREAMS_DIR, queue_dir_name
from tests.crash.broker_process import BrokerProcess, wait_until
from leveret.kafka import apis, errors
from leveret.kafka.producers import SWEEP_INTERVAL_MS, ProducerStates, SequenceError
from leveret.server.kafka_snapshots import SNAPSHOT_FILE
from leveret.kafka.records import scan_batches
from tests.kafka.rawclient import RawClient
from tests.kafka.test_clients_more import _batch


def produce(client: RawClient, data: bytes, topic: str = "idem") -> dict:
    answer = client.call(apis.PRODUCE, 8, {"acks": -1, "timeout_ms": 5000, "transactional_id": None, "topics": [
        {"name": topic, "partitions": [{"index": 0, "records": data}]}]})
    return answer["topics"][0]["partitions"][0]


def latest(client: RawClient, topic: str = "idem") -> int:
    listed = client.call(apis.LIST_OFFSETS, 1, {"replica_id": -1, "topics": [
        {"name": topic, "partitions": [{"partition_index": 0, "timestamp": -1}]}]})
    return listed["topics"][0]["partitions"][0]["offset"]


@contextmanager
def broker_client(data_dir: str) -> Iterator[RawClient]:
    """A raw client of an embedded broker over `data_dir`, both closed (the broker cleanly) at the end."""
    with EmbeddedBroker(data_dir=data_dir) as broker:
        client = RawClient(broker.kafka_bootstrap)
        try:
            yield client
        finally:
            client.close()


def new_producer(client: RawClient) -> int:
    return client.call(apis.INIT_PRODUCER_ID, 1, {"transactional_id": None,
                                                  "transaction_timeout_ms": 1000})["producer_id"]


def create_small_segments_topic(client: RawClient, topic: str) -> None:
    created = client.call(apis.CREATE_TOPICS, 2, {"timeout_ms": 5000, "validate_only": False, "topics": [
        {"name": topic, "num_partitions": 1, "replication_factor": 1, "assignments": [],
         "configs": [{"name": "segment.bytes", "value": "4096"}]}]})
    assert created["topics"][0]["error_code"] == 0


def bury(client: RawClient, topic: str, count: int = 40) -> None:
    """Another producer's batches, 1 KB each: many 4 KB segments after whatever came before."""
    other = new_producer(client)
    for sequence in range(count):
        assert produce(client, _batch([b"o" * 1000], other, 0, sequence), topic)["error_code"] == 0


def stream_dir(data_dir: str, topic: str) -> str:
    return os.path.join(data_dir, "messages", STREAMS_DIR, queue_dir_name("/", f"{topic}-0"))


def segments(data_dir: str, topic: str) -> int:
    return sum(name.endswith(".seg") for name in os.listdir(stream_dir(data_dir, topic)))


def test_a_clean_stop_keeps_states_however_many_segments_follow(tmp_path) -> None:
    data_dir = str(tmp_path / "data")
    with broker_client(data_dir) as client:
        create_small_segments_topic(client, "deep")
        pid = new_producer(client)
        assert produce(client, _batch([b"a", b"b"], pid, 0, 0), "deep")["base_offset"] == 0
        bury(client, "deep")
    assert segments(data_dir, "deep") > 10  # far more than the newest two a restart without a snapshot reads
    for _restart in range(2):  # a snapshot loaded and not changed is written again at the next stop
        with broker_client(data_dir) as client:
            # Its response was lost: the producer retries the batch after the restart.
            again = produce(client, _batch([b"a", b"b"], pid, 0, 0), "deep")
            assert (again["error_code"], again["base_offset"]) == (0, 0)
            assert latest(client, "deep") == 42
            assert produce(client, _batch([b"c"], pid, 0, 5), "deep")["error_code"] == \
                errors.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_a_kill_9_keeps_states_from_the_snapshot_at_the_last_new_segment_and_the_log_after_it(tmp_path) -> None:
    data_dir = str(tmp_path / "data")
    os.makedirs(data_dir)

    def bootstrap(process: BrokerProcess) -> str:
        assert wait_until(lambda: any("Kafka clients on" in line for line in process.log), 20.0)
        line = next(line for line in process.log if "Kafka clients on" in line)
        return "127.0.0.1:" + re.search(r":(\d+)\s*$", line).group(1)  # type: ignore[union-attr]

    with BrokerProcess(data_dir) as process:
        client = RawClient(bootstrap(process))
        create_small_segments_topic(client, "crashy")
        early, late = new_producer(client), new_producer(client)
        assert produce(client, _batch([b"e"], early, 0, 0), "crashy")["base_offset"] == 0
        bury(client, "crashy")  # each new segment snapshots the states once the commit before it is done
        assert produce(client, _batch([b"l"], late, 0, 0), "crashy")["base_offset"] == 41
        client.close()
        process.kill()  # never stopped cleanly
    assert segments(data_dir, "crashy") > 10
    with BrokerProcess(data_dir) as process:
        client = RawClient(bootstrap(process))
        # The early state is only in the snapshot; the late one maybe only in the log after it.
        assert (produce(client, _batch([b"e"], early, 0, 0), "crashy")["base_offset"],
                produce(client, _batch([b"l"], late, 0, 0), "crashy")["base_offset"]) == (0, 41)
        assert latest(client, "crashy") == 42
        client.close()
        process.stop()


def test_a_snapshot_the_log_does_not_match_is_not_used(tmp_path) -> None:
    data_dir = str(tmp_path / "data")
    with broker_client(data_dir) as client:
        pid = new_producer(client)
        assert produce(client, _batch([b"a"], pid, 0, 0))["base_offset"] == 0
    path = os.path.join(stream_dir(data_dir, "idem"), SNAPSHOT_FILE)
    with open(path) as f:
        snapshot = json.load(f)
    # A state whose newest batch the log does not hold there (as when a crash cut the log's tail): believed, it
    # would answer the batch below as a duplicate of offset 0 and lose it.
    stranger = pid + 1000
    snapshot["states"].append([stranger, 0, snapshot["states"][0][2], [[0, 0, 0]]])
    with open(path, "w") as f:
        json.dump(snapshot, f)
    with broker_client(data_dir) as client:
        assert produce(client, _batch([b"s"], stranger, 0, 0))["base_offset"] == 1
        # The log's own batches still count (the newest segments were read instead).
        assert produce(client, _batch([b"a"], pid, 0, 0))["base_offset"] == 0


def test_a_batch_retried_across_a_restart_is_still_a_duplicate(tmp_path) -> None:
    data_dir = str(tmp_path / "data")
    with EmbeddedBroker(data_dir=data_dir) as broker:
        client = RawClient(broker.kafka_bootstrap)
        try:
            pid = client.call(apis.INIT_PRODUCER_ID, 1, {"transactional_id": None,
                                                          "transaction_timeout_ms": 1000})["producer_id"]
            assert produce(client, _batch([b"a", b"b"], pid, 0, 0))["base_offset"] == 0
            assert produce(client, _batch([b"c"], pid, 0, 2))["base_offset"] == 2
        finally:
            client.close()
    with EmbeddedBroker(data_dir=data_dir) as broker:
        client = RawClient(broker.kafka_bootstrap)
        try:
            # The responses were lost in the restart: the producer retries both batches, then goes on.
            again = produce(client, _batch([b"c"], pid, 0, 2))
            assert (again["error_code"], again["base_offset"]) == (0, 2)
            assert produce(client, _batch([b"a", b"b"], pid, 0, 0))["base_offset"] == 0
            assert latest(client) == 3
            assert produce(client, _batch([b"e"], pid, 0, 9))["error_code"] == errors.OUT_OF_ORDER_SEQUENCE_NUMBER
            assert produce(client, _batch([b"d"], pid, 0, 3))["base_offset"] == 3
            assert produce(client, _batch([b"x"], pid - 1 if pid > 0 else pid + 1, 0, 0))["error_code"] == 0
        finally:
            client.close()


class _Partition:
    """What ProducerStates reads of a partition: its store's recent offset and its entries."""

    class stream_store:  # noqa: N801 - stands in for the attribute
        @staticmethod
        def recent_offset(segments: int) -> int:
            return 0

    def __init__(self) -> None:
        self.entries: list = []

    def read_from(self, offset: int):
        return iter(self.entries)


def view(producer_id: int, epoch: int, sequence: int, count: int = 1):
    (batch,) = scan_batches(_batch([b"v"] * count, producer_id, epoch, sequence))
    return batch


def test_an_idle_producer_state_expires_on_the_clock() -> None:
    now = [1_000_000]
    states = ProducerStates(1, now_ms=lambda: now[0], expiration_ms=5_000)
    partition = _Partition()
    assert states.check(partition, view(7, 0, 0, 2)) is None
    states.appended(partition, view(7, 0, 0, 2), 40)
    now[0] += 4_000
    assert states.check(partition, view(7, 0, 0, 2)) == 40  # used again: kept
    with pytest.raises(SequenceError) as refused:
        states.check(partition, view(7, 0, 9))  # a gap, refused while the state is kept
    assert refused.value.code == errors.OUT_OF_ORDER_SEQUENCE_NUMBER
    now[0] += SWEEP_INTERVAL_MS + 5_001
    assert states.check(partition, view(7, 0, 9)) is None  # expired: the producer starts over
    assert len(states) == 0


def test_states_read_back_from_the_log_skip_batches_older_than_the_expiry() -> None:
    from leveret.store.api import BATCH_FORMAT_KAFKA, StoredBatch

    now = [100_000]
    states = ProducerStates(1, now_ms=lambda: now[0], expiration_ms=50_000)
    partition = _Partition()
    partition.entries = [
        StoredBatch(0, 10_000, 0, "idem", 1, BATCH_FORMAT_KAFKA, _batch([b"old"], 3, 0, 0)),
        StoredBatch(1, 90_000, 0, "idem", 2, BATCH_FORMAT_KAFKA, _batch([b"n", b"m"], 4, 1, 5)),
    ]
    assert states.check(partition, view(3, 0, 0)) is None  # too old to be read back: new
    assert states.check(partition, view(4, 1, 5, 2)) == 1  # a duplicate of the stored batch
    assert len(states) == 1
