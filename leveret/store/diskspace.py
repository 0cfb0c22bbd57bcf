"""Free space in the data directory, for the disk alarm (RabbitMQ's disk_free_limit).

The server polls this on a timer and blocks publishers while the free bytes are below the limit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# RabbitMQ's default disk_free_limit.
DEFAULT_FREE_LIMIT = 50 * 1000 * 1000


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
