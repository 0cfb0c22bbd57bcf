"""Crash shapes: what recovery finds on disk, what it repairs, and what it reports."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leveret.store.format import ACK_RECORD, RECORD_HEADER, RECORD_OVERHEAD, SEGMENT_HEADER, encode_ack
from leveret.store.queue_store import FileQueueStore
from leveret.store.log import Log

PAYLOAD = 100
RECORD = RECORD_OVERHEAD + PAYLOAD


def build_log(path, n, segment_size=1 << 20):
    log = Log(str(path), segment_size=segment_size)
    for i in range(n):
        log.append(bytes([i]) * PAYLOAD, 1000 + i)
    log.sync()
    log.close()
    return log


def record_position(i):
    return SEGMENT_HEADER.size + i * RECORD


def first_segment(path):
    return os.path.join(str(path), "00000000000000000000.seg")


def test_truncated_tail_is_copied_aside_then_cut_off(tmp_path):
    build_log(tmp_path, 10)
    seg = first_segment(tmp_path)
    torn_at = record_position(9) + 20
    os.truncate(seg, torn_at)
    log = Log(str(tmp_path))
    report = log.report
    assert [r.offset for r in log.iterate()] == list(range(9))
    assert os.path.getsize(seg) == record_position(9)
    assert len(report.torn_tails) == 1
    damage = report.torn_tails[0]
    assert (damage.file, damage.position, damage.length) == (seg, record_position(9), 20)
    with open(report.torn_copies[0], "rb") as f:
        assert len(f.read()) == 20
    assert log.append(b"after", 1) == 9  # the lost, never-confirmed offset is reused
    log.close()


def test_zero_filled_tail_counts_as_torn_not_corrupt(tmp_path):
    build_log(tmp_path, 5)
    with open(first_segment(tmp_path), "ab") as f:
        f.write(b"\x00" * 4096)
    log = Log(str(tmp_path))
    assert log.report.corrupt_records == [] and log.report.torn_tails[0].length == 4096
    assert log.next_offset == 5
    log.close()


@pytest.mark.parametrize("where", [3, RECORD_HEADER.size + 10, RECORD - 2], ids=["header", "payload", "trailer"])
def test_flipped_byte_in_a_middle_record_skips_only_that_record(tmp_path, where):
    build_log(tmp_path, 10)
    seg = first_segment(tmp_path)
    with open(seg, "r+b") as f:
        f.seek(record_position(4) + where)
        byte = f.read(1)
        f.seek(record_position(4) + where)
        f.write(bytes([byte[0] ^ 0x40]))
    log = Log(str(tmp_path))
    assert [r.offset for r in log.iterate()] == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert [(d.file, d.position, d.length) for d in log.report.corrupt_records] == [(seg, record_position(4), RECORD)]
    assert log.report.torn_tails == [] and log.report.records == 9
    with pytest.raises(KeyError):
        log.read(4)
    assert log.next_offset == 10
    log.close()


def test_corrupt_last_segment_header_moves_the_file_aside(tmp_path):
    build_log(tmp_path, 10, segment_size=512)
    log = Log(str(tmp_path), segment_size=512)
    last = log.segments[-1].path
    log.close()
    with open(last, "r+b") as f:
        f.write(b"XXXX")
    log = Log(str(tmp_path), segment_size=512)
    assert log.report.unreadable_segments == [last]
    assert not os.path.exists(last) and os.path.exists(log.report.torn_copies[0])
    log.close()


def test_segment_with_only_part_of_its_header_is_restored_empty(tmp_path):
    os.makedirs(tmp_path / "l")
    with open(tmp_path / "l" / "00000000000000000007.seg", "wb") as f:
        f.write(b"LVS")
    log = Log(str(tmp_path / "l"))
    assert log.next_offset == 7 and len(log.report.torn_tails) == 1
    assert log.append(b"x", 0) == 7
    log.close()


def test_stale_tmp_files_are_removed(tmp_path):
    build_log(tmp_path, 2)
    stale = tmp_path / "00000000000000000000.ack.tmp"
    stale.write_bytes(b"half")
    log = Log(str(tmp_path))
    assert log.report.stale_tmp_files == [str(stale)] and not stale.exists()
    log.close()


def queue_with_acks(path, n=10, acked=(1, 2)):
    queue = FileQueueStore(str(path))
    for i in range(n):
        queue.append("ex", "rk", b"", bytes([i]) * 10, i)
    for offset in acked:
        queue.ack(offset)
    for fd in queue.dup_data_fds() + queue.dup_derived_fds():
        os.close(fd)
    queue.close()
    return os.path.join(str(path), "00000000000000000000.ack")


def test_torn_ack_file_tail_is_cut_and_complete_acks_kept(tmp_path):
    ack = queue_with_acks(tmp_path)
    with open(ack, "ab") as f:
        f.write(encode_ack(5)[:7])
    queue = FileQueueStore(str(tmp_path))
    assert queue.report.torn_ack_bytes == 7
    assert [o for o, _ in queue.recover()] == [0, 3, 4, 5, 6, 7, 8, 9]
    assert os.path.getsize(ack) == 2 * ACK_RECORD.size
    queue.close()


def test_ack_record_with_bad_checksum_is_dropped(tmp_path):
    ack = queue_with_acks(tmp_path)
    with open(ack, "r+b") as f:
        f.seek(ACK_RECORD.size + 9)
        f.write(b"\xff")
    queue = FileQueueStore(str(tmp_path))
    assert queue.report.corrupt_acks == 1
    assert [o for o, _ in queue.recover()] == [0, 2, 3, 4, 5, 6, 7, 8, 9]
    queue.close()


def test_ack_file_without_a_segment_is_removed(tmp_path):
    queue_with_acks(tmp_path)
    orphan = tmp_path / "00000000000000000500.ack"
    orphan.write_bytes(encode_ack(500))
    queue = FileQueueStore(str(tmp_path))
    assert queue.report.orphaned_ack_files == [str(orphan)] and not orphan.exists()
    queue.close()


def test_acks_past_the_recovered_end_are_pruned_so_reused_offsets_stay_unacked(tmp_path):
    ack = queue_with_acks(tmp_path, n=10, acked=(1, 9))
    seg = first_segment(tmp_path)
    os.truncate(seg, os.path.getsize(seg) - 5)  # record 9 is torn away, its ack survived
    queue = FileQueueStore(str(tmp_path))
    assert queue.report.orphaned_acks == 1 and len(queue.report.torn_tails) == 1
    assert queue.append("ex", "rk", b"", b"new", 0) == 9
    assert [o for o, _ in queue.recover()][-1] == 9
    assert os.path.getsize(ack) == ACK_RECORD.size
    queue.close()


def test_report_counts_a_clean_directory(tmp_path):
    queue_with_acks(tmp_path)
    queue = FileQueueStore(str(tmp_path))
    report = queue.report
    assert report.clean
    assert (report.segments, report.records, report.ack_records) == (1, 10, 2)
    assert report.bytes == os.path.getsize(first_segment(tmp_path))
    queue.close()


def test_damage_throughout_a_file_never_raises(tmp_path):
    build_log(tmp_path, 50)
    seg = first_segment(tmp_path)
    data = bytearray(open(seg, "rb").read())
    for pos in range(SEGMENT_HEADER.size + 7, len(data), 397):
        data[pos] ^= 0x5A
    open(seg, "wb").write(bytes(data))
    log = Log(str(tmp_path))
    offsets = [r.offset for r in log.iterate()]
    assert offsets == sorted(set(offsets)) and len(offsets) < 50
    assert log.report.corrupt_records or log.report.torn_tails
    log.append(b"still works", 0)
    log.close()


def test_records_larger_than_the_scan_chunk_and_chunk_crossings_recover_clean(tmp_path):
    log = Log(str(tmp_path), segment_size=1 << 30)
    sizes = [100, 1_500_000, 100, 700_000, 700_000, 100, 3_000_000, 5]
    for i, size in enumerate(sizes):
        log.append(bytes([i]) * size, i)
    log.sync()
    log.close()
    again = Log(str(tmp_path))
    assert again.report.clean and again.report.records == len(sizes)
    assert [len(r.payload) for r in again.iterate()] == sizes
    assert again.read(6).payload == bytes([6]) * 3_000_000
    again.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(min_value=0, max_value=60 * RECORD),
    flips=st.lists(st.tuples(st.integers(min_value=0, max_value=40 * RECORD), st.integers(1, 255)), max_size=4),
)
def test_any_truncation_and_bit_flips_recover_to_intact_records_in_order(tmp_path_factory, cut, flips):
    path = tmp_path_factory.mktemp("fuzz")
    build_log(path, 40)
    seg = first_segment(path)
    data = bytearray(open(seg, "rb").read())
    for pos, mask in flips:
        if SEGMENT_HEADER.size <= pos < len(data):
            data[pos] ^= mask
    del data[max(cut, SEGMENT_HEADER.size) :]
    open(seg, "wb").write(bytes(data))
    log = Log(str(path))
    records = list(log.iterate())
    assert [r.offset for r in records] == sorted({r.offset for r in records})
    assert all(r.payload == bytes([r.offset]) * PAYLOAD and r.timestamp == 1000 + r.offset for r in records)
    assert log.next_offset == (records[-1].offset + 1 if records else 0)
    assert log.append(b"after", 0) == log.next_offset - 1
    log.close()
