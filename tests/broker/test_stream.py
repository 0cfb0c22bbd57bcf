"""Stream queues in the broker model: declaration rules, consumer cursors, credit, acks, offset tracking.

A broker with the in-memory message store; deliveries are recorded by the fake server target, and
their headers decoded with the real codec (the broker itself never decodes properties).
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from leveret.amqp.properties import BasicProperties
from leveret.amqp.stream_offset import with_offset_header
from leveret.amqp.table import Timestamp
from leveret.broker import Broker, Channel, Message
from leveret.broker.errors import AccessRefused, NotImplementedByBroker, PreconditionFailed
from leveret.broker.stream import StreamQueue
from leveret.broker.stream_arguments import parse_interval
from leveret.clock import ManualClock
from leveret.store.memory import MemoryMessageStore

from .conftest import CODEC, RecordingTarget

STREAM = {"x-queue-type": "stream"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store() -> MemoryMessageStore:
    return MemoryMessageStore()


@pytest.fixture
def broker(clock: ManualClock, store: MemoryMessageStore) -> Broker:
    return Broker(clock, streams=store, codec=CODEC)


@pytest.fixture
def vhost(broker: Broker):
    return broker.vhost("/")


class Client:
    """One channel with a recording target, speaking to the broker as the server would."""

    def __init__(self, vhost, owner: object = "conn") -> None:
        self.target = RecordingTarget()
        self.channel = Channel(vhost, self.target, owner)

    def publish(self, queue: str, body: bytes, headers: dict | None = None) -> None:
        props = BasicProperties(headers=headers) if headers else BasicProperties()
        self.channel.publish("", queue, Message("", queue, props, body))

    def consume(self, queue: str, prefetch: int = 10, tag: str = "", **arguments: Any) -> str:
        self.channel.qos(0, prefetch, False)
        tag = self.channel.consume(queue, tag, arguments=arguments)
        self.channel.start_consumer(tag)
        return tag

    def offsets(self) -> list[int]:
        headers = [BasicProperties.from_raw(d[3].properties.raw).headers for d in self.target.deliveries]
        return [h["x-stream-offset"] for h in headers]


def declare(vhost, name: str = "s", **arguments: Any) -> StreamQueue:
    queue, _, _ = vhost.declare_queue(name, durable=True, arguments={**STREAM, **arguments})
    assert isinstance(queue, StreamQueue)
    return queue


def publish_n(client: Client, n: int, queue: str = "s") -> None:
    for i in range(n):
        client.publish(queue, b"m%d" % i)


# -- declaration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, text",
    [
        ({"durable": False}, "invalid property 'non-durable' for queue 's' in vhost '/'"),
        ({"durable": True, "exclusive": True}, "invalid property 'exclusive-owner' for queue 's' in vhost '/'"),
        ({"durable": True, "auto_delete": True}, "invalid property 'auto-delete' for queue 's' in vhost '/'"),
    ],
)
def test_stream_must_be_durable_shared_and_kept(vhost, flags, text):
    with pytest.raises(PreconditionFailed) as err:
        vhost.declare_queue("s", arguments=STREAM, **flags)
    assert err.value.text == text


def test_server_named_stream_is_refused(vhost):
    with pytest.raises(PreconditionFailed, match="Cannot declare a server-named queue for type rabbit_stream_queue"):
        vhost.declare_queue("", durable=True, arguments=STREAM)


@pytest.mark.parametrize(
    "key, value, detail",
    [
        ("x-max-length", 10, "of queue type rabbit_stream_queue"),
        ("x-message-ttl", 10, "of queue type rabbit_stream_queue"),
        ("x-max-age", "10x", ": invalid_max_age"),
        ("x-max-age", "0s", ": invalid_max_age"),
        ("x-max-age", 10, ": {unacceptable_type,signedint}"),
        ("x-max-length-bytes", -1, ": {value_negative,-1}"),
        ("x-stream-max-segment-size-bytes", "x", ': "expected integer, got longstr"'),
    ],
)
def test_invalid_stream_arguments_are_refused_as_rabbitmq_does(vhost, key, value, detail):
    with pytest.raises(PreconditionFailed) as err:
        vhost.declare_queue("s", durable=True, arguments={**STREAM, key: value})
    assert err.value.text.startswith(f"invalid arg '{key}' for queue 's' in vhost '/'")
    assert err.value.text.endswith(detail)


def test_redeclaring_a_stream_compares_stream_arguments_only(vhost):
    declare(vhost, **{"x-max-age": "1D"})
    assert vhost.declare_queue("s", durable=True, arguments={**STREAM, "x-max-age": "1D", "x-max-length": 4})[0]
    with pytest.raises(PreconditionFailed, match="inequivalent arg 'x-max-age'"):
        vhost.declare_queue("s", durable=True, arguments={**STREAM, "x-max-age": "1h"})
    with pytest.raises(PreconditionFailed) as err:
        vhost.declare_queue("s", durable=True)
    assert err.value.text == (
        "inequivalent arg 'x-queue-type' for queue 's' in vhost '/': received none but current is the value "
        "'stream' of type 'longstr'"
    )


def test_max_age_units_are_rabbitmq_units():
    assert parse_interval("2h") == 7_200_000
    assert parse_interval("1Y") == 365 * 86_400_000
    assert parse_interval("1M") == 30 * 86_400_000
    assert parse_interval("3D") == 3 * 86_400_000
    assert parse_interval("5d") is None and parse_interval("1.5h") is None and parse_interval("0m") is None


# -- consuming -----------------------------------------------------------------------------------


def test_consume_without_prefetch_is_refused(vhost):
    declare(vhost)
    client = Client(vhost)
    with pytest.raises(PreconditionFailed) as err:
        client.channel.consume("s", "c")
    assert err.value.text == "consumer prefetch count is not set for 'queue 's' in vhost '/''"


def test_global_prefetch_alone_does_not_count_as_consumer_prefetch(vhost):
    declare(vhost)
    client = Client(vhost)
    client.channel.qos(0, 10, True)
    with pytest.raises(PreconditionFailed, match="consumer prefetch count is not set"):
        client.channel.consume("s", "c")


def test_no_ack_consume_and_basic_get_and_purge_are_not_implemented(vhost):
    declare(vhost)
    client = Client(vhost)
    client.channel.qos(0, 5, False)
    with pytest.raises(NotImplementedByBroker, match="automatic acknowledgement not supported by stream queues"):
        client.channel.consume("s", "c", no_ack=True)
    with pytest.raises(NotImplementedByBroker) as err:
        client.channel.get("s")
    assert err.value.text == "basic.get not supported by stream queues queue 's' in vhost '/'"
    with pytest.raises(NotImplementedByBroker, match="queue.purge not supported by stream queues"):
        vhost.purge_queue("s")


def test_every_delivery_carries_its_offset_after_the_messages_own_headers(vhost):
    declare(vhost)
    producer = Client(vhost)
    producer.publish("s", b"a", {"k": "v"})
    producer.publish("s", b"b")
    consumer = Client(vhost)
    consumer.consume("s", **{"x-stream-offset": "first"})
    first, second = (BasicProperties.from_raw(d[3].properties.raw) for d in consumer.target.deliveries)
    assert list(first.headers.items()) == [("k", "v"), ("x-stream-offset", 0)]
    assert second.headers == {"x-stream-offset": 1}
    assert [d[2] for d in consumer.target.deliveries] == [False, False]


def test_offset_header_splice_keeps_other_properties():
    props = BasicProperties(content_type="text/plain", content_encoding="gzip", headers={"a": 1}, delivery_mode=2,
                            message_id="m")
    spliced = BasicProperties.from_raw(with_offset_header(props.raw, 2**40))
    assert spliced.headers == {"a": 1, "x-stream-offset": 2**40}
    assert (spliced.content_type, spliced.content_encoding, spliced.delivery_mode, spliced.message_id) == (
        "text/plain", "gzip", 2, "m"
    )


@pytest.mark.parametrize(
    "spec, first",
    [("first", 0), ("next", None), (3, 3), (-5, 0), ("last", 7)],
)
def test_x_stream_offset_forms_start_where_rabbitmq_starts(vhost, store, spec, first):
    declare(vhost)
    producer = Client(vhost)
    publish_n(producer, 7)
    store.sync()  # a commit closes the chunk: "last" is the first message after it
    publish_n(producer, 3)
    consumer = Client(vhost)
    consumer.consume("s", prefetch=1, **{"x-stream-offset": spec})
    if first is None:
        assert consumer.offsets() == []
        producer.publish("s", b"new")
        assert consumer.offsets() == [10]
    else:
        assert consumer.offsets() == [first]


def test_timestamp_and_interval_offsets_seek_by_publish_time(vhost, clock):
    declare(vhost)
    producer = Client(vhost)
    publish_n(producer, 3)
    clock.advance(3600)
    boundary = clock.time()
    publish_n(producer, 2)
    for spec in (Timestamp(int(boundary)), datetime.datetime.fromtimestamp(boundary, datetime.timezone.utc), "30m"):
        consumer = Client(vhost)
        consumer.consume("s", prefetch=1, **{"x-stream-offset": spec})
        assert consumer.offsets() == [3], spec
    consumer = Client(vhost)
    consumer.consume("s", prefetch=1, **{"x-stream-offset": "2h"})
    assert consumer.offsets() == [0]


def test_offset_beyond_the_end_waits_for_that_offset(vhost):
    declare(vhost)
    producer = Client(vhost)
    publish_n(producer, 2)
    consumer = Client(vhost)
    consumer.consume("s", **{"x-stream-offset": 4})
    publish_n(producer, 3)
    assert consumer.offsets() == [4]


@pytest.mark.parametrize("spec", ["1x", "bogus", True])
def test_malformed_x_stream_offset_is_refused(vhost, spec):
    declare(vhost)
    consumer = Client(vhost)
    consumer.channel.qos(0, 1, False)
    with pytest.raises(PreconditionFailed, match="invalid_stream_offset_arg"):
        consumer.channel.consume("s", "c", arguments={"x-stream-offset": spec})


def test_prefetch_is_credit_and_acks_free_it_without_removing_data(vhost):
    declare(vhost)
    producer = Client(vhost)
    publish_n(producer, 5)
    consumer = Client(vhost)
    consumer.consume("s", prefetch=2, **{"x-stream-offset": "first"})
    assert consumer.offsets() == [0, 1]
    consumer.channel.ack(1)
    assert consumer.offsets() == [0, 1, 2]
    consumer.channel.ack(3, multiple=True)
    assert consumer.offsets() == [0, 1, 2, 3, 4]
    other = Client(vhost)
    other.consume("s", prefetch=10, **{"x-stream-offset": "first"})
    assert other.offsets() == [0, 1, 2, 3, 4]


def test_consumers_read_independently_at_their_own_pace(vhost):
    declare(vhost)
    producer = Client(vhost)
    fast, slow = Client(vhost), Client(vhost)
    fast.consume("s", prefetch=100, **{"x-stream-offset": "first"})
    slow.consume("s", prefetch=1, **{"x-stream-offset": "first"})
    publish_n(producer, 20)
    assert fast.offsets() == list(range(20))
    assert slow.offsets() == [0]
    for tag in range(1, 20):
        slow.channel.ack(tag)
    assert slow.offsets() == list(range(20))


@pytest.mark.parametrize("settle", ["nack", "reject", "nack_no_requeue"])
def test_nack_and_reject_are_not_implemented(vhost, settle):
    declare(vhost)
    Client(vhost).publish("s", b"x")
    consumer = Client(vhost)
    consumer.consume("s", **{"x-stream-offset": "first"})
    with pytest.raises(NotImplementedByBroker) as err:
        if settle == "nack":
            consumer.channel.nack(1)
        elif settle == "reject":
            consumer.channel.reject(1, requeue=True)
        else:
            consumer.channel.nack(1, requeue=False)
    assert err.value.text == "basic.nack and basic.reject not supported by stream queues queue 's' in vhost '/'"


def test_closing_a_channel_with_unacked_deliveries_redelivers_nothing(vhost):
    declare(vhost)
    publish_n(Client(vhost), 3)
    consumer = Client(vhost)
    consumer.consume("s", prefetch=2, **{"x-stream-offset": "first"})
    consumer.channel.close()
    other = Client(vhost)
    other.consume("s", prefetch=10, **{"x-stream-offset": "next"})
    assert other.offsets() == []


def test_x_priority_is_refused_on_streams(vhost):
    declare(vhost)
    consumer = Client(vhost)
    consumer.channel.qos(0, 1, False)
    with pytest.raises(PreconditionFailed, match="invalid arg 'x-priority' for queue 's' in vhost '/' of queue type"):
        consumer.channel.consume("s", "c", arguments={"x-priority": 3})


def test_exclusive_consumer_keeps_others_out(vhost):
    declare(vhost)
    first = Client(vhost)
    first.channel.qos(0, 1, False)
    first.channel.consume("s", "a", exclusive=True)
    second = Client(vhost)
    second.channel.qos(0, 1, False)
    with pytest.raises(AccessRefused, match="in exclusive use"):
        second.channel.consume("s", "b")


# -- offset tracking (LavinMQ's arguments) --------------------------------------------------------


def test_tracked_consumer_resumes_after_its_last_acked_offset(vhost):
    declare(vhost)
    publish_n(Client(vhost), 10)
    consumer = Client(vhost)
    consumer.consume("s", prefetch=4, tag="billing", **{"x-stream-automatic-offset-tracking": True,
                                                         "x-stream-offset": "first"})
    consumer.channel.ack(3, multiple=True)  # offsets 0..2
    consumer.channel.close()
    again = Client(vhost)
    again.consume("s", prefetch=2, tag="billing", **{"x-stream-automatic-offset-tracking": True,
                                                      "x-stream-offset": "first"})
    assert again.offsets() == [3, 4]


def test_null_offset_tracks_and_starts_from_first_the_first_time(vhost):
    declare(vhost)
    publish_n(Client(vhost), 5)
    consumer = Client(vhost)
    consumer.consume("s", prefetch=1, tag="audit", **{"x-stream-offset": None})
    assert consumer.offsets() == [0]
    consumer.channel.ack(1)
    consumer.channel.close()
    again = Client(vhost)
    again.consume("s", prefetch=1, tag="audit", **{"x-stream-offset": None})
    assert again.offsets() == [1]


def test_without_tracking_options_the_default_start_stays_next(vhost):
    declare(vhost)
    publish_n(Client(vhost), 3)
    consumer = Client(vhost)
    consumer.consume("s", prefetch=5, tag="plain", **{"x-stream-offset": "first"})
    consumer.channel.ack(3, multiple=True)
    consumer.channel.close()
    again = Client(vhost)
    again.consume("s", prefetch=5, tag="plain")
    assert again.offsets() == []


# -- retention and deletion ----------------------------------------------------------------------


def test_retention_by_size_drops_head_while_a_consumer_keeps_reading(vhost, store):
    declare(vhost, **{"x-max-length-bytes": 4000, "x-stream-max-segment-size-bytes": 1000})
    producer = Client(vhost)
    consumer = Client(vhost)
    consumer.consume("s", prefetch=1, **{"x-stream-offset": "first"})
    publish_n(producer, 200)
    assert consumer.offsets() == [0]
    queue = vhost.queues["s"]
    assert queue.stream_store.first_offset > 0
    for _ in range(300):
        if consumer.offsets()[-1] == 199:
            break
        consumer.channel.ack(consumer.target.tags[-1])
    seen = consumer.offsets()
    assert seen[-1] == 199 and seen == sorted(seen) and len(seen) < 200  # skipped what retention dropped


def test_retention_by_age_runs_on_a_timer(vhost, clock, broker):
    declare(vhost, **{"x-max-age": "10s", "x-stream-max-segment-size-bytes": 500})
    publish_n(Client(vhost), 30)
    queue = vhost.queues["s"]
    segments = queue.stream_store.segment_count
    assert segments > 2
    clock.advance(60)
    broker.timers.run_due()
    assert queue.stream_store.segment_count == 1


def test_deleting_a_stream_cancels_consumers_and_drops_its_log(vhost, store):
    declare(vhost)
    publish_n(Client(vhost), 3)
    consumer = Client(vhost)
    consumer.consume("s", tag="c", **{"x-stream-offset": "first"})
    assert vhost.delete_queue("s") == 0
    assert consumer.target.cancelled == ["c"]
    assert store.open_stream("/", "s").next_offset == 0


def test_passive_declare_and_redeclare_report_zero_messages(vhost):
    declare(vhost)
    publish_n(Client(vhost), 3)
    assert vhost.declare_queue("s", passive=True)[1:] == (0, 0)
    assert vhost.declare_queue("s", durable=True, arguments=STREAM)[1:] == (0, 0)


def test_messages_routed_through_an_exchange_binding_reach_the_stream(vhost):
    declare(vhost)
    vhost.bind_queue("s", "amq.direct", "events")
    Client(vhost).channel.publish("amq.direct", "events", Message("amq.direct", "events", BasicProperties(), b"e"))
    consumer = Client(vhost)
    consumer.consume("s", **{"x-stream-offset": "first"})
    (_, _, _, message), = consumer.target.deliveries
    assert (message.exchange, message.routing_key, message.body) == ("amq.direct", "events", b"e")


def test_a_broker_without_message_store_refuses_streams(clock):
    vhost = Broker(clock).vhost("/")
    with pytest.raises(PreconditionFailed, match="stream queues need a message store"):
        vhost.declare_queue("s", durable=True, arguments=STREAM)
    assert "s" not in vhost.queues


def test_live_consumer_is_served_from_memory_and_a_late_one_from_the_log(vhost, store):
    declare(vhost)
    queue = vhost.queues["s"]
    producer = Client(vhost)
    live = Client(vhost)
    live.consume("s", prefetch=1000, **{"x-stream-offset": "next"})
    publish_n(producer, 50)
    queue._tail.clear()  # as after a restart: nothing in memory, everything from the store
    late = Client(vhost)
    late.consume("s", prefetch=1000, **{"x-stream-offset": "first"})
    assert live.offsets() == late.offsets() == list(range(50))
    assert [d[3].body for d in late.target.deliveries] == [b"m%d" % i for i in range(50)]


def test_tail_lookup_by_offset_survives_trimming_and_gaps():
    from leveret.broker.stream import Tail
    from leveret.store.api import StoredMessage

    tail = Tail(limit=10 * 100)
    for offset in range(5000):
        tail.append(StoredMessage(offset, 0, 0, "", "", b"", b"x" * 36), 100)
    assert tail.get(4999).offset == 4999 and tail.get(4990).offset == 4990
    assert tail.get(4989) is None and tail.get(5000) is None
    tail.append(StoredMessage(7000, 0, 0, "", "", b"", b"y"), 100)  # not contiguous: start again
    assert tail.get(4999) is None and tail.get(7000).body == b"y"


def test_acks_after_the_stream_was_deleted_are_harmless(vhost, store):
    declare(vhost)
    publish_n(Client(vhost), 2)
    consumer = Client(vhost)
    consumer.consume("s", tag="kept", **{"x-stream-offset": "first", "x-stream-automatic-offset-tracking": True})
    vhost.delete_queue("s")
    consumer.channel.ack(2, multiple=True)
    assert store.open_stream("/", "s").tracked_offset("kept") is None
