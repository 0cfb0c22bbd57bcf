"""The clean-shutdown marker: which recovered messages had been delivered before a clean stop.

Written last by a clean stop, read and removed at the next start. Present, the last stop was clean and only
the messages it names (per queue, the store offsets of ready messages flagged redelivered) come back
redelivered; absent (a crash), every recovered message comes back redelivered (at-least-once).
"""

from __future__ import annotations

import json
import logging
import os

from leveret.broker.vhost import Broker
from leveret.durable.recovery import Delivered
from leveret.store.fsio import FileIO, failures

CLEAN_SHUTDOWN_FILE = "clean-shutdown.json"

log = logging.getLogger("leveret")


def take_marker(data_dir: str) -> Delivered:
    """The delivered offsets the last clean stop wrote (the marker is removed), or None after a crash."""
    path = os.path.join(data_dir, CLEAN_SHUTDOWN_FILE)
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
        os.unlink(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None
    return {(entry["vhost"], entry["queue"]): set(entry["delivered"]) for entry in data.get("queues", [])}


def write_marker(data_dir: str, broker: Broker, file_io: FileIO) -> None:
    """Record, for every queue with a store, which of its ready stored messages had been delivered."""
    queues = []
    for vhost in broker.vhosts.values():
        for queue in vhost.queues.values():
            if queue.store is None:
                continue
            delivered = [e.offset for e in queue.ready if e.redelivered and e.offset >= 0]  # type: ignore[attr-defined]
            queues.append({"vhost": vhost.name, "queue": queue.name, "delivered": delivered})
    path = os.path.join(data_dir, CLEAN_SHUTDOWN_FILE)
    try:
        file_io.write_atomically(path, json.dumps({"queues": queues}).encode())
    except OSError as exc:
        # A full disk must not stop the stop: without the marker the next start only loses the
        # redelivered flags of messages delivered before the stop.
        failures.note("write of the clean-shutdown marker", exc)
