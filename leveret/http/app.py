"""The management application (routes, auth) and the listener the server starts and stops.

Usage from the server: `listener = ManagementListener(server)`, `port = await listener.start(host, port)`
(an OSError such as EADDRINUSE propagates for the server to report), `await listener.stop()`.
"""

from __future__ import annotations

import ssl

from aiohttp import web

from leveret.http import dashboard
from leveret.http.auth import basic_auth_middleware
from leveret.http.api_routes import add_routes
from leveret.http.deadletters import dead_letters, peek
from leveret.http.limits import (
    delete_user_limit,
    delete_vhost_limit,
    list_user_limits,
    list_vhost_limits,
    put_user_limit,
    put_vhost_limit,
)
from leveret.http.metrics import METRICS_PATHS, get_metrics, get_metrics_detailed, get_metrics_per_object
from leveret.http.move_tasks import cancel_move_task, create_move_task, get_move_task, list_move_tasks
from leveret.http.nodes import get_node, list_nodes
from leveret.http.overview import get_overview
from leveret.http.definitions import add_definition_routes
from leveret.http.parameters import add_parameter_routes
from leveret.http.kafka import add_kafka_routes
from leveret.http.policies import add_policy_routes
from leveret.http.shovels import add_shovel_routes
from leveret.http.permissions import (
    delete_permission,
    delete_topic_permissions,
    get_permission,
    get_topic_permissions,
    list_permissions,
    list_topic_permissions,
    put_permission,
    put_topic_permission,
)
from leveret.http.responses import Refusal
from leveret.http.target import TARGET, ManagementTarget
from leveret.http.unmatched import unmatched_requests
from leveret.http.users import (
    delete_user,
    get_user,
    list_users,
    put_user,
    user_permissions,
    user_topic_permissions,
    whoami,
)
from leveret.http.vhosts import delete_vhost, get_vhost, list_vhosts, put_vhost

# Seconds to let in-flight requests finish on shutdown; every handler answers from memory at once.
SHUTDOWN_TIMEOUT = 2.0


@web.middleware
async def refusals(request: web.Request, handler) -> web.StreamResponse:
    """A handler's `Refusal` (a bad body: 400; a vhost the user may not see: 401) as RabbitMQ answers it
    (paths no route takes are answered before the credentials, in http/unmatched.py)."""
    try:
        return await handler(request)
    except Refusal as exc:
        return exc.response()


def build_app(target: ManagementTarget) -> web.Application:
    """The management API for `target` (the running Server)."""
    app = web.Application(middlewares=[
        unmatched_requests,  # before the credentials, as RabbitMQ checks the method and the path first
        basic_auth_middleware(target.users, exempt=METRICS_PATHS | dashboard.PUBLIC_PATHS, errorlog=target.errorlog,
                              exempt_prefix=dashboard.PUBLIC_PREFIX), refusals,
    ])
    app[TARGET] = target
    app.router.add_get("/api/overview", get_overview)
    app.router.add_get("/api/nodes", list_nodes)
    app.router.add_get("/api/nodes/{name}", get_node)
    app.router.add_get("/api/whoami", whoami)
    app.router.add_get("/api/users", list_users)
    app.router.add_get("/api/users/{name}", get_user)
    app.router.add_put("/api/users/{name}", put_user)
    app.router.add_delete("/api/users/{name}", delete_user)
    app.router.add_get("/api/users/{name}/permissions", user_permissions)
    app.router.add_get("/api/users/{name}/topic-permissions", user_topic_permissions)
    app.router.add_get("/api/vhosts", list_vhosts)
    app.router.add_get("/api/vhosts/{vhost}", get_vhost)
    app.router.add_put("/api/vhosts/{vhost}", put_vhost)
    app.router.add_delete("/api/vhosts/{vhost}", delete_vhost)
    app.router.add_get("/api/vhosts/{vhost}/permissions", list_permissions)
    app.router.add_get("/api/vhost-limits", list_vhost_limits)
    app.router.add_get("/api/vhost-limits/{vhost}", list_vhost_limits)
    app.router.add_put("/api/vhost-limits/{vhost}/{name}", put_vhost_limit)
    app.router.add_delete("/api/vhost-limits/{vhost}/{name}", delete_vhost_limit)
    app.router.add_get("/api/user-limits", list_user_limits)
    app.router.add_get("/api/user-limits/{user}", list_user_limits)
    app.router.add_put("/api/user-limits/{user}/{name}", put_user_limit)
    app.router.add_delete("/api/user-limits/{user}/{name}", delete_user_limit)
    app.router.add_get("/api/permissions", list_permissions)
    app.router.add_get("/api/permissions/{vhost}/{user}", get_permission)
    app.router.add_put("/api/permissions/{vhost}/{user}", put_permission)
    app.router.add_delete("/api/permissions/{vhost}/{user}", delete_permission)
    app.router.add_get("/api/topic-permissions", list_topic_permissions)
    app.router.add_get("/api/topic-permissions/{vhost}/{user}", get_topic_permissions)
    app.router.add_put("/api/topic-permissions/{vhost}/{user}", put_topic_permission)
    app.router.add_delete("/api/topic-permissions/{vhost}/{user}", delete_topic_permissions)
    add_routes(app, target)
    add_parameter_routes(app)
    app.router.add_get("/api/queues/{vhost}/{queue}/peek", peek)
    app.router.add_get("/api/queues/{vhost}/{queue}/dead-letters", dead_letters)
    add_shovel_routes(app)
    app.router.add_get("/api/move-tasks", list_move_tasks)
    app.router.add_post("/api/move-tasks", create_move_task)
    app.router.add_get("/api/move-tasks/{id}", get_move_task)
    app.router.add_delete("/api/move-tasks/{id}", cancel_move_task)
    add_kafka_routes(app)
    add_policy_routes(app)
    add_definition_routes(app)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/metrics/per-object", get_metrics_per_object)
    app.router.add_get("/metrics/detailed", get_metrics_detailed)
    dashboard.add_routes(app)
    return app


class ManagementListener:
    """The HTTP listener serving `build_app(target)` on the caller's running event loop."""

    def __init__(self, target: ManagementTarget, tls: ssl.SSLContext | None = None) -> None:
        """`tls`: an `ssl.SSLContext` to serve HTTPS with (the server's, from the ssl_* settings), or None."""
        self.app = build_app(target)
        self.tls = tls
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (0: any free port) and return the bound port; OSError when that fails."""
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=self.tls)
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
