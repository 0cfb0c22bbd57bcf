"""Free space in the data directory, for the disk alarm (RabbitMQ's disk_free_limit), and a count of
the bytes the store writes, so the alarm can look again before a burst of writes fills the disk.

The server measures free space on a timer and, through `STORE_WRITES`, each time the store has
written another slice of the limit since it last looked: at full publish speed a timer alone can
let the disk fill between two ticks; counting bytes bounds what is written between two checks.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

# Never check more often than once per this many bytes written (a statvfs is cheap, not free).
MIN_CHECK_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class DiskSpace:
    """Bytes free for unprivileged writers and total bytes of the file system holding a path."""

    free: int
    total: int

    def below(self, limit: int) -> bool:
        """True if fewer than `limit` bytes are free (the alarm condition)."""
        return self.free < limit


def measure_disk_space(path: str) -> DiskSpace:
    """Free and total bytes of the file system holding `path` (os.statvfs; f_bavail, as df shows)."""
    st = os.statvfs(path)
    return DiskSpace(free=st.f_bavail * st.f_frsize, total=st.f_blocks * st.f_frsize)


def free_bytes(path: str) -> int:
    """Bytes free for unprivileged writers on the file system holding `path`."""
    return measure_disk_space(path).free


def check_every(limit: int) -> int:
    """Bytes written between two free-space checks for a given disk_free_limit: a quarter of it, at least 64 KiB.

    So when the alarm trips (free < limit) at least three quarters of the limit are still free,
    less whatever one read of the event loop appends before the check runs."""
    return max(limit // 4, MIN_CHECK_BYTES)


class _Subscription:
    __slots__ = ("callback", "every", "due_at")

    def __init__(self, callback: Callable[[], None], every: int, due_at: int) -> None:
        self.callback = callback
        self.every = every
        self.due_at = due_at


class WriteMeter:
    """A thread-safe count of bytes written, calling each subscriber every time `every` more went out.

    Bumped where the store hands bytes to the kernel (fsio.FileIO.write_all and pwrite_all, which
    every store write goes through), once per call, not per message. Subscribers are called on the writing thread, outside the
    lock, and must only schedule work (the disk alarm hands the check to the event loop).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self._subscriptions: list[_Subscription] = []

    def add(self, n: int) -> None:
        """Count `n` more bytes written."""
        with self._lock:
            self.total = total = self.total + n
            if not self._subscriptions:
                return
            due = []
            for sub in self._subscriptions:
                if total >= sub.due_at:
                    sub.due_at = total + sub.every
                    due.append(sub.callback)
        for callback in due:
            callback()

    def subscribe(self, callback: Callable[[], None], every: int) -> object:
        """Call `callback` each time another `every` bytes were written; returns a handle for unsubscribe."""
        with self._lock:
            sub = _Subscription(callback, every, self.total + every)
            self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, handle: object) -> None:
        with self._lock:
            if handle in self._subscriptions:
                self._subscriptions.remove(handle)  # type: ignore[arg-type]


# Every store in the process counts here (several brokers in one test process share it: a write in one
# only makes the others look at their free space a little early).
STORE_WRITES = WriteMeter()
