"""Publisher confirm bookkeeping of one channel (server/confirms.py), with no socket and no loop."""

from __future__ import annotations

from leveret.amqp.serializer import basic_ack_frame, basic_nack_frame
from leveret.server.confirms import ConfirmingChannel


class Store:
    def __init__(self) -> None:
        self.commit_pending = False


class Durability:
    """Records who waits for the next group commit, as server/durability.py's queue."""

    def __init__(self) -> None:
        self.store = Store()
        self.waiting: list[tuple] = []

    def wait_for_commit(self, channel, seq: int, ok: bool = True) -> None:
        self.waiting.append((channel, seq, ok))

    def commit_done(self, ok: bool = True) -> None:
        waiting, self.waiting = self.waiting, []
        for channel, seq, fine in waiting:
            if ok and fine:
                channel.confirm_ready(seq)
            else:
                channel.confirm_failed(seq)


class Harness:
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.soon: list = []
        self.ch = ConfirmingChannel(1, self.frames.extend, self.soon.append)
        self.durability = Durability()

    def end_turn(self) -> list[bytes]:
        soon = list(self.soon)
        self.soon.clear()
        for callback in soon:
            callback()
        frames = list(self.frames)
        self.frames.clear()
        return frames


def test_acks_of_one_loop_turn_leave_as_one_multiple_ack():
    h = Harness()
    for seq in (1, 2, 3):
        h.ch.confirm_routed(seq, False, h.durability)
    assert h.frames == [] and len(h.soon) == 1  # nothing before the turn ends, one callback for all
    assert h.end_turn() == [basic_ack_frame(1, 3, True)]
    h.ch.confirm_routed(4, False, None)
    assert h.end_turn() == [basic_ack_frame(1, 4, False)]


def test_a_refused_publish_is_nacked_after_the_acks_before_it():
    h = Harness()
    h.ch.confirm_routed(1, False, h.durability)
    h.ch.confirm_routed(2, False, h.durability)
    h.ch.confirm_routed(3, True, h.durability)  # x-overflow reject-publish
    assert h.frames == [basic_ack_frame(1, 2, True), basic_nack_frame(1, 3, True, True)]
    assert h.end_turn()[2:] == []  # the scheduled ack finds nothing left to say


def test_a_publish_that_wrote_waits_for_the_commit_and_so_do_later_ones():
    h = Harness()
    h.durability.store.commit_pending = True
    h.ch.confirm_routed(1, False, h.durability)
    h.durability.store.commit_pending = False
    h.ch.confirm_routed(2, False, h.durability)  # behind a waiting publish: waits too, to keep the order
    assert [(seq, ok) for _ch, seq, ok in h.durability.waiting] == [(1, True), (2, True)]
    assert h.end_turn() == []
    h.durability.commit_done()
    assert h.end_turn() == [basic_ack_frame(1, 2, True)]
    h.ch.confirm_routed(3, False, h.durability)  # nothing waits any more: acked at the turn's end
    assert h.durability.waiting == [] and h.end_turn() == [basic_ack_frame(1, 3, False)]


def test_a_failed_commit_nacks_each_publish_in_order():
    h = Harness()
    h.durability.store.commit_pending = True
    for seq in (1, 2):
        h.ch.confirm_routed(seq, False, h.durability)
    h.durability.commit_done(ok=False)
    assert h.end_turn() == [basic_nack_frame(1, 1, True, True), basic_nack_frame(1, 2, True, True)]


def test_a_publish_the_store_could_not_write_is_nacked_in_order():
    h = Harness()
    h.ch.confirm_unstored(1, h.durability)
    assert h.frames == [basic_nack_frame(1, 1, True, True)]
    h.frames.clear()
    h.durability.store.commit_pending = True
    h.ch.confirm_routed(2, False, h.durability)
    h.ch.confirm_unstored(3, h.durability)  # behind publish 2's commit: waits, then is nacked
    assert [(seq, ok) for _ch, seq, ok in h.durability.waiting] == [(2, True), (3, False)]
    h.durability.commit_done()
    # 2 is acked before 3 is nacked, at once (a nack flushes the acks before it), so the order holds.
    assert h.end_turn() == [basic_ack_frame(1, 2, False), basic_nack_frame(1, 3, True, True)]


def test_nothing_is_written_for_a_closing_channel():
    h = Harness()
    h.ch.confirm_routed(1, False, h.durability)
    h.ch.closing = True
    h.ch.confirm_failed(2)
    assert h.end_turn() == []
