"""Deadlines of the broker model, on one heap, driven by the injected clock.

Nothing in the broker owns a real timer. Each concern keeps at most a handful of deadlines (a queue
arms one for its head's expiry, one for x-expires and one for its earliest parked retry; a delayed
exchange one for its earliest message; a channel one for its oldest unacked delivery), so the heap
holds O(queues + exchanges + channels) entries, never one per message.

The server asks `next_deadline()` and arms ONE event-loop timer for it; when it fires it calls
`run_due()`. `on_earlier_deadline(deadline)` is called whenever a newly scheduled deadline is earlier
than the previous earliest one, so the server can re-arm that single timer sooner.

Cancelling is lazy: a cancelled `Timer` stays in the heap and is skipped when it reaches the top, which
keeps cancel O(1) (deadlines are re-armed far more often than they fire).
"""

from __future__ import annotations

import heapq
from typing import Callable

from leveret.clock import Clock


class Timer:
    """One scheduled callback; `cancel()` makes it a no-op."""

    __slots__ = ("deadline", "callback", "active")

    def __init__(self, deadline: float, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.active = True

    def cancel(self) -> None:
        self.active = False

    def __repr__(self) -> str:
        return f"<Timer {self.deadline:.3f}{'' if self.active else ' cancelled'}>"


class Timers:
    """A heap of `Timer`s ordered by monotonic deadline."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = 0
        # set by the server: called with the new earliest deadline when it moves earlier
        self.on_earlier_deadline: Callable[[float], None] | None = None

    def __len__(self) -> int:
        return sum(1 for _, _, timer in self._heap if timer.active)

    def call_at(self, deadline: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` once `clock.monotonic() >= deadline` (at the next `run_due`)."""
        timer = Timer(deadline, callback)
        earliest = self.next_deadline()
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, timer))
        if (earliest is None or deadline < earliest) and self.on_earlier_deadline is not None:
            self.on_earlier_deadline(deadline)
        return timer

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self.call_at(self.clock.monotonic() + delay, callback)

    def next_deadline(self) -> float | None:
        """The earliest active deadline (monotonic seconds), or None when nothing is scheduled."""
        heap = self._heap
        while heap and not heap[0][2].active:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def run_due(self) -> None:
        """Fire every timer whose deadline has passed, earliest first.

        A callback may schedule new timers; those already due run in this same call, so one
        `run_due` leaves nothing overdue behind.
        """
        heap = self._heap
        now = self.clock.monotonic()
        while heap and heap[0][0] <= now:
            _, _, timer = heapq.heappop(heap)
            if timer.active:
                timer.active = False
                timer.callback()


class Slot:
    """At most one pending timer for one concern, re-armed only when the deadline moves earlier.

    `arm(deadline)` keeps an existing earlier-or-equal timer (its callback re-checks the real state
    and re-arms), so moving a head forward costs nothing until the timer fires.
    """

    __slots__ = ("timers", "callback", "timer")

    def __init__(self, timers: Timers | None, callback: Callable[[], None]) -> None:
        self.timers = timers
        self.callback = callback
        self.timer: Timer | None = None

    @property
    def deadline(self) -> float | None:
        timer = self.timer
        return timer.deadline if timer is not None and timer.active else None

    def arm(self, deadline: float) -> None:
        if self.timers is None:
            return
        current = self.deadline
        if current is not None and current <= deadline:
            return
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.timers.call_at(deadline, self._fire)

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _fire(self) -> None:
        self.timer = None
        self.callback()
