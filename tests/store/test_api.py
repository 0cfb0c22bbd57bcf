"""The api.py contract, one test body run against the memory twin and the file store."""

from __future__ import annotations

import threading

import pytest

from leveret.store.filestore import FileMessageStore
from leveret.store.memory import MemoryMessageStore


@pytest.fixture(params=["memory", "file"])
def store(request, tmp_path):
    store = MemoryMessageStore() if request.param == "memory" else FileMessageStore(str(tmp_path), segment_size=4096)
    yield store
    store.close()


def publish(queue, n, body=b"body"):
    return [queue.append("amq.direct", f"rk{i}", b"\x10\x00\x01", body + bytes([i % 256]), 1000 + i, 1) for i in range(n)]


def test_append_returns_monotonic_offsets_and_read_returns_the_message(store):
    queue = store.open_queue("/", "q")
    assert publish(queue, 3) == [0, 1, 2]
    message = queue.read(1)
    assert (message.offset, message.timestamp, message.flags) == (1, 1001, 1)
    assert (message.exchange, message.routing_key, message.props_raw, message.body) == (
        "amq.direct",
        "rk1",
        b"\x10\x00\x01",
        b"body\x01",
    )
    assert queue.next_offset == 3 and len(queue) == 3


def test_ack_removes_a_message_once(store):
    queue = store.open_queue("/", "q")
    publish(queue, 3)
    assert queue.ack(1) is True
    assert queue.ack(1) is False
    assert queue.ack(99) is False
    assert len(queue) == 2
    with pytest.raises(KeyError):
        queue.read(1)


def test_recover_yields_unacked_messages_in_offset_order(store):
    queue = store.open_queue("/", "q")
    publish(queue, 200)
    for offset in range(0, 200, 3):
        queue.ack(offset)
    recovered = list(queue.recover())
    assert [o for o, _ in recovered] == [o for o in range(200) if o % 3]
    assert all(m.offset == o and m.body[-1] == o % 256 for o, m in recovered)


def test_read_batch_streams_unacked_messages_from_an_offset_across_segments(store):
    queue = store.open_queue("/", "q")
    publish(queue, 300, body=b"x" * 100)  # several 4 KiB segments on the file store
    queue.ack(101)
    batch = queue.read_batch(100, 5)
    assert [m.offset for m in batch] == [100, 102, 103, 104, 105]
    assert batch[0].routing_key == "rk100" and batch[0].body == b"x" * 100 + bytes([100])
    assert [m.offset for m in queue.read_batch(295, 100)] == [295, 296, 297, 298, 299]
    assert queue.read_batch(300, 10) == []


def test_queues_are_separate_by_vhost_and_name(store):
    a = store.open_queue("/", "q")
    b = store.open_queue("other", "q")
    publish(a, 2)
    assert len(b) == 0 and b.next_offset == 0
    assert store.open_queue("/", "q") is a
    assert sorted(store.queues()) == [("/", "q"), ("other", "q")]


def test_delete_queue_forgets_its_messages(store):
    queue = store.open_queue("/", "q")
    publish(queue, 5)
    store.delete_queue("/", "q")
    assert store.queues() == []
    assert len(store.open_queue("/", "q")) == 0
    store.delete_queue("/", "never-existed")


def test_commit_sequence_numbers_increase_and_pending_tracks_writes(store):
    assert not store.commit_pending
    queue = store.open_queue("/", "q")
    publish(queue, 1)
    assert store.commit_pending
    first = store.sync()
    assert not store.commit_pending
    queue.ack(0)
    assert store.commit_pending
    assert store.sync() == first + 1


def test_a_commit_can_run_on_another_thread(store):
    queue = store.open_queue("/", "q")
    publish(queue, 10)
    ticket = store.begin_commit()
    publish(queue, 10)  # appends after begin belong to the next commit
    results = []
    worker = threading.Thread(target=lambda: results.append(ticket.run()))
    worker.start()
    worker.join(timeout=10)
    assert results == [ticket.seq]
    assert store.commit_pending
    assert store.sync() == ticket.seq + 1


def test_names_longer_than_a_shortstr_are_refused(store):
    queue = store.open_queue("/", "q")
    with pytest.raises(ValueError):
        queue.append("e" * 256, "", b"", b"", 0)


def test_empty_body_and_properties_round_trip(store):
    queue = store.open_queue("/", "q")
    offset = queue.append("", "", b"", b"", 0)
    message = queue.read(offset)
    assert (message.exchange, message.routing_key, message.props_raw, message.body) == ("", "", b"", b"")
