"""Idempotent producers' states: rebuilt from the stored batches after a restart (a retry across the restart
is still a duplicate, a gap still refused), and expired after producer.id.expiration.ms unused (an injected
clock, no sleeps)."""

from __future__ import annotations

import pytest

from leveret.embedded import EmbeddedBroker
from leveret.kafka import apis, errors
from leveret.kafka.producers import SWEEP_INTERVAL_MS, ProducerStates, SequenceError
from leveret.kafka.records import scan_batches
from tests.kafka.rawclient import RawClient
from tests.kafka.test_clients_more import _batch


def produce(client: RawClient, data: bytes) -> dict:
    answer = client.call(apis.PRODUCE, 8, {"acks": -1, "timeout_ms": 5000, "transactional_id": None, "topics": [
        {"name": "idem", "partitions": [{"index": 0, "records": data}]}]})
    return answer["topics"][0]["partitions"][0]


def latest(client: RawClient) -> int:
    listed = client.call(apis.LIST_OFFSETS, 1, {"replica_id": -1, "topics": [
        {"name": "idem", "partitions": [{"partition_index": 0, "timestamp": -1}]}]})
    return listed["topics"][0]["partitions"][0]["offset"]


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
