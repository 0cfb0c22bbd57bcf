"""Vhost limits (`/api/vhost-limits`, `/api/vhost-limits/{vhost}` and `/api/vhost-limits/{vhost}/{name}`)
and user limits (`/api/user-limits...`, below), in RabbitMQ 3.10's shapes.

A limit is `max-connections` or `max-queues`; a negative value means no limit. A PUT (`{"value": N}`) and a
DELETE both answer 204, as RabbitMQ's do (deleting a limit that is not set too); an unknown vhost is 404
`vhost_not_found`; a bad name or value is RabbitMQ's 400 "Validation failed" text. Changes need the
administrator tag and apply to the next connection.open or queue.declare. Any management user may read the
limits of the vhosts it may see (RabbitMQ's rule), and every user's limits.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leveret.access.registry import USER_LIMITS, VHOST_LIMITS
from leveret.http.responses import (
    BadRequest,
    administrator_only,
    json_body,
    no_content,
    not_found,
    require_keys,
    tags_of,
)
from leveret.http.target import target_of
from leveret.http.vhosts import selected_vhosts


def _vhost_not_found() -> web.Response:
    return web.json_response({"error": "not_found", "reason": "vhost_not_found"}, status=404)


async def list_vhost_limits(request: web.Request) -> web.Response:
    """GET /api/vhost-limits[/{vhost}]: each vhost with limits the user may see, and its limits. An unknown
    vhost is 404 (RabbitMQ's `vhost_not_found` body for an administrator, its generic one for others)."""
    administrator = "administrator" in tags_of(request)
    if request.match_info.get("vhost") not in (None, *target_of(request).users.vhosts):
        return _vhost_not_found() if administrator else not_found()
    definitions = target_of(request).users.vhosts
    return web.json_response([{"vhost": vhost.name, "value": dict(definitions[vhost.name].limits)}
                              for vhost in selected_vhosts(request) or () if definitions[vhost.name].limits])


def _erlang_term(value: Any) -> str:
    """A JSON value as RabbitMQ's validation text shows it (a string as an Erlang binary)."""
    return f'<<"{value}">>' if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def limit_refusal(name: str, value: Any) -> str | None:
    """RabbitMQ's validation text for limit `name` set to `value`, or None when it is a valid limit."""
    if name not in VHOST_LIMITS:
        return f"Unrecognised terms [{{{_erlang_term(name)},{_erlang_term(value)}}}] in limits"
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{name} should be a number, actually was {_erlang_term(value)}"
    return None


@administrator_only
async def put_vhost_limit(request: web.Request) -> web.Response:
    target = target_of(request)
    vhost, name = request.match_info["vhost"], request.match_info["name"]
    body = await json_body(request)
    require_keys(body, "value")
    value = body["value"]
    if vhost not in target.users.vhosts:
        return _vhost_not_found()
    refusal = limit_refusal(name, value)
    if refusal is not None:
        raise BadRequest(f"Validation failed\n\n{refusal}\n")
    target.set_vhost_limit(vhost, name, value)
    return no_content()


@administrator_only
async def delete_vhost_limit(request: web.Request) -> web.Response:
    target = target_of(request)
    vhost, name = request.match_info["vhost"], request.match_info["name"]
    if vhost not in target.users.vhosts:
        return _vhost_not_found()
    if name in VHOST_LIMITS:
        target.set_vhost_limit(vhost, name, None)
    return no_content()


# -- user limits: `/api/user-limits`, `/api/user-limits/{user}`, `/api/user-limits/{user}/{name}` ---------
# RabbitMQ 3.10's shapes: `max-connections` and `max-channels` per user. A bad value's text has no
# "Validation failed" preamble there, and an unknown user is a 400 naming it; both as RabbitMQ answers.


async def list_user_limits(request: web.Request) -> web.Response:
    """GET /api/user-limits[/{user}]: each user with limits, and its limits (404 for an unknown user)."""
    users = target_of(request).users.users
    only = request.match_info.get("user")
    if only is not None and only not in users:
        return not_found()
    return web.json_response([{"user": name, "value": dict(users[name].limits)} for name in sorted(users)
                              if users[name].limits and only in (None, name)])


@administrator_only
async def put_user_limit(request: web.Request) -> web.Response:
    registry = target_of(request).users
    user, name = request.match_info["user"], request.match_info["name"]
    body = await json_body(request)
    require_keys(body, "value")
    value = body["value"]
    if name not in USER_LIMITS:
        raise BadRequest(f"Unrecognised terms [{{{_erlang_term(name)},{_erlang_term(value)}}}] in user-limits")
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{name} should be a number, actually was {_erlang_term(value)}")
    if user not in registry.users:
        raise BadRequest(["no_such_user", user])
    registry.set_user_limit(user, name, value)
    return no_content()


@administrator_only
async def delete_user_limit(request: web.Request) -> web.Response:
    """DELETE /api/user-limits/{user}/{name}: 204, set or not; an unknown user is 404 (RabbitMQ 3.10 fails
    with a 500 there: docs/security.md)."""
    registry = target_of(request).users
    user, name = request.match_info["user"], request.match_info["name"]
    if user not in registry.users:
        return not_found()
    if name in USER_LIMITS:
        registry.set_user_limit(user, name, None)
    return no_content()
