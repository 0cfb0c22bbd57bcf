"""The memory alarm: RabbitMQ's vm_memory_high_watermark for the broker process as a whole.

Every `memory_monitor_interval` milliseconds the process's resident set size is measured. Two steps:
- The memory budget (broker/paging.py's MemoryBudget) may only grow by the room left under half the
  watermark (RabbitMQ's vm_memory_high_watermark_paging_ratio, 0.5); past half, queues keep their small
  in-memory window and page every further transient body out to disk, so a backlog stops costing memory
  before anyone is blocked.
- Past the watermark the memory alarm goes on (server/alarms.py): publishing connections get
  connection.blocked ("low on memory") and are not read until memory falls back under the watermark;
  consumers go on, so queues drain.

Freed Python memory is not always handed back to the kernel at once (glibc keeps freed heap, and
`leveret serve` asks it to keep more, see server/process.py), so over the watermark the allocator is
trimmed before the alarm is judged: the alarm then measures memory in use, not memory kept for reuse.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Callable

import psutil

log = logging.getLogger("leveret.flow")

# RabbitMQ's information units for vm_memory_high_watermark.absolute (and disk_free_limit): k/K/KiB, M/MiB,
# G/GiB are powers of 1024, kB/KB, MB, GB powers of 1000.
_UNITS = {
    "": 1, "b": 1,
    "k": 1024, "kib": 1024, "kb": 1000,
    "m": 1024**2, "mib": 1024**2, "mb": 1000**2,
    "g": 1024**3, "gib": 1024**3, "gb": 1000**3,
    "t": 1024**4, "tib": 1024**4, "tb": 1000**4,
}
_AMOUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def watermark_bytes(value: Any, total: int) -> int:
    """The memory_high_watermark setting in bytes.

    At most 1.0 (without a unit) is a fraction of `total` RAM, as RabbitMQ's vm_memory_high_watermark (0.4 by
    default); more than 1, or any amount with a unit ("512MiB", "2GB"), is an absolute number of bytes."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number, unit = float(value), ""
    else:
        match = _AMOUNT.match(str(value))
        if match is None or match.group(2).lower() not in _UNITS:
            raise ValueError(f"memory_high_watermark: expected a fraction of RAM such as 0.4 or an amount "
                             f"such as 512MiB, got {value!r}")
        number, unit = float(match.group(1)), match.group(2).lower()
    if not unit and number <= 1.0:
        return int(number * total)
    return int(number * _UNITS[unit])


def process_rss() -> int:
    """This process's resident set size in bytes."""
    return psutil.Process().memory_info().rss


def total_memory() -> int:
    """The machine's RAM in bytes."""
    return psutil.virtual_memory().total


class MemoryAlarm:
    """Measures the process's memory every `interval` seconds, squeezes the memory budget, switches the alarm."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int, interval: float, on_change: Callable[[bool], None],
                 budget: Any = None, trim: Callable[[], None] | None = None,
                 measure: Callable[[], int] = process_rss) -> None:
        self.loop = loop
        self.on_change = on_change  # the alarm went on (True) or off (server/alarms.py tells connections)
        self.limit = limit
        self.interval = interval
        self.budget = budget  # broker/paging.py MemoryBudget, or None
        self.budget_limit = budget.limit if budget is not None else 0  # the configured memory_budget
        self.trim = trim
        self.measure = measure
        self.used = 0  # bytes resident at the last check
        self.active = False
        self._handle: Any = None

    def start(self) -> None:
        self.check()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def check(self) -> None:
        """Measure now, squeeze or restore the budget, switch the alarm if needed, schedule the next check."""
        try:
            used = self.measure()
            if used > self.limit and self.trim is not None:
                self.trim()
                used = self.measure()
        except (OSError, psutil.Error) as exc:
            log.warning("cannot measure the broker's memory: %s", exc)
        else:
            self.used = used
            self._squeeze(used)
            over = used > self.limit
            if over and not self.active:
                log.warning("memory alarm: %d bytes resident, over the high watermark of %d; blocking publishers",
                            used, self.limit)
                self.active = True
                self.on_change(True)
            elif not over and self.active:
                log.warning("memory alarm cleared: %d bytes resident", used)
                self.active = False
                self.on_change(False)
        if self._handle is not None:
            self._handle.cancel()  # a check run out of turn (a test, a changed limit) replaces the pending one
        self._handle = self.loop.call_later(self.interval, self.check)

    def _squeeze(self, used: int) -> None:
        """Let the budget grow only by the room left under half the watermark (RabbitMQ's paging ratio, 0.5).

        The budget's limit becomes the bodies it holds now plus that room (never more than the configured
        memory_budget): under half the watermark, a burst between two checks can add at most the room left
        before transient bodies page out; past it, the limit falls under what is held and every further
        transient body pages out (each queue keeps only its small window)."""
        budget = self.budget
        if budget is None:
            return
        room = self.limit // 2 - used
        budget.limit = max(0, min(self.budget_limit, budget.used + room))
