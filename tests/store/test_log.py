"""The segmented log: appends, rolls, reads, seeks, retention and reopening."""

from __future__ import annotations

import os

import pytest

from leveret.store.format import SEGMENT_HEADER
from leveret.store.log import Log


@pytest.fixture
def log(tmp_path):
    log = Log(str(tmp_path / "log"), segment_size=4096)
    yield log
    log.close()


def fill(log, n, size=100, ts0=1000):
    return [log.append(bytes([i % 256]) * size, ts0 + i) for i in range(n)]


def test_appends_get_monotonic_offsets_from_zero(log):
    assert fill(log, 5) == [0, 1, 2, 3, 4]
    assert log.next_offset == 5 and log.first_offset == 0


def test_read_returns_the_record_appended_at_that_offset(log):
    fill(log, 300)
    record = log.read(217)
    assert record.offset == 217 and record.timestamp == 1217 and record.payload == bytes([217]) * 100


def test_read_of_an_offset_never_written_raises_key_error(log):
    fill(log, 3)
    with pytest.raises(KeyError):
        log.read(3)


def test_segments_roll_at_the_size_limit_and_are_named_by_base_offset(log):
    fill(log, 300)
    names = sorted(os.listdir(log.directory))
    assert len(names) > 5
    assert names[0] == "00000000000000000000.seg"
    for segment in log.segments:
        assert os.path.basename(segment.path) == f"{segment.base:020d}.seg"
        assert segment.size <= 4096
    log.sync()
    assert all(os.path.getsize(s.path) == s.size for s in log.segments)


def test_a_record_larger_than_a_segment_gets_a_segment_of_its_own(log):
    fill(log, 2)
    big = log.append(b"x" * 10_000, 5)
    fill(log, 1)
    assert log.read(big).payload == b"x" * 10_000
    assert log.segment_for(big).count == 1


def test_iterate_from_an_offset_yields_every_later_record_in_order(log):
    fill(log, 300)
    assert [r.offset for r in log.iterate(123)] == list(range(123, 300))
    assert [r.offset for r in log.iterate()] == list(range(300))


def test_iterate_streams_with_a_small_read_chunk(log):
    fill(log, 50, size=1000)
    segment = log.segments[0]
    assert [r.offset for r in segment.iterate(SEGMENT_HEADER.size, chunk=64)] == list(
        range(segment.first_offset, segment.last_offset + 1)
    )


def test_seek_by_offset_starts_from_the_sparse_index_not_the_segment_start(tmp_path):
    log = Log(str(tmp_path / "big"), segment_size=1 << 20)
    fill(log, 5000, size=50)
    segment = log.segments[0]
    assert len(segment.index) > 10
    entry_offset, position = segment.index.floor_offset(4000)
    assert entry_offset <= 4000 and position > SEGMENT_HEADER.size
    assert 4000 - entry_offset < 100  # at most one index interval of records to scan
    assert log.read(4000).offset == 4000
    log.close()


def test_seek_time_finds_the_first_record_at_or_after_a_timestamp(log):
    fill(log, 300, ts0=10_000)
    assert log.seek_time(10_150) == 150
    assert log.seek_time(0) == 0
    assert log.seek_time(99_999) == log.next_offset


def test_seek_time_copes_with_timestamps_out_of_order(log):
    for ts in [100, 300, 200, 400, 250, 500]:
        log.append(b"x", ts)
    assert log.seek_time(250) == 1
    assert log.seek_time(450) == 5


def test_sync_reports_the_segments_it_covered_and_then_nothing(log):
    fill(log, 100)
    first = log.sync()
    assert first.next_offset == 100 and first.segments == tuple(s.base for s in log.segments)
    assert log.sync().segments == ()
    log.append(b"late", 1)
    assert log.sync().segments == (log.segments[-1].base,)


def test_drop_head_segments_by_size_keeps_the_newest(log):
    fill(log, 300)
    dropped = log.drop_head_segments(max_bytes=3 * 4096)
    assert dropped and dropped == sorted(dropped)
    assert log.size_bytes <= 3 * 4096
    assert log.first_offset == log.segments[0].base
    assert not any(os.path.exists(os.path.join(log.directory, f"{b:020d}.seg")) for b in dropped)
    assert [r.offset for r in log.iterate()][-1] == 299


def test_drop_head_segments_by_offset_and_age(log):
    fill(log, 300, ts0=0)
    log.drop_head_segments(before_offset=100)
    assert log.first_offset <= 100 < log.segments[1].base
    cutoff = 200
    log.drop_head_segments(before_timestamp=cutoff)
    assert log.segments[0].max_ts >= cutoff


def test_drop_head_never_drops_the_active_segment(log):
    fill(log, 300)
    log.drop_head_segments(max_bytes=0)
    assert len(log.segments) == 1
    assert log.append(b"next", 1) == 300


def test_reopened_log_continues_offsets_and_reads_everything(tmp_path):
    log = Log(str(tmp_path / "l"), segment_size=4096)
    fill(log, 150)
    log.sync()
    log.close()
    again = Log(str(tmp_path / "l"), segment_size=4096)
    assert again.report.clean and again.report.records == 150
    assert again.append(b"more", 1) == 150
    assert [r.offset for r in again.iterate()] == list(range(151))
    assert again.seek_time(1100) == 100
    again.close()


def test_reopening_after_head_drop_keeps_the_offset_position(tmp_path):
    log = Log(str(tmp_path / "l"), segment_size=4096)
    fill(log, 300)
    log.drop_head_segments(max_segments=1)
    log.sync()
    log.close()
    again = Log(str(tmp_path / "l"), segment_size=4096)
    assert again.next_offset == 300 and again.first_offset > 0
    again.close()
