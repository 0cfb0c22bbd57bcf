"""Requests no route answers, as RabbitMQ 3.10's management plugin answers them: before any credentials are
asked for, so a client without them learns what it would learn with them (RabbitMQ checks the method and the
path first; its catch-all resource takes GET, HEAD and OPTIONS).

- a path no route has: OPTIONS 200 and other methods than GET and HEAD 405, both with `allow: HEAD, GET,
  OPTIONS`; GET and HEAD 404 with RabbitMQ's JSON body, or 400 with none when the path holds an encoded
  slash (%2F), which RabbitMQ's router refuses in a path it cannot route;
- a path whose routes take other methods: OPTIONS 200, any other method 405, `allow` naming its methods and
  OPTIONS.

RabbitMQ's router takes some paths ours does not: it drops a trailing slash and matches an empty segment as
an empty name (`/api/queues//q1` names the queue q1 of the vhost ""; Flower asks for `/api/queues//`). Such a
request is a routed one there, so it is asked for credentials like any other, then finds nothing: 404.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web

from leveret.http.responses import not_found

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CATCH_ALL_METHODS = "HEAD, GET, OPTIONS"


async def _routed_by_rabbitmq(request: web.Request) -> bool:
    """Whether a path no route of ours takes has empty segments that RabbitMQ's router takes as names (its
    trailing slash dropped): our router is asked again with each filled in."""
    segments = request.raw_path.partition("?")[0].split("/")
    if segments[-1] == "" and len(segments) > 2:
        segments.pop()
    if "" not in segments[1:]:
        return False
    filled = "/".join(segments[:1] + [segment or "-" for segment in segments[1:]])
    match = await request.app.router.resolve(request.clone(rel_url=filled))
    return match.http_exception is None


def _allow(methods: set[str]) -> str:
    return ", ".join(sorted(methods | {"OPTIONS"}))


def _empty(status: int, allow: str | None = None) -> web.Response:
    return web.Response(status=status, headers={"allow": allow} if allow else None)


@web.middleware
async def unmatched_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answers a request no route takes (see the module doc); any other goes on to `handler`."""
    refusal = request.match_info.http_exception
    if refusal is None:
        return await handler(request)
    if isinstance(refusal, web.HTTPMethodNotAllowed):
        return _empty(200 if request.method == "OPTIONS" else 405, _allow(set(refusal.allowed_methods)))
    if await _routed_by_rabbitmq(request):
        try:
            return await handler(request)  # the credentials first (auth.py), then our router's not-found
        except web.HTTPNotFound:
            return not_found()
    if request.method == "OPTIONS":
        return _empty(200, CATCH_ALL_METHODS)
    if request.method not in ("GET", "HEAD"):
        return _empty(405, CATCH_ALL_METHODS)
    if "%2f" in request.raw_path.partition("?")[0].lower():
        return _empty(400)
    return not_found()
