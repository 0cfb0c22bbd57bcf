"""Transactions of one channel (server/transactions.py), with a recording broker channel and no socket."""

from __future__ import annotations

import errno

import pytest

from leveret.server.transactions import Transaction, TxCommitWaiter, TxSettle


class BrokerChannel:
    """Records take / settle / restore, as broker/channel.py's Channel is asked them."""

    def __init__(self) -> None:
        self.log: list[tuple] = []

    def take(self, tag: int, multiple: bool) -> list[str]:
        self.log.append(("take", tag, multiple))
        return [f"d{tag}"] if not multiple else [f"d{n}" for n in range(1, tag + 1)]

    def settle(self, records, *, ack: bool, requeue: bool) -> None:
        self.log.append(("settle", list(records), ack, requeue))

    def restore(self, records) -> None:
        self.log.append(("restore", list(records)))


def test_settles_take_at_once_and_apply_only_at_commit():
    channel = BrokerChannel()
    tx = Transaction(channel)
    tx.hold_settle(2, True, ack=True, requeue=False)
    tx.hold_settle(5, False, ack=False, requeue=True)
    assert channel.log == [("take", 2, True), ("take", 5, False)]
    routed = []
    tx.hold_publish(lambda: routed.append("m1"))
    settles, taken = tx.commit()
    assert routed == ["m1"] and taken == ["d1", "d2", "d5"]
    assert all(type(s) is TxSettle for s in settles) and len(settles) == 2
    assert channel.log[2:] == []  # publishes ran; settles wait for the caller (the commit's fsync)
    for settle in settles:
        settle()
    assert channel.log[2:] == [("settle", ["d1", "d2"], True, False), ("settle", ["d5"], False, True)]
    assert tx.commit() == ([], [])  # a commit empties the transaction


def test_rollback_forgets_publishes_and_gives_the_taken_back():
    channel = BrokerChannel()
    tx = Transaction(channel)
    routed = []
    tx.hold_publish(lambda: routed.append("m"))
    tx.hold_settle(1, False, ack=True, requeue=False)
    tx.rollback()
    assert channel.log[-1] == ("restore", ["d1"])
    assert tx.commit() == ([], []) and routed == []
    tx.rollback()
    assert channel.log[-1] == ("restore", ["d1"])  # nothing more to give back: no second restore
    assert len(channel.log) == 2


def test_a_publish_the_store_refuses_fails_the_commit_and_keeps_the_taken_for_release():
    channel = BrokerChannel()
    tx = Transaction(channel)
    tx.hold_settle(3, False, ack=True, requeue=False)

    def refused() -> None:
        raise OSError(errno.ENOSPC, "disk full")

    later = []
    tx.hold_publish(refused)
    tx.hold_publish(lambda: later.append("m"))
    with pytest.raises(OSError):
        tx.commit()
    assert later == [] and ("settle", ["d3"], True, False) not in channel.log
    tx.rollback()  # what releasing the channel (closing the connection) does
    assert channel.log[-1] == ("restore", ["d3"])


class Channel:
    def __init__(self) -> None:
        self.closing = False
        self.broker_channel = BrokerChannel()
        self.transaction = Transaction(self.broker_channel)

    def commit_ok(self) -> bytes:
        return b"commit-ok"


def waiter(ch: Channel, settles, taken):
    out, failed = [], []
    return TxCommitWaiter(ch, settles, taken, out.append, lambda: failed.append(True)), out, failed


def test_a_durable_commit_settles_then_answers_commit_ok():
    ch = Channel()
    done = []
    w, out, failed = waiter(ch, [TxSettle(lambda: done.append(1))], ["d1"])
    w.confirm_ready(0)
    assert done == [1] and out == [b"commit-ok"] and failed == []


def test_a_commit_whose_channel_closed_meanwhile_still_settles_but_says_nothing():
    ch = Channel()
    ch.closing = True
    done = []
    w, out, failed = waiter(ch, [TxSettle(lambda: done.append(1))], ["d1"])
    w.confirm_ready(0)
    assert done == [1] and out == []


def test_a_failed_fsync_settles_nothing_and_closes_the_connection():
    ch = Channel()
    ch.transaction.hold_settle(7, False, ack=True, requeue=False)
    done = []
    w, out, failed = waiter(ch, [TxSettle(lambda: done.append(1))], ["d1"])
    w.confirm_failed(0)
    assert done == [] and out == [] and failed == [True]
    assert ch.transaction.taken == ["d1", "d7"]  # the commit's ahead of later ones, requeued on release


def test_a_failed_fsync_on_a_closed_channel_requeues_the_commits_deliveries():
    ch = Channel()
    ch.closing = True
    w, out, failed = waiter(ch, [], ["d1", "d2"])
    w.confirm_failed(0)
    assert failed == [] and ch.broker_channel.log == [("settle", ["d1", "d2"], False, True)]
