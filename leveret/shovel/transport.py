"""The shovel's sockets: every frame aiormq writes in one loop turn goes out in one write.

aiormq hands each frame (a publish, an ack) to its StreamWriter on its own, and each write is a send system
call; the profile of a shovel moving persistent messages showed those writes as its largest single cost.
`CoalescingWriter` keeps what is written during a loop turn and passes it on once, at the end of the turn
(or before anything that must see it gone: drain, write_eof, close). Nothing waits longer than that turn.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiormq.connection import TCPTransportFactory, TLSTransportFactory, TransportFactory

if TYPE_CHECKING:
    from yarl import URL  # aiormq's URL type


class CoalescingWriter:
    """A StreamWriter whose writes of one loop turn reach the transport as one."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if not self._writer.is_closing():  # a closed connection's last frames have nowhere to go
            self._writer.write(data)

    async def drain(self) -> None:
        self._flush()
        await self._writer.drain()

    def write_eof(self) -> None:
        self._flush()
        self._writer.write_eof()

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def __getattr__(self, name: str) -> Any:  # transport, is_closing, wait_closed, ...: the writer's own
        return getattr(self._writer, name)


class CoalescingTransport(TransportFactory):
    """aiormq's TCP or TLS connection (by the URL's scheme), writing through a CoalescingWriter."""

    async def create(self, url: URL, **kwargs: Any) -> tuple[asyncio.StreamReader, Any]:
        plain = TLSTransportFactory() if url.scheme == "amqps" else TCPTransportFactory()
        reader, writer = await plain.create(url, **kwargs)
        return reader, CoalescingWriter(writer)
