"""Idempotent producers' state snapshots (kafka/producers.py) as files: one per partition, in the partition's
stream directory beside its segments, so it goes with the stream when the stream is deleted. Written as the
store writes its small files (tmp, fsync, rename); a stream kept in memory has none."""

from __future__ import annotations

import logging
import os
from typing import Any

SNAPSHOT_FILE = "kafka-producers.snapshot"

log = logging.getLogger("leveret.kafka")


def snapshot_path(partition: Any) -> str | None:
    directory = getattr(partition.stream_store, "directory", None)
    return os.path.join(directory, SNAPSHOT_FILE) if directory is not None else None


class SnapshotFiles:
    """kafka/producers.py's SnapshotFiles over the stream directories."""

    def read(self, partition: Any) -> bytes | None:
        path = snapshot_path(partition)
        if path is None:
            return None
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:  # the states come from the newest segments instead
            log.warning("could not read the producer state snapshot %s: %s", path, exc)
            return None

    def write(self, partition: Any, data: bytes) -> None:
        path = snapshot_path(partition)
        if path is None or partition.deleted:
            return
        try:
            partition.stream_store.io.write_atomically(path, data)
        except OSError as exc:  # an older snapshot, or the newest segments, serve instead
            log.warning("could not write the producer state snapshot %s: %s", path, exc)
