"""The answers RabbitMQ's management API gives to changes, and reading a change's JSON body.

Bodies and codes as RabbitMQ 3.10 sends them: 201 with no body for a created object, 204 for an updated
or deleted one, 400 `{"error": "bad_request", "reason": ...}`, 401 `not_authorised` for a user whose tags
do not allow the request (no `WWW-Authenticate` then: the credentials were right), 404 `Object Not Found`.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Where the auth middleware leaves the authenticated user (an access UserDef) for the handlers: a typed
# request key where aiohttp has them (3.12+; a plain string key warns there), a string before.
USER: Any = web.RequestKey("leveret.user", object) if hasattr(web, "RequestKey") else "leveret.user"


def not_found() -> web.Response:
    """RabbitMQ's 404 body."""
    return web.json_response({"error": "Object Not Found", "reason": "Not Found"}, status=404)


def bad_request(reason: Any) -> web.Response:
    return web.json_response({"error": "bad_request", "reason": reason}, status=400)


def created_or_updated(created: bool) -> web.Response:
    return web.Response(status=201 if created else 204)


def no_content() -> web.Response:
    return web.Response(status=204)


def not_authorised(reason: str) -> web.Response:
    return web.json_response({"error": "not_authorised", "reason": reason}, status=401)


def tags_of(request: web.Request) -> tuple[str, ...]:
    user = request.get(USER)
    return () if user is None else tuple(user.tags)


def administrator_only(handler: Handler) -> Handler:
    """The handler, answering RabbitMQ's 401 "Not administrator user" to users without that tag."""

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        if "administrator" not in tags_of(request):
            return not_authorised("Not administrator user")
        return await handler(request)

    return checked


def monitor_only(handler: Handler) -> Handler:
    """The handler, answering RabbitMQ's 401 "Not monitor user" to users tagged neither monitoring nor
    administrator (node-wide figures: /api/nodes)."""

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        if not {"administrator", "monitoring"}.intersection(tags_of(request)):
            return not_authorised("Not monitor user")
        return await handler(request)

    return checked


class Refusal(Exception):
    """A request refused from deep in a handler; the app's middleware answers `response()`."""

    def response(self) -> web.Response:
        raise NotImplementedError


class BadRequest(Refusal):
    """A change's body RabbitMQ would refuse; `reason` is its `reason` field."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason

    def response(self) -> web.Response:
        return bad_request(self.reason)


class NotAuthorisedForVHost(Refusal):
    """RabbitMQ's 401 to a `management` user naming a vhost it has no permissions in."""

    def response(self) -> web.Response:
        return not_authorised("User not authorised to access virtual host")


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is an empty object, as RabbitMQ reads it)."""
    return json_object(await request.read())


def json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object from bytes (empty: an empty object); BadRequest("not_json") otherwise."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest("not_json") from None
    if not isinstance(body, dict):
        raise BadRequest("not_json")
    return body


def require_keys(body: dict[str, Any], *keys: str) -> None:
    """RabbitMQ's text for missing keys: `[{key_missing,write},{key_missing,read}]`."""
    missing = [key for key in keys if key not in body]
    if missing:
        raise BadRequest("[" + ",".join(f"{{key_missing,{key}}}" for key in missing) + "]")


def text_field(body: dict[str, Any], key: str, default: str = "") -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    return value


def tag_list(value: Any) -> tuple[str, ...]:
    """Tags as RabbitMQ takes them: a comma-separated string ("a, b") or a list of strings."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = value
    else:
        raise BadRequest("tags must be a string or a list of strings")
    return tuple(tag.strip() for tag in items if tag.strip())
