"""The management application (routes, auth) and the listener the server starts and stops.

Usage from the server: `listener = ManagementListener(server)`, `port = await listener.start(host, port)`
(an OSError such as EADDRINUSE propagates for the server to report), `await listener.stop()`.
"""

from __future__ import annotations

from aiohttp import web

from leveret.http.auth import basic_auth_middleware
from leveret.http.exchanges import list_exchanges
from leveret.http.metrics import get_metrics
from leveret.http.nodes import get_node, list_nodes
from leveret.http.overview import get_overview
from leveret.http.queues import list_queues
from leveret.http.target import TARGET, ManagementTarget
from leveret.http.vhosts import list_vhosts

# Seconds to let in-flight requests finish on shutdown; every handler answers from memory at once.
SHUTDOWN_TIMEOUT = 2.0


def build_app(target: ManagementTarget) -> web.Application:
    """The management API for `target` (the running Server)."""
    app = web.Application(middlewares=[basic_auth_middleware(target.users, exempt=frozenset({"/metrics"}))])
    app[TARGET] = target
    app.router.add_get("/api/overview", get_overview)
    app.router.add_get("/api/nodes", list_nodes)
    app.router.add_get("/api/nodes/{name}", get_node)
    app.router.add_get("/api/vhosts", list_vhosts)
    app.router.add_get("/api/queues", list_queues)
    app.router.add_get("/api/queues/{vhost}", list_queues)
    app.router.add_get("/api/exchanges", list_exchanges)
    app.router.add_get("/api/exchanges/{vhost}", list_exchanges)
    app.router.add_get("/metrics", get_metrics)
    return app


class ManagementListener:
    """The HTTP listener serving `build_app(target)` on the caller's running event loop."""

    def __init__(self, target: ManagementTarget) -> None:
        self.app = build_app(target)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (0: any free port) and return the bound port; OSError when that fails."""
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, reuse_address=True)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        return self.port

    async def stop(self) -> None:
        """Stop listening and close open HTTP connections."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
