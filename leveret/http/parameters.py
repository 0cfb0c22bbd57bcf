"""Runtime parameters: `/api/parameters[/{component}[/{vhost}[/{name}]]]` and
`/api/global-parameters[/{name}]`, in RabbitMQ 3.10's shapes.

A parameter is `{"value", "vhost", "component", "name"}`; a global one `{"name", "value"}`. PUT answers 201
(created) or 204, DELETE 204 or 404; a PUT into an unknown vhost is 404 `vhost_not_found`, a value its
component refuses (or a component nobody registered) 400 "Validation failed\\n\\n<text>\\n". The changes
go through broker/parameters.py, which writes them durably first.

RabbitMQ keeps vhost limits as the parameter `vhost-limits/{vhost}/limits`, so they are listed here too,
and a PUT or DELETE of that parameter sets or clears a vhost's limits (as definitions files carry them).
It lists operator policies among them too (component `operator_policy`; read-only here).
Access as RabbitMQ's: the `policymaker` or `administrator` tag, and a policymaker only in vhosts it has
permissions in; others get 401 "User not authorised to access object".
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import unquote, urlsplit

from aiohttp import web

from leveret.access.registry import VHOST_LIMITS
from leveret.broker.errors import PreconditionFailed
from leveret.broker.policy_definitions import erlang_term
from leveret.http.limits import limit_refusal
from leveret.http.responses import (
    USER,
    BadRequest,
    Handler,
    created_or_updated,
    json_body,
    no_content,
    not_authorised,
    not_found,
    require_keys,
    tags_of,
)
from leveret.http.target import ManagementTarget, target_of
from leveret.http.vhost_access import NotAuthorised

VHOST_LIMITS_COMPONENT = "vhost-limits"
VHOST_LIMITS_NAME = "limits"
# RabbitMQ lists operator policies (not policies) among the parameters, as this component.
OPERATOR_POLICY_COMPONENT = "operator_policy"
POLICY_TAGS = frozenset({"administrator", "policymaker"})
NOT_AUTHORISED = "User not authorised to access object"


def policymaker_only(handler: Handler) -> Handler:
    """The handler, answering RabbitMQ's 401 to users without the policymaker (or administrator) tag."""

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        if not POLICY_TAGS.intersection(tags_of(request)):
            return not_authorised(NOT_AUTHORISED)
        return await handler(request)

    return checked


def may_see(request: web.Request, vhost: str) -> bool:
    """An administrator sees every vhost's parameters; a policymaker those of vhosts it has permissions in."""
    if "administrator" in tags_of(request):
        return True
    return (request[USER].name, vhost) in target_of(request).users.permissions


def validation_failed(text: str) -> BadRequest:
    """RabbitMQ's 400 for a refused value (a component may give the whole text already), with `<` and `>`
    written as HTML entities, as RabbitMQ's /api/parameters writes them (checked against 3.10)."""
    text = text if text.startswith("Validation failed") else f"Validation failed\n\n{text}\n"
    return BadRequest(text.replace("<", "&lt;").replace(">", "&gt;"))


def parameter_info(vhost: str, component: str, name: str, value: Any) -> dict[str, Any]:
    return {"value": value, "vhost": vhost, "component": component, "name": name}


def parameter_rows(target: ManagementTarget, vhost: str | None = None,
                   component: str | None = None) -> list[dict[str, Any]]:
    """Every parameter (the vhost limits among them), or one vhost's and/or component's, as RabbitMQ lists them."""
    rows = []
    if component in (None, VHOST_LIMITS_COMPONENT):
        vhosts = target.users.vhosts
        rows = [parameter_info(name, VHOST_LIMITS_COMPONENT, VHOST_LIMITS_NAME, dict(vhosts[name].limits))
                for name in sorted(vhosts) if vhosts[name].limits and vhost in (None, name)]
    if component in (None, OPERATOR_POLICY_COMPONENT):
        rows += [parameter_info(p.vhost, OPERATOR_POLICY_COMPONENT, p.name, {
            "pattern": p.pattern, "definition": p.definition, "priority": p.priority, "apply-to": p.apply_to})
            for p in target.broker.policies.list(vhost, operator=True)]
    rows += [parameter_info(*row) for row in target.broker.parameters.list(vhost, component)]
    return rows


def set_parameter(target: ManagementTarget, vhost: str, component: str, name: str, value: Any) -> bool:
    """Set one parameter (True: created); `BadRequest` with RabbitMQ's text when refused. The vhost exists."""
    if component == VHOST_LIMITS_COMPONENT:
        return _set_vhost_limits(target, vhost, name, value)
    try:
        return target.broker.parameters.set(vhost, component, name, value)
    except PreconditionFailed as exc:
        raise validation_failed(exc.text) from None


def _set_vhost_limits(target: ManagementTarget, vhost: str, name: str, value: Any) -> bool:
    """The whole of a vhost's limits replaced by `value`, as RabbitMQ's vhost-limits parameter does."""
    if name != VHOST_LIMITS_NAME:
        raise validation_failed(f"the {VHOST_LIMITS_COMPONENT} parameter is named {VHOST_LIMITS_NAME}")
    if not isinstance(value, dict):
        raise validation_failed(f"{VHOST_LIMITS_NAME} not a list {erlang_term(value)}")
    refusals = [text for limit, number in value.items() if (text := limit_refusal(limit, number)) is not None]
    if refusals:
        raise validation_failed("\n".join(refusals))
    created = not target.users.vhosts[vhost].limits
    for limit in VHOST_LIMITS:
        target.set_vhost_limit(vhost, limit, value.get(limit))
    return created


def _clear_parameter(target: ManagementTarget, vhost: str, component: str, name: str) -> bool:
    if component == VHOST_LIMITS_COMPONENT:
        if name != VHOST_LIMITS_NAME or not target.users.vhosts[vhost].limits:
            return False
        for limit in VHOST_LIMITS:
            target.set_vhost_limit(vhost, limit, None)
        return True
    return target.broker.parameters.clear(vhost, component, name)


def _vhost_not_found() -> web.Response:
    return web.json_response({"error": "not_found", "reason": "vhost_not_found"}, status=404)


def _known_vhost(request: web.Request) -> str | None:
    """The vhost in the path if it exists (a policymaker without permissions there: 401 as RabbitMQ)."""
    vhost = request.match_info["vhost"]
    if vhost not in target_of(request).users.vhosts:
        return None
    if not may_see(request, vhost):
        raise NotAuthorised(NOT_AUTHORISED)
    return vhost


@policymaker_only
async def list_parameters(request: web.Request) -> web.Response:
    """GET /api/parameters[/{component}[/{vhost}]]."""
    component = request.match_info.get("component")
    vhost = None
    if "vhost" in request.match_info:
        vhost = _known_vhost(request)
        if vhost is None:
            return not_found()
    rows = parameter_rows(target_of(request), vhost, component)
    return web.json_response([row for row in rows if may_see(request, row["vhost"])])


@policymaker_only
async def get_parameter(request: web.Request) -> web.Response:
    vhost = _known_vhost(request)
    component, name = request.match_info["component"], request.match_info["name"]
    if vhost is not None:
        for row in parameter_rows(target_of(request), vhost, component):
            if row["name"] == name:
                return web.json_response(row)
    return not_found()


@policymaker_only
async def put_parameter(request: web.Request) -> web.Response:
    body = await json_body(request)
    require_keys(body, "value")
    vhost = _known_vhost(request)
    if vhost is None:
        return _vhost_not_found()
    component, name = request.match_info["component"], request.match_info["name"]
    if component == "shovel":
        _check_local_shovel_ends(request, body["value"])
    return created_or_updated(set_parameter(target_of(request), vhost, component, name, body["value"]))


def _local_vhosts(value: Any) -> set[str]:
    """The vhosts a shovel value reaches through this broker's internal identity: its URIs without a host and
    without credentials of their own (`amqp://` is "/", `amqp:///name` is name)."""
    if not isinstance(value, dict):
        return set()
    found = set()
    for key in ("src-uri", "dest-uri"):
        uris = value.get(key)
        for uri in [uris] if isinstance(uris, str) else uris if isinstance(uris, list) else []:
            parts = urlsplit(uri) if isinstance(uri, str) else None
            if parts is not None and not parts.hostname and parts.username is None:
                found.add(unquote(parts.path[1:]) if len(parts.path) > 1 else "/")
    return found


def _check_local_shovel_ends(request: web.Request, value: Any) -> None:
    """A shovel's local ends connect with every right (access/internal.py), so the user defining it must be
    one who may connect to each vhost they reach, as RabbitMQ checks the user who sets a shovel parameter
    against the vhost of each direct URI."""
    users = target_of(request).users
    user = request[USER].name
    for vhost in sorted(_local_vhosts(value)):
        if vhost not in users.vhosts or (user, vhost) not in users.permissions:
            raise validation_failed(f'user "{user}" may not connect to vhost "{vhost}"')


@policymaker_only
async def delete_parameter(request: web.Request) -> web.Response:
    vhost = _known_vhost(request)
    component, name = request.match_info["component"], request.match_info["name"]
    if vhost is None or not _clear_parameter(target_of(request), vhost, component, name):
        return not_found()
    return no_content()


@policymaker_only
async def list_global_parameters(request: web.Request) -> web.Response:
    """GET /api/global-parameters: every global parameter, by name."""
    rows = target_of(request).broker.parameters.list_global()
    return web.json_response([{"name": name, "value": value} for name, value in rows])


@policymaker_only
async def get_global_parameter(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    parameters = target_of(request).broker.parameters
    if name not in dict(parameters.list_global()):
        return not_found()
    return web.json_response({"value": parameters.get_global(name), "name": name})


@policymaker_only
async def put_global_parameter(request: web.Request) -> web.Response:
    body = await json_body(request)
    require_keys(body, "value")
    parameters = target_of(request).broker.parameters
    return created_or_updated(parameters.set_global(request.match_info["name"], body["value"]))


@policymaker_only
async def delete_global_parameter(request: web.Request) -> web.Response:
    if not target_of(request).broker.parameters.clear_global(request.match_info["name"]):
        return not_found()
    return no_content()


def add_parameter_routes(app: web.Application) -> None:
    """The parameter and global parameter routes."""
    app.router.add_get("/api/parameters", list_parameters)
    app.router.add_get("/api/parameters/{component}", list_parameters)
    app.router.add_get("/api/parameters/{component}/{vhost}", list_parameters)
    app.router.add_get("/api/parameters/{component}/{vhost}/{name}", get_parameter)
    app.router.add_put("/api/parameters/{component}/{vhost}/{name}", put_parameter)
    app.router.add_delete("/api/parameters/{component}/{vhost}/{name}", delete_parameter)
    app.router.add_get("/api/global-parameters", list_global_parameters)
    app.router.add_get("/api/global-parameters/{name}", get_global_parameter)
    app.router.add_put("/api/global-parameters/{name}", put_global_parameter)
    app.router.add_delete("/api/global-parameters/{name}", delete_global_parameter)
