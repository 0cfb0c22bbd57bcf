"""Permissions and topic permissions: `/api/permissions[/{vhost}/{user}]`,
`/api/topic-permissions[/{vhost}/{user}]` and `/api/vhosts/{vhost}/permissions`, in RabbitMQ 3.10's shapes.

All need the administrator tag. A PUT for an unknown user or vhost is RabbitMQ's 400
`vhost_or_user_not_found`, a missing key 400 `[{key_missing,write}]`, a pattern Python's `re` cannot
compile 400 `["invalid_regexp", pattern, why]`; a GET or DELETE of a row that does not exist is 404.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leveret.access.patterns import check_pattern
from leveret.http.responses import (
    BadRequest,
    created_or_updated,
    json_body,
    no_content,
    not_found,
    administrator_only,
    require_keys,
    text_field,
)
from leveret.http.target import target_of
from leveret.store.api import PermissionDef, TopicPermissionDef


def permission_info(p: PermissionDef) -> dict[str, Any]:
    return {"user": p.user, "vhost": p.vhost, "configure": p.configure, "write": p.write, "read": p.read}


def topic_permission_info(p: TopicPermissionDef) -> dict[str, Any]:
    return {"user": p.user, "vhost": p.vhost, "exchange": p.exchange, "write": p.write, "read": p.read}


def _key(request: web.Request) -> tuple[str, str]:
    return request.match_info["user"], request.match_info["vhost"]


async def _patterns(request: web.Request, *keys: str) -> dict[str, str]:
    """The body's patterns: every key present, a string, and a regular expression."""
    body = await json_body(request)
    require_keys(body, *keys)
    values = {key: text_field(body, key) for key in keys}
    registry = target_of(request).users
    user, vhost = _key(request)
    if user not in registry.users or vhost not in registry.vhosts:
        raise BadRequest("vhost_or_user_not_found")
    for key in keys:
        if key != "exchange" and check_pattern(values[key]) is not None:
            raise BadRequest(["invalid_regexp", values[key], check_pattern(values[key])])
    return values


@administrator_only
async def list_permissions(request: web.Request) -> web.Response:
    """GET /api/permissions, or /api/vhosts/{vhost}/permissions: the rows, by user then vhost."""
    registry = target_of(request).users
    vhost = request.match_info.get("vhost")
    if vhost is not None and vhost not in registry.vhosts:
        return not_found()
    rows = [permission_info(p) for _, p in sorted(registry.permissions.items()) if vhost in (None, p.vhost)]
    return web.json_response(rows)


@administrator_only
async def get_permission(request: web.Request) -> web.Response:
    permission = target_of(request).users.permissions.get(_key(request))
    return not_found() if permission is None else web.json_response(permission_info(permission))


@administrator_only
async def put_permission(request: web.Request) -> web.Response:
    """PUT /api/permissions/{vhost}/{user}: 201 for a new row, 204 for a changed one."""
    values = await _patterns(request, "configure", "write", "read")
    registry = target_of(request).users
    user, vhost = _key(request)
    created = (user, vhost) not in registry.permissions
    registry.set_permissions(user, vhost, values["configure"], values["write"], values["read"])
    return created_or_updated(created)


@administrator_only
async def delete_permission(request: web.Request) -> web.Response:
    registry = target_of(request).users
    if _key(request) not in registry.permissions:
        return not_found()
    registry.clear_permissions(*_key(request))
    return no_content()


def _topic_rows(request: web.Request, user: str | None, vhost: str | None) -> list[dict[str, Any]]:
    table = target_of(request).users.topic_permissions
    return [topic_permission_info(p) for _, p in sorted(table.items())
            if user in (None, p.user) and vhost in (None, p.vhost)]


@administrator_only
async def list_topic_permissions(request: web.Request) -> web.Response:
    return web.json_response(_topic_rows(request, None, None))


@administrator_only
async def get_topic_permissions(request: web.Request) -> web.Response:
    """GET /api/topic-permissions/{vhost}/{user}: the user's rows in the vhost, one per exchange (404: none)."""
    rows = _topic_rows(request, *_key(request))
    return web.json_response(rows) if rows else not_found()


@administrator_only
async def put_topic_permission(request: web.Request) -> web.Response:
    values = await _patterns(request, "exchange", "write", "read")
    registry = target_of(request).users
    user, vhost = _key(request)
    created = (user, vhost, values["exchange"]) not in registry.topic_permissions
    registry.set_topic_permissions(user, vhost, values["exchange"], values["write"], values["read"])
    return created_or_updated(created)


@administrator_only
async def delete_topic_permissions(request: web.Request) -> web.Response:
    """DELETE /api/topic-permissions/{vhost}/{user}: every exchange's row of the user in the vhost."""
    if not _topic_rows(request, *_key(request)):
        return not_found()
    target_of(request).users.clear_topic_permissions(*_key(request))
    return no_content()
