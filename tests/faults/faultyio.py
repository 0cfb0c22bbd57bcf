"""A file layer that fails on demand: leveret.store.fsio.FileIO with counted, armable primitives.

Every call is counted per kind (open, write, fsync, rename, truncate, unlink; fdatasync counts as fsync and
ftruncate as truncate) and per call site (the first frame outside fsio.py: file, function). A test runs a
workload once to learn the sites, then arms a fault: the next call of a kind (optionally only at one site)
raises ENOSPC or EIO. A failing write first writes half of what it was given, as a filling disk does, so
the file really holds a torn record afterwards.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
from collections import Counter

from leveret.store.fsio import FileIO

KINDS = ("open", "write", "fsync", "rename", "truncate", "unlink")
_FSIO = os.path.join("leveret", "store", "fsio.py")


def _site() -> str:
    frame = sys._getframe(2)
    while frame is not None and (frame.f_code.co_filename.endswith(_FSIO)
                                 or frame.f_code.co_filename == __file__):
        frame = frame.f_back
    if frame is None:
        return "?"
    name = frame.f_code.co_filename
    short = name[name.rfind("leveret" + os.sep):] if "leveret" + os.sep in name else os.path.basename(name)
    return f"{short}:{frame.f_code.co_name}"


class FaultyIO(FileIO):
    """Counts calls per (kind, site); `arm(kind, site=None, error=ENOSPC)` makes the next matching call fail."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the fsync thread calls in too
        self.calls: Counter[tuple[str, str]] = Counter()
        # Armed faults: [kind, site or None, errno, stay, calls to let through first]; a one-shot fault
        # leaves the list when it fires.
        self._armed: list[list] = []
        self.fired: list[tuple[str, str]] = []

    def arm(self, kind: str, site: str | None = None, error: int = errno.ENOSPC, *, stay: bool = False,
            skip: int = 0) -> None:
        """Fail the next call of `kind` (at `site` only, if given) after letting `skip` through; with `stay`,
        every one until `disarm`."""
        assert kind in KINDS, kind
        with self._lock:
            self._armed.append([kind, site, error, stay, skip])

    def disarm(self) -> None:
        with self._lock:
            self._armed.clear()

    @property
    def pending(self) -> bool:
        """True while an armed one-shot fault has not fired yet."""
        return any(not a[3] for a in self._armed)

    def sites(self) -> set[tuple[str, str]]:
        return set(self.calls)

    def _check(self, kind: str) -> int | None:
        site = _site()
        with self._lock:
            self.calls[(kind, site)] += 1
            for armed in self._armed:
                if armed[0] == kind and (armed[1] is None or armed[1] == site):
                    if armed[4] > 0:
                        armed[4] -= 1
                        return None
                    if not armed[3]:
                        self._armed.remove(armed)
                    self.fired.append((kind, site))
                    return armed[2]
            return None

    @staticmethod
    def _raise(code: int, what: str) -> None:
        raise OSError(code, os.strerror(code) + f" (injected into {what})")

    # -- primitives -------------------------------------------------------------------------------
    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        code = self._check("open")
        if code is not None:
            self._raise(code, "open")
        return super().open(path, flags, mode)

    def write(self, fd: int, data) -> int:
        code = self._check("write")
        if code is not None:
            if code == errno.ENOSPC and len(data) > 1:
                os.write(fd, bytes(data[: len(data) // 2]))  # the disk took part of it
            self._raise(code, "write")
        return super().write(fd, data)

    def fsync(self, fd: int) -> None:
        code = self._check("fsync")
        if code is not None:
            self._raise(code, "fsync")
        super().fsync(fd)

    def fdatasync(self, fd: int) -> None:
        code = self._check("fsync")
        if code is not None:
            self._raise(code, "fdatasync")
        super().fdatasync(fd)

    def rename(self, src: str, dst: str) -> None:
        code = self._check("rename")
        if code is not None:
            self._raise(code, "rename")
        super().rename(src, dst)

    def truncate(self, path: str, length: int) -> None:
        code = self._check("truncate")
        if code is not None:
            self._raise(code, "truncate")
        super().truncate(path, length)

    def ftruncate(self, fd: int, length: int) -> None:
        code = self._check("truncate")
        if code is not None:
            self._raise(code, "ftruncate")
        super().ftruncate(fd, length)

    def unlink(self, path: str) -> None:
        code = self._check("unlink")
        if code is not None:
            self._raise(code, "unlink")
        super().unlink(path)
