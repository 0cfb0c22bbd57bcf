"""Stream storage: the file store and its memory twin held to one contract, plus the file-only parts.

Contract: offsets from 0, reading from any offset in order, seeking by time, "last" chunk boundaries
set by commits, retention dropping whole head segments (by bytes and by age, never the active one),
tracked consumer offsets. File only: bounded-memory reads, durability across reopen, torn offsets
file, and the message store's open_stream / delete_stream sharing the queues' group commit.
"""

from __future__ import annotations

import os
import tracemalloc

import pytest

from leveret.store.filestore import STREAMS_DIR, FileMessageStore
from leveret.store.memory import MemoryMessageStore
from leveret.store.stream import OFFSETS_FILE, FileStreamStore

BODY = b"x" * 100


@pytest.fixture(params=["file", "memory"])
def stores(request, tmp_path):
    """A message store of each kind; `open(**limits)` opens the stream under test, `commit()` commits."""
    if request.param == "file":
        store = FileMessageStore(str(tmp_path))
    else:
        store = MemoryMessageStore()
    yield store
    store.close()


def fill(stream, n: int, start_ts: int = 1000, step: int = 1) -> None:
    for i in range(n):
        stream.append("ex", "rk", b"\x00\x00", b"%06d" % i + BODY, start_ts + i * step)


def test_offsets_start_at_zero_and_read_back_in_order_from_any_offset(stores):
    stream = stores.open_stream("/", "s")
    fill(stream, 50)
    assert (stream.first_offset, stream.next_offset) == (0, 50)
    got = list(stream.read_from(0))
    assert [m.offset for m in got] == list(range(50))
    assert got[7].body.startswith(b"000007") and got[7].exchange == "ex" and got[7].routing_key == "rk"
    assert [m.offset for m in stream.read_from(45)] == [45, 46, 47, 48, 49]
    assert list(stream.read_from(50)) == []


def test_read_from_includes_messages_appended_while_reading(stores):
    stream = stores.open_stream("/", "s")
    fill(stream, 3)
    reader = stream.read_from(0)
    assert next(reader).offset == 0
    fill(stream, 2)
    assert [m.offset for m in reader] == [1, 2, 3, 4]


def test_seek_time_finds_first_message_at_or_after_the_time(stores):
    stream = stores.open_stream("/", "s", segment_size=2048)
    fill(stream, 100, start_ts=10_000, step=10)
    assert stream.seek_time(0) == 0
    assert stream.seek_time(10_505) == 51
    assert stream.seek_time(10_990) == 99
    assert stream.seek_time(99_999) == 100


def test_last_chunk_starts_at_first_append_after_a_commit(stores):
    stream = stores.open_stream("/", "s")
    fill(stream, 5)
    stores.sync()
    fill(stream, 3)
    assert stream.last_chunk_offset == 5
    stores.sync()
    fill(stream, 1)
    assert stream.last_chunk_offset == 8


def test_retention_by_bytes_drops_whole_head_segments_and_keeps_the_active_one(stores):
    stream = stores.open_stream("/", "s", segment_size=4096, max_bytes=10_000)
    fill(stream, 400)
    assert stream.size_bytes <= 10_000 + 4096
    assert stream.first_offset > 0
    first = stream.first_offset
    # whole segments: what is left starts at a segment boundary and runs to the end, without gaps
    assert [m.offset for m in stream.read_from(0)] == list(range(first, 400))


def test_retention_by_age_drops_segments_whose_newest_message_is_too_old(stores):
    stream = stores.open_stream("/", "s", segment_size=2048, max_age_ms=60_000)
    fill(stream, 60, start_ts=0, step=0)  # old
    fill(stream, 60, start_ts=1_000_000, step=0)  # new; each roll ran retention for "now" = 1_000_000
    assert stream.first_offset >= 40
    stream.apply_retention(1_000_000)
    kept = [m.offset for m in stream.read_from(0)]
    assert kept[-1] == 119 and kept == list(range(kept[0], 120))
    assert stream.apply_retention(10**12) and stream.segment_count == 1  # the active segment always stays


def test_reader_inside_a_dropped_segment_continues_at_first_kept_message(stores):
    stream = stores.open_stream("/", "s", segment_size=2048, max_bytes=6000)
    fill(stream, 10)
    reader = stream.read_from(0)
    assert next(reader).offset == 0
    fill(stream, 200)
    rest = [m.offset for m in reader]
    assert rest == sorted(rest) and rest[-1] == 209
    assert stream.first_offset <= rest[0] or rest[0] == 1


def test_tracked_offsets_are_remembered_per_consumer(stores):
    stream = stores.open_stream("/", "s")
    assert stream.tracked_offset("c1") is None
    stream.track_offset("c1", 5)
    stream.track_offset("c2", 9)
    stream.track_offset("c1", 7)
    assert (stream.tracked_offset("c1"), stream.tracked_offset("c2")) == (7, 9)


def test_delete_stream_removes_it(stores):
    stream = stores.open_stream("/", "s")
    fill(stream, 3)
    assert stores.streams() == [("/", "s")]
    stores.delete_stream("/", "s")
    assert stores.streams() == []
    assert stores.open_stream("/", "s").next_offset == 0


# -- file only -------------------------------------------------------------------------------------


def test_messages_chunks_and_tracked_offsets_survive_reopen(tmp_path):
    store = FileMessageStore(str(tmp_path))
    stream = store.open_stream("/", "s")
    fill(stream, 10)
    store.sync()
    fill(stream, 4)
    stream.track_offset("reader", 11)
    store.sync()
    store.close()
    store = FileMessageStore(str(tmp_path))
    stream = store.open_stream("/", "s")
    assert stream.next_offset == 14
    assert stream.last_chunk_offset == 10
    assert stream.tracked_offset("reader") == 11
    assert [m.offset for m in stream.read_from(12)] == [12, 13]
    store.close()


def test_stream_append_marks_the_shared_group_commit(tmp_path):
    store = FileMessageStore(str(tmp_path))
    stream = store.open_stream("/", "s")
    assert not store.commit_pending
    fill(stream, 1)
    assert store.commit_pending
    ticket = store.begin_commit()
    assert ticket.data_fds  # the stream's segment (and its new directory entry) are in this commit
    ticket.run()
    assert not store.commit_pending
    stream.track_offset("c", 0)
    assert store.commit_pending
    store.close()


def test_torn_offsets_tail_keeps_the_records_before_it(tmp_path):
    directory = str(tmp_path / "s")
    stream = FileStreamStore(directory)
    stream.track_offset("a", 1)
    stream.track_offset("b", 2)
    stream.sync()
    stream.close()
    path = os.path.join(directory, OFFSETS_FILE)
    with open(path, "ab") as f:
        f.write(b"\xa7\x01garbage")
    stream = FileStreamStore(directory)
    assert (stream.tracked_offset("a"), stream.tracked_offset("b")) == (1, 2)
    assert stream.report.torn_tails
    stream.close()


def test_reading_a_large_stream_from_first_uses_bounded_memory(tmp_path):
    stream = FileStreamStore(str(tmp_path / "s"), segment_size=1 << 20)
    body = b"y" * 4000
    for i in range(5000):  # about 20 MB on disk
        stream.append("", "s", b"\x00\x00", body, i)
    stream.sync()
    tracemalloc.start()
    count = 0
    for message in stream.read_from(0):
        count += 1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stream.close()
    assert count == 5000
    assert peak < 2 * 1024 * 1024, peak


def test_streams_live_apart_from_queues_and_are_deleted_whole(tmp_path):
    store = FileMessageStore(str(tmp_path))
    fill(store.open_stream("/", "s"), 3)
    store.sync()
    root = os.path.join(str(tmp_path), STREAMS_DIR)
    assert len(os.listdir(root)) == 1
    assert store.queues() == []
    store.delete_stream("/", "s")
    assert os.listdir(root) == []
    store.close()


def test_offsets_file_is_compacted_and_keeps_the_latest_offset_per_consumer(tmp_path, monkeypatch):
    import leveret.store.stream as stream_module

    monkeypatch.setattr(stream_module, "OFFSETS_COMPACT_BYTES", 4096)
    directory = str(tmp_path / "s")
    stream = FileStreamStore(directory)
    for i in range(300):  # about 34 bytes a record: two compactions on the way
        stream.track_offset(f"c{i % 3}", i)
        if i % 10 == 0:
            stream.sync()
    stream.sync()
    stream.close()
    assert os.path.getsize(os.path.join(directory, OFFSETS_FILE)) < 4096 + 200
    stream = FileStreamStore(directory)
    assert [stream.tracked_offset(f"c{k}") for k in range(3)] == [297, 298, 299]
    assert not stream.report.torn_tails
    stream.close()
