"""The one place store code writes files: every open, write, fsync, rename, truncate and unlink goes here.

Two reasons to funnel them through one object:

* Failure handling is written once. ``write_all`` loops over partial writes (a full disk may take part of
  a buffer and then refuse the rest) and raises instead of returning short; ``write_atomically`` and
  ``sync_directory`` are the only implementations of those steps in the store.
* Tests can make any call fail. A store takes a ``FileIO`` (``file_io=``); the default, ``REAL``, calls
  the ``os`` functions. A test subclass overrides a primitive to raise ``OSError(ENOSPC)`` or ``EIO`` on
  the k-th call, and the store's own recovery from that failure is exercised for real.

``FailureLog`` keeps the log proportional to failure *events*: a full disk fails every publish, and one
line per publish would fill what little space is left. Each kind of failure is logged once, then at most
once per interval with the number of repeats in between; never with a traceback.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from leveret.store.diskspace import STORE_WRITES

log = logging.getLogger("leveret.store")

# Flags of the files the store appends to.
APPEND_FLAGS = os.O_WRONLY | os.O_APPEND


class FileIO:
    """The file operations the store uses; override a primitive to inject faults (see the module docstring).

    Primitives: open, write, pwrite, fsync, fdatasync, rename, truncate, ftruncate, unlink. The helpers below are
    built on them only, so a fault injected into a primitive reaches every caller.
    """

    # -- primitives -------------------------------------------------------------------------------
    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        return os.open(path, flags, mode)

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> int:
        return os.write(fd, data)

    def pwrite(self, fd: int, data: bytes | bytearray | memoryview, position: int) -> int:
        return os.pwrite(fd, data, position)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def fdatasync(self, fd: int) -> None:
        os.fdatasync(fd)

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def truncate(self, path: str, length: int) -> None:
        os.truncate(path, length)

    def ftruncate(self, fd: int, length: int) -> None:
        os.ftruncate(fd, length)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    # -- helpers ----------------------------------------------------------------------------------
    def write_all(self, fd: int, data: bytes | bytearray | memoryview) -> None:
        """Write every byte of `data` (looping over partial writes); raise OSError if the kernel refuses.

        On an error, some prefix of `data` may be in the file: the caller rolls the file back."""
        # Every view is released on the way out, even when the error propagates: a traceback keeping an
        # export alive would stop the caller from clearing its buffer while it rolls back.
        with memoryview(data) as view:
            written = 0
            total = len(view)
            try:
                while written < total:
                    with view[written:] as part:
                        n = self.write(fd, part)
                    if n <= 0:  # a zero-length write on a regular file means no space
                        raise OSError(28, "No space left on device (short write)")
                    written += n
            finally:
                # Counted once per call, for the disk alarm's checks by bytes written (diskspace.py).
                STORE_WRITES.add(written)

    def pwrite_all(self, fd: int, data: bytes | bytearray | memoryview, position: int) -> None:
        """Write every byte of `data` at `position` (looping over partial writes); raise if refused."""
        with memoryview(data) as view:
            written = 0
            try:
                while written < len(view):
                    with view[written:] as part:
                        n = self.pwrite(fd, part, position + written)
                    if n <= 0:
                        raise OSError(28, "No space left on device (short write)")
                    written += n
            finally:
                STORE_WRITES.add(written)

    def write_file(self, path: str, data: bytes, *, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> None:
        """Create or replace `path` with `data` and fsync it (no rename: see write_atomically)."""
        fd = self.open(path, flags)
        try:
            self.write_all(fd, data)
            self.fsync(fd)
        finally:
            os.close(fd)

    def write_atomically(self, path: str, data: bytes) -> None:
        """Write ``<path>.tmp``, fsync it, rename it over `path`, fsync the directory.

        A failure at any step leaves `path` as it was (the tmp file is removed when possible; recovery
        deletes any ``*.tmp`` it finds otherwise)."""
        tmp = path + ".tmp"
        try:
            self.write_file(tmp, data)
            self.rename(tmp, path)
        except OSError:
            try:
                self.unlink(tmp)
            except OSError:
                pass
            raise
        self.sync_directory(os.path.dirname(path) or ".")

    def sync_directory(self, directory: str) -> None:
        """fsync a directory so that creations, renames and unlinks in it are durable."""
        fd = self.open(directory, os.O_RDONLY)
        try:
            self.fsync(fd)
        finally:
            os.close(fd)

    def remove(self, path: str) -> bool:
        """Unlink `path`; False (not an error) if it was already gone."""
        try:
            self.unlink(path)
        except FileNotFoundError:
            return False
        return True


REAL = FileIO()

write_all = REAL.write_all
write_atomically = REAL.write_atomically
sync_directory = REAL.sync_directory


class FailureLog:
    """One log line per failure event, rate-limited per kind (see the module docstring)."""

    def __init__(self, interval: float = 10.0, clock=time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()  # failures are noted on the loop thread and the fsync thread
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self.events = 0  # every failure noted, logged or not (for tests and metrics)

    def note(self, kind: str, exc: BaseException, detail: str = "") -> bool:
        """Log `exc` for failure `kind` unless one was logged within the interval; True if logged."""
        now = self._clock()
        with self._lock:
            self.events += 1
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return False
            self._last[kind] = now
            repeats = self._suppressed.pop(kind, 0)
        more = f" ({repeats} more since the last report)" if repeats else ""
        where = f" {detail}" if detail else ""
        log.error("store: %s failed%s: %s%s", kind, where, _describe(exc), more)
        return True


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        name = os.strerror(exc.errno)
        return f"[errno {exc.errno}] {name}" + (f": {exc.filename}" if exc.filename else "")
    return f"{type(exc).__name__}: {exc}"


failures = FailureLog()
