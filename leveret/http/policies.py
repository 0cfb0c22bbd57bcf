"""Policies and operator policies: `/api/policies[/{vhost}[/{name}]]` and `/api/operator-policies/...`, in
RabbitMQ 3.10's shapes, codes and texts (checked against it), and the policy fields of a queue or an
exchange as the management API shows them.

A policy is `{"vhost", "name", "pattern", "apply-to", "definition", "priority"}`; lists are sorted by vhost,
priority and name. PUT answers 201 or 204, DELETE 204 or 404, a PUT into an unknown vhost 404
`vhost_not_found`, a bad policy 400 "Validation failed\\n\\n<text>\\n" (broker/policy_definitions.py has the
texts; RabbitMQ escapes `<` and `>` as HTML entities in a policy's reasons but not in an operator policy's).
Any management user lists the policies of the vhosts it may see; changing a policy needs the policymaker
or administrator tag, an operator policy the administrator tag.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leveret.broker.exchanges.base import Exchange
from leveret.broker.policy_definitions import NO_POLICY, PolicyInvalid
from leveret.http.parameters import policymaker_only
from leveret.http.responses import (
    BadRequest,
    Handler,
    administrator_only,
    created_or_updated,
    json_body,
    no_content,
    not_found,
    require_keys,
)
from leveret.http.target import ManagementTarget, target_of
from leveret.http.vhosts import selected_vhosts
from leveret.store.api import PolicyDef


def policy_fields(queue: Any) -> dict[str, Any]:
    """A queue's `policy`, `operator_policy` and `effective_policy_definition` (the policies' merged
    definition, without the queue's own arguments, as RabbitMQ shows it)."""
    applied = getattr(queue, "applied_policy", NO_POLICY)
    return {"policy": applied.policy, "operator_policy": applied.operator_policy,
            "effective_policy_definition": dict(applied.definition)}


def exchange_policy_fields(exchange: Exchange) -> dict[str, Any]:
    """An exchange's `policy`: RabbitMQ shows the key only while one applies."""
    return {"policy": exchange.policy} if exchange.policy is not None else {}


def policy_info(policy: PolicyDef) -> dict[str, Any]:
    return {"vhost": policy.vhost, "name": policy.name, "pattern": policy.pattern, "apply-to": policy.apply_to,
            "definition": policy.definition, "priority": policy.priority}


def invalid(error: PolicyInvalid, *, operator: bool) -> BadRequest:
    """RabbitMQ's 400 for a refused policy (see the module docstring for the escaping)."""
    text = error.text if operator else error.text.replace("<", "&lt;").replace(">", "&gt;")
    return BadRequest(f"Validation failed\n\n{text}\n")


def put_policy_body(target: ManagementTarget, vhost: str, name: str, body: dict[str, Any], *,
                    operator: bool) -> bool:
    """Set a policy from its JSON body (as the API and definitions files carry it); True when new.
    `BadRequest` with RabbitMQ's text when refused; the vhost exists."""
    require_keys(body, "pattern", "definition")
    try:
        return target.broker.policies.put(vhost, name, body["pattern"], body["definition"],
                                          body.get("apply-to", "all"), body.get("priority", 0), operator=operator)
    except PolicyInvalid as error:
        raise invalid(error, operator=operator) from None


async def _list(request: web.Request, operator: bool) -> web.Response:
    vhosts = selected_vhosts(request)
    if vhosts is None:
        return not_found()
    policies = target_of(request).broker.policies
    return web.json_response([policy_info(p) for vhost in vhosts for p in policies.list(vhost.name, operator=operator)])


async def _get(request: web.Request, operator: bool) -> web.Response:
    vhosts = selected_vhosts(request)
    policy = None if not vhosts else target_of(request).broker.policies.get(
        vhosts[0].name, request.match_info["name"], operator=operator)
    return not_found() if policy is None else web.json_response(policy_info(policy))


async def _put(request: web.Request, operator: bool) -> web.Response:
    body = await json_body(request)
    vhosts = selected_vhosts(request)
    if vhosts is None:
        return web.json_response({"error": "not_found", "reason": "vhost_not_found"}, status=404)
    created = put_policy_body(target_of(request), vhosts[0].name, request.match_info["name"], body, operator=operator)
    return created_or_updated(created)


async def _delete(request: web.Request, operator: bool) -> web.Response:
    vhosts = selected_vhosts(request)
    if not vhosts or not target_of(request).broker.policies.delete(vhosts[0].name, request.match_info["name"],
                                                                   operator=operator):
        return not_found()
    return no_content()


def _handlers(operator: bool) -> tuple[Handler, Handler, Handler, Handler]:
    """GET (list), GET one, PUT and DELETE of policies or operator policies, each with its access rule."""
    may_change = administrator_only if operator else policymaker_only

    async def listing(request: web.Request) -> web.Response:
        return await _list(request, operator)

    async def get(request: web.Request) -> web.Response:
        return await _get(request, operator)

    async def put(request: web.Request) -> web.Response:
        return await _put(request, operator)

    async def delete(request: web.Request) -> web.Response:
        return await _delete(request, operator)

    return listing, get, may_change(put), may_change(delete)


def add_policy_routes(app: web.Application) -> None:
    """The policy and operator policy routes."""
    for prefix, operator in (("/api/policies", False), ("/api/operator-policies", True)):
        listing, get, put, delete = _handlers(operator)
        app.router.add_get(prefix, listing)
        app.router.add_get(prefix + "/{vhost}", listing)
        app.router.add_get(prefix + "/{vhost}/{name}", get)
        app.router.add_put(prefix + "/{vhost}/{name}", put)
        app.router.add_delete(prefix + "/{vhost}/{name}", delete)
