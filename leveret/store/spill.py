"""FileSpill: a first-in first-out file of message batches, for transient backlogs paged out of memory.

A queue whose backlog of messages without a durable copy grows past its memory window hands them here
in batches of (exchange, routing key, raw properties, body) and takes them back, oldest batch first, when
the in-memory part drains. Nothing here is durable: no checksums (the bytes never outlive the process
that wrote them: the directory is wiped at every start), no fsync, and a batch is encoded with `marshal`,
whose C encoder and decoder make a batch of a thousand messages one write and one read of a few hundred
microseconds. (marshal's format is only stable within one Python version, which is all a spill needs.)

Space comes back as the spill drains: the spill writes files of up to `file_size` bytes one after the
other and deletes each as soon as its last batch has been taken back, so a backlog that never empties
does not grow its files without bound.
"""

from __future__ import annotations

import logging
import marshal
import os
from collections import deque

from leveret.store.fsio import REAL

log = logging.getLogger("leveret.spill")

FILE_SIZE = 64 * 1024 * 1024


class _File:
    __slots__ = ("path", "fd", "size", "live")

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self.size = 0
        self.live = 0  # batches written to this file and not yet taken back

    def remove(self) -> None:
        os.close(self.fd)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class FileSpill:
    """Batches of messages in files under `directory`, taken back in the order they were pushed."""

    def __init__(self, directory: str, file_size: int = FILE_SIZE) -> None:
        self.directory = directory
        self.file_size = file_size
        os.makedirs(directory, exist_ok=True)
        self._files: deque[_File] = deque()
        self._batches: deque[tuple[_File, int, int, int]] = deque()  # (file, position, length, count)
        self._next_name = 0
        self.deleted = False

    def __len__(self) -> int:
        return len(self._batches)

    def push(self, batch: list) -> None:
        """Append a batch; raises OSError (disk full, ...) with nothing recorded."""
        data = marshal.dumps(batch)
        files = self._files
        if not files or files[-1].size >= self.file_size:
            files.append(_File(os.path.join(self.directory, str(self._next_name))))
            self._next_name += 1
        f = files[-1]
        # A partial write is simply overwritten by the next push: `size` only moves past whole batches.
        REAL.pwrite_all(f.fd, data, f.size)
        self._batches.append((f, f.size, len(data), len(batch)))
        f.size += len(data)
        f.live += 1

    def pop(self) -> list:
        """Remove and return the oldest batch; IndexError when there is none.

        A batch that cannot be read back (an I/O error, a file damaged behind our back) comes back as
        as many None as it had messages, so the caller's count of spilled messages stays exact."""
        f, position, length, count = self._batches.popleft()
        batch = self._read(f, position, length, count)
        f.live -= 1
        if f.live == 0:
            self._files.remove(f)
            f.remove()
        return batch

    def peek(self, index: int) -> list:
        """The batch `index` places behind the oldest, read and left where it is (a management API peek)."""
        return self._read(*self._batches[index])

    @staticmethod
    def _read(f: _File, position: int, length: int, count: int) -> list:
        try:
            chunks = []
            read = 0
            while read < length:
                chunk = os.pread(f.fd, length - read, position + read)
                if not chunk:
                    raise OSError(f"spill file {f.path} is shorter than what was written to it")
                chunks.append(chunk)
                read += len(chunk)
            batch = marshal.loads(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            if type(batch) is not list or len(batch) != count:
                raise ValueError(f"spill file {f.path} holds something else at {position}")
        except (OSError, ValueError, EOFError, TypeError) as exc:
            log.error("lost %d transient messages paged out of memory: %s", count, exc)
            batch = [None] * count
        return batch

    def delete(self) -> None:
        """Drop every batch and the files."""
        for f in self._files:
            f.remove()
        self._files.clear()
        self._batches.clear()
        self.deleted = True
        try:
            os.rmdir(self.directory)
        except OSError:
            pass
