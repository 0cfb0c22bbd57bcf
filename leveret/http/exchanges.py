"""Exchanges in RabbitMQ 3.10's management API: list, get one, PUT, DELETE, publish, and their bindings.

The default exchange has the empty name in listings and is `amq.default` in paths, as in RabbitMQ.
`message_stats` are publish_in (published to it) and publish_out (routed on), with rates.
Leveret extension: an x-delayed-message exchange also carries `delayed_messages`, the number of messages
it holds for a later x-delay (RabbitMQ's plugin shows this nowhere cheap; here it is a length read).
POST .../publish answers once a persistent message routed to a durable queue is on disk, as a publisher
confirm would.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from leveret.broker.errors import BrokerError
from leveret.broker.exchanges import Exchange
from leveret.broker.exchanges.delayed import DelayedMessageExchange
from leveret.broker.message import Message
from leveret.http.bindings import binding_rows
from leveret.http.encoding import dumps, jsonable
from leveret.http.listing import item_response, list_response
from leveret.http.messages import flag, payload_from_json, properties_from_json
from leveret.http.policies import exchange_policy_fields
from leveret.http.rates import EXCHANGE_FIELDS, Rates, rates_of
from leveret.http.responses import BadRequest, created_or_updated, json_body, no_content, require_keys, text_field
from leveret.http.target import target_of
from leveret.http.vhost_access import (
    BrokerRefusal,
    NotAuthorised,
    ObjectNotFound,
    commit_soon,
    named_vhost,
    require,
    reserved,
)
from leveret.http.vhosts import selected_vhosts

DEFAULT_EXCHANGE_PATH = "amq.default"


def exchange_info(exchange: Exchange, rates: Rates | None = None) -> dict[str, Any]:
    """One exchange as a management API object (the default exchange has the empty name, as in RabbitMQ)."""
    info: dict[str, Any] = {
        "name": exchange.name,
        "vhost": exchange.vhost_name,
        "type": exchange.type_name,
        "durable": exchange.durable,
        "auto_delete": exchange.auto_delete,
        "internal": exchange.internal,
        "arguments": jsonable(exchange.arguments),
        "user_who_performed_action": "",
        **exchange_policy_fields(exchange),
    }
    if rates is not None:
        key = ("exchange", exchange.vhost_name, exchange.name)
        info["message_stats"] = rates.message_stats(key, exchange.stats, EXCHANGE_FIELDS)
    if isinstance(exchange, DelayedMessageExchange):
        info["delayed_messages"] = exchange.pending_count
    return info


def path_name(request: web.Request) -> str:
    name = request.match_info["exchange"]
    return "" if name == DEFAULT_EXCHANGE_PATH else name


def named_exchange(request: web.Request) -> Exchange:
    exchange = named_vhost(request).exchanges.get(path_name(request))
    if exchange is None:
        raise ObjectNotFound()
    return exchange


async def list_exchanges(request: web.Request) -> web.Response:
    """GET /api/exchanges[/{vhost}]: every exchange, sorted by vhost then name."""
    vhosts = selected_vhosts(request)
    if vhosts is None:
        raise ObjectNotFound()
    rates = rates_of(request)
    return list_response(request, (exchange_info(vhost.exchanges[name], rates)
                                   for vhost in vhosts for name in sorted(vhost.exchanges)))


async def get_exchange(request: web.Request) -> web.Response:
    """GET /api/exchanges/{vhost}/{exchange}."""
    info = exchange_info(named_exchange(request), rates_of(request))
    info["incoming"], info["outgoing"] = [], []
    return item_response(request, info)


async def put_exchange(request: web.Request) -> web.Response:
    """PUT /api/exchanges/{vhost}/{exchange}: declare it; 201 created, 204 when it existed and is equivalent."""
    vhost = named_vhost(request)
    name = path_name(request)
    body = await json_body(request)
    if name == "" or (reserved(name) and name not in vhost.exchanges):
        raise NotAuthorised("Access refused.")
    require(request, vhost.name, "exchange", name, "configure")
    kind = text_field(body, "type", "direct")
    arguments = body.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise BadRequest("arguments must be an object")
    existed = name in vhost.exchanges
    try:
        vhost.declare_exchange(name, kind, durable=flag(body, "durable", False),
                               auto_delete=flag(body, "auto_delete", False),
                               internal=flag(body, "internal", False), arguments=arguments)
    except BrokerError as exc:
        raise BrokerRefusal(exc) from None
    return created_or_updated(not existed)


async def delete_exchange(request: web.Request) -> web.Response:
    """DELETE /api/exchanges/{vhost}/{exchange} (`if-unused`): 204."""
    exchange = named_exchange(request)
    if exchange.name == "" or reserved(exchange.name):
        raise NotAuthorised("Access refused.")
    require(request, exchange.vhost_name, "exchange", exchange.name, "configure")
    try:
        named_vhost(request).delete_exchange(exchange.name, if_unused=request.query.get("if-unused") == "true")
    except BrokerError as exc:
        raise BrokerRefusal(exc) from None
    return no_content()


async def source_bindings(request: web.Request) -> web.Response:
    """GET /api/exchanges/{vhost}/{exchange}/bindings/source: the bindings from this exchange."""
    exchange = named_exchange(request)
    return list_response(request, binding_rows(named_vhost(request), source=exchange))


async def destination_bindings(request: web.Request) -> web.Response:
    """GET /api/exchanges/{vhost}/{exchange}/bindings/destination: the bindings to this exchange."""
    exchange = named_exchange(request)
    return list_response(request, binding_rows(named_vhost(request), destination=exchange))


class _CommitWaiter:
    """Stands in for a publishing channel while the message store commits (server/durability.py)."""

    def __init__(self) -> None:
        self.done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def confirm_ready(self, seq: int) -> None:
        if not self.done.done():
            self.done.set_result(True)

    def confirm_failed(self, seq: int) -> None:
        if not self.done.done():
            self.done.set_result(False)


async def publish(request: web.Request) -> web.Response:
    """POST /api/exchanges/{vhost}/{exchange}/publish: `{"routed": bool}`."""
    vhost = named_vhost(request)
    name = path_name(request)
    body = await json_body(request)
    require_keys(body, "routing_key", "properties", "payload", "payload_encoding")
    routing_key = text_field(body, "routing_key")
    properties = properties_from_json(body["properties"])
    payload = payload_from_json(body)
    if name not in vhost.exchanges:
        raise BadRequest(f"404 NOT_FOUND - no exchange '{name}' in vhost '{vhost.name}'")
    require(request, vhost.name, "exchange", name, "write")
    message = Message(name, routing_key, properties, payload)
    durability = target_of(request).durability
    aborts = getattr(durability, "aborts", 0)
    try:
        result = vhost.publish(name, routing_key, message)
    except BrokerError as exc:
        raise BrokerRefusal(exc) from None
    except OSError:
        raise BadRequest("the message store could not take the message") from None
    if durability is not None and durability.store.commit_pending:
        waiter = _CommitWaiter()
        durability.wait_for_commit(waiter, 0)
        if not await waiter.done or durability.aborts != aborts:
            raise BadRequest("the message store could not take the message")
    else:
        commit_soon(request)
    return web.json_response({"routed": result.routed}, dumps=dumps)
