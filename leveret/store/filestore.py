"""The file-backed implementation of api.MessageStore: every durable queue's store (queue_store.py) and
stream (stream.py) under one data directory, with one group commit across them all.

Layout under the data directory::

    queues/<sha1 of vhost NUL name>/queue.name     {"vhost": ..., "name": ...}, written atomically
    queues/<sha1 ...>/<base>.seg, <base>.ack         the queue's log and ack files
    queues/<sha1 ...>.deleted/                       a queue being deleted (finished on open)

A directory is named by a hash because queue names are up to 255 bytes of any UTF-8, which a file
system does not take as-is; the real names live in ``queue.name``.

Fan-out: each queue stores its own copy of a message (see docs/durability.md for the measurement).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

from leveret.store.commit import CommitTicket, GroupCommit, SeamHook, no_seam
from leveret.store.fsio import REAL, FileIO
from leveret.store.log import DEFAULT_SEGMENT_SIZE
from leveret.store.recovery import RecoveryReport
from leveret.store.queue_store import FileQueueStore
from leveret.store.spill import FileSpill
from leveret.store.stream import FileStreamStore

QUEUES_DIR = "queues"
SCRATCH_DIR = "scratch"
NAME_FILE = "queue.name"
DELETED_SUFFIX = ".deleted"
STREAMS_DIR = "streams"
STREAM_NAME_FILE = "stream.name"


def queue_dir_name(vhost: str, name: str) -> str:
    """The directory name of a queue: a hash, because names may not be valid file names."""
    return hashlib.sha1(f"{vhost}\0{name}".encode()).hexdigest()


class FileMessageStore:
    """Every durable queue's store under one data directory, with one group commit across them all."""

    def __init__(
        self, data_dir: str, *, segment_size: int = DEFAULT_SEGMENT_SIZE, seam: SeamHook = no_seam,
        file_io: FileIO = REAL,
    ) -> None:
        self.data_dir = data_dir
        self.segment_size = segment_size
        self._seam = seam
        self.io = file_io
        self._root = os.path.join(data_dir, QUEUES_DIR)
        os.makedirs(self._root, exist_ok=True)
        self.group = GroupCommit(seam, file_io)
        self.report = RecoveryReport()
        self._open: dict[tuple[str, str], FileQueueStore] = {}
        for entry in os.listdir(self._root):
            if entry.endswith(DELETED_SUFFIX):
                shutil.rmtree(os.path.join(self._root, entry), ignore_errors=True)
        self._streams: dict[tuple[str, str], FileStreamStore] = {}
        os.makedirs(os.path.join(data_dir, STREAMS_DIR), exist_ok=True)
        for entry in os.listdir(os.path.join(data_dir, STREAMS_DIR)):
            if entry.endswith(DELETED_SUFFIX):
                shutil.rmtree(os.path.join(data_dir, STREAMS_DIR, entry), ignore_errors=True)
        # Scratch stores hold transient messages paged out of memory; nothing in them outlives the process.
        self._scratch_root = os.path.join(data_dir, SCRATCH_DIR)
        shutil.rmtree(self._scratch_root, ignore_errors=True)
        self._scratch_count = 0

    def open_spill(self) -> FileSpill:
        """A spill for messages that need not survive a restart: never fsynced, wiped at the next start."""
        self._scratch_count += 1
        return FileSpill(os.path.join(self._scratch_root, str(self._scratch_count)))

    def open_queue(self, vhost: str, name: str) -> FileQueueStore:
        key = (vhost, name)
        store = self._open.get(key)
        if store is None:
            directory = os.path.join(self._root, queue_dir_name(vhost, name))
            if not os.path.exists(os.path.join(directory, NAME_FILE)):
                os.makedirs(directory, exist_ok=True)
                self.io.write_atomically(os.path.join(directory, NAME_FILE),
                                         json.dumps({"vhost": vhost, "name": name}).encode())
                self.io.sync_directory(self._root)
            store = FileQueueStore(directory, segment_size=self.segment_size, group=self.group, seam=self._seam,
                                   io=self.io)
            self.report.merge(store.report)
            self._open[key] = store
        return store

    def delete_queue(self, vhost: str, name: str) -> None:
        store = self._open.pop((vhost, name), None)
        directory = os.path.join(self._root, queue_dir_name(vhost, name))
        if store is not None:
            self.group.forget(store)
            store.log.close()
        if os.path.isdir(directory):
            # Rename first so a crash mid-removal never leaves a half queue that looks whole.
            doomed = directory + DELETED_SUFFIX
            self.io.rename(directory, doomed)
            self.io.sync_directory(self._root)
            shutil.rmtree(doomed, ignore_errors=True)

    # -- streams (api.StreamStore; same group commit as the queues) -------------------------------
    def open_stream(
        self,
        vhost: str,
        name: str,
        *,
        segment_size: int | None = None,
        max_age_ms: int | None = None,
        max_bytes: int | None = None,
    ) -> FileStreamStore:
        """The store of a stream queue under ``streams/``, created if absent, recovered on first open."""
        key = (vhost, name)
        store = self._streams.get(key)
        if store is None:
            root = os.path.join(self.data_dir, STREAMS_DIR)
            directory = os.path.join(root, queue_dir_name(vhost, name))
            if not os.path.exists(os.path.join(directory, STREAM_NAME_FILE)):
                os.makedirs(directory, exist_ok=True)
                self.io.write_atomically(
                    os.path.join(directory, STREAM_NAME_FILE), json.dumps({"vhost": vhost, "name": name}).encode()
                )
                self.io.sync_directory(root)
            store = FileStreamStore(
                directory, segment_size=segment_size or self.segment_size, max_age_ms=max_age_ms,
                max_bytes=max_bytes, group=self.group, io=self.io,
            )
            self.report.merge(store.report)
            self._streams[key] = store
        return store

    def delete_stream(self, vhost: str, name: str) -> None:
        """Delete a stream's files (no error if it has none)."""
        store = self._streams.pop((vhost, name), None)
        if store is not None:
            store.delete()  # leaves the group commit; later writes through a stale reference are ignored
        root = os.path.join(self.data_dir, STREAMS_DIR)
        directory = os.path.join(root, queue_dir_name(vhost, name))
        if os.path.isdir(directory):
            doomed = directory + DELETED_SUFFIX
            self.io.rename(directory, doomed)
            self.io.sync_directory(root)
            shutil.rmtree(doomed, ignore_errors=True)

    def streams(self) -> list[tuple[str, str]]:
        """(vhost, name) of every stream with files, open or not (recovery drops those without a definition)."""
        found = []
        root = os.path.join(self.data_dir, STREAMS_DIR)
        for entry in sorted(os.listdir(root)):
            try:
                with open(os.path.join(root, entry, STREAM_NAME_FILE), "rb") as f:
                    names = json.loads(f.read())
                found.append((names["vhost"], names["name"]))
            except (OSError, ValueError, KeyError):
                continue
        return found

    def queues(self) -> list[tuple[str, str]]:
        found = []
        for entry in sorted(os.listdir(self._root)):
            try:
                with open(os.path.join(self._root, entry, NAME_FILE), "rb") as f:
                    names = json.loads(f.read())
                found.append((names["vhost"], names["name"]))
            except (OSError, ValueError, KeyError):
                continue  # not a queue directory, or one whose creation never completed
        return found

    @property
    def commit_pending(self) -> bool:
        return self.group.pending

    def begin_commit(self) -> CommitTicket:
        return self.group.begin()

    def end_commit(self, ticket: CommitTicket) -> None:
        """After `ticket.run()` (failed or not), on the appending thread: see commit.GroupCommit.end."""
        self.group.end(ticket)

    def sync(self) -> int:
        return self.group.sync_all()

    def close(self) -> None:
        for store in self._open.values():
            store.close()
        self._open.clear()
        for stream in self._streams.values():
            stream.close()
        self._streams.clear()
