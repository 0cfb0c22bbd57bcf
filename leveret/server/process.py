"""Process-wide tuning that only `leveret serve` applies: CPython's cyclic GC and glibc's allocator.

An embedded broker runs inside somebody else's process, so nothing here is done on import.

GC: the broker holds millions of small long-lived objects (queue entries, messages, their properties);
with CPython's default thresholds the cyclic collector re-scans them over and over, which halved publish
throughput into a deep in-memory queue (bench: a16, 40k -> 80k msgs/s). Messages form no reference
cycles, so rarer collections only delay freeing the few objects a closed connection leaves in cycles
(protocol, session, channels); CPython still runs full collections when that garbage grows past a
quarter of the long-lived objects.

Allocator: a message body over 512 bytes is a plain malloc. By default glibc hands the top of its heap
back to the kernel as soon as 128 KiB of it are free, and serves every allocation of 128 KiB or more with
a fresh mmap: so each burst of large messages after a drain page-faults all its memory in again (80,000
minor faults for 5,000 x 64 KB, half the broker's CPU in bench a64k: 15k -> 31k msgs/s without them).
We keep up to KEEP_FREED_BYTES of freed heap for reuse, as Erlang's allocators do for RabbitMQ, take
bodies up to MMAP_THRESHOLD from the heap, and give the kept memory back once the broker has been idle
for a while (IdleTrimmer), so a quiet broker's RSS still falls after a burst.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import platform
import time
from typing import Callable

log = logging.getLogger("leveret")

KEEP_FREED_BYTES = 512 * 1024 * 1024
MMAP_THRESHOLD = 4 * 1024 * 1024
# glibc's mallopt parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

IDLE_CHECK_SECONDS = 10.0
# Below this share of one core over a check interval the broker counts as idle.
IDLE_CPU_SHARE = 0.02


def tune_gc() -> None:
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def tune_malloc() -> Callable[[], None] | None:
    """Apply the allocator settings; return a function that releases kept memory, or None (not glibc)."""
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        mallopt, malloc_trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    malloc_trim.argtypes = [ctypes.c_size_t]
    if not (mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES) and mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)):
        log.debug("mallopt refused the allocator settings")
        return None
    return lambda: malloc_trim(0)


class IdleTrimmer:
    """Every IDLE_CHECK_SECONDS, releases the allocator's kept memory once, when the broker was idle.

    Idle is measured by the process's own CPU time, so nothing is counted on the hot path.
    """

    def __init__(self, loop, trim: Callable[[], None], interval: float = IDLE_CHECK_SECONDS,
                 cpu_time: Callable[[], float] = time.process_time) -> None:
        self.loop = loop
        self.trim = trim
        self.interval = interval
        self.cpu_time = cpu_time
        self._cpu = cpu_time()
        self._trimmed = False
        self._handle = None
        self.trims = 0

    def start(self) -> None:
        self._handle = self.loop.call_later(self.interval, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        cpu = self.cpu_time()
        busy = cpu - self._cpu > IDLE_CPU_SHARE * self.interval
        self._cpu = cpu
        if busy:
            self._trimmed = False
        elif not self._trimmed:
            self.trim()
            self.trims += 1
            self._trimmed = True
            self._cpu = self.cpu_time()  # the trim's own CPU does not count as activity
        self._handle = self.loop.call_later(self.interval, self._tick)
