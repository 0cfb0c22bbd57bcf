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
for a while, or busy with much of it lying unused (MemoryTrimmer), so RSS still falls after a burst.
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

CHECK_SECONDS = 10.0
# Below this share of one core over a check interval the broker counts as idle.
IDLE_CPU_SHARE = 0.02
# A busy broker gives the kept memory back when this much of its heap stayed free for two checks in a
# row: the burst that needed it is over, and steady traffic must not pin it forever.
SURPLUS_BYTES = 128 * 1024 * 1024


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


class Allocator:
    """glibc's malloc, tuned; `trim()` returns kept memory to the kernel, `free_bytes()` says how much is kept."""

    def __init__(self, libc) -> None:
        self._trim = libc.malloc_trim
        self._trim.argtypes = [ctypes.c_size_t]
        try:
            self._info = libc.mallinfo2  # glibc 2.33+
            self._info.restype = _MallInfo2
            self._info.argtypes = []
        except AttributeError:
            self._info = None

    def trim(self) -> None:
        self._trim(0)

    def free_bytes(self) -> int | None:
        """Bytes of the heap that are free but still mapped (None when glibc cannot tell)."""
        return self._info().fordblks if self._info is not None else None


def tune_gc() -> None:
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def _libc():
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def glibc_allocator() -> Allocator | None:
    """glibc's allocator as it is (no settings changed), to trim; None where the C library is not glibc."""
    libc = _libc()
    try:
        return Allocator(libc) if libc is not None else None
    except AttributeError:
        return None


def tune_malloc() -> Allocator | None:
    """Apply the allocator settings; the Allocator to trim with, or None (not glibc)."""
    libc = _libc()
    if libc is None:
        return None
    try:
        mallopt = libc.mallopt
        allocator = Allocator(libc)
    except AttributeError:
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    if not (mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES) and mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)):
        log.debug("mallopt refused the allocator settings")
        return None
    return allocator


class MemoryTrimmer:
    """Every CHECK_SECONDS, gives the allocator's kept memory back when it is no longer wanted.

    That is once per idle stretch (idle measured by the process's own CPU time, so nothing is counted on
    the hot path), or, while busy, once more than SURPLUS_BYTES of heap stayed free for two checks.
    """

    def __init__(self, loop, allocator, interval: float = CHECK_SECONDS,
                 cpu_time: Callable[[], float] = time.process_time) -> None:
        self.loop = loop
        self.allocator = allocator
        self.interval = interval
        self.cpu_time = cpu_time
        self._cpu = cpu_time()
        self._trimmed = False
        self._surplus_checks = 0
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
        free = self.allocator.free_bytes()
        self._surplus_checks = self._surplus_checks + 1 if free is not None and free > SURPLUS_BYTES else 0
        if busy:
            self._trimmed = False
            if self._surplus_checks >= 2:
                self._trim()
        elif not self._trimmed:
            self._trim()
            self._trimmed = True
        self._handle = self.loop.call_later(self.interval, self._tick)

    def _trim(self) -> None:
        self.allocator.trim()
        self.trims += 1
        self._surplus_checks = 0
        self._cpu = self.cpu_time()  # the trim's own CPU does not count as activity
