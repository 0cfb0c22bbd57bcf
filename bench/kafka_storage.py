"""The storage decision for Kafka records (docs/kafka.md), measured in-process, no sockets:

    python3 -m bench.kafka_storage                    # 1,000-record batches of 1 KB, 30 batches, best of 3

- per-record (what leveret does): DataPlane.produce of a 1,000-record batch: decode, one stream entry per
  record (AMQP properties, the stream's append and tail), then DataPlane.fetch re-encoding a batch;
- opaque (the alternative): the produced batch kept as one stream entry, its bytes appended as they came (the
  CRC checked once), and a fetch serving those bytes with the base offset patched.

The opaque figures are the store's cost of that design, not a working implementation of it: a stream whose
entries each span many offsets (and AMQP consumers reading records out of them) does not exist in leveret.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
import tempfile
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from crc32c import crc32c  # noqa: E402

from leveret.amqp.properties import BasicProperties  # noqa: E402
from leveret.amqp.stream_offset import delivery_properties  # noqa: E402
from leveret.broker.message import PropertiesCodec  # noqa: E402
from leveret.durable import DurableBroker  # noqa: E402
from leveret.kafka.data import DataPlane  # noqa: E402
from leveret.kafka.producers import ProducerStates  # noqa: E402
from leveret.kafka.records import encode_batch, encode_record  # noqa: E402
from leveret.kafka.topics import Topics  # noqa: E402

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
    node = DurableBroker.open(directory, PropertiesCodec(BasicProperties.from_raw, delivery_properties))
    try:
        node.recover_at_start()
        vhost = node.broker.vhost("/")
        assert vhost is not None
        data = DataPlane(Topics(vhost), ProducerStates(1))
        produce = {"acks": 1, "topics": [{"name": "per-record", "partitions": [{"index": 0, "records": batch}]}]}
        fetch = {"max_bytes": 4 << 20, "min_bytes": 1, "max_wait_ms": 0, "topics": [{"topic": "per-record", "partitions": [
            {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]}

        def per_record_produce() -> None:
            for _ in range(BATCHES):
                data.produce(produce)
            node.messages.sync()

        def per_record_fetch() -> None:
            part = fetch["topics"][0]["partitions"][0]  # type: ignore[index]
            for i in range(BATCHES):
                part["fetch_offset"] = i * RECORDS
                data.fetch(fetch, 11)

        vhost.declare_queue("opaque", durable=True, arguments={"x-queue-type": "stream"})
        store = vhost.queues["opaque"].stream_store  # type: ignore[attr-defined]

        def opaque_produce() -> None:
            for _ in range(BATCHES):
                if crc32c(memoryview(batch)[21:]) != struct.unpack_from(">I", batch, 17)[0]:
                    raise AssertionError("crc")
                store.append("opaque", "", b"", batch, now)
            node.messages.sync()

        def opaque_fetch() -> None:
            for stored in store.read_from(0):
                bytes(struct.pack(">q", stored.offset * RECORDS)) + bytes(stored.body[8:])

        rows = [("per-record produce", best(per_record_produce)), ("per-record fetch", best(per_record_fetch)),
                ("opaque produce", best(opaque_produce)), ("opaque fetch", best(opaque_fetch))]
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
