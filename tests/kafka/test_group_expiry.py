"""Consumer groups expire as Kafka's offsets.retention.minutes says: a group that has been empty, with no
offset committed, for the retention is removed with its committed offsets, durably; a group with committed
offsets that nobody used since a restart counts from the start. The broker's clock is a ManualClock and its
timers are run by hand: no sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from leveret.amqp.properties import BasicProperties
from leveret.amqp.stream_offset import delivery_properties
from leveret.broker.message import PropertiesCodec
from leveret.clock import ManualClock
from leveret.durable import DurableBroker
from leveret.kafka.groups import SWEEP_INTERVAL, TRACKING_PREFIX, GroupCoordinator
from leveret.kafka.stored import messages_of
from leveret.kafka.topics import Topics

RETENTION = 3600.0


class Answers:
    """A connection as the coordinator sees it: the answers it was given."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def answer(self, header: Any, slot: Any, body: dict[str, Any]) -> None:
        self.bodies.append(body)

    answer_after_commit = answer


@contextmanager
def running(directory: str, clock: ManualClock) -> Iterator[tuple[DurableBroker, Topics, GroupCoordinator]]:
    """A broker over `directory` with a topic "t" of one partition, and its group coordinator."""
    node = DurableBroker.open(directory, PropertiesCodec(BasicProperties.from_raw, delivery_properties, messages_of),
                              clock=clock)
    node.recover_at_start()
    vhost = node.broker.vhost("/")
    assert vhost is not None
    topics = Topics(vhost)
    if topics.partition("t", 0) is None:
        topics.create("t", 1, {})
    coordinator = GroupCoordinator(topics, node.broker.timers, clock, retention=RETENTION)
    try:
        yield node, topics, coordinator
    finally:
        coordinator.stop()
        node.messages.sync()
        node.close()


def commit(coordinator: GroupCoordinator, group: str, offset: int) -> None:
    coordinator.offset_commit(Answers(), None, {"group_id": group, "generation_id": -1, "member_id": "", "topics": [
        {"name": "t", "partitions": [{"partition_index": 0, "committed_offset": offset, "committed_metadata": ""}]}]},
        None)


def run_for(node: DurableBroker, clock: ManualClock, seconds: float) -> None:
    """Move the clock on a sweep interval at a time, running the timers that fall due."""
    while seconds > 0:
        step = min(seconds, SWEEP_INTERVAL)
        clock.advance(step)
        node.broker.timers.run_due()
        seconds -= step


def committed(topics: Topics, group: str) -> int | None:
    queue = topics.partition("t", 0)
    assert queue is not None
    return queue.stream_store.tracked_offset(TRACKING_PREFIX + group)


def test_an_empty_group_expires_after_the_retention_with_its_offsets(tmp_path) -> None:
    clock = ManualClock()
    with running(str(tmp_path), clock) as (node, topics, coordinator):
        commit(coordinator, "idle", 5)
        commit(coordinator, "busy", 7)
        run_for(node, clock, RETENTION - 120)
        commit(coordinator, "busy", 8)  # a commit keeps a group
        run_for(node, clock, 240)
        assert "idle" not in coordinator.groups and committed(topics, "idle") is None
        assert "busy" in coordinator.groups and committed(topics, "busy") == 8
    # The removal is durable: the offsets do not come back with a restart.
    with running(str(tmp_path), clock) as (node, topics, coordinator):
        assert committed(topics, "idle") is None and committed(topics, "busy") == 8


def test_offsets_of_a_group_unused_since_a_restart_expire_from_the_start(tmp_path) -> None:
    clock = ManualClock()
    with running(str(tmp_path), clock) as (node, topics, coordinator):
        commit(coordinator, "old", 3)
    clock.advance(10 * RETENTION)  # the broker was down; the retention counts from the start
    with running(str(tmp_path), clock) as (node, topics, coordinator):
        run_for(node, clock, RETENTION - 120)
        assert committed(topics, "old") == 3 and "old" in coordinator.groups
        run_for(node, clock, 240)
        assert committed(topics, "old") is None and "old" not in coordinator.groups
