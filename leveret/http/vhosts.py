"""Virtual hosts: `GET /api/vhosts`, and the vhost selection every per-vhost listing shares.

Listings take an optional `{vhost}` path segment (URL-encoded, so "/" is %2F, as in RabbitMQ); an
unknown vhost is RabbitMQ's 404.
"""

from __future__ import annotations

from aiohttp import web

from leveret.broker.vhost import VHost
from leveret.http.target import target_of


def not_found() -> web.Response:
    """RabbitMQ's 404 body."""
    return web.json_response({"error": "Object Not Found", "reason": "Not Found"}, status=404)


def selected_vhosts(request: web.Request) -> list[VHost] | None:
    """The vhost named in the path, or every vhost when none is named; None when the named one is unknown."""
    vhosts = target_of(request).broker.vhosts
    name = request.match_info.get("vhost")
    if name is None:
        return [vhosts[n] for n in sorted(vhosts)]
    vhost = vhosts.get(name)
    return None if vhost is None else [vhost]


async def list_vhosts(request: web.Request) -> web.Response:
    """GET /api/vhosts: each vhost's name and message totals."""
    rows = []
    for vhost in selected_vhosts(request) or []:
        ready = sum(q.message_count for q in vhost.queues.values())
        unacked = sum(q.unacked_count for q in vhost.queues.values())
        rows.append({
            "name": vhost.name, "messages": ready + unacked,
            "messages_ready": ready, "messages_unacknowledged": unacked,
        })
    return web.json_response(rows)
