"""Heartbeat bookkeeping, sans IO: when one is due out, when the peer is overdue. The timer is the caller's.

    beats = Heartbeats(interval=60, now=clock.monotonic)
    beats.heard = True       # on every read from the peer (a plain attribute: the read path pays nothing)
    beats.sent = True        # on every write to the peer
    action = beats.tick()    # every `beats.tick_interval` seconds (half the interval, as RabbitMQ)

`tick` returns SEND (we were silent since the last tick: write a heartbeat frame, `HEARTBEAT`), OVERDUE
(nothing heard for two intervals: RabbitMQ hangs up), or None. A peer we are not reading (`paused`: a
resource alarm or our own output limit stopped reading it) is not held to its silence, since its
heartbeats wait unread in the kernel (RabbitMQ pauses the check for blocked connections too).
"""

from __future__ import annotations

from typing import Callable

from .serializer import HEARTBEAT

SEND = "send"
OVERDUE = "overdue"

__all__ = ["HEARTBEAT", "OVERDUE", "SEND", "Heartbeats"]


class Heartbeats:
    """One connection's heartbeat state (interval in seconds, as agreed by tune-ok; 0 never ticks)."""

    __slots__ = ("interval", "tick_interval", "now", "heard", "sent", "last_heard")

    def __init__(self, interval: int, now: Callable[[], float]) -> None:
        self.interval = interval
        self.tick_interval = interval / 2
        self.now = now
        self.heard = True  # the handshake itself was heard
        self.sent = False
        self.last_heard = now()

    def tick(self, paused: bool = False) -> str | None:
        """What is due now (see the module doc); call it every `tick_interval` seconds."""
        now = self.now()
        if self.heard or paused:
            self.heard = False
            self.last_heard = now
        # Two intervals of silence (four ticks at half the interval), with a hair of slack so that ticks
        # read from the same clock as the timer that runs them are not judged a nanosecond short.
        elif now - self.last_heard >= 2 * self.interval - self.interval / 100:
            return OVERDUE
        due = not self.sent
        self.sent = False
        return SEND if due else None

    def overdue_after(self) -> float:
        """Seconds of silence from the peer after which `tick` reports OVERDUE (for the log and the stall watch)."""
        return 2 * self.interval
