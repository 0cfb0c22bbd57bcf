"""Protocol listeners: what `Server` starts and stops, one per protocol it speaks.

A listener owns its listening socket(s) and the connections' adapters; the server only says where to
listen and when to stop. The AMQP listener is here; the management HTTP listener is http/app.py's
`ManagementListener` (same shape); a future protocol (Kafka, say) adds one more and a setting for its
port, without touching AMQP code (docs/architecture.md, "Adding a protocol listener").
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:
    import ssl


class Listener(Protocol):
    """One protocol's listening side."""

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (0: any free port) and return the bound port; OSError when that fails."""

    async def stop(self) -> None:
        """Stop accepting (open connections are the server's to close)."""


# Seconds a TLS connection we close waits for the client's close_notify before the socket goes (asyncio
# waits 30 s by default). A plain connection we close is gone at once, and so is one of RabbitMQ's (Erlang's
# ssl:close does not wait); a client that is not reading would otherwise hold its connection half a minute.
TLS_SHUTDOWN_TIMEOUT = 1.0


class AMQPListener:
    """AMQP 0-9-1 over TCP: one `asyncio.Protocol` per connection, from `protocol_factory`.

    With `tls` (server/tls.py's context) it is the amqps listener: asyncio completes the TLS handshake,
    within `handshake_timeout` seconds, before the protocol hears of the connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol_factory: Callable[[], asyncio.Protocol], *,
                 tls: ssl.SSLContext | None = None, handshake_timeout: float | None = None) -> None:
        self.loop = loop
        self.protocol_factory = protocol_factory
        self.tls = tls
        self.handshake_timeout = handshake_timeout if tls is not None else None
        self.shutdown_timeout = TLS_SHUTDOWN_TIMEOUT if tls is not None else None
        self._server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await self.loop.create_server(self.protocol_factory, host, port, reuse_address=True,
                                                     backlog=1024, ssl=self.tls,
                                                     ssl_handshake_timeout=self.handshake_timeout,
                                                     ssl_shutdown_timeout=self.shutdown_timeout)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting now (also what a simulated crash does: tests/faults/inprocess.py)."""
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
