"""A start after a clean close trusts the clean-shutdown index; anything else gets the full scan."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from leveret.amqp.properties import BasicProperties
from leveret.broker import Channel, Message
from leveret.clock import ManualClock
from leveret.durable import DurableBroker
from leveret.store.filestore import FileMessageStore
from leveret.store.queue_store import FileQueueStore
from leveret.store.format import CLEAN_INDEX_NAME
from leveret.store.memory import MemoryDefinitionStore, MemoryQueueStore

from tests.broker.conftest import CODEC, RecordingTarget

SEGMENT = 4096  # a few dozen records per segment, so every test spans several segments


def body(i: int) -> bytes:
    return b"m%05d" % i + b"." * (i % 37)


def fill(directory, n=200, acked=(0, 3, 50, 51, 52, 120, 199)):
    """A queue with `n` messages (varied body sizes, several segments) and some acked."""
    queue = FileQueueStore(str(directory), segment_size=SEGMENT)
    for i in range(n):
        queue.append("ex", "rk", b"\x10\x00\x02", body(i), 1000 + i)
    for offset in acked:
        assert queue.ack(offset)
    return queue


def expected_index(n=200, acked=(0, 3, 50, 51, 52, 120, 199)):
    return [(i, len(body(i)), 1000 + i) for i in range(n) if i not in acked]


def crash(queue: FileQueueStore) -> None:
    """Make what was written durable, then drop the store without a clean close."""
    for fd in queue.dup_data_fds() + queue.dup_derived_fds():
        os.fsync(fd)
        os.close(fd)
    queue.log.close()


def segment_paths(directory):
    return sorted(str(directory / name) for name in os.listdir(directory) if name.endswith(".seg"))


def test_open_after_a_clean_close_skips_the_scan_and_yields_the_same_unacked_index(tmp_path):
    fill(tmp_path).close()
    assert (tmp_path / CLEAN_INDEX_NAME).exists()
    queue = FileQueueStore(str(tmp_path), segment_size=SEGMENT)
    report = queue.report
    assert report.trusted_clean_indexes == 1 and report.rejected_clean_indexes == []
    assert report.segments == len(segment_paths(tmp_path)) > 3
    assert report.records == 200 and report.ack_records == 7 and report.clean
    assert len(queue) == 193
    assert list(queue.recover_index()) == expected_index()
    assert [o for o, _ in queue.recover()] == [o for o, _, _ in expected_index()]
    queue.close()


def test_the_clean_index_is_deleted_by_the_open_so_a_crash_after_it_gets_the_full_scan(tmp_path):
    fill(tmp_path).close()
    queue = FileQueueStore(str(tmp_path), segment_size=SEGMENT)
    assert not (tmp_path / CLEAN_INDEX_NAME).exists()
    crash(queue)
    again = FileQueueStore(str(tmp_path), segment_size=SEGMENT)
    assert again.report.trusted_clean_indexes == 0 and again.report.records == 200
    assert list(again.recover_index()) == expected_index()
    again.close()


def test_reads_appends_and_rolls_after_a_clean_open_work_with_the_lazily_built_sparse_index(tmp_path):
    fill(tmp_path).close()
    queue = FileQueueStore(str(tmp_path), segment_size=SEGMENT)
    assert queue.read(137).body == body(137)
    assert [m.offset for m in queue.read_batch(118, 4)] == [118, 119, 121, 122]
    for i in range(200, 300):
        assert queue.append("ex", "rk", b"", body(i), 1000 + i) == i
    assert queue.read(250).body == body(250) and queue.read(198).body == body(198)
    assert queue.log.seek_time(1000 + 175) == 175
    acked = (0, 3, 50, 51, 52, 120, 199)
    assert [o for o, _ in queue.recover()] == [i for i in range(300) if i not in acked]
    queue.close()


def test_a_segment_whose_size_changed_makes_the_open_ignore_the_clean_index_and_scan(tmp_path):
    fill(tmp_path).close()
    last = segment_paths(tmp_path)[-1]
    with open(last, "ab") as f:
        f.write(b"\x00" * 100)  # a torn append after the clean close
    queue = FileQueueStore(str(tmp_path), segment_size=SEGMENT)
    report = queue.report
    assert report.trusted_clean_indexes == 0
    assert [d.reason for d in report.rejected_clean_indexes] == [
        "file sizes or modification times differ from the clean index"]
    assert len(report.torn_tails) == 1  # the scan ran and repaired it
    assert list(queue.recover_index()) == expected_index()
    queue.close()


def test_a_segment_rewritten_in_place_with_the_same_size_is_caught_by_its_modification_time(tmp_path):
    fill(tmp_path).close()
    first = segment_paths(tmp_path)[0]
    before = os.stat(first)
    with open(first, "r+b") as f:
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 0xFF]))
    # Kernels with coarse timestamps may keep the old mtime for a write this quick; a real rewrite
    # happens later than that. Make the time move the way it does in practice.
    os.utime(first, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    queue = FileQueueStore(str(tmp_path), segment_size=SEGMENT)
    assert queue.report.trusted_clean_indexes == 0 and len(queue.report.rejected_clean_indexes) == 1
    assert queue.report.corrupt_records  # the scan found the damage the index could not know about
    queue.close()


def test_a_damaged_clean_index_is_ignored_and_the_full_scan_gives_identical_results(tmp_path):
    fill(tmp_path).close()
    path = tmp_path / CLEAN_INDEX_NAME
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    queue = FileQueueStore(str(tmp_path), segment_size=SEGMENT)
    report = queue.report
    assert report.trusted_clean_indexes == 0
    assert [d.reason for d in report.rejected_clean_indexes] == ["clean index checksum mismatch"]
    assert report.records == 200 and list(queue.recover_index()) == expected_index()
    assert not path.exists()
    queue.close()


@pytest.mark.parametrize("keep", [0, 10, 31])
def test_a_truncated_clean_index_is_ignored(tmp_path, keep):
    fill(tmp_path).close()
    path = tmp_path / CLEAN_INDEX_NAME
    path.write_bytes(path.read_bytes()[:keep])
    queue = FileQueueStore(str(tmp_path), segment_size=SEGMENT)
    assert queue.report.trusted_clean_indexes == 0 and len(queue.report.rejected_clean_indexes) == 1
    assert list(queue.recover_index()) == expected_index()
    queue.close()


def test_acks_written_after_a_clean_open_are_honoured_by_the_next_clean_open(tmp_path):
    fill(tmp_path).close()
    queue = FileQueueStore(str(tmp_path), segment_size=SEGMENT)
    for offset in (1, 2, 150):
        assert queue.ack(offset)
    queue.close()
    again = FileQueueStore(str(tmp_path), segment_size=SEGMENT)
    assert again.report.trusted_clean_indexes == 1
    acked = (0, 1, 2, 3, 50, 51, 52, 120, 150, 199)
    assert list(again.recover_index()) == expected_index(acked=acked)
    assert len(again) == 190
    again.close()


def test_acks_written_after_a_clean_open_are_honoured_after_a_crash(tmp_path):
    fill(tmp_path).close()
    queue = FileQueueStore(str(tmp_path), segment_size=SEGMENT)
    for offset in (1, 2, 150):
        queue.ack(offset)
    crash(queue)
    again = FileQueueStore(str(tmp_path), segment_size=SEGMENT)
    assert again.report.trusted_clean_indexes == 0
    assert list(again.recover_index()) == expected_index(acked=(0, 1, 2, 3, 50, 51, 52, 120, 150, 199))
    again.close()


def test_an_ack_file_changed_after_the_clean_close_makes_the_open_scan(tmp_path):
    fill(tmp_path).close()
    ack = sorted(n for n in os.listdir(tmp_path) if n.endswith(".ack"))[0]
    os.unlink(tmp_path / ack)  # acks lost: their messages must come back (at-least-once)
    queue = FileQueueStore(str(tmp_path), segment_size=SEGMENT)
    assert queue.report.trusted_clean_indexes == 0
    assert [o for o, _, _ in queue.recover_index()][:2] == [0, 1]
    queue.close()


def test_a_start_after_a_crash_scans_and_recover_index_matches_recover(tmp_path):
    queue = fill(tmp_path)
    crash(queue)
    assert not (tmp_path / CLEAN_INDEX_NAME).exists()
    again = FileQueueStore(str(tmp_path), segment_size=SEGMENT)
    assert again.report.trusted_clean_indexes == 0 and again.report.rejected_clean_indexes == []
    index = list(again.recover_index())
    assert index == expected_index()
    assert index == [(o, len(m.body), m.timestamp) for o, m in again.recover()]
    again.close()


def test_recover_index_after_appends_since_the_clean_open_includes_them(tmp_path):
    fill(tmp_path).close()
    queue = FileQueueStore(str(tmp_path), segment_size=SEGMENT)
    queue.append("ex", "rk", b"", b"late", 7)
    assert list(queue.recover_index())[-1] == (200, 4, 7)
    queue.close()


def test_an_empty_queue_round_trips_through_a_clean_close(tmp_path):
    FileQueueStore(str(tmp_path)).close()
    queue = FileQueueStore(str(tmp_path))
    assert queue.report.trusted_clean_indexes == 1 and list(queue.recover_index()) == []
    assert queue.append("ex", "rk", b"", b"first", 1) == 0
    queue.close()


def test_the_memory_twin_recover_index_lists_unacked_messages_in_order():
    queue = MemoryQueueStore()
    for i in range(5):
        queue.append("ex", "rk", b"", body(i), 1000 + i)
    queue.ack(2)
    assert list(queue.recover_index()) == [(i, len(body(i)), 1000 + i) for i in (0, 1, 3, 4)]


@pytest.mark.parametrize("clean", [True, False])
def test_a_broker_restores_a_deep_backlog_from_the_index_in_order_with_bodies(tmp_path, clean):
    definitions = MemoryDefinitionStore()

    def start(store):
        node = DurableBroker(definitions, store, CODEC, clock=ManualClock(), window_count=7)
        return node.broker, node

    store = FileMessageStore(str(tmp_path), segment_size=SEGMENT)
    broker, _ = start(store)
    vhost = broker.vhost("/")
    vhost.declare_queue("deep", durable=True)
    bodies = [body(i) for i in range(120)]
    for b in bodies:
        vhost.publish("", "deep", Message("", "deep", BasicProperties(delivery_mode=2), b))
    store.sync()
    if clean:
        store.close()
    else:
        crash(store.open_queue("/", "deep"))
    store = FileMessageStore(str(tmp_path), segment_size=SEGMENT)
    broker, persistence = start(store)
    result = persistence.recover(delivered={} if clean else None)
    assert result.messages == 120
    assert store.report.trusted_clean_indexes == (1 if clean else 0)
    channel = Channel(broker.vhost("/"), RecordingTarget(), owner="conn")
    got = []
    while (item := channel.get("deep", no_ack=True)) is not None:
        got.append(item[2].body)
    assert got == bodies
    store.close()


def test_a_segment_left_empty_by_a_recovered_torn_tail_closes_cleanly_and_reopens(tmp_path):
    # Regression: an empty segment's minimum timestamp (no records) did not fit clean.idx (struct.error).
    store = FileMessageStore(str(tmp_path))
    queue = store.open_queue("/", "q")
    queue.append("", "q", b"\x00\x00", b"hello", 1)
    store.sync()
    store.close()
    (segment,) = segment_paths(Path(queue.directory))
    os.truncate(segment, os.path.getsize(segment) - 20)
    store = FileMessageStore(str(tmp_path))
    queue = store.open_queue("/", "q")
    assert len(queue) == 0 and queue.report.torn_tails
    store.close()
    store = FileMessageStore(str(tmp_path))
    queue = store.open_queue("/", "q")
    assert queue.report.trusted_clean_indexes == 1 and len(queue) == 0
    assert queue.append("", "q", b"\x00\x00", b"again", 2) == 0
    store.sync()
    assert [m.body for _, m in queue.recover()] == [b"again"]
    store.close()
