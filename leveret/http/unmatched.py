"""Requests no route answers, as RabbitMQ 3.10's management plugin answers them: before any credentials are
asked for, so a client without them learns what it would learn with them (RabbitMQ checks the method and the
path first; its catch-all resource takes GET, HEAD and OPTIONS).

- a path no route has: OPTIONS 200 and other methods than GET and HEAD 405, both with `allow: HEAD, GET,
  OPTIONS`; GET and HEAD 404 with RabbitMQ's JSON body, or 400 with none when the path holds an encoded
  slash (%2F), which RabbitMQ's router refuses in a path it cannot route;
- a path whose routes take other methods: OPTIONS 200, any other method 405, `allow` naming its methods and
  OPTIONS.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web

from leveret.http.responses import not_found

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CATCH_ALL_METHODS = "HEAD, GET, OPTIONS"


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
    if request.method == "OPTIONS":
        return _empty(200, CATCH_ALL_METHODS)
    if request.method not in ("GET", "HEAD"):
        return _empty(405, CATCH_ALL_METHODS)
    if "%2f" in request.raw_path.partition("?")[0].lower():
        return _empty(400)
    return not_found()
