"""Timers: one heap of deadlines driven by the injected clock; Slot keeps one timer per concern."""

from leveret.broker.timers import Slot, Timers
from leveret.clock import ManualClock


def test_run_due_fires_only_what_is_due_in_deadline_order():
    clock = ManualClock()
    timers = Timers(clock)
    fired = []
    timers.call_later(2.0, lambda: fired.append("b"))
    timers.call_later(1.0, lambda: fired.append("a"))
    timers.call_later(3.0, lambda: fired.append("c"))
    clock.advance(2.0)
    timers.run_due()
    assert fired == ["a", "b"]
    assert timers.next_deadline() == clock.monotonic() + 1.0


def test_cancelled_timers_never_fire_and_do_not_count_as_next_deadline():
    clock = ManualClock()
    timers = Timers(clock)
    fired = []
    early = timers.call_later(1.0, lambda: fired.append("early"))
    timers.call_later(5.0, lambda: fired.append("late"))
    early.cancel()
    assert timers.next_deadline() == clock.monotonic() + 5.0
    clock.advance(10)
    timers.run_due()
    assert fired == ["late"]
    assert timers.next_deadline() is None


def test_earlier_deadline_callback_fires_only_when_the_earliest_moves_earlier():
    clock = ManualClock()
    timers = Timers(clock)
    seen = []
    timers.on_earlier_deadline = seen.append
    now = clock.monotonic()
    timers.call_at(now + 5, lambda: None)
    timers.call_at(now + 7, lambda: None)
    timers.call_at(now + 2, lambda: None)
    assert seen == [now + 5, now + 2]


def test_a_callback_scheduling_an_overdue_timer_runs_it_in_the_same_pass():
    clock = ManualClock()
    timers = Timers(clock)
    fired = []
    timers.call_later(1.0, lambda: timers.call_at(0.0, lambda: fired.append("chained")))
    clock.advance(1.0)
    timers.run_due()
    assert fired == ["chained"]


def test_slot_keeps_one_timer_and_rearms_only_earlier():
    clock = ManualClock()
    timers = Timers(clock)
    fired = []
    slot = Slot(timers, lambda: fired.append(clock.monotonic()))
    now = clock.monotonic()
    slot.arm(now + 5)
    slot.arm(now + 9)  # later: kept at 5
    assert slot.deadline == now + 5
    slot.arm(now + 3)  # earlier: re-armed
    assert slot.deadline == now + 3 and len(timers) == 1
    clock.advance(3)
    timers.run_due()
    assert fired == [now + 3] and slot.deadline is None
