"""The durable record of each unfinished move task (server/move_tasks.py), so that a restart resumes it.

One small JSON file per task under `<data_dir>/move-tasks/`, replaced atomically (write, fsync, rename,
fsync the directory): written when the task starts, rewritten with its progress now and then, removed when
it ends (finished, cancelled or failed). Whatever is left at the next start is a task that was running when
the broker stopped or died. The record names its queues, never holds messages: the messages themselves are
in the queues' stores, which recovery rebuilds first.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from leveret.store.fsio import REAL, FileIO

DIRECTORY = "move-tasks"

log = logging.getLogger("leveret.move_tasks")


class MoveTaskRecords:
    """Saved move tasks in `data_dir`: `save(record)` (a dict with an "id"), `remove(id)`, `load()`."""

    def __init__(self, data_dir: str, file_io: FileIO = REAL) -> None:
        self.directory = os.path.join(data_dir, DIRECTORY)
        self.file_io = file_io

    def _path(self, ident: str) -> str:
        return os.path.join(self.directory, f"{ident}.json")

    def save(self, record: dict[str, Any]) -> bool:
        """Write or replace the task's record; False (logged) when the disk refused it: the task still runs,
        but a restart will not resume it."""
        try:
            os.makedirs(self.directory, exist_ok=True)
            self.file_io.write_atomically(self._path(record["id"]), json.dumps(record, sort_keys=True).encode())
        except OSError as exc:
            log.warning("move task %s: its record could not be saved (%s); a restart will not resume it",
                        record["id"], exc)
            return False
        return True

    def remove(self, ident: str) -> None:
        """Forget a task that ended (its record's removal made durable, so it is not resumed again)."""
        try:
            if self.file_io.remove(self._path(ident)):
                self.file_io.sync_directory(self.directory)
        except OSError as exc:
            log.warning("move task %s: its record could not be removed (%s)", ident, exc)

    def load(self) -> list[dict[str, Any]]:
        """Every saved record, oldest first; unreadable ones (and leftover .tmp files) are removed."""
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return []
        records = []
        for name in names:
            path = os.path.join(self.directory, name)
            try:
                if not name.endswith(".json"):
                    raise ValueError("not a record")
                with open(path, "rb") as f:
                    record = json.loads(f.read())
                if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                    raise ValueError("no task id")
            except (OSError, ValueError) as exc:
                log.warning("ignoring move task record %s: %s", path, exc)
                self.file_io.remove(path)
                continue
            records.append(record)
        return sorted(records, key=lambda record: record.get("started_at", 0))
