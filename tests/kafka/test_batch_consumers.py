"""AMQP stream consumers over Kafka-produced batches (kept whole, one stream entry each): every record is an
ordinary message at its own offset, whatever x-stream-offset says (first, an offset inside a batch, last,
a timestamp), with server-side offset tracking resuming inside a batch, and after a restart; and what AMQP
publishes between Kafka batches is fetched by Kafka clients at its offsets."""

from __future__ import annotations

import datetime
import time

import pika

from leveret.embedded import EmbeddedBroker
from leveret.kafka import apis
from leveret.kafka.records import BATCH_HEADER, batch_records, scan_batches
from tests.kafka.rawclient import RawClient, batch
from tests.kafka.test_protocol import fetch_body, fetch_partition

WAIT = 15.0


def produce(client: RawClient, topic: str, values: list[bytes]) -> int:
    answer = client.call(apis.PRODUCE, 7, {"acks": -1, "timeout_ms": 5000, "topics": [
        {"name": topic, "partitions": [{"index": 0, "records": batch(values, key=b"k")}]}]})
    part = answer["topics"][0]["partitions"][0]
    assert part["error_code"] == 0
    return part["base_offset"]


def consume(url: str, queue: str, count: int, arguments: dict, tag: str = "") -> list:
    """(x-stream-offset, body, routing key) of the first `count` deliveries, acked together after the cancel
    (the prefetch is `count`, so nothing more is in flight for pika to reject when it cancels)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    got: list = []
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=count)
        last_tag = [0]

        def on_message(ch, method, props, body) -> None:
            got.append((props.headers["x-stream-offset"], body, method.routing_key))
            last_tag[0] = method.delivery_tag

        consumer_tag = channel.basic_consume(queue, on_message, arguments=arguments, consumer_tag=tag or None)
        deadline = time.monotonic() + WAIT
        while len(got) < count and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.1)
        channel.basic_cancel(consumer_tag)  # the credit is used up: nothing is in flight to be rejected
        if last_tag[0]:
            channel.basic_ack(last_tag[0], multiple=True)
        channel.queue_declare(queue, passive=True)  # a round trip: the ack has been handled
    finally:
        connection.close()
    return got


def values(first: int, n: int) -> list[bytes]:
    return [b"r%d" % i for i in range(first, first + n)]


def test_amqp_consumers_read_each_record_of_stored_batches_at_its_offset(leveret_broker, kafka_bootstrap) -> None:
    client = RawClient(kafka_bootstrap)
    try:
        assert produce(client, "mixed", values(0, 5)) == 0
        connection = pika.BlockingConnection(pika.URLParameters(leveret_broker.url))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("mixed", "0", b"amqp-5")
        connection.close()
        assert produce(client, "mixed", values(6, 4)) == 6
        # acks=all waited for the commit covering the batch at 6, so the next batch begins the newest chunk.
        assert produce(client, "mixed", values(10, 3)) == 10
        everything = [(i, b"r%d" % i if i != 5 else b"amqp-5") for i in range(13)]
        got = consume(leveret_broker.url, "mixed-0", 13, {"x-stream-offset": "first"})
        assert [(o, b) for o, b, _ in got] == everything
        assert {rk for o, _, rk in got if o != 5} == {"k"}
        inside = consume(leveret_broker.url, "mixed-0", 6, {"x-stream-offset": 7})
        assert [o for o, _, _ in inside] == list(range(7, 13))
        last = consume(leveret_broker.url, "mixed-0", 3, {"x-stream-offset": "last"})
        assert [o for o, _, _ in last] == [10, 11, 12]
        since = consume(leveret_broker.url, "mixed-0", 13,
                        {"x-stream-offset": datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)})
        assert [o for o, _, _ in since] == list(range(13))
        # And the Kafka side sees the AMQP message between the batches at its offset.
        client.send(apis.FETCH, 11, 9, fetch_body("mixed", 4))
        code, high, records = fetch_partition(client.receive()[1])
        assert (code, high) == (0, 13)
        served = [(BATCH_HEADER.unpack_from(records, b.start)[0], [r.value for r in batch_records(records[b.start:b.end])])
                  for b in scan_batches(records)]
        assert served == [(0, values(0, 5)), (5, [b"amqp-5"]), (6, values(6, 4)), (10, values(10, 3))]
    finally:
        client.close()


def test_offset_tracking_resumes_inside_a_batch_and_after_a_restart(tmp_path) -> None:
    data_dir = str(tmp_path / "data")
    with EmbeddedBroker(data_dir=data_dir) as broker:
        client = RawClient(broker.kafka_bootstrap)
        try:
            produce(client, "tracked", values(0, 10))
        finally:
            client.close()
        tracking = {"x-stream-offset": "first", "x-stream-automatic-offset-tracking": True}
        first = consume(broker.url, "tracked-0", 4, tracking, tag="reader")
        assert [o for o, _, _ in first] == [0, 1, 2, 3]
        # A later consumer with the tag resumes after the highest offset acked, inside the batch.
        more = consume(broker.url, "tracked-0", 3, tracking, tag="reader")
        assert [o for o, _, _ in more] == [4, 5, 6]
    with EmbeddedBroker(data_dir=data_dir) as broker:
        rest = consume(broker.url, "tracked-0", 3, tracking, tag="reader")
        assert [(o, b) for o, b, _ in rest] == [(7, b"r7"), (8, b"r8"), (9, b"r9")]
        client = RawClient(broker.kafka_bootstrap)
        try:
            assert produce(client, "tracked", values(10, 2)) == 10
        finally:
            client.close()
        assert [o for o, _, _ in consume(broker.url, "tracked-0", 12, {"x-stream-offset": "first"})] == list(range(12))



def test_large_batches_are_fetched_whole_by_a_slow_reader(kafka_bootstrap) -> None:
    """Responses of megabytes go out in pieces while the socket takes them (server/kafka_listener.py): five
    fetches sent before any is read still come back whole, in order, every batch's CRC intact."""
    client = RawClient(kafka_bootstrap)
    try:
        big = [bytes([65 + i]) * 300_000 for i in range(3)]
        for i, value in enumerate(big):
            assert produce(client, "large", [value, b"tail%d" % i]) == 2 * i
        for correlation in range(5):
            client.send(apis.FETCH, 11, 100 + correlation, fetch_body("large", 0))
        for correlation in range(5):
            got, payload = client.receive()
            assert got == 100 + correlation
            code, high, records = fetch_partition(payload)
            assert (code, high) == (0, 6)
            served = [[r.value for r in batch_records(records[b.start:b.end])] for b in scan_batches(records)]
            assert served == [[value, b"tail%d" % i] for i, value in enumerate(big)]
    finally:
        client.close()
