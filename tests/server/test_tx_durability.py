"""tx.commit-ok promises what a publisher confirm promises: the transaction's persistent messages are on disk.

The fault run (bench/faultrun) lost committed messages across kill -9: commit-ok left before the group commit
had even written the records out of the store's buffer. Here the fsync thread is held at fdatasync, and
commit-ok must wait for it.
"""

from __future__ import annotations

import os
import threading

import pika

from leveret.embedded import EmbeddedBroker


def test_tx_commit_ok_waits_for_the_fsync_of_its_persistent_messages(tmp_path, monkeypatch) -> None:
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn = pika.BlockingConnection(pika.URLParameters(broker.url))
        ch = conn.channel()
        ch.queue_declare("tx-durable", durable=True)
        ch.tx_select()
        release = threading.Event()
        syncing = threading.Event()
        real = os.fdatasync

        def held_fdatasync(fd: int) -> None:
            syncing.set()
            assert release.wait(10)
            real(fd)

        monkeypatch.setattr(os, "fdatasync", held_fdatasync)
        for i in range(10):
            ch.basic_publish("", "tx-durable", b"m%d" % i, pika.BasicProperties(delivery_mode=2))
        committed = threading.Event()
        # pika's blocking channel is not thread safe: commit from this thread, release from a timer thread
        # only once the fsync is seen to be held and commit-ok has had time to (wrongly) arrive.
        checker_saw_commit: list[bool] = []

        def release_later() -> None:
            assert syncing.wait(10)
            checker_saw_commit.append(committed.wait(0.3))
            release.set()

        releaser = threading.Thread(target=release_later)
        releaser.start()
        ch.tx_commit()
        committed.set()
        releaser.join(10)
        monkeypatch.setattr(os, "fdatasync", real)
        assert checker_saw_commit == [False], "tx.commit-ok arrived while the fsync was still held"
        assert ch.queue_declare("tx-durable", passive=True).method.message_count == 10
        conn.close()


def test_a_transaction_without_persistent_messages_commits_at_once(tmp_path) -> None:
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn = pika.BlockingConnection(pika.URLParameters(broker.url))
        ch = conn.channel()
        ch.queue_declare("tx-transient", durable=False)
        ch.tx_select()
        ch.basic_publish("", "tx-transient", b"x")
        ch.tx_commit()
        ch.tx_commit()  # an empty transaction
        assert ch.queue_declare("tx-transient", passive=True).method.message_count == 1
        conn.close()
