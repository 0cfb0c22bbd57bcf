"""Time, injected: the broker never reads the wall clock directly.

`SystemClock` is what a running broker uses; `ManualClock` lets tests move time by hand so that
TTLs, delays and timeouts fire deterministically without sleeping.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """What the broker needs to know about time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for deadlines)."""

    def time(self) -> float:
        """Seconds since the epoch (for timestamps written into messages and files)."""


class SystemClock:
    """The real clocks of the operating system."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when a test says so."""

    def __init__(self, start: float = 1_000_000.0, epoch: float = 1_700_000_000.0) -> None:
        self._now = start
        self._epoch_offset = epoch - start

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._epoch_offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock never goes backwards")
        self._now += seconds
