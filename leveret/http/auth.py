"""HTTP basic authentication against the broker's user store, as RabbitMQ's management plugin does it.

Every /api request needs the credentials of a user with a management tag: missing or wrong credentials
are answered 401 with a `WWW-Authenticate` challenge (with no body when there were none), a user without a
management tag 401 "Not management user" (no challenge: the credentials were right), as RabbitMQ does. The loopback restriction (guest only
from localhost) applies here as on AMQP. The user is left in the request (`responses.USER`) for the
handlers' own tag checks.
"""

from __future__ import annotations

import ipaddress
from typing import Awaitable, Callable

from aiohttp import BasicAuth, web

from leveret.http.responses import USER, not_authorised

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


CHALLENGE = {"WWW-Authenticate": 'Basic realm="leveret management"'}


def unauthorized(reason: str = "Not_Authorized") -> web.Response:
    """RabbitMQ's 401: a JSON error body and a challenge so browsers and curl prompt for credentials."""
    return web.json_response({"error": "not_authorized", "reason": reason}, status=401, headers=CHALLENGE)


def basic_auth_middleware(users, exempt: frozenset[str], errorlog=None, exempt_prefix: str | None = None) -> Callable:
    """A middleware checking basic auth on every path except `exempt` ones (and those under `exempt_prefix`),
    against `users` (leveret.access's AccessRegistry); a refused login is one line of `errorlog`
    (rate-limited; the user and peer, never the password), as a refused AMQP login is."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in exempt or (exempt_prefix and request.path.startswith(exempt_prefix)):
            return await handler(request)
        header = request.headers.get("Authorization")
        if not header:
            return web.Response(status=401, headers=CHALLENGE)  # RabbitMQ's: the challenge alone, no body
        try:
            creds = BasicAuth.decode(header)
        except ValueError:
            return unauthorized()
        user = users.authenticate(creds.login, creds.password, from_loopback=_from_loopback(request), protocol="http")
        if user is None:
            if errorlog is not None:
                errorlog.warning("HTTP login refused for user %r from %s", creds.login,
                                 request.remote or "a local socket")
            return unauthorized("Login failed")
        if not MANAGEMENT_TAGS.intersection(user.tags):
            return not_authorised("Not management user")
        request[USER] = user
        return await handler(request)

    return check
