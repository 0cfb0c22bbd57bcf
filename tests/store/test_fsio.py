"""fsio: the one place store code writes files, and what the store does when a write or fsync fails."""

from __future__ import annotations

import ast
import errno
import logging
import os
import pathlib

import pytest

import leveret.store
from leveret.store.api import ExchangeDef, QueueDef
from leveret.store.definitions import FileDefinitionStore
from leveret.store.filestore import FileMessageStore
from leveret.store.fsio import FailureLog, FileIO
from leveret.store.segment import SEGMENT_HEADER
from tests.faults.faultyio import FaultyIO

STORE_DIR = pathlib.Path(leveret.store.__file__).parent
# os calls that write, sync, rename or truncate: only fsio.py may make them.
FORBIDDEN = {"write", "pwrite", "fsync", "fdatasync", "rename", "replace", "truncate", "ftruncate"}


def test_no_store_module_but_fsio_writes_syncs_renames_or_truncates_files_itself():
    offenders = []
    for path in sorted(STORE_DIR.glob("*.py")):
        if path.name == "fsio.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr in FORBIDDEN and isinstance(node.value, ast.Name)
                    and node.value.id == "os"):
                offenders.append(f"{path.name}:{node.lineno} os.{node.attr}")
    assert offenders == []


class TrickleIO(FileIO):
    """A kernel that takes at most three bytes per write."""

    def write(self, fd, data):
        return super().write(fd, bytes(data[:3]))


def test_write_all_loops_over_partial_writes(tmp_path):
    path = str(tmp_path / "f")
    TrickleIO().write_file(path, b"0123456789" * 10)
    assert open(path, "rb").read() == b"0123456789" * 10


def test_write_atomically_failing_leaves_the_old_file_and_no_tmp(tmp_path):
    io = FaultyIO()
    path = str(tmp_path / "f")
    io.write_atomically(path, b"old")
    io.arm("rename")
    with pytest.raises(OSError):
        io.write_atomically(path, b"new")
    assert open(path, "rb").read() == b"old"
    assert os.listdir(tmp_path) == ["f"]


def test_failure_log_is_one_line_per_event_and_rate_limited(caplog):
    now = [0.0]
    failures = FailureLog(interval=10.0, clock=lambda: now[0])
    exc = OSError(errno.ENOSPC, "No space left on device")
    with caplog.at_level(logging.ERROR, logger="leveret.store"):
        for _ in range(1000):
            failures.note("write to the message store", exc)
        now[0] = 11.0
        failures.note("write to the message store", exc)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "999 more" in lines[1]
    assert all("\n" not in line and r.exc_info is None for line, r in zip(lines, caplog.records))


def publish(queue, n, tag="m"):
    return [queue.append("ex", "rk", b"", f"{tag}{i}".encode() * 50, i) for i in range(n)]


def bodies(store, name="q"):
    queue = store.open_queue("/", name)
    return [bytes(m.body) for _o, m in queue.recover()]


@pytest.mark.parametrize("kind", ["write", "fsync"])
def test_a_failed_commit_rolls_back_its_records_and_the_next_commit_works_without_reopening(tmp_path, kind):
    io = FaultyIO()
    store = FileMessageStore(str(tmp_path), segment_size=1 << 20, file_io=io)
    queue = store.open_queue("/", "q")
    lost: list[int] = []
    queue.on_lost = lost.extend
    good = publish(queue, 10, "a")
    store.sync()
    failed = publish(queue, 10, "b")
    io.arm(kind)
    with pytest.raises(OSError):
        store.sync()
    assert sorted(lost) == failed
    assert len(queue) == 10
    later = publish(queue, 10, "c")
    store.sync()
    assert set(later).isdisjoint(failed)  # offsets are not reused while running
    assert [m.offset for _o, m in queue.recover()] == good + later
    store.close()
    again = FileMessageStore(str(tmp_path), segment_size=1 << 20)
    assert bodies(again) == [f"{t}{i}".encode() * 50 for t in "ac" for i in range(10)]
    assert again.report.corrupt_records == [] and again.report.torn_tails == []
    again.close()


@pytest.mark.parametrize("stage", ["open batch", "batch in flight"])
def test_acks_rolled_back_with_their_batch_are_reported_unacked_again_and_lost_records_are_not(tmp_path, stage):
    io = FaultyIO()
    store = FileMessageStore(str(tmp_path), segment_size=1 << 20, file_io=io)
    queue = store.open_queue("/", "q")
    lost: list[int] = []
    unacked: list[int] = []
    queue.on_lost = lost.extend
    queue.on_unacked = unacked.extend
    old = publish(queue, 4, "a")
    store.sync()
    assert queue.ack(old[1]) and queue.ack(old[3])
    new = publish(queue, 2, "b")
    assert queue.ack(new[0])  # appended and acked in the same batch: lost, not unacked again
    if stage == "open batch":
        io.arm("write")
    else:
        io.arm("fsync")
    with pytest.raises(OSError):
        store.sync()
    assert sorted(lost) == new
    assert unacked == [old[1], old[3]]
    assert len(queue) == 4
    assert [m.offset for _o, m in queue.recover()] == old
    store.close()


def test_a_segment_emptied_by_acks_of_the_open_batch_outlives_the_commit_in_flight(tmp_path):
    """Acks that arrive while a commit is in flight ride the next one. If they empty a segment, it may only go
    once *their* commit is durable: the commit in flight completing is not enough, or a failure of the next
    one (which rolls those acks back, e.g. with dead-lettered copies) would find the records deleted."""
    io = FaultyIO()
    store = FileMessageStore(str(tmp_path), segment_size=4096, file_io=io)
    queue, dlq = store.open_queue("/", "q"), store.open_queue("/", "dlq")
    first: list[int] = []
    while len(queue.log.segments) < 2:
        first += publish(queue, 8, "a")
    store.sync()
    emptied = [o for o in first if queue.log.segment_for(o) is queue.log.segments[0]]
    publish(queue, 1, "b")
    ticket = store.begin_commit()  # a commit in flight, with this queue in it
    for offset in emptied:
        publish(dlq, 1, "copy")  # as dead-lettering does: the copy, then the ack, in the open batch
        assert queue.ack(offset)  # ... which empties segment 0
    ticket.run()
    store.end_commit(ticket)
    io.arm("fsync")
    with pytest.raises(OSError):
        store.sync()  # the acks' own commit fails: they are rolled back
    assert [queue.read(o).offset for o in emptied] == emptied
    store.sync()
    store.close()
    again = FileMessageStore(str(tmp_path), segment_size=4096)
    assert set(emptied) <= {o for o, _m in again.open_queue("/", "q").recover()}
    again.close()


def test_a_failed_write_while_appending_rolls_back_the_open_batch_of_every_queue(tmp_path):
    io = FaultyIO()
    store = FileMessageStore(str(tmp_path), segment_size=1 << 20, file_io=io)
    q1, q2 = store.open_queue("/", "q1"), store.open_queue("/", "q2")
    lost1: list[int] = []
    q1.on_lost = lost1.extend
    publish(q1, 3, "a")
    publish(q2, 3, "a")
    store.sync()
    publish(q1, 3, "b")
    io.arm("write")
    with pytest.raises(OSError):
        q2.append("ex", "rk", b"", b"x" * (128 * 1024), 0)  # more than the buffer: written at once
    assert len(lost1) == 3 and len(q1) == 3 and len(q2) == 3
    publish(q2, 2, "c")
    store.sync()
    store.close()
    again = FileMessageStore(str(tmp_path), segment_size=1 << 20)
    assert len(bodies(again, "q1")) == 3 and len(bodies(again, "q2")) == 5
    again.close()


def test_segment_creation_reuses_a_half_made_file_in_the_way(tmp_path):
    io = FaultyIO()
    store = FileMessageStore(str(tmp_path), segment_size=4096, file_io=io)
    queue = store.open_queue("/", "q")
    publish(queue, 2)
    store.sync()
    io.arm("unlink", stay=True)  # the rolled-back segment cannot even be removed
    io.arm("write", stay=True)
    for _ in range(3):
        with pytest.raises(OSError):
            publish(queue, 60)  # rolls into a new segment whose writes fail
            store.sync()
    io.disarm()
    publish(queue, 60, "z")
    store.sync()
    store.close()
    again = FileMessageStore(str(tmp_path), segment_size=4096)
    assert len(bodies(again)) == 62
    again.close()


def test_a_failed_ack_write_costs_the_commit_nothing_and_acks_are_written_later(tmp_path):
    io = FaultyIO()
    store = FileMessageStore(str(tmp_path), segment_size=1 << 20, file_io=io)
    queue = store.open_queue("/", "q")
    offsets = publish(queue, 4)
    store.sync()
    queue.ack(offsets[0])
    publish(queue, 1, "n")
    io.arm("write", site="leveret/store/acks.py:dup_for_sync")
    store.sync()  # the data is durable; the ack stays buffered
    assert io.fired
    queue.ack(offsets[1])
    store.sync()
    store.close()
    again = FileMessageStore(str(tmp_path), segment_size=1 << 20)
    assert len(bodies(again)) == 3
    again.close()


@pytest.mark.parametrize("kind", ["write", "fsync", "truncate_too"])
def test_a_failed_definition_write_changes_nothing_and_the_next_one_works(tmp_path, kind):
    io = FaultyIO()
    store = FileDefinitionStore(str(tmp_path), file_io=io)
    store.put_exchange(ExchangeDef("/", "e1", "direct", True, False, False, {}))
    if kind == "truncate_too":
        io.arm("write", stay=True)
        io.arm("truncate")  # the record cannot even be cut off again
    else:
        io.arm(kind)
    for _ in range(2):  # the second attempt compacts first, and fails at that while the disk refuses
        with pytest.raises(OSError):
            store.put_queue(QueueDef("/", "lost", True, False, {}))
        if kind != "truncate_too":
            break
    io.disarm()
    assert ("/", "lost") not in store.load().queues
    store.put_queue(QueueDef("/", "kept", True, False, {}))
    store.close()
    again = FileDefinitionStore(str(tmp_path))
    defs = again.load()
    assert set(defs.queues) == {("/", "kept")} and ("/", "e1") in defs.exchanges
    again.close()


def test_rolled_back_segment_keeps_only_whole_records(tmp_path):
    io = FaultyIO()
    store = FileMessageStore(str(tmp_path), segment_size=1 << 20, file_io=io)
    queue = store.open_queue("/", "q")
    publish(queue, 5)
    store.sync()
    size = queue.log.segments[-1].size
    publish(queue, 5, "x")
    io.arm("write")
    with pytest.raises(OSError):
        store.sync()
    sealed = queue.log.segments[-1]
    assert sealed.sealed and sealed.size == size
    assert os.path.getsize(sealed.path) == size > SEGMENT_HEADER.size
    store.close()
