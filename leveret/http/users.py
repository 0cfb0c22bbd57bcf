"""Users: `/api/users`, `/api/users/{name}`, `/api/users/{name}/permissions` (and topic-permissions) and
`/api/whoami`, in RabbitMQ 3.10's shapes.

Everything but whoami needs the administrator tag. A PUT creates (201) or replaces (204) the user as
RabbitMQ does: `password` is hashed (SHA-256, salted), or `password_hash` (with `hashing_algorithm`) is
taken as it is, and with neither the user has no password; `tags` is required. Deleting a user closes its
connections (the access registry tells the server).
"""

from __future__ import annotations

from typing import Any, Callable

from aiohttp import web

from leveret.access.passwords import ALGORITHMS, SHA256, valid_hash
from leveret.http.permissions import permission_info, topic_permission_info
from leveret.http.responses import (
    USER,
    BadRequest,
    created_or_updated,
    json_body,
    no_content,
    not_found,
    administrator_only,
    tag_list,
    text_field,
)
from leveret.http.target import target_of
from leveret.store.api import UserDef


def user_info(user: UserDef) -> dict[str, Any]:
    return {"name": user.name, "password_hash": user.password_hash, "hashing_algorithm": user.hashing_algorithm,
            "tags": list(user.tags), "limits": dict(user.limits)}


async def whoami(request: web.Request) -> web.Response:
    user = request[USER]
    return web.json_response({"name": user.name, "tags": list(user.tags)})


@administrator_only
async def list_users(request: web.Request) -> web.Response:
    users = target_of(request).users.users
    return web.json_response([user_info(users[name]) for name in sorted(users)])


def _named_user(request: web.Request) -> UserDef | None:
    return target_of(request).users.users.get(request.match_info["name"])


@administrator_only
async def get_user(request: web.Request) -> web.Response:
    user = _named_user(request)
    return not_found() if user is None else web.json_response(user_info(user))


@administrator_only
async def put_user(request: web.Request) -> web.Response:
    body = await json_body(request)
    if "tags" not in body:
        raise BadRequest("tags_not_present")
    tags = tag_list(body["tags"])
    name = request.match_info["name"]
    registry = target_of(request).users
    created = name not in registry.users
    if "password" in body:
        registry.add_user(name, text_field(body, "password"), tags)
    elif "password_hash" in body:
        stored = text_field(body, "password_hash")
        algorithm = text_field(body, "hashing_algorithm", SHA256)
        if algorithm not in ALGORITHMS:
            raise BadRequest(["unknown_hashing_algorithm", algorithm])
        if not valid_hash(stored, algorithm):
            raise BadRequest(["not_base64", stored])
        registry.put_user(UserDef(name, stored, algorithm, tags))
    else:
        registry.add_user(name, None, tags)  # RabbitMQ 3.10: no password given, none kept
    return created_or_updated(created)


@administrator_only
async def delete_user(request: web.Request) -> web.Response:
    registry = target_of(request).users
    name = request.match_info["name"]
    if name not in registry.users:
        return not_found()
    registry.delete_user(name)
    return no_content()


def _rows_of_user(request: web.Request, table: dict, info: Callable[[Any], dict[str, Any]]) -> web.Response:
    """The user's rows of a permission table (keyed by user first), sorted; 404 for an unknown user."""
    if _named_user(request) is None:
        return not_found()
    name = request.match_info["name"]
    return web.json_response([info(row) for key, row in sorted(table.items()) if key[0] == name])


@administrator_only
async def user_permissions(request: web.Request) -> web.Response:
    """GET /api/users/{name}/permissions: the user's permission rows, by vhost."""
    return _rows_of_user(request, target_of(request).users.permissions, permission_info)


@administrator_only
async def user_topic_permissions(request: web.Request) -> web.Response:
    """GET /api/users/{name}/topic-permissions: the user's topic permission rows, by vhost and exchange."""
    return _rows_of_user(request, target_of(request).users.topic_permissions, topic_permission_info)
