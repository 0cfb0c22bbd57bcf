"""Durable queues keep a window in memory and the rest of their backlog as store offsets."""

from __future__ import annotations

import os

from leveret.amqp.properties import BasicProperties
from leveret.broker import Channel, Message
from leveret.broker.paging import SPILL_BATCH_BYTES, PagedReadyList
from leveret.durable import DurableBroker
from leveret.clock import ManualClock
from leveret.store.memory import MemoryDefinitionStore, MemoryMessageStore

from tests.broker.conftest import CODEC, RecordingTarget

PERSISTENT = BasicProperties(delivery_mode=2)
TRANSIENT = BasicProperties(delivery_mode=1)


def _broker(messages=None, definitions=None, window=10, scratch_window=None, spill_batch=5):
    messages = messages if messages is not None else MemoryMessageStore()
    definitions = definitions if definitions is not None else MemoryDefinitionStore()
    node = DurableBroker(definitions, messages, CODEC, clock=ManualClock(), window_count=window,
                         scratch_window_count=scratch_window if scratch_window is not None else window,
                         spill_batch=spill_batch)
    return node.broker, node


def _publish(vhost, queue, bodies, props=PERSISTENT):
    for body in bodies:
        vhost.publish("", queue, Message("", queue, props, body))


def test_a_deep_durable_backlog_keeps_only_the_window_in_memory_and_drains_in_order() -> None:
    broker, _ = _broker(window=10)
    vhost = broker.vhost("/")
    queue, _, _ = vhost.declare_queue("deep", durable=True)
    assert isinstance(queue.ready, PagedReadyList)
    bodies = [b"m%04d" % i for i in range(250)]
    _publish(vhost, "deep", bodies)
    assert queue.message_count == 250
    assert len(queue.ready.entries) == 10 and queue.ready.tail_length == 240
    assert queue.ready_bytes == sum(len(b) for b in bodies)
    target = RecordingTarget()
    channel = Channel(vhost, target, owner="conn")
    channel.qos(0, 7, False)
    tag = channel.consume("deep")
    channel.start_consumer(tag)
    received = []
    while target.deliveries:
        batch = list(target.deliveries)
        target.deliveries.clear()
        for _tag, delivery_tag, _redelivered, message in batch:
            received.append(message.body)
            channel.ack(delivery_tag, False)
    # every message came out exactly once, in publish order, body intact
    assert received == bodies
    assert queue.message_count == 0


def test_paged_messages_are_delivered_in_order_with_their_bodies() -> None:
    broker, _ = _broker(window=5)
    vhost = broker.vhost("/")
    vhost.declare_queue("q", durable=True)
    _publish(vhost, "q", [b"a%d" % i for i in range(30)])
    channel = Channel(vhost, RecordingTarget(), owner="conn")
    got = []
    while (item := channel.get("q", no_ack=True)) is not None:
        got.append(item[2].body)
    assert got == [b"a%d" % i for i in range(30)]


def test_transient_messages_behind_a_disk_tail_keep_their_place() -> None:
    broker, _ = _broker(window=3)
    vhost = broker.vhost("/")
    vhost.declare_queue("mixed", durable=True)
    _publish(vhost, "mixed", [b"p0", b"p1", b"p2", b"p3"])
    _publish(vhost, "mixed", [b"t4"], TRANSIENT)
    _publish(vhost, "mixed", [b"p5"])
    channel = Channel(vhost, RecordingTarget(), owner="conn")
    got = []
    while (item := channel.get("mixed", no_ack=True)) is not None:
        got.append(item[2].body)
    assert got == [b"p0", b"p1", b"p2", b"p3", b"t4", b"p5"]


def test_requeued_messages_return_ahead_of_the_disk_tail() -> None:
    broker, _ = _broker(window=2)
    vhost = broker.vhost("/")
    vhost.declare_queue("rq", durable=True)
    _publish(vhost, "rq", [b"x%d" % i for i in range(6)])
    channel = Channel(vhost, RecordingTarget(), owner="conn")
    first = channel.get("rq")
    second = channel.get("rq")
    channel.nack(second[0], False, True)
    channel.nack(first[0], False, True)
    got = []
    while (item := channel.get("rq", no_ack=True)) is not None:
        got.append((item[1], item[2].body))
    assert got == [(True, b"x0"), (True, b"x1")] + [(False, b"x%d" % i) for i in range(2, 6)]


def test_purge_acks_the_whole_tail_in_the_store() -> None:
    messages = MemoryMessageStore()
    broker, _ = _broker(messages=messages, window=4)
    vhost = broker.vhost("/")
    queue, _, _ = vhost.declare_queue("p", durable=True)
    _publish(vhost, "p", [b"y%d" % i for i in range(20)])
    assert len(queue.store) == 20
    assert vhost.purge_queue("p") == 20
    assert len(queue.store) == 0 and queue.message_count == 0


def test_recovery_puts_a_deep_backlog_on_the_tail_without_loading_bodies() -> None:
    messages, definitions = MemoryMessageStore(), MemoryDefinitionStore()
    broker, _ = _broker(messages, definitions, window=5)
    vhost = broker.vhost("/")
    vhost.declare_queue("r", durable=True)
    _publish(vhost, "r", [b"z%d" % i for i in range(40)])

    again, persistence = _broker(messages, definitions, window=5)
    again.vhosts["/"].queues.clear()
    result = persistence.recover(delivered={("/", "r"): set()})
    assert result.messages == 40
    queue = again.vhost("/").queues["r"]
    assert len(queue.ready.entries) == 5 and queue.ready.tail_length == 35
    channel = Channel(again.vhost("/"), RecordingTarget(), owner="conn")
    got = []
    while (item := channel.get("r", no_ack=True)) is not None:
        got.append(item[2].body)
    assert got == [b"z%d" % i for i in range(40)]


def test_a_transient_backlog_spills_in_batches_and_drains_in_order() -> None:
    broker, _ = _broker(window=4, spill_batch=5)
    vhost = broker.vhost("/")
    queue, _, _ = vhost.declare_queue("plain")  # not durable
    assert isinstance(queue.ready, PagedReadyList) and queue.store is None
    _publish(vhost, "plain", [b"t%d" % i for i in range(25)], TRANSIENT)
    assert len(queue.ready.entries) == 4 and queue.ready.tail_length == 21
    spill = queue.ready._spill
    # 21 past the window: four written batches of 5, the newest one still being collected.
    assert spill is not None and len(spill) == 4 and len(queue.ready._spill_pending) == 1
    channel = Channel(vhost, RecordingTarget(), owner="conn")
    got = []
    while (item := channel.get("plain", no_ack=True)) is not None:
        got.append(item[2].body)
        if len(got) == 12:  # publishes while draining land behind everything spilled
            _publish(vhost, "plain", [b"late%d" % i for i in range(7)], TRANSIENT)
    assert got == [b"t%d" % i for i in range(25)] + [b"late%d" % i for i in range(7)]
    assert len(spill) == 0 and not queue.ready._spill_pending


def test_large_bodies_spill_in_smaller_batches() -> None:
    broker, _ = _broker(window=1, spill_batch=1000)
    vhost = broker.vhost("/")
    queue, _, _ = vhost.declare_queue("big")
    body = b"x" * (SPILL_BATCH_BYTES // 4)
    _publish(vhost, "big", [body + b"%d" % i for i in range(10)], TRANSIENT)
    # 9 past the window: two batches of 4 bodies written, one still being collected.
    assert len(queue.ready._spill) == 2 and len(queue.ready._spill_pending) == 1
    channel = Channel(vhost, RecordingTarget(), owner="conn")
    got = []
    while (item := channel.get("big", no_ack=True)) is not None:
        got.append(item[2].body)
    assert got == [body + b"%d" % i for i in range(10)]


def test_spilled_messages_keep_their_routing_and_properties() -> None:
    broker, _ = _broker(window=1, spill_batch=2)
    vhost = broker.vhost("/")
    queue, _, _ = vhost.declare_queue("props")
    props = BasicProperties(delivery_mode=1, content_type="text/plain", headers={"k": 1}, correlation_id="c")
    for i in range(4):
        vhost.publish("", "props", Message("", "props", props, b"b%d" % i))
    channel = Channel(vhost, RecordingTarget(), owner="conn")
    for i in range(4):
        _tag, entry_redelivered, message = channel.get("props", no_ack=True)[:3]
        assert message.body == b"b%d" % i and message.routing_key == "props" and not entry_redelivered
        assert message.properties.headers == {"k": 1} and message.properties.content_type == "text/plain"


def test_a_spill_the_disk_refuses_keeps_its_messages_in_memory() -> None:
    class FullDisk:
        def __len__(self):
            return 0

        def push(self, batch):
            raise OSError(28, "No space left on device")

        def delete(self):
            pass

    broker, persistence = _broker(window=2, spill_batch=3)
    persistence.messages.open_spill = FullDisk
    vhost = broker.vhost("/")
    queue, _, _ = vhost.declare_queue("full")
    _publish(vhost, "full", [b"f%d" % i for i in range(9)], TRANSIENT)
    assert queue.message_count == 9
    channel = Channel(vhost, RecordingTarget(), owner="conn")
    got = []
    while (item := channel.get("full", no_ack=True)) is not None:
        got.append(item[2].body)
    assert got == [b"f%d" % i for i in range(9)]


def test_purging_a_paged_transient_queue_drops_its_spill() -> None:
    broker, _ = _broker(window=2, spill_batch=3)
    vhost = broker.vhost("/")
    queue, _, _ = vhost.declare_queue("purged")
    _publish(vhost, "purged", [b"p%d" % i for i in range(10)], TRANSIENT)
    spill = queue.ready._spill
    assert len(spill) == 2
    assert vhost.purge_queue("purged") == 10
    assert spill.deleted and queue.ready._spill is None and queue.message_count == 0
    assert not queue.ready._spill_pending


def test_transient_messages_page_only_past_the_larger_scratch_window() -> None:
    broker, _ = _broker(window=2, scratch_window=6, spill_batch=1)
    vhost = broker.vhost("/")
    queue, _, _ = vhost.declare_queue("burst")
    _publish(vhost, "burst", [b"b%d" % i for i in range(6)], TRANSIENT)
    assert queue.ready._spill is None and queue.ready.tail_length == 0  # a burst stays in memory
    _publish(vhost, "burst", [b"b%d" % i for i in range(6, 9)], TRANSIENT)
    assert queue.ready.tail_length == 3 and len(queue.ready._spill) == 3


def test_transient_messages_with_a_deadline_stay_whole_behind_the_window() -> None:
    broker, _ = _broker(window=2)
    vhost = broker.vhost("/")
    queue, _, _ = vhost.declare_queue("ttl", arguments={"x-message-ttl": 60000})
    _publish(vhost, "ttl", [b"x%d" % i for i in range(6)], TRANSIENT)
    assert queue.ready._spill is None and not queue.ready._spill_pending  # pinned, not paged: the deadline lives on the entry
    channel = Channel(vhost, RecordingTarget(), owner="conn")
    got = []
    while (item := channel.get("ttl", no_ack=True)) is not None:
        got.append(item[2].body)
    assert got == [b"x%d" % i for i in range(6)]


def test_a_spilled_batch_that_cannot_be_read_back_is_dropped_and_the_rest_keeps_its_order(tmp_path) -> None:
    from leveret.store.spill import FileSpill

    broker, persistence = _broker(window=2, spill_batch=3)
    spills = []

    def open_spill():
        spills.append(FileSpill(str(tmp_path / f"spill{len(spills)}")))
        return spills[-1]

    persistence.messages.open_spill = open_spill
    vhost = broker.vhost("/")
    queue, _, _ = vhost.declare_queue("damaged")
    _publish(vhost, "damaged", [b"d%d" % i for i in range(11)], TRANSIENT)  # 2 in memory, 3 batches of 3
    (spill,) = spills
    directory = tmp_path / "spill0"
    (path,) = [directory / name for name in os.listdir(directory)]
    first_batch_length = spill._batches[0][2]
    with open(path, "r+b") as f:  # damage the second batch
        f.seek(first_batch_length + 5)
        f.write(b"\xff" * 8)
    channel = Channel(vhost, RecordingTarget(), owner="conn")
    got = []
    while (item := channel.get("damaged", no_ack=True)) is not None:
        got.append(item[2].body)
    assert got == [b"d%d" % i for i in (0, 1, 2, 3, 4, 8, 9, 10)]
    assert queue.message_count == 0 and queue.ready.bytes == 0


def test_the_broker_wide_budget_makes_every_transient_backlog_spill_past_the_small_window() -> None:
    messages = MemoryMessageStore()
    definitions = MemoryDefinitionStore()
    persistence = DurableBroker(definitions, messages, CODEC, clock=ManualClock(), window_count=2,
                                scratch_window_count=100, spill_batch=2, memory_budget=50)
    broker = persistence.broker
    vhost = broker.vhost("/")
    first, _, _ = vhost.declare_queue("first")
    second, _, _ = vhost.declare_queue("second")
    body = b"x" * 10
    _publish(vhost, "first", [body] * 5, TRANSIENT)
    # Under budget (50 bytes): the large window keeps all five in memory.
    assert len(first.ready.entries) == 5 and first.ready.tail_length == 0
    assert persistence.memory_budget.used == 50
    _publish(vhost, "second", [b"s%d" % i + body for i in range(6)], TRANSIENT)
    # Budget used up: the second queue keeps only the small window of 2, the rest spills.
    assert len(second.ready.entries) == 2 and second.ready.tail_length == 4
    assert persistence.memory_budget.used == 50 + 2 * 12
    channel = Channel(vhost, RecordingTarget(), owner="conn")
    got = []
    while (item := channel.get("second", no_ack=True)) is not None:
        got.append(item[2].body)
    assert got == [b"s%d" % i + body for i in range(6)]
    assert persistence.memory_budget.used == 50
    assert vhost.purge_queue("first") == 5
    assert persistence.memory_budget.used == 0


def test_a_reload_finds_every_stored_entry_even_with_a_pinned_one_in_between() -> None:
    # The tail reads stored bodies in one sequential batch; a pinned entry's own record (unacked, in the
    # same store) sits between them and must not push a wanted record out of the batch.
    from leveret.broker.entry import QueueEntry
    from leveret.store.memory import MemoryQueueStore

    store = MemoryQueueStore()
    offsets = [store.append("", "q", TRANSIENT.raw, b"m%d" % i, 0) for i in range(3)]

    def make_entry(seq, stored, redelivered):
        entry = QueueEntry(seq, Message(stored.exchange, stored.routing_key,
                                        BasicProperties.from_raw(bytes(stored.props_raw)), bytes(stored.body)),
                           redelivered)
        entry.offset = stored.offset
        return entry

    ready = PagedReadyList(store, make_entry, window_count=0)
    entries = []
    for i, offset in enumerate(offsets):
        entry = QueueEntry(i, Message("", "q", TRANSIENT, b"m%d" % i))
        entry.offset = offset
        if i == 1:
            entry.returns = 1  # a quorum return count: kept whole, pinned at its place in the tail
        ready.append(entry)
        entries.append(entry)
    assert ready.tail_length == 3
    out = [ready.popleft() for _ in range(3)]
    assert [e.message.body for e in out] == [b"m0", b"m1", b"m2"]
    assert out[1] is entries[1] and ready.bytes == 0 and not ready


def _priority_bodies(n):
    return [(i % 3, b"p%d-%02d" % (i % 3, i)) for i in range(n)]


def _publish_with_priorities(vhost, queue, items, delivery_mode):
    for priority, body in items:
        vhost.publish("", queue, Message("", queue, BasicProperties(delivery_mode=delivery_mode, priority=priority),
                                         body))


def _expected_priority_order(items):
    return [body for level in (2, 1, 0) for priority, body in items if priority == level]


def test_a_durable_priority_queue_pages_each_level_and_serves_highest_first() -> None:
    messages, definitions = MemoryMessageStore(), MemoryDefinitionStore()
    broker, _ = _broker(messages, definitions, window=3)
    vhost = broker.vhost("/")
    queue, _, _ = vhost.declare_queue("prio", durable=True, arguments={"x-max-priority": 2})
    items = _priority_bodies(30)
    _publish_with_priorities(vhost, "prio", items, 2)
    levels = queue.ready.levels
    assert sorted(levels) == [0, 1, 2]
    for level in levels.values():
        assert isinstance(level, PagedReadyList) and len(level.entries) == 3 and level.tail_length == 7
    assert queue.message_count == 30

    # A restart brings it back paged the same way, and in the same order.
    again, persistence = _broker(messages, definitions, window=3)
    again.vhosts["/"].queues.clear()
    assert persistence.recover(delivered={("/", "prio"): set()}).messages == 30
    restored = again.vhost("/").queues["prio"]
    assert all(len(level.entries) <= 3 for level in restored.ready.levels.values())
    channel = Channel(again.vhost("/"), RecordingTarget(), owner="conn")
    got = []
    while (item := channel.get("prio", no_ack=True)) is not None:
        got.append(item[2].body)
    assert got == _expected_priority_order(items)
    assert len(restored.store) == 0


def test_a_transient_priority_queue_spills_each_level_and_keeps_its_order() -> None:
    broker, persistence = _broker(window=2, spill_batch=2)
    vhost = broker.vhost("/")
    queue, _, _ = vhost.declare_queue("tprio", arguments={"x-max-priority": 2})
    items = _priority_bodies(24)
    _publish_with_priorities(vhost, "tprio", items, 1)
    for level in queue.ready.levels.values():
        assert len(level.entries) == 2 and level.tail_length == 6
    channel = Channel(vhost, RecordingTarget(), owner="conn")
    got = []
    while (item := channel.get("tprio", no_ack=True)) is not None:
        got.append((item[2].body, item[2].properties.priority))
        if len(got) == 5:  # a late high-priority message: behind its own level, ahead of everything below
            vhost.publish("", "tprio", Message("", "tprio", BasicProperties(delivery_mode=1, priority=2), b"late"))
    expected = _expected_priority_order(items)
    assert [body for body, _ in got] == expected[:8] + [b"late"] + expected[8:]
    assert all(priority == int(body[1:2]) for body, priority in got if body != b"late")
    assert persistence.memory_budget.used == 0
