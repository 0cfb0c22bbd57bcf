"""The broker's resource alarms (disk, memory): which are on, and telling every connection when one changes.

The monitors (server/flow.py for disk, server/memory_alarm.py for memory) only say "on" or "off" for their
resource; each connection keeps the set of alarms that block it (server/session.py), so one alarm clearing
never releases publishers another one still holds.
"""

from __future__ import annotations

import logging
from typing import Any, Collection, Iterable

log = logging.getLogger("leveret.flow")

DISK = "disk"
MEMORY = "memory"


def blocked_reason(resources: Iterable[str]) -> str:
    """connection.blocked's reason text, as RabbitMQ words it: "low on memory", "low on disk & memory".

    RabbitMQ joins its alarm set's elements with " & "; for these two the set lists disk first (checked on
    RabbitMQ 3.10's runtime), which sorting reproduces."""
    return "low on " + " & ".join(sorted(resources))


class ResourceAlarms:
    """The set of resource alarms that are on, pushed to every open connection as they change."""

    def __init__(self, connections: Collection[Any]) -> None:
        self.connections = connections
        self.active: set[str] = set()

    def set(self, resource: str, on: bool) -> None:
        """Switch `resource`'s alarm on or off; connections hear of it only when that changes something."""
        if on == (resource in self.active):
            return
        if on:
            self.active.add(resource)
        else:
            self.active.discard(resource)
        for conn in list(self.connections):
            conn.session.set_alarm(resource, on)
