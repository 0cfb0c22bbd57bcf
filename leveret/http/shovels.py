"""rabbitmq_shovel_management's endpoints: `GET /api/shovels[/{vhost}]` and
`DELETE /api/shovels/vhost/{vhost}/{name}/restart`, in RabbitMQ 3.10's shapes.

A shovel is defined through the runtime parameters (`PUT /api/parameters/shovel/{vhost}/{name}`,
http/parameters.py); these list the running shovels' states and restart one. A user sees the shovels of
the vhosts it has permissions in (administrators and monitoring users: all), as the plugin filters them.
"""

from __future__ import annotations

from aiohttp import web

from leveret.http.exposition import Family, gauge
from leveret.http.responses import USER, no_content, not_found, tags_of
from leveret.http.target import ManagementTarget, target_of

SHOVEL_STATES = ("starting", "running", "terminated")


def _may_see(request: web.Request, vhost: str) -> bool:
    if {"administrator", "monitoring"}.intersection(tags_of(request)):
        return True
    return (request[USER].name, vhost) in target_of(request).users.permissions


async def list_shovels(request: web.Request) -> web.Response:
    """GET /api/shovels[/{vhost}]: each shovel's state (and its ends once it started, or why it stopped)."""
    target = target_of(request)
    vhost = request.match_info.get("vhost")
    if vhost is not None and (vhost not in target.users.vhosts or not _may_see(request, vhost)):
        return not_found()
    rows = target.shovels.status(vhost)
    return web.json_response([row for row in rows if _may_see(request, row["vhost"])])


async def restart_shovel(request: web.Request) -> web.Response:
    """DELETE /api/shovels/vhost/{vhost}/{name}/restart: stop and start the shovel afresh (204, or 404)."""
    vhost, name = request.match_info["vhost"], request.match_info["name"]
    if not _may_see(request, vhost) or not target_of(request).shovels.restart(vhost, name):
        return not_found()
    return no_content()


def shovel_families(target: ManagementTarget) -> list[Family]:
    """/metrics: shovels by state, messages moved and reconnects since start (leveret's names: RabbitMQ 3.10
    exports no shovel figures). A rate is the counter's rate in Prometheus (`rate(...[1m])`)."""
    states = Family("leveret_shovels", "Dynamic shovels by state.")
    rows = target.shovels.status()
    for state in SHOVEL_STATES:
        states.sample(sum(1 for row in rows if row["state"] == state), state=state)
    totals = target.shovels.totals()
    return [states,
            gauge("leveret_shovel_messages_moved_total", "Messages shovels published to their destinations "
                  "(and, with on-confirm, had confirmed).", totals["moved"], "counter"),
            gauge("leveret_shovel_reconnects_total", "Times a shovel started again after a failure.",
                  totals["reconnects"], "counter")]


def add_shovel_routes(app: web.Application) -> None:
    app.router.add_get("/api/shovels", list_shovels)
    app.router.add_get("/api/shovels/{vhost}", list_shovels)
    app.router.add_delete("/api/shovels/vhost/{vhost}/{name}/restart", restart_shovel)
