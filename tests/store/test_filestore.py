"""What only the file store does: survive a restart, delete fully acked segments whole."""

from __future__ import annotations

import os

from leveret.store.filestore import FileMessageStore


def publish(queue, n, size=100):
    return [queue.append("ex", "rk", b"\x00\x00", bytes([i % 256]) * size, 1000 + i) for i in range(n)]


def files(queue, suffix):
    return sorted(n for n in os.listdir(queue.directory) if n.endswith(suffix))


def test_messages_and_acks_survive_a_restart(tmp_path):
    store = FileMessageStore(str(tmp_path), segment_size=4096)
    queue = store.open_queue("vh", "q")
    publish(queue, 100)
    for offset in (3, 50, 99):
        queue.ack(offset)
    store.sync()
    store.close()
    store = FileMessageStore(str(tmp_path), segment_size=4096)
    assert store.queues() == [("vh", "q")]
    queue = store.open_queue("vh", "q")
    assert len(queue) == 97
    assert [o for o, _ in queue.recover()] == [o for o in range(100) if o not in (3, 50, 99)]
    assert queue.append("ex", "rk", b"", b"new", 0) == 100
    assert store.report.clean
    store.close()


def test_a_fully_acked_segment_is_deleted_with_its_ack_file(tmp_path):
    store = FileMessageStore(str(tmp_path), segment_size=4096)
    queue = store.open_queue("/", "q")
    publish(queue, 100)
    first = queue.log.segments[0]
    for offset in range(first.first_offset, first.last_offset):
        queue.ack(offset)
    store.sync()
    assert files(queue, ".ack")[0] == f"{first.base:020d}.ack"
    queue.ack(first.last_offset)
    assert os.path.exists(first.path)  # until the ack that completes it is durable
    store.sync()
    assert not os.path.exists(first.path)
    assert f"{first.base:020d}.ack" not in files(queue, ".ack")
    store.close()


def test_the_active_segment_is_kept_when_fully_acked_and_deleted_after_it_rolls(tmp_path):
    store = FileMessageStore(str(tmp_path), segment_size=4096)
    queue = store.open_queue("/", "q")
    publish(queue, 3)
    for offset in range(3):
        queue.ack(offset)
    active = queue.log.segments[-1]
    assert os.path.exists(active.path)
    queue.append("ex", "rk", b"", b"x" * 4096, 0)  # does not fit: the segment rolls
    store.sync()  # deleted once the acks that emptied it are durable
    assert not os.path.exists(active.path)
    assert len(queue) == 1
    store.close()


def test_acks_written_before_the_last_ack_survive_and_finish_deletion_on_restart(tmp_path):
    store = FileMessageStore(str(tmp_path), segment_size=4096)
    queue = store.open_queue("/", "q")
    publish(queue, 100)
    first = queue.log.segments[0]
    store.sync()
    # Ack every record of the first segment, but write the acks without letting the queue delete:
    # this is the state a crash after the ack fsync and before the unlink leaves.
    for offset in range(first.first_offset, first.last_offset + 1):
        queue._acks.add(first.base, offset)
    store.group.mark_dirty(queue)
    store.sync()
    store = FileMessageStore(str(tmp_path), segment_size=4096)
    queue = store.open_queue("/", "q")
    assert store.report.deleted_acked_segments == [first.path]
    assert not os.path.exists(first.path)
    assert len(queue) == 100 - first.count
    store.close()


def test_deleting_a_queue_removes_its_directory(tmp_path):
    store = FileMessageStore(str(tmp_path), segment_size=4096)
    queue = store.open_queue("/", "q")
    publish(queue, 10)
    store.sync()
    store.delete_queue("/", "q")
    assert not os.path.exists(queue.directory)
    assert os.listdir(os.path.join(str(tmp_path), "queues")) == []
    store.close()


def test_a_half_deleted_queue_is_finished_on_open(tmp_path):
    store = FileMessageStore(str(tmp_path), segment_size=4096)
    queue = store.open_queue("/", "q")
    publish(queue, 10)
    store.sync()
    store.close()
    os.replace(queue.directory, queue.directory + ".deleted")
    store = FileMessageStore(str(tmp_path), segment_size=4096)
    assert store.queues() == []
    assert os.listdir(os.path.join(str(tmp_path), "queues")) == []
    store.close()


def test_queue_names_that_are_not_file_names_work(tmp_path):
    store = FileMessageStore(str(tmp_path))
    name = "a/b/../c\u00e9" + "x" * 240
    publish(store.open_queue("/", name), 1)
    store.sync()
    store.close()
    store = FileMessageStore(str(tmp_path))
    assert store.queues() == [("/", name)]
    store.close()
