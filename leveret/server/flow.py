"""Flow control: the disk alarm that blocks publishers, as RabbitMQ's disk_free_limit does.

Every `interval` seconds the free space of the data directory is measured. Below the limit the alarm
goes on (server/alarms.py): connections that publish get connection.blocked (if they announced that
capability) and stop being read (their socket buffers fill and their publishers wait) instead of having
writes fail. When space returns, reading resumes and connection.unblocked is sent.
Consumers keep being served throughout, so queues can drain.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from leveret.server.alarms import DISK
from leveret.store.diskspace import free_bytes

if TYPE_CHECKING:
    from leveret.server.app import Server

log = logging.getLogger("leveret.flow")


class DiskAlarm:
    """Polls free disk space and blocks or unblocks publishing connections."""

    def __init__(self, server: "Server", limit: int, interval: float = 1.0,
                 measure: Callable[[str], int] = free_bytes) -> None:
        self.server = server
        self.limit = limit
        self.interval = interval
        self.measure = measure
        self.active = False
        self.free: int | None = None  # bytes free at the last check (the management API shows it)
        self._handle = None

    def start(self) -> None:
        self.check()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def check(self) -> None:
        """Measure now, switch the alarm if needed, and schedule the next check."""
        try:
            free = self.measure(self.server.data_dir)
        except OSError as exc:
            log.warning("cannot measure free disk space: %s", exc)
            free = self.limit  # unknown: leave the alarm as it is
        else:
            self.free = free
            low = free < self.limit
            if low and not self.active:
                log.warning("disk alarm: %d bytes free, under the limit of %d; blocking publishers", free, self.limit)
                self.active = True
                self.server.alarms.set(DISK, True)
            elif not low and self.active:
                log.warning("disk alarm cleared: %d bytes free", free)
                self.active = False
                self.server.alarms.set(DISK, False)
        self._handle = self.server.loop.call_later(self.interval, self.check)
