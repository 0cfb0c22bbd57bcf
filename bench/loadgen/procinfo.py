"""Broker process facts read from /proc: who listens on a port, how big it is.

No psutil: /proc/net/tcp gives the listening socket's inode, /proc/*/fd links
name the process holding it, /proc/PID/status gives VmRSS.
"""

from __future__ import annotations

import os


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, state, inode = parts[1], parts[3], parts[9]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(inode)
        except OSError:
            continue
    return inodes


def pid_listening_on(port: int) -> int | None:
    """The pid of the process with a listening socket on ``port``, if visible."""
    targets = {f"socket:[{i}]" for i in _listening_inodes(port)}
    if not targets:
        return None
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        fd_dir = f"/proc/{pid}/fd"
        try:
            for fd in os.listdir(fd_dir):
                try:
                    if os.readlink(f"{fd_dir}/{fd}") in targets:
                        return int(pid)
                except OSError:
                    continue
        except OSError:
            continue
    return None


def rss_kib(pid: int | None) -> int | None:
    """Resident set size of ``pid`` in KiB (VmRSS), or None if unreadable."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int | None) -> float | None:
    """User+system CPU time consumed so far by ``pid`` (all threads)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def loadavg() -> str:
    """The first three fields of /proc/loadavg."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"
