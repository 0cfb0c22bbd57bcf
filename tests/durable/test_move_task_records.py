"""durable/move_task_records.py: each running move task's record, saved atomically, loaded oldest first,
removed when the task ends; a record that cannot be read is dropped (with a warning), never fatal."""

from __future__ import annotations

import os
from pathlib import Path

from leveret.durable.move_task_records import DIRECTORY, MoveTaskRecords


def test_saved_records_load_oldest_first_and_removed_ones_are_gone(tmp_path: Path) -> None:
    records = MoveTaskRecords(str(tmp_path))
    assert records.load() == []  # no directory yet
    assert records.save({"id": "b", "started_at": 2.0, "moved": 0})
    assert records.save({"id": "a", "started_at": 1.0, "moved": 0})
    assert records.save({"id": "b", "started_at": 2.0, "moved": 500})  # progress replaces the record
    assert records.load() == [{"id": "a", "started_at": 1.0, "moved": 0}, {"id": "b", "started_at": 2.0, "moved": 500}]
    records.remove("a")
    records.remove("a")  # already gone: nothing to do
    assert [r["id"] for r in MoveTaskRecords(str(tmp_path)).load()] == ["b"]


def test_unreadable_records_and_leftovers_are_dropped(tmp_path: Path) -> None:
    records = MoveTaskRecords(str(tmp_path))
    records.save({"id": "good", "started_at": 1.0})
    directory = tmp_path / DIRECTORY
    (directory / "torn.json").write_bytes(b'{"id": "to')  # not JSON
    (directory / "noid.json").write_bytes(b'{"moved": 3}')
    (directory / "good.json.tmp").write_bytes(b"{}")  # a save interrupted before its rename
    assert [r["id"] for r in records.load()] == ["good"]
    assert sorted(os.listdir(directory)) == ["good.json"]


def test_a_refused_save_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / DIRECTORY).write_bytes(b"a file where the directory should be")
    assert MoveTaskRecords(str(tmp_path)).save({"id": "x"}) is False


def test_a_record_missing_fields_is_dropped_at_the_start_and_the_broker_starts(tmp_path: Path) -> None:
    import pika

    from leveret.embedded import EmbeddedBroker

    data_dir = str(tmp_path / "data")
    with EmbeddedBroker(data_dir=data_dir) as broker:
        conn = pika.BlockingConnection(pika.URLParameters(broker.url))
        conn.channel().queue_declare("dlq", durable=True)
        conn.close()
    MoveTaskRecords(data_dir).save({"id": "old", "vhost": "/", "source": "dlq", "started_at": 1.0})
    with EmbeddedBroker(data_dir=data_dir) as broker:
        assert broker.server.move_tasks.list() == []
    assert MoveTaskRecords(data_dir).load() == []
