"""A small tmpfs to fill: the data directory of disk-full tests.

The suite runs as root on CI, where mounting is allowed; elsewhere the tests that need one skip.
Every mount is unmounted when the context ends, whatever happened inside it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

MiB = 1024 * 1024


def _mount(directory: str, size: int) -> str | None:
    """None if mounted, else why not."""
    if shutil.which("mount") is None:
        return "no mount command"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", directory],
        capture_output=True, text=True,
    )
    return None if done.returncode == 0 else (done.stderr.strip() or f"mount exited {done.returncode}")


@contextmanager
def small_tmpfs(size: int = 8 * MiB) -> Iterator[str]:
    """A fresh tmpfs of `size` bytes mounted on a temporary directory; skips the test if it cannot mount."""
    directory = tempfile.mkdtemp(prefix="leveret-tmpfs-")
    why = _mount(directory, size)
    if why is not None:
        os.rmdir(directory)
        pytest.skip(f"cannot mount a tmpfs here: {why}")
    try:
        yield directory
    finally:
        if subprocess.run(["umount", directory], capture_output=True).returncode != 0:
            # Something still holds a file open (a process that will exit): detach it now, freed later.
            subprocess.run(["umount", "-l", directory], capture_output=True)
        os.rmdir(directory)


def free_bytes(path: str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill_until(path: str, name: str, leave_free: int) -> str:
    """Write a filler file `name` under `path` until only about `leave_free` bytes are free; returns its path."""
    filler = os.path.join(path, name)
    chunk = b"\0" * (64 * 1024)
    with open(filler, "ab") as f:
        while free_bytes(path) > leave_free + len(chunk):
            f.write(chunk)
            f.flush()
    return filler
