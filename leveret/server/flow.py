"""Flow control: the disk alarm that blocks publishers, as RabbitMQ's disk_free_limit does.

The free space of the data directory is measured every `interval` seconds and whenever the store has
written another quarter of the limit since the last look (store/diskspace.py), so a fast publisher
cannot fill the disk between two ticks. Below the limit the alarm goes on (server/alarms.py):
connections that publish get connection.blocked (if they announced that capability) and stop being
read (their socket buffers fill and their publishers wait) instead of having writes fail. When space
returns, reading resumes and connection.unblocked is sent. Consumers keep being served throughout, so
queues can drain.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from leveret.store.diskspace import STORE_WRITES, WriteMeter, check_every, free_bytes

log = logging.getLogger("leveret.flow")


class DiskAlarm:
    """Measures free disk space under `path` and says when the alarm goes on or off (`on_change(True/False)`;
    the server passes it to server/alarms.py, which blocks or unblocks publishing connections).

    It looks on a timer (`interval` seconds; more often while the alarm is on, so publishers resume
    promptly) and each time the store has written another quarter of the limit.
    """

    # While the alarm is on nothing is written, so only the timer can see space come back: look often.
    ACTIVE_INTERVAL = 0.2

    def __init__(self, loop: asyncio.AbstractEventLoop, path: str, limit: int, on_change: Callable[[bool], None],
                 interval: float = 1.0, measure: Callable[[str], int] = free_bytes,
                 meter: WriteMeter = STORE_WRITES) -> None:
        self.loop = loop
        self.path = path
        self.on_change = on_change
        self.limit = limit
        self.interval = interval
        self.measure = measure
        self.meter = meter
        self.active = False
        self.free: int | None = None  # bytes free at the last check (the management API shows it)
        self.checks = 0  # free-space measurements taken (timer and bytes written together)
        self._handle = None
        self._subscription: object | None = None
        self._check_queued = False

    def start(self) -> None:
        self._subscription = self.meter.subscribe(self._written_enough, check_every(self.limit))
        self.check()

    def stop(self) -> None:
        if self._subscription is not None:
            self.meter.unsubscribe(self._subscription)
            self._subscription = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _written_enough(self) -> None:
        # Called on whichever thread wrote; the measurement and the blocking belong to the event loop.
        if self._check_queued:
            return
        self._check_queued = True
        try:
            self.loop.call_soon_threadsafe(self._check_written)
        except RuntimeError:  # the loop is closed: the broker is stopping
            self._check_queued = False

    def _check_written(self) -> None:
        self._check_queued = False
        if self._subscription is None:
            return
        self.measure_now()
        if self.active and self._handle is not None:
            # Switched on between ticks: look again soon rather than at the next (possibly distant) tick.
            self._handle.cancel()
            self._handle = self.loop.call_later(min(self.interval, self.ACTIVE_INTERVAL), self.check)

    def check(self) -> None:
        """Measure now, switch the alarm if needed, and schedule the next check."""
        self.measure_now()
        if self._handle is not None:
            self._handle.cancel()  # a check run out of turn (a test, a changed limit) replaces the pending one
        self._handle = self.loop.call_later(
            min(self.interval, self.ACTIVE_INTERVAL) if self.active else self.interval, self.check)

    def measure_now(self) -> None:
        """Measure free space and switch the alarm if it crossed the limit."""
        self.checks += 1
        try:
            free = self.measure(self.path)
        except OSError as exc:
            log.warning("cannot measure free disk space: %s", exc)
            return  # unknown: leave the alarm as it is
        self.free = free
        low = free < self.limit
        if low and not self.active:
            log.warning("disk alarm: %d bytes free, under the limit of %d; blocking publishers", free, self.limit)
            self.active = True
            self.on_change(True)
        elif not low and self.active:
            log.warning("disk alarm cleared: %d bytes free", free)
            self.active = False
            self.on_change(False)
