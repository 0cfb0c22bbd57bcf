"""The storage of Kafka records (docs/kafka.md "Storage"), measured in-process, no sockets:

    python3 -m bench.kafka_storage                    # 1,000-record batches of 1 KB, 30 batches, best of 3

- opaque (what leveret does): DataPlane.produce of a 1,000-record batch kept whole as one stream entry (header
  and CRC checked, base offset written in), then DataPlane.fetch serving the stored bytes; and the AMQP side's
  cost, the records decoded out of the stored batches (kafka/stored.py messages_of) as a stream consumer reads;
- per-record (the first version's layout, kept for records whose batches cannot be kept whole): the same
  batch decoded and appended as one stream entry per record, and a fetch re-encoding them as a batch.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from leveret.amqp.properties import BasicProperties  # noqa: E402
from leveret.amqp.stream_offset import delivery_properties  # noqa: E402
from leveret.broker.message import PropertiesCodec  # noqa: E402
from leveret.durable import DurableBroker  # noqa: E402
from leveret.kafka.data import DataPlane  # noqa: E402
from leveret.kafka.producers import ProducerStates  # noqa: E402
from leveret.kafka.records import batch_records, encode_batch, encode_record  # noqa: E402
from leveret.kafka.stored import messages_of  # noqa: E402
from leveret.kafka.topics import Topics  # noqa: E402
from leveret.store.api import StoredBatch  # noqa: E402

RECORDS, SIZE, BATCHES, ROUNDS = 1000, 1024, 30, 3


def best(fn) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return min(times)


def main() -> None:
    body = bytearray()
    for i in range(RECORDS):
        encode_record(body, i, 0, None, b"x" * SIZE, [])
    now = int(time.time() * 1000)
    batch = encode_batch(0, now, now, RECORDS, RECORDS - 1, body)
    directory = tempfile.mkdtemp(prefix="bench-kafka-storage-")
    node = DurableBroker.open(directory, PropertiesCodec(BasicProperties.from_raw, delivery_properties, messages_of))
    try:
        node.recover_at_start()
        vhost = node.broker.vhost("/")
        assert vhost is not None
        data = DataPlane(Topics(vhost), ProducerStates(1))
        produce = {"acks": 1, "topics": [{"name": "opaque", "partitions": [{"index": 0, "records": batch}]}]}
        fetch = {"max_bytes": 4 << 20, "min_bytes": 1, "max_wait_ms": 0, "topics": [{"topic": "opaque", "partitions": [
            {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]}

        def opaque_produce() -> None:
            for _ in range(BATCHES):
                data.produce(produce)
            node.messages.sync()

        def fetch_all(topic: str) -> None:
            fetch["topics"][0]["topic"] = topic  # type: ignore[index]
            part = fetch["topics"][0]["partitions"][0]  # type: ignore[index]
            for i in range(BATCHES):
                part["fetch_offset"] = i * RECORDS
                data.fetch(fetch, 11)

        data.topics.find_or_create("opaque", True)
        queue = data.topics.partition("opaque", 0)
        assert queue is not None

        def amqp_decode() -> None:
            for entry in queue.stream_store.read_from(0):
                if isinstance(entry, StoredBatch):
                    messages_of(entry)
                if entry.offset >= BATCHES * RECORDS:
                    break

        data.topics.find_or_create("per-record", True)
        per_record_queue = data.topics.partition("per-record", 0)
        assert per_record_queue is not None

        def per_record_produce() -> None:
            for _ in range(BATCHES):
                DataPlane._append("per-record", per_record_queue, batch_records(batch))
            node.messages.sync()

        rows = [("opaque produce", best(opaque_produce)), ("opaque fetch", best(lambda: fetch_all("opaque"))),
                ("amqp read of batches", best(amqp_decode)),
                ("per-record produce", best(per_record_produce)),
                ("per-record fetch", best(lambda: fetch_all("per-record")))]
    finally:
        node.close()
        shutil.rmtree(directory, ignore_errors=True)
    total = RECORDS * BATCHES
    print("loadavg:", open("/proc/loadavg").read().strip())
    print(f"{BATCHES} batches of {RECORDS} records of {SIZE} B, best of {ROUNDS}, CPU time of this process")
    for name, seconds in rows:
        print(f"{name:20} {total / seconds:12,.0f} records/s   {seconds / total * 1e6:7.2f} us/record")


if __name__ == "__main__":
    main()
