"""The reading gate: a connection is read again only when every reason to stop has gone."""

from __future__ import annotations

import asyncio
import socket

from leveret.server.reading import BLOCKED, OUTPUT, ReadingGate


def test_one_reason_resuming_does_not_undo_another_reasons_pause() -> None:
    async def scenario() -> None:
        ours, theirs = socket.socketpair()
        transport, _ = await asyncio.get_running_loop().connect_accepted_socket(asyncio.Protocol, ours)
        try:
            gate = ReadingGate()
            gate.transport = transport
            gate.pause(OUTPUT)
            gate.pause(BLOCKED)
            assert not transport.is_reading()
            gate.resume(OUTPUT)
            assert not transport.is_reading() and gate.paused  # the alarm still holds it
            gate.resume(OUTPUT)  # resuming a reason that is not there changes nothing
            assert not transport.is_reading()
            gate.resume(BLOCKED)
            assert transport.is_reading() and not gate.paused
            gate.pause(BLOCKED)
            gate.pause(BLOCKED)
            gate.resume(BLOCKED)  # the same reason twice is still one reason
            assert transport.is_reading()
        finally:
            transport.close()
            theirs.close()

    asyncio.run(scenario())
