"""Tracked offsets' metadata strings (Kafka commits' metadata) in a stream's offsets.log: kept across a reopen
and a compaction, dropped with the offset, and absent (empty) for records written without it."""

from __future__ import annotations

import os

from leveret.store.format import KIND_RAW, encode_record
from leveret.store.stream import OFFSETS_FILE, FileStreamStore, OffsetFile


def test_metadata_survives_a_reopen_and_a_later_commit_replaces_it(tmp_path) -> None:
    stream = FileStreamStore(str(tmp_path))
    stream.track_offset("kafka:g", 5, "first \u00e9")
    stream.track_offset("kafka:h", 6, "other")
    stream.track_offset("amqp-reader", 2)
    stream.sync()
    stream.track_offset("kafka:h", 6, "")  # same offset, new (empty) metadata: written too
    stream.sync()
    stream.close()
    stream = FileStreamStore(str(tmp_path))
    assert [(stream.tracked_offset(n), stream.tracked_metadata(n)) for n in ("kafka:g", "kafka:h", "amqp-reader")] == [
        (5, "first \u00e9"), (6, ""), (2, "")]
    stream.forget_offset("kafka:g")
    stream.sync()
    stream.close()
    stream = FileStreamStore(str(tmp_path))
    assert (stream.tracked_offset("kafka:g"), stream.tracked_metadata("kafka:g")) == (None, "")
    stream.close()


def test_an_offset_without_metadata_is_written_as_before(tmp_path) -> None:
    stream = FileStreamStore(str(tmp_path))
    stream.track_offset("reader", 3)
    stream.sync()
    stream.close()
    with open(os.path.join(tmp_path, OFFSETS_FILE), "rb") as f:
        assert f.read() == encode_record(KIND_RAW, 0, 3, 0, b"reader")


def test_compaction_keeps_metadata(tmp_path) -> None:
    offsets = OffsetFile(os.path.join(tmp_path, OFFSETS_FILE))
    for i in range(3):
        offsets.set(f"kafka:g{i}", i, f"note {i}" if i else "")
    offsets._compact()  # as dup_for_sync does once the file is large
    offsets.close()
    reread = OffsetFile(os.path.join(tmp_path, OFFSETS_FILE))
    assert reread.offsets == {"kafka:g0": 0, "kafka:g1": 1, "kafka:g2": 2}
    assert reread.metadata == {"kafka:g1": "note 1", "kafka:g2": "note 2"}


def test_a_torn_metadata_record_loses_only_that_update(tmp_path) -> None:
    stream = FileStreamStore(str(tmp_path))
    stream.track_offset("kafka:g", 1, "kept")
    stream.sync()
    stream.track_offset("kafka:g", 2, "torn")
    stream.sync()
    stream.close()
    path = os.path.join(tmp_path, OFFSETS_FILE)
    os.truncate(path, os.path.getsize(path) - 3)
    stream = FileStreamStore(str(tmp_path))
    assert (stream.tracked_offset("kafka:g"), stream.tracked_metadata("kafka:g")) == (1, "kept")
    stream.close()
