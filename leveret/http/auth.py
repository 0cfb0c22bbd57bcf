"""HTTP basic authentication against the broker's user store, as RabbitMQ's management plugin does it.

Every /api request needs the credentials of a user with a management tag; anything else is answered
401 with RabbitMQ's body. The loopback restriction (guest only from localhost) applies here as on AMQP.
"""

from __future__ import annotations

import ipaddress
from typing import Awaitable, Callable

from aiohttp import BasicAuth, web

# Tags that grant management access in RabbitMQ; a user with none of them may still use AMQP.
MANAGEMENT_TAGS = frozenset({"administrator", "monitoring", "policymaker", "management"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _from_loopback(request: web.Request) -> bool:
    remote = request.remote
    if not remote:
        return True  # a Unix socket
    try:
        return ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def unauthorized() -> web.Response:
    """RabbitMQ's 401: a JSON error body and a challenge so browsers and curl prompt for credentials."""
    return web.json_response(
        {"error": "not_authorized", "reason": "Not_Authorized"},
        status=401,
        headers={"WWW-Authenticate": 'Basic realm="leveret management"'},
    )


def basic_auth_middleware(users, exempt: frozenset[str]) -> Callable:
    """A middleware checking basic auth on every path except `exempt` ones, against `users` (leveret.access's AccessRegistry)."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in exempt:
            return await handler(request)
        header = request.headers.get("Authorization")
        if not header:
            return unauthorized()
        try:
            creds = BasicAuth.decode(header)
        except ValueError:
            return unauthorized()
        user = users.authenticate(creds.login, creds.password, from_loopback=_from_loopback(request))
        if user is None or not MANAGEMENT_TAGS.intersection(user.tags):
            return unauthorized()
        return await handler(request)

    return check
