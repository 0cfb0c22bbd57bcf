"""Streams holding Kafka record batches whole (store/format.py KIND_BATCH): one entry spanning many offsets.

The file store and its memory twin are held to one contract (offsets, reads from inside a batch, retention,
chunks), the file store also to recovery: a batch survives a reopen, and a batch torn by a crash is cut
whole by its checksums, the next append taking its offsets again. The AMQP side (consumers reading records
out of stored batches) is in test_batch_consumers.py.
"""

from __future__ import annotations

import os

import pytest

from leveret.kafka.records import encode_batch, encode_record
from leveret.kafka.stored import messages_of
from leveret.store.api import BATCH_FORMAT_KAFKA, StoredBatch, StoredMessage
from leveret.store.filestore import FileMessageStore
from leveret.store.memory import MemoryMessageStore
from leveret.store.stream import FileStreamStore


@pytest.fixture(params=["file", "memory"])
def stores(request, tmp_path):
    store = FileMessageStore(str(tmp_path)) if request.param == "file" else MemoryMessageStore()
    yield store
    store.close()


def kafka_batch(values: list[bytes], key: bytes | None = b"k") -> bytes:
    body = bytearray()
    for i, value in enumerate(values):
        encode_record(body, i, i, key, value, [("h", b"v")])
    return encode_batch(0, 1_700_000_000_000, 1_700_000_000_000 + len(values), len(values), len(values) - 1, body)


def add_batch(stream, values: list[bytes], timestamp: int = 1000) -> int:
    return stream.append_batch("topic", len(values), BATCH_FORMAT_KAFKA, [kafka_batch(values)], timestamp)


def spans(entries) -> list[tuple[int, int]]:
    return [(e.offset, e.span if type(e) is StoredBatch else 1) for e in entries]


def test_a_batch_takes_its_records_offsets_and_reads_whole_from_any_of_them(stores) -> None:
    stream = stores.open_stream("/", "s")
    stream.append("ex", "rk", b"", b"m0", 1000)
    assert add_batch(stream, [b"a", b"b", b"c"]) == 1
    stream.append("ex", "rk", b"", b"m4", 1001)
    assert (stream.first_offset, stream.next_offset) == (0, 5)
    assert spans(stream.read_from(0)) == [(0, 1), (1, 3), (4, 1)]
    assert spans(stream.read_from(2)) == [(1, 3), (4, 1)]
    assert spans(stream.read_from(3)) == [(1, 3), (4, 1)]
    assert spans(stream.read_from(4)) == [(4, 1)]
    (batch,) = [e for e in stream.read_from(1) if type(e) is StoredBatch]
    assert batch.exchange == "topic" and batch.batch_format == BATCH_FORMAT_KAFKA
    assert bytes(batch.data) == kafka_batch([b"a", b"b", b"c"])


def test_retention_drops_segments_of_batches_and_the_first_offset_is_a_batch_base(stores) -> None:
    stream = stores.open_stream("/", "s", segment_size=4096, max_bytes=9000)
    bases = [add_batch(stream, [b"x" * 300] * 4, 1000 + i) for i in range(20)]
    assert bases == list(range(0, 80, 4)) and stream.next_offset == 80
    assert stream.first_offset in bases and stream.first_offset > 0
    assert spans(stream.read_from(0))[0] == (stream.first_offset, 4)


def test_a_chunk_starts_at_a_batch_base(stores) -> None:
    stream = stores.open_stream("/", "s")
    add_batch(stream, [b"a", b"b"])
    stores.sync()
    add_batch(stream, [b"c", b"d", b"e"])
    add_batch(stream, [b"f"])
    assert stream.last_chunk_offset == 2


def test_messages_of_a_batch_are_the_records_mapped_at_their_offsets() -> None:
    batch = StoredBatch(10, 5000, 0, "topic", 3, BATCH_FORMAT_KAFKA, kafka_batch([b"a", b"b", b"c"]))
    messages = messages_of(batch)
    assert [(m.offset, m.body, m.routing_key, m.exchange, m.timestamp) for m in messages if m] == [
        (10, b"a", "k", "topic", 5000), (11, b"b", "k", "topic", 5000), (12, b"c", "k", "topic", 5000)]
    assert all(type(m) is StoredMessage for m in messages)
    damaged = batch._replace(data=batch.data[:-3])
    assert messages_of(damaged) == [None, None, None]


def test_batches_survive_a_reopen_with_their_spans(tmp_path) -> None:
    directory = str(tmp_path / "s")
    stream = FileStreamStore(directory)
    add_batch(stream, [b"a", b"b"])
    stream.append("ex", "rk", b"", b"m", 1000)
    add_batch(stream, [b"c", b"d", b"e"])
    stream.sync()
    stream.close()
    again = FileStreamStore(directory)
    assert (again.first_offset, again.next_offset) == (0, 6)
    assert spans(again.read_from(4)) == [(3, 3)]
    assert again.append("ex", "rk", b"", b"after", 1000) == 6
    assert not again.report.corrupt_records
    again.close()


def test_a_batch_torn_by_a_crash_is_cut_whole_and_its_offsets_are_taken_again(tmp_path) -> None:
    directory = str(tmp_path / "s")
    stream = FileStreamStore(directory)
    add_batch(stream, [b"a", b"b"])
    stream.sync()
    add_batch(stream, [b"c" * 500, b"d" * 500, b"e" * 500])
    stream.sync()
    (segment,) = stream.log.segments
    path = segment.path
    stream.close()
    size = os.path.getsize(path)
    os.truncate(path, size - 700)  # the crash tore the second batch's record
    again = FileStreamStore(directory)
    assert again.report.torn_tails
    assert (again.first_offset, again.next_offset) == (0, 2)
    assert spans(again.read_from(0)) == [(0, 2)]
    assert add_batch(again, [b"f"]) == 2
    again.close()


def test_a_damaged_batch_in_the_middle_is_skipped_and_later_records_keep_their_offsets(tmp_path) -> None:
    directory = str(tmp_path / "s")
    stream = FileStreamStore(directory)
    add_batch(stream, [b"a", b"b"])
    add_batch(stream, [b"c" * 200, b"d" * 200, b"e" * 200])
    add_batch(stream, [b"f"])
    stream.sync()
    (segment,) = stream.log.segments
    path = segment.path
    stream.close()
    with open(path, "r+b") as f:
        data = f.read()
        f.seek(data.index(b"d" * 200) + 50)
        f.write(b"Z")  # flips payload bytes of the middle batch: its record checksum fails
    again = FileStreamStore(directory)
    assert again.report.corrupt_records
    assert again.next_offset == 6
    assert spans(again.read_from(0)) == [(0, 2), (5, 1)]
    again.close()


def test_a_large_batch_whose_write_fails_is_rolled_back_and_the_log_stays_whole(tmp_path) -> None:
    from tests.faults.faultyio import FaultyIO

    io = FaultyIO()
    directory = str(tmp_path / "s")
    stream = FileStreamStore(directory, io=io)
    add_batch(stream, [b"a", b"b"])
    stream.sync()
    io.arm("write", skip=1)  # the record header goes through, the next piece fails half-way
    with pytest.raises(OSError):
        add_batch(stream, [b"c" * 40_000, b"d" * 40_000])
    assert [site for kind, site in io.fired] == ["leveret/store/segment.py:_append_large"]
    assert add_batch(stream, [b"e" * 70_000]) == 4  # offsets are not reused while the process runs
    stream.sync()
    stream.close()
    again = FileStreamStore(directory)
    assert spans(again.read_from(0)) == [(0, 2), (4, 1)]
    assert not again.report.corrupt_records and not again.report.torn_tails
    again.close()
