"""Definitions: `GET/POST /api/definitions` and `/api/definitions/{vhost}`, RabbitMQ 3.10's JSON document of
users, vhosts, permissions, topic permissions, parameters, global parameters, policies, queues, exchanges
and bindings (no messages), exported and imported.

The export is RabbitMQ's shape (checked against it): users with their password hash (never re-hashed, so
an imported user's password keeps working), a vhost's limits and operator policies among the parameters
(as RabbitMQ keeps them), every queue but exclusive ones, every exchange but the default and amq.* ones,
every binding but the default exchange's. A vhost's export leaves out users, vhosts, permissions and the
vhost key of its queues, exchanges and bindings, as RabbitMQ's does. One difference: a vhost is exported
with its description and tags (RabbitMQ 3.10 writes only its name; it imports them).

Importing is definitions_import.py's. Both need the administrator tag.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from leveret.broker.exchanges.base import Exchange
from leveret.broker.vhost import VHost
from leveret.http.definitions_import import ImportFailed, import_steps
from leveret.http.encoding import jsonable
from leveret.http.parameters import parameter_rows
from leveret.http.policies import policy_info
from leveret.http.responses import BadRequest, administrator_only, json_object, no_content
from leveret.http.target import ManagementTarget, target_of

# Objects a POST imports between two turns of the event loop.
YIELD_EVERY = 20
RABBIT_VERSION = "3.10.8"  # the version of the API leveret answers as (overview's rabbitmq_version)
PRODUCT_NAME = "leveret"


def _queues(vhost: VHost) -> list[dict[str, Any]]:
    return [{"name": q.name, "vhost": vhost.name, "durable": q.durable, "auto_delete": q.auto_delete,
             "arguments": jsonable(q.arguments)}
            for _, q in sorted(vhost.queues.items()) if not q.exclusive]


def _user_exchange(exchange: Exchange) -> bool:
    return exchange.name != "" and not exchange.name.startswith("amq.")


def _exchanges(vhost: VHost) -> list[dict[str, Any]]:
    return [{"name": x.name, "vhost": vhost.name, "type": x.type_name, "durable": x.durable,
             "auto_delete": x.auto_delete, "internal": x.internal, "arguments": jsonable(x.arguments)}
            for _, x in sorted(vhost.exchanges.items()) if _user_exchange(x)]


def _bindings(vhost: VHost) -> list[dict[str, Any]]:
    rows = []
    for _, source in sorted(vhost.exchanges.items()):
        if source.name == "":
            continue
        for destination, routing_key, arguments in source.bindings():
            if getattr(destination, "exclusive", False):
                continue
            kind = "exchange" if isinstance(destination, Exchange) else "queue"
            rows.append({"source": source.name, "vhost": vhost.name, "destination": destination.name,
                         "destination_type": kind, "routing_key": routing_key, "arguments": jsonable(arguments)})
    return rows


def export_definitions(target: ManagementTarget, vhost: str | None = None) -> dict[str, Any]:
    """The whole broker's definitions, or one vhost's (`vhost`, which exists), as RabbitMQ exports them."""
    users = target.users
    broker = target.broker
    models = [broker.vhosts[name] for name in sorted(broker.vhosts)
              if name in users.vhosts and vhost in (None, name)]
    document: dict[str, Any] = {"rabbit_version": RABBIT_VERSION}
    if vhost is None:
        document.update({
            "rabbitmq_version": RABBIT_VERSION,
            "product_name": PRODUCT_NAME,
            "product_version": RABBIT_VERSION,
            "users": [{"name": u.name, "password_hash": u.password_hash, "hashing_algorithm": u.hashing_algorithm,
                       "tags": list(u.tags), "limits": dict(u.limits)} for _, u in sorted(users.users.items())],
            "vhosts": [{"name": v.name, "description": v.description, "tags": list(v.tags),
                        "metadata": {"description": v.description, "tags": list(v.tags)}}
                       for _, v in sorted(users.vhosts.items())],
            "permissions": [{"user": p.user, "vhost": p.vhost, "configure": p.configure, "write": p.write,
                             "read": p.read} for _, p in sorted(users.permissions.items())],
            "topic_permissions": [{"user": p.user, "vhost": p.vhost, "exchange": p.exchange, "write": p.write,
                                   "read": p.read} for _, p in sorted(users.topic_permissions.items())],
        })
    document["parameters"] = parameter_rows(target, vhost)
    if vhost is None:
        document["global_parameters"] = [{"name": name, "value": value}
                                         for name, value in broker.parameters.list_global()]
    document["policies"] = [policy_info(p) for p in broker.policies.list(vhost)]
    for key, rows_of in (("queues", _queues), ("exchanges", _exchanges), ("bindings", _bindings)):
        rows = [row for model in models for row in rows_of(model)]
        if vhost is not None:
            for row in rows:
                del row["vhost"]
        document[key] = rows
    return document


@administrator_only
async def get_definitions(request: web.Request) -> web.Response:
    """GET /api/definitions[/{vhost}] (`?download=NAME` is answered the same: the body is the file)."""
    target = target_of(request)
    vhost = request.match_info.get("vhost")
    if vhost is not None and vhost not in target.users.vhosts:
        return web.json_response({"error": "not_found", "reason": "vhost_not_found"}, status=404)
    response = web.json_response(export_definitions(target, vhost))
    download = request.query.get("download")
    if download:
        response.headers["Content-Disposition"] = f'attachment; filename="{download}"'
    return response


@administrator_only
async def post_definitions(request: web.Request) -> web.Response:
    """POST /api/definitions[/{vhost}]: import a document (a JSON body, or the management UI's form upload
    with the file in `file`); 204, or 400 with RabbitMQ's reason at the first definition refused (those
    before it stay imported, as in RabbitMQ)."""
    target = target_of(request)
    vhost = request.match_info.get("vhost")
    if request.content_type == "multipart/form-data":
        form = await request.post()
        upload = form.get("file")
        raw = upload.file.read() if hasattr(upload, "file") else str(upload or "").encode()
    else:
        raw = await request.read()
    try:
        document = json_object(raw)
    except BadRequest:
        raise BadRequest("failed_to_parse_json") from None
    if vhost is not None and vhost not in target.users.vhosts:
        return web.json_response({"error": "not_found", "reason": "vhost_not_found"}, status=404)
    try:
        for imported in import_steps(target, document, vhost):
            if imported % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let connections and timers run between objects of a long import
    except ImportFailed as failed:
        raise BadRequest(failed.reason) from None
    return no_content()


def add_definition_routes(app: web.Application) -> None:
    app.router.add_get("/api/definitions", get_definitions)
    app.router.add_get("/api/definitions/{vhost}", get_definitions)
    app.router.add_post("/api/definitions", post_definitions)
    app.router.add_post("/api/definitions/{vhost}", post_definitions)
