"""Torn copies (``<segment>.torn-<unix ms>``, recovery's copies of cut-off tails) stay bounded: a segment's copies
go with it when it is deleted, and a directory keeps only its newest TORN_COPIES_KEPT."""

from __future__ import annotations

import logging
import os

from leveret.store.format import SEGMENT_HEADER
from leveret.store.log import Log
from leveret.store.queue_store import FileQueueStore
from leveret.store.recovery import TORN_COPIES_KEPT

SEGMENT = "00000000000000000000.seg"


def torn_copies(directory) -> list[str]:
    return sorted(name for name in os.listdir(directory) if ".torn-" in name)


def commit(queue: FileQueueStore) -> None:
    for fd in queue.dup_data_fds() + queue.dup_derived_fds():
        os.close(fd)
    queue.commit_done()


def test_only_the_newest_torn_copies_stay_and_each_older_one_is_logged(tmp_path, caplog) -> None:
    log = Log(str(tmp_path))
    for i in range(3):
        log.append(b"%d" % i * 50, i)
    log.sync()
    log.close()
    # Copies that crashes long ago left (their names carry when they were made), then one more torn tail now.
    old = [f"{SEGMENT}.torn-{1_000 + i}" for i in range(TORN_COPIES_KEPT + 4)]
    for name in old:
        (tmp_path / name).write_bytes(b"torn")
    segment = tmp_path / SEGMENT
    os.truncate(segment, os.path.getsize(segment) - 7)
    with caplog.at_level(logging.INFO, logger="leveret.recovery"):
        log = Log(str(tmp_path))
    log.close()
    new = log.report.torn_copies
    assert len(new) == 1 and os.path.exists(new[0])
    kept = torn_copies(tmp_path)
    assert len(kept) == TORN_COPIES_KEPT
    assert kept == sorted([os.path.basename(new[0])] + old[-(TORN_COPIES_KEPT - 1):])
    removed = [os.path.join(str(tmp_path), name) for name in old[:5]]
    assert log.report.removed_torn_copies == removed
    assert [r.getMessage().split()[2] for r in caplog.records if "removed" in r.getMessage()] == [p + ":" for p in removed]
    assert "old torn copies removed: 5" in log.report.summary()


def test_a_few_torn_copies_are_all_kept(tmp_path) -> None:
    Log(str(tmp_path)).close()
    for i in range(TORN_COPIES_KEPT):
        (tmp_path / f"{SEGMENT}.torn-{i}").write_bytes(b"torn")
    log = Log(str(tmp_path))
    log.close()
    assert len(torn_copies(tmp_path)) == TORN_COPIES_KEPT and log.report.removed_torn_copies == []


def test_a_deleted_segment_takes_its_torn_copies_with_it(tmp_path) -> None:
    record = 40
    queue = FileQueueStore(str(tmp_path), segment_size=SEGMENT_HEADER.size + 4 * record)
    offsets = [queue.append("ex", "rk", b"", b"x" * 10, i) for i in range(12)]
    commit(queue)
    bases = [s.base for s in queue.log.segments]
    assert len(bases) >= 3
    first, second = (os.path.basename(s.path) for s in queue.log.segments[:2])
    for name in (f"{first}.torn-1", f"{first}.torn-2", f"{second}.torn-3"):
        (tmp_path / name).write_bytes(b"torn")
    for offset in offsets:
        if queue.log.segment_for(offset).base == bases[0]:
            queue.ack(offset)
    commit(queue)
    assert [s.base for s in queue.log.segments] == bases[1:]
    assert torn_copies(tmp_path) == [f"{second}.torn-3"]
    queue.close()
