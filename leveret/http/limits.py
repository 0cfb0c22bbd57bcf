"""Vhost limits: `/api/vhost-limits`, `/api/vhost-limits/{vhost}` and `/api/vhost-limits/{vhost}/{name}`,
in RabbitMQ 3.10's shapes.

A limit is `max-connections` or `max-queues`; a negative value means no limit. A PUT (`{"value": N}`) and a
DELETE both answer 204, as RabbitMQ's do (deleting a limit that is not set too); an unknown vhost is 404
`vhost_not_found`; a bad name or value is RabbitMQ's 400 "Validation failed" text. Changes need the
administrator tag and apply to the next connection.open or queue.declare.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leveret.access.registry import VHOST_LIMITS
from leveret.http.responses import BadRequest, administrator_only, json_body, no_content, require_keys
from leveret.http.target import target_of


def _vhost_not_found() -> web.Response:
    return web.json_response({"error": "not_found", "reason": "vhost_not_found"}, status=404)


def _rows(request: web.Request, only: str | None) -> list[dict[str, Any]]:
    vhosts = target_of(request).users.vhosts
    return [{"vhost": name, "value": dict(vhosts[name].limits)} for name in sorted(vhosts)
            if vhosts[name].limits and only in (None, name)]


@administrator_only
async def list_vhost_limits(request: web.Request) -> web.Response:
    """GET /api/vhost-limits[/{vhost}]: each vhost with limits, and its limits."""
    vhost = request.match_info.get("vhost")
    if vhost is not None and vhost not in target_of(request).users.vhosts:
        return _vhost_not_found()
    return web.json_response(_rows(request, vhost))


def _erlang_term(value: Any) -> str:
    """A JSON value as RabbitMQ's validation text shows it (a string as an Erlang binary)."""
    return f'<<"{value}">>' if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


@administrator_only
async def put_vhost_limit(request: web.Request) -> web.Response:
    target = target_of(request)
    vhost, name = request.match_info["vhost"], request.match_info["name"]
    body = await json_body(request)
    require_keys(body, "value")
    value = body["value"]
    if vhost not in target.users.vhosts:
        return _vhost_not_found()
    if name not in VHOST_LIMITS:
        raise BadRequest(f"Validation failed\n\nUnrecognised terms [{{{_erlang_term(name)},{_erlang_term(value)}}}] "
                         "in limits\n")
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"Validation failed\n\n{name} should be a number, actually was {_erlang_term(value)}\n")
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
