"""Virtual hosts: `/api/vhosts` and `/api/vhosts/{vhost}`, and the vhost selection every per-vhost listing
shares.

The vhosts are the access registry's (what AMQP clients may open); each has its model in the broker, and a
vhost created or deleted here is created or deleted in both (`ManagementTarget.put_vhost`, `delete_vhost`:
deleting one closes its connections and deletes its queues, exchanges and messages, from disk too).
Listings take an optional `{vhost}` path segment (URL-encoded, so "/" is %2F, as in RabbitMQ); an unknown
vhost is RabbitMQ's 404. A user tagged only `management` sees the vhosts it has permissions in, and the
queues and exchanges in them (naming another is RabbitMQ's 401); one vhost's record (GET
/api/vhosts/{vhost}) is for administrators, as in RabbitMQ 3.10. As in
RabbitMQ, the administrator who creates a vhost here gets full permissions in it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leveret.broker.vhost import VHost
from leveret.http.responses import (
    BadRequest,
    NotAuthorisedForVHost,
    USER,
    created_or_updated,
    json_body,
    no_content,
    not_found,
    administrator_only,
    tag_list,
    tags_of,
    text_field,
)
from leveret.http.target import target_of

# Tags that see every vhost; a `management` user sees those it may enter.
SEES_ALL = frozenset({"administrator", "monitoring"})


def selected_vhosts(request: web.Request) -> list[VHost] | None:
    """The vhost named in the path, or every vhost the user may see when none is named; None when the named
    one is unknown (NotAuthorisedForVHost when the user may not see it)."""
    target = target_of(request)
    vhosts, known = target.broker.vhosts, target.users.vhosts
    name = request.match_info.get("vhost")
    if name is None:
        return [vhosts[n] for n in sorted(vhosts) if n in known and visible(request, n)]
    vhost = vhosts.get(name)
    if vhost is None or name not in known:
        return None
    if not visible(request, name):
        raise NotAuthorisedForVHost()
    return [vhost]


def visible(request: web.Request, name: str) -> bool:
    """Whether the user may see vhost `name` (its queues, exchanges, and move tasks)."""
    if SEES_ALL.intersection(tags_of(request)):
        return True
    user = request.get(USER)
    return user is not None and (user.name, name) in target_of(request).users.permissions


def vhost_info(request: web.Request, name: str) -> dict[str, Any]:
    """One vhost as RabbitMQ's management API shows it (without its rates)."""
    target = target_of(request)
    stored = target.users.vhosts[name]
    model = target.broker.vhosts.get(name)
    queues = list(model.queues.values()) if model is not None else []
    ready = sum(q.message_count for q in queues)
    unacked = sum(q.unacked_count for q in queues)
    return {
        "name": name, "description": stored.description, "tags": list(stored.tags),
        "metadata": {"description": stored.description, "tags": list(stored.tags)}, "tracing": False,
        "messages": ready + unacked, "messages_ready": ready, "messages_unacknowledged": unacked,
    }


async def list_vhosts(request: web.Request) -> web.Response:
    """GET /api/vhosts: each vhost (that the user may see), sorted by name."""
    names = sorted(n for n in target_of(request).users.vhosts if visible(request, n))
    return web.json_response([vhost_info(request, n) for n in names])


@administrator_only  # as RabbitMQ 3.10's: the listing is for every management user, one vhost is not
async def get_vhost(request: web.Request) -> web.Response:
    name = request.match_info["vhost"]
    if name not in target_of(request).users.vhosts:
        return not_found()
    return web.json_response(vhost_info(request, name))


@administrator_only
async def put_vhost(request: web.Request) -> web.Response:
    """PUT /api/vhosts/{vhost}: create (201) or update (204) its description and tags."""
    body = await json_body(request)
    name = request.match_info["vhost"]
    if not name:
        raise BadRequest("vhost name must not be empty")
    target = target_of(request)
    # An update leaves out what it does not change.
    stored = target.users.vhosts.get(name)
    description = text_field(body, "description", stored.description if stored else "")
    tags = tag_list(body["tags"]) if "tags" in body else (tuple(stored.tags) if stored else ())
    created = target.put_vhost(name, description, tags)
    if created:
        # As RabbitMQ's management API: the administrator who creates a vhost may use it.
        target.users.set_permissions(request[USER].name, name, ".*", ".*", ".*")
    return created_or_updated(created)


@administrator_only
async def delete_vhost(request: web.Request) -> web.Response:
    """DELETE /api/vhosts/{vhost}: 204, its connections closed (320) and everything in it deleted."""
    if not target_of(request).delete_vhost(request.match_info["vhost"]):
        return not_found()
    return no_content()
