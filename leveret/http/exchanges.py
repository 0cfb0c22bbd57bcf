"""Exchanges: `GET /api/exchanges` and `GET /api/exchanges/{vhost}`, in the shape of RabbitMQ's management API.

Leveret extension: an x-delayed-message exchange also carries `delayed_messages`, the number of messages
it holds for a later x-delay (RabbitMQ's plugin shows this nowhere cheap; here it is a length read).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leveret.broker.exchanges import Exchange
from leveret.broker.exchanges.delayed import DelayedMessageExchange
from leveret.http.encoding import dumps, jsonable
from leveret.http.responses import not_found
from leveret.http.vhosts import selected_vhosts


def exchange_info(exchange: Exchange) -> dict[str, Any]:
    """One exchange as a management API object (the default exchange has the empty name, as in RabbitMQ)."""
    info: dict[str, Any] = {
        "name": exchange.name,
        "vhost": exchange.vhost_name,
        "type": exchange.type_name,
        "durable": exchange.durable,
        "auto_delete": exchange.auto_delete,
        "internal": exchange.internal,
        "arguments": jsonable(exchange.arguments),
    }
    if isinstance(exchange, DelayedMessageExchange):
        info["delayed_messages"] = exchange.pending_count
    return info


async def list_exchanges(request: web.Request) -> web.Response:
    """GET /api/exchanges[/{vhost}]: every exchange, sorted by vhost then name."""
    vhosts = selected_vhosts(request)
    if vhosts is None:
        return not_found()
    rows = [exchange_info(vhost.exchanges[name]) for vhost in vhosts for name in sorted(vhost.exchanges)]
    return web.json_response(rows, dumps=dumps)
