"""Heartbeat bookkeeping with an injected clock: when one is due out, when the peer is overdue."""

from __future__ import annotations

from leveret.amqp.heartbeat import OVERDUE, SEND, Heartbeats


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ticks(beats: Heartbeats, clock: Clock, n: int, **kwargs) -> list:
    out = []
    for _ in range(n):
        clock.now += beats.tick_interval
        out.append(beats.tick(**kwargs))
    return out


def test_a_silent_server_sends_a_heartbeat_every_other_tick_and_a_busy_one_none():
    clock = Clock()
    beats = Heartbeats(10, clock)
    assert beats.tick_interval == 5
    got = []
    for _ in range(4):
        beats.heard = True
        clock.now += 5
        action = beats.tick()
        got.append(action)
        if action is SEND:
            beats.sent = True  # the write of the heartbeat itself
    assert got == [SEND, None, SEND, None]
    beats.heard = beats.sent = True
    assert ticks(beats, clock, 1) == [None]


def test_the_peer_is_overdue_after_two_silent_intervals():
    clock = Clock()
    beats = Heartbeats(10, clock)
    beats.sent = True
    assert ticks(beats, clock, 1) == [None]  # the handshake counts as heard: silence starts here
    assert beats.overdue_after() == 20
    got = []
    for _ in range(4):
        beats.sent = True
        got += ticks(beats, clock, 1)
    assert got == [None, None, None, OVERDUE]


def test_hearing_from_the_peer_restarts_the_count():
    clock = Clock()
    beats = Heartbeats(10, clock)
    ticks(beats, clock, 4)
    beats.heard = True
    assert OVERDUE not in ticks(beats, clock, 4)
    assert ticks(beats, clock, 1) == [OVERDUE]


def test_a_peer_we_are_not_reading_is_never_overdue():
    clock = Clock()
    beats = Heartbeats(1, clock)
    assert OVERDUE not in ticks(beats, clock, 20, paused=True)
    assert OVERDUE not in ticks(beats, clock, 3)
    assert ticks(beats, clock, 1) == [OVERDUE]


def test_late_ticks_judge_by_the_clock():
    clock = Clock()
    beats = Heartbeats(10, clock)
    beats.tick()  # heard at 100
    clock.now += 19
    assert beats.tick() != OVERDUE
    clock.now += 1
    assert beats.tick() == OVERDUE
