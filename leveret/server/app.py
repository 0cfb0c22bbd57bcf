"""The running broker: listeners, the broker model, users, startup and orderly shutdown."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import sys

from leveret.amqp import errors as codes
from leveret.broker.vhost import Broker
from leveret.clock import Clock, SystemClock
from leveret.config import Settings
from leveret.server.auth import UserStore
from leveret.server.protocol import AMQPProtocol

log = logging.getLogger("leveret")

SHUTDOWN_TEXT = "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"


class ListenError(Exception):
    """The broker could not listen where it was told to (port taken, address unknown)."""


class Server:
    """One broker process: accepts AMQP connections and serves them from one broker model."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.broker = Broker(clock=self.clock)
        self.users = UserStore()
        self.users.add(
            settings.default_user, settings.default_pass,
            loopback_only=settings.default_user in settings.loopback_users,
        )
        self.connections: set[AMQPProtocol] = set()
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._listener: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        try:
            self._listener = await self.loop.create_server(
                lambda: AMQPProtocol(self), self.settings.host, self.settings.port, reuse_address=True, backlog=1024,
            )
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise ListenError(f"cannot listen on {self.settings.host}:{self.settings.port}: {reason}") from None
        self.port = self._listener.sockets[0].getsockname()[1]
        log.info("leveret listening on %s:%d", self.settings.host, self.port)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection with 320 CONNECTION_FORCED, wait (bounded) until they are gone."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for conn in list(self.connections):
            conn.force_close(codes.CONNECTION_FORCED, SHUTDOWN_TEXT)
        deadline = self.loop.time() + timeout
        while self.connections and self.loop.time() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        await asyncio.sleep(0)


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, then shut down cleanly."""
    server = Server(settings)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await server.stop()


def run(settings: Settings) -> int:
    """Entry point for `leveret serve`: returns the process exit code."""
    try:
        import uvloop  # optional: a faster event loop where available
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(serve(settings))
    except ListenError as exc:
        print(f"leveret: {exc}", file=sys.stderr)
        return 1
    return 0
