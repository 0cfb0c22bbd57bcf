"""Queue: ordering by sequence number, requeue merge, and dispatch bookkeeping."""

from hypothesis import given, settings
from hypothesis import strategies as st

from leveret.broker.queue import Queue

from .conftest import make_message


def test_enqueue_numbers_messages_in_order():
    q = Queue("q")
    entries = [q.enqueue(make_message(str(i))) for i in range(3)]
    assert [e.seq for e in entries] == [1, 2, 3]
    assert q.message_count == 3


def test_requeue_of_older_messages_prepends_and_marks_redelivered():
    q = Queue("q")
    for i in range(4):
        q.enqueue(make_message(str(i)))
    a, b = q.fetch(False), q.fetch(False)
    q.requeue([b, a])
    assert [(e.message.body, e.redelivered) for e in q.ready] == [(b"0", True), (b"1", True), (b"2", False), (b"3", False)]
    assert q.unacked_count == 0


def test_requeue_to_a_deleted_queue_drops_messages():
    q = Queue("q")
    q.enqueue(make_message("x"))
    e = q.fetch(False)
    q.deleted = True
    q.requeue([e])
    assert q.message_count == 0 and q.unacked_count == 0


def test_purge_leaves_unacked_messages_alone():
    q = Queue("q")
    for i in range(3):
        q.enqueue(make_message(str(i)))
    q.fetch(False)
    assert q.purge() == 2
    assert q.unacked_count == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["fetch", "requeue", "ack", "enqueue"]), st.integers(0, 5)), max_size=40))
def test_ready_list_stays_in_sequence_order_under_any_requeue_pattern(ops):
    q = Queue("q")
    held = []
    for i in range(5):
        q.enqueue(make_message(str(i)))
    for op, n in ops:
        if op == "fetch":
            e = q.fetch(False)
            if e is not None:
                held.append(e)
        elif op == "enqueue":
            q.enqueue(make_message("x"))
        elif held:
            picked = held[n % len(held):] if n % 2 else held[: n % len(held) + 1]
            held = [e for e in held if e not in picked]
            if op == "requeue":
                q.requeue(picked)
            else:
                q.settle(picked)
        seqs = [e.seq for e in q.ready]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert q.unacked_count == len(held)
