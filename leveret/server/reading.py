"""Whether one connection's socket is read: a set of reasons to stop, and reading resumes when none is left.

Several independent things stop reading a client: its own unsent output grew past the limit (it must
drain before we accept more work from it), or a resource alarm blocks it as a publisher (disk or memory,
see server/alarms.py). Each one pauses and resumes under its own name, so one reason clearing never undoes
another's pause: the transport is paused when the first reason appears and resumed when the last one goes.
While paused the client's bytes wait in the kernel's buffers and, once those are full, in the client.
"""

from __future__ import annotations

import asyncio

# The connection owes the client more output than the limit allows (server/protocol.py).
OUTPUT = "output"
# A resource alarm blocks this publishing connection (server/session.py, server/alarms.py).
BLOCKED = "blocked"


class ReadingGate:
    """The reasons one connection is not read, and the transport they pause."""

    __slots__ = ("transport", "reasons")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reasons: set[str] = set()

    @property
    def paused(self) -> bool:
        return bool(self.reasons)

    def pause(self, reason: str) -> None:
        if reason in self.reasons:
            return
        first = not self.reasons
        self.reasons.add(reason)
        if first:
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.pause_reading()

    def resume(self, reason: str) -> None:
        if reason not in self.reasons:
            return
        self.reasons.discard(reason)
        if not self.reasons:
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.resume_reading()
