"""Definitions: the same contract for the memory twin and the file store, then crash shapes."""

from __future__ import annotations

import datetime
import decimal
import os

import pytest

from leveret.store.api import BindingDef, ExchangeDef, PermissionDef, PolicyDef, QueueDef, UserDef, VHostDef
from leveret.store.commit import Seam
from leveret.store.definitions import LOG_FILE, SNAPSHOT_FILE, FileDefinitionStore
from leveret.store.memory import MemoryDefinitionStore


@pytest.fixture(params=["memory", "file"])
def defs(request, tmp_path):
    store = MemoryDefinitionStore() if request.param == "memory" else FileDefinitionStore(str(tmp_path))
    yield store
    store.close()


def populate(store):
    store.put_vhost(VHostDef("/"))
    store.put_user(UserDef("guest", "hash", tags=("administrator",)))
    store.put_permission(PermissionDef("guest", "/"))
    store.put_exchange(ExchangeDef("/", "ex", "topic", arguments={"alternate-exchange": "ae"}))
    store.put_queue(QueueDef("/", "q", arguments={"x-message-ttl": 1000, "x-queue-type": "classic"}))
    store.put_binding(BindingDef("/", "ex", "q", "queue", "a.#"))
    store.put_policy(PolicyDef("/", "p", "^q$", {"max-length": 10}))


def test_puts_are_loaded_back(defs):
    populate(defs)
    loaded = defs.load()
    assert loaded.queues[("/", "q")].arguments == {"x-message-ttl": 1000, "x-queue-type": "classic"}
    assert loaded.users["guest"].tags == ("administrator",)
    assert list(loaded.bindings.values()) == [BindingDef("/", "ex", "q", "queue", "a.#")]
    assert set(loaded.vhosts) == {"/"} and ("guest", "/") in loaded.permissions and ("/", "p") in loaded.policies


def test_put_replaces_a_definition_with_the_same_name(defs):
    defs.put_queue(QueueDef("/", "q", arguments={"a": 1}))
    defs.put_queue(QueueDef("/", "q", arguments={"a": 2}))
    assert defs.load().queues[("/", "q")].arguments == {"a": 2}


def test_deleting_a_queue_deletes_its_bindings(defs):
    populate(defs)
    defs.delete_queue("/", "q")
    loaded = defs.load()
    assert ("/", "q") not in loaded.queues and not loaded.bindings


def test_deleting_an_exchange_deletes_bindings_from_and_to_it(defs):
    populate(defs)
    defs.put_exchange(ExchangeDef("/", "ex2", "fanout"))
    defs.put_binding(BindingDef("/", "ex2", "ex", "exchange"))
    defs.delete_exchange("/", "ex")
    assert not defs.load().bindings


def test_bindings_differing_only_in_arguments_are_distinct(defs):
    defs.put_binding(BindingDef("/", "h", "q", "queue", "", {"x-match": "all"}))
    defs.put_binding(BindingDef("/", "h", "q", "queue", "", {"x-match": "any"}))
    defs.delete_binding(BindingDef("/", "h", "q", "queue", "", {"x-match": "all"}))
    assert [b.arguments for b in defs.load().bindings.values()] == [{"x-match": "any"}]


def test_deleting_a_vhost_deletes_everything_in_it(defs):
    populate(defs)
    defs.put_queue(QueueDef("other", "q"))
    defs.delete_vhost("/")
    loaded = defs.load()
    assert list(loaded.queues) == [("other", "q")]
    assert not loaded.exchanges and not loaded.bindings and not loaded.permissions and not loaded.policies


def test_deleting_a_user_deletes_its_permissions(defs):
    populate(defs)
    defs.delete_user("guest")
    assert not defs.load().users and not defs.load().permissions


def test_load_returns_a_copy(defs):
    populate(defs)
    defs.load().queues.clear()
    assert defs.load().queues


def reopen(tmp_path, **kw):
    return FileDefinitionStore(str(tmp_path), **kw)


def test_definitions_survive_a_restart_with_every_argument_type(tmp_path):
    store = reopen(tmp_path)
    populate(store)
    args = {
        "bytes": b"\x00\xff",
        "dec": decimal.Decimal("1.25"),
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "nested": {"list": [1, "two", b"3", None, True, 1.5]},
        "looks-like-a-tag": {"$bytes": "not base64"},
    }
    store.put_queue(QueueDef("/", "typed", arguments=args))
    store.close()
    again = reopen(tmp_path)
    assert again.load() == store.load()
    assert again.load().queues[("/", "typed")].arguments == args
    assert again.report.clean
    again.close()


def test_a_thousand_declares_write_linear_bytes_and_compact(tmp_path):
    store = reopen(tmp_path, compact_min_bytes=16 * 1024)
    for i in range(1000):
        store.put_queue(QueueDef("/", f"queue-{i}", arguments={"x-max-length": i}))
    record_bytes = 200  # a queue definition record is about 150-200 bytes
    assert store.bytes_written < 4 * 1000 * record_bytes
    assert os.path.getsize(tmp_path / LOG_FILE) < 2 * os.path.getsize(tmp_path / SNAPSHOT_FILE)
    store.close()
    again = reopen(tmp_path)
    assert len(again.load().queues) == 1000
    again.close()


def test_crash_after_snapshot_tmp_written_keeps_the_old_state_and_removes_the_tmp(tmp_path):
    def crash(seam):
        if seam == Seam.AFTER_TMP_WRITE:
            raise RuntimeError("crash")

    store = reopen(tmp_path, compact_min_bytes=1, seam=crash)
    with pytest.raises(RuntimeError):
        store.put_queue(QueueDef("/", "q"))
    again = reopen(tmp_path)
    assert list(again.load().queues) == [("/", "q")]
    assert again.report.stale_tmp_files == [str(tmp_path / (SNAPSHOT_FILE + ".tmp"))]
    again.close()


def test_a_log_older_than_the_snapshot_is_ignored(tmp_path):
    store = reopen(tmp_path)
    store.put_queue(QueueDef("/", "old"))
    store.close()
    stale_log = (tmp_path / LOG_FILE).read_bytes()
    store = reopen(tmp_path)
    store.delete_queue("/", "old")
    store.compact()
    store.close()
    # A crash between the snapshot rename and the log reset leaves the previous generation's log.
    (tmp_path / LOG_FILE).write_bytes(stale_log)
    again = reopen(tmp_path)
    assert not again.load().queues
    again.close()


def test_torn_definition_record_is_cut_off_and_earlier_ones_kept(tmp_path):
    store = reopen(tmp_path)
    store.put_queue(QueueDef("/", "a"))
    store.put_queue(QueueDef("/", "b"))
    store.close()
    path = tmp_path / LOG_FILE
    os.truncate(path, os.path.getsize(path) - 3)
    again = reopen(tmp_path)
    assert list(again.load().queues) == [("/", "a")]
    assert len(again.report.torn_tails) == 1
    again.put_queue(QueueDef("/", "c"))
    again.close()
    assert list(reopen(tmp_path).load().queues) == [("/", "a"), ("/", "c")]


def test_corrupt_middle_definition_record_is_skipped_and_reported(tmp_path):
    store = reopen(tmp_path)
    for name in "abc":
        store.put_queue(QueueDef("/", name))
    store.close()
    path = tmp_path / LOG_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    again = reopen(tmp_path)
    assert list(again.load().queues) == [("/", "a"), ("/", "c")]
    assert len(again.report.corrupt_records) == 1
    again.close()


def test_a_definitions_log_with_a_foreign_header_is_kept_aside_not_overwritten(tmp_path):
    store = reopen(tmp_path)
    store.put_queue(QueueDef("/", "a"))
    store.close()
    path = tmp_path / LOG_FILE
    data = bytearray(path.read_bytes())
    data[0:4] = b"XXXX"
    path.write_bytes(bytes(data))
    again = reopen(tmp_path)
    assert again.report.unreadable_segments == [str(path)]
    assert os.path.exists(again.report.torn_copies[0])
    again.put_queue(QueueDef("/", "b"))
    again.close()
    assert list(reopen(tmp_path).load().queues) == [("/", "b")]
