"""Bindings in RabbitMQ 3.10's management API: listings, POST between an exchange and a queue or exchange,
and one binding by its `properties_key`.

Every queue shows its implicit binding from the default exchange (source "", routing key the queue's
name), as RabbitMQ lists them. `properties_key` is RabbitMQ's shape: the routing key form-encoded ("~"
escaped as %7E; "~" alone for an empty key) and, when the binding has arguments, "~" and a six-character
hash of them. RabbitMQ hashes the Erlang term (erlang:phash2); leveret hashes its own canonical form, so
the hash part differs between the two brokers (docs/compatibility.md); clients take it from a listing
or from the `Location` header of the POST, which holds the destination and the key.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
import zlib
from typing import Any, Iterable

from aiohttp import web

from leveret.broker.errors import BrokerError
from leveret.broker.exchanges import Exchange
from leveret.broker.vhost import VHost
from leveret.http.encoding import dumps, jsonable
from leveret.http.listing import item_response, list_response
from leveret.http.responses import BadRequest, json_body, no_content, text_field
from leveret.http.vhost_access import BrokerRefusal, ObjectNotFound, named_vhost, require
from leveret.http.vhosts import selected_vhosts


def properties_key(routing_key: str, arguments: dict[str, Any]) -> str:
    """RabbitMQ's `properties_key` of a binding (see the module docstring for the hash)."""
    key = urllib.parse.quote_plus(routing_key).replace("~", "%7E")
    if not arguments:
        return key or "~"
    canonical = json.dumps(jsonable(arguments), sort_keys=True, separators=(",", ":")).encode()
    digest = base64.urlsafe_b64encode(zlib.crc32(canonical).to_bytes(4, "big")).decode().rstrip("=")
    return f"{key}~{digest}"


def binding_row(vhost: str, source: str, destination: Any, routing_key: str, arguments: Any) -> dict[str, Any]:
    """One binding as a management API object."""
    args = jsonable(dict(arguments or {}))
    return {
        "source": source,
        "vhost": vhost,
        "destination": destination.name,
        "destination_type": "exchange" if isinstance(destination, Exchange) else "queue",
        "routing_key": routing_key,
        "arguments": args,
        "properties_key": properties_key(routing_key, args),
    }


def _sort_key(row: dict[str, Any]) -> tuple:
    return row["source"], row["destination_type"], row["destination"], row["routing_key"], row["properties_key"]


def binding_rows(vhost: VHost, *, source: Exchange | None = None, destination: Any = None) -> list[dict[str, Any]]:
    """The vhost's bindings (those from `source`, or to `destination`, when given), sorted as RabbitMQ's."""
    rows: list[dict[str, Any]] = []
    if source is None or source.name == "":
        # the default exchange's implicit binding of each queue
        for name, queue in vhost.queues.items():
            if destination is None or destination is queue:
                rows.append(binding_row(vhost.name, "", queue, name, {}))
    exchanges: Iterable[Exchange] = [source] if source is not None else vhost.exchanges.values()
    if destination is not None and source is None:
        exchanges = [x for x in destination.sources if isinstance(x, Exchange)]
    for exchange in exchanges:
        if exchange.name == "":
            continue
        for bound, routing_key, arguments in exchange.bindings():
            if destination is None or bound is destination:
                rows.append(binding_row(vhost.name, exchange.name, bound, routing_key, arguments))
    return sorted(rows, key=_sort_key)


async def list_bindings(request: web.Request) -> web.Response:
    """GET /api/bindings[/{vhost}]."""
    vhosts = selected_vhosts(request)
    if vhosts is None:
        raise ObjectNotFound()
    return list_response(request, (row for vhost in vhosts for row in binding_rows(vhost)))


def _ends(request: web.Request) -> tuple[VHost, Exchange | None, Any]:
    """The vhost, source exchange and destination the path names (None where they do not exist)."""
    vhost = named_vhost(request)
    info = request.match_info
    source = vhost.exchanges.get(info["source"])
    if info["kind"] == "q":
        destination: Any = vhost.queues.get(info["destination"])
    else:
        destination = vhost.exchanges.get(info["destination"])
    return vhost, source, destination


def _between(request: web.Request) -> list[dict[str, Any]]:
    vhost, source, destination = _ends(request)
    if source is None or destination is None:
        return []
    return binding_rows(vhost, source=source, destination=destination)


async def list_between(request: web.Request) -> web.Response:
    """GET /api/bindings/{vhost}/e/{source}/q|e/{destination}: the bindings between the two."""
    return list_response(request, _between(request))


async def post_binding(request: web.Request) -> web.Response:
    """POST /api/bindings/{vhost}/e/{source}/q|e/{destination}: 201 with the new binding's `Location`."""
    vhost, source, destination = _ends(request)
    body = await json_body(request)
    info = request.match_info
    routing_key = text_field(body, "routing_key", "")
    arguments = body.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise BadRequest("arguments must be an object")
    if source is None:
        return _missing("exchange", info["source"], vhost.name)
    if destination is None:
        return _missing("queue" if info["kind"] == "q" else "exchange", info["destination"], vhost.name)
    kind = "queue" if info["kind"] == "q" else "exchange"
    require(request, vhost.name, kind, destination.name, "write")
    require(request, vhost.name, "exchange", source.name, "read")
    try:
        if info["kind"] == "q":
            vhost.bind_queue(destination.name, source.name, routing_key, arguments, owner=destination.owner)
        else:
            vhost.bind_exchange(destination.name, source.name, routing_key, arguments)
    except BrokerError as exc:
        raise BrokerRefusal(exc) from None
    location = f"{urllib.parse.quote(destination.name, safe='')}/" \
               f"{urllib.parse.quote(properties_key(routing_key, jsonable(arguments)), safe='')}"
    return web.Response(status=201, headers={"Location": location})


def _missing(kind: str, name: str, vhost: str) -> web.Response:
    return web.json_response({"error": "not_found", "reason": f"no {kind} '{name}' in vhost '{vhost}'"},
                             status=404, dumps=dumps)


def _unpacked(props: str) -> tuple[str, str]:
    """(routing key, arguments hash) a properties_key names; as RabbitMQ, the key part is unquoted, so
    "a.*" and "a.%2A" name the same binding."""
    key, _, digest = props.partition("~")
    return urllib.parse.unquote_plus(key), digest


def _one(request: web.Request) -> dict[str, Any]:
    wanted = _unpacked(request.match_info["props"])
    for row in _between(request):
        if _unpacked(row["properties_key"]) == wanted:
            return row
    raise ObjectNotFound()


async def get_binding(request: web.Request) -> web.Response:
    """GET /api/bindings/{vhost}/e/{source}/q|e/{destination}/{props}."""
    return item_response(request, _one(request))


async def delete_binding(request: web.Request) -> web.Response:
    """DELETE /api/bindings/{vhost}/e/{source}/q|e/{destination}/{props}: 204, or 404 when there is none."""
    row = _one(request)
    vhost, source, destination = _ends(request)
    require(request, vhost.name, row["destination_type"], row["destination"], "write")
    require(request, vhost.name, "exchange", row["source"], "read")
    # the stored arguments (not their JSON form) name the binding in the exchange
    arguments = next(a for d, k, a in source.bindings()  # type: ignore[union-attr]
                     if d is destination and k == row["routing_key"]
                     and properties_key(k, jsonable(dict(a))) == row["properties_key"])
    try:
        if row["destination_type"] == "queue":
            vhost.unbind_queue(destination.name, source.name, row["routing_key"], dict(arguments),
                               owner=destination.owner)
        else:
            vhost.unbind_exchange(destination.name, source.name, row["routing_key"], dict(arguments))
    except BrokerError as exc:
        raise BrokerRefusal(exc) from None
    return no_content()
