"""The broker under test as a subprocess, its logs, its memory, and the small tmpfs the disk cycles fill."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import subprocess
import tempfile
import time
from typing import Any, Iterator

from bench.loadgen.procinfo import rss_kib
from tests.crash.broker_process import BrokerProcess

_LEVEL = re.compile(r"^\S+ \S+ (ERROR|CRITICAL) ")


class StartFailed(Exception):
    """The broker did not come up (recovery failed): the message holds the tail of its log."""


class Broker:
    """Starts, kills and restarts one broker over one data directory; keeps every incarnation's log."""

    def __init__(self, data_dir: str, settings: dict[str, Any], logs_dir: str | None, label: str,
                 start_timeout: float = 60.0, on_start=None) -> None:
        self.data_dir = data_dir
        self.settings = settings
        self.logs_dir = logs_dir
        self.label = label
        self.start_timeout = start_timeout
        self.proc: BrokerProcess | None = None
        self.incarnation = 0
        self.start_times: list[float] = []
        self.error_lines = 0
        self.tracebacks = 0
        self.error_samples: list[str] = []
        self.on_start = on_start  # called before each start (the ledger advances its epoch)

    def start(self) -> float:
        """Start (recovering whatever is in the data directory); returns seconds until it listened."""
        if self.on_start:
            self.on_start()
        t0 = time.monotonic()
        try:
            self.proc = BrokerProcess(self.data_dir, self.start_timeout, settings=self.settings)
        except RuntimeError as exc:
            self.incarnation += 1
            log = str(exc).splitlines()
            self.error_lines += sum(1 for line in log if _LEVEL.match(line))
            self.tracebacks += sum(1 for line in log if line.startswith("Traceback"))
            if self.logs_dir:
                os.makedirs(self.logs_dir, exist_ok=True)
                with open(os.path.join(self.logs_dir, f"{self.label}-{self.incarnation:04d}.log"), "w") as f:
                    f.write(str(exc))
            raise StartFailed("\n".join(log[-12:])) from None
        took = time.monotonic() - t0
        self.start_times.append(took)
        self.incarnation += 1
        return took

    @property
    def url(self) -> str:
        assert self.proc is not None
        return self.proc.url

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.proc.pid

    def rss(self) -> int:
        """Resident bytes of the broker process now (0 if it is gone)."""
        return (rss_kib(self.pid) or 0) * 1024

    def alive(self) -> bool:
        return self.proc is not None and self.proc.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self._collect()

    def stop_then_kill(self, grace: float) -> bool:
        """SIGTERM, then SIGKILL if the clean stop takes longer than `grace` seconds; True if it stopped
        cleanly (a kill in the middle of a clean stop is the fault this exercises)."""
        if self.proc is None:
            return False
        proc = self.proc.proc
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
            clean = True
        except subprocess.TimeoutExpired:
            clean = False
        self.kill()
        return clean

    def stop(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stop()
            finally:
                self._collect()

    def _collect(self) -> None:
        proc, self.proc = self.proc, None
        assert proc is not None
        lines = list(proc.log)
        for line in lines:
            if _LEVEL.match(line):
                self.error_lines += 1
                if len(self.error_samples) < 20:
                    self.error_samples.append(f"[{self.label} #{self.incarnation}] {line.rstrip()[:300]}")
            if line.startswith("Traceback"):
                self.tracebacks += 1
        if self.logs_dir:
            os.makedirs(self.logs_dir, exist_ok=True)
            name = os.path.join(self.logs_dir, f"{self.label}-{self.incarnation:04d}.log")
            with open(name, "w") as f:
                f.writelines(lines)


@contextlib.contextmanager
def small_tmpfs(size_mib: int) -> Iterator[str | None]:
    """A fresh tmpfs of `size_mib`; yields its path, or None where mounting is not allowed (not root, no
    CAP_SYS_ADMIN). Unmounted on the way out whatever happened, Ctrl-C included."""
    base = tempfile.mkdtemp(prefix="faultrun-tmpfs-")
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m,mode=0700", "faultrun", base],
                                capture_output=True, text=True)
    except FileNotFoundError:
        result = None
    if result is None or result.returncode != 0:
        os.rmdir(base)
        yield None
        return
    try:
        yield base
    finally:
        for _ in range(50):
            if subprocess.run(["umount", base], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)  # a dying broker may still hold files open
        else:
            subprocess.run(["umount", "-l", base], capture_output=True)
        with contextlib.suppress(OSError):
            os.rmdir(base)


def fill_disk(path: str, stop_at_free: int = 0, chunk: int = 1 << 20) -> tuple[int, bool]:
    """Append zeros to `path` until the file system has at most `stop_at_free` bytes free, or until ENOSPC
    (stop_at_free=0). Returns the bytes written and whether a write met ENOSPC. Chunks shrink near the end,
    so the fill is exact."""
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            st = os.statvfs(path)
            free = st.f_bavail * st.f_frsize
            if stop_at_free and free <= stop_at_free:
                return written, False
            size = chunk if free > 4 * chunk else 4096
            if stop_at_free:
                size = max(4096, min(size, free - stop_at_free))
            try:
                written += os.write(fd, bytes(size))
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    if size == 4096:
                        return written, True
                    continue  # retry with the smallest chunk
                raise
    finally:
        os.close(fd)


def free_bytes(path: str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize
