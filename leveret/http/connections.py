"""AMQP connections in RabbitMQ 3.10's management API: `/api/connections[/{name}]`, a vhost's connections,
and DELETE, which closes one with 320 CONNECTION_FORCED and the `X-Reason` header's text.

A connection is named as RabbitMQ names it, "PEER_HOST:PEER_PORT -> LOCAL_HOST:LOCAL_PORT", and its
channels "NAME (N)". Users tagged administrator or monitoring see every connection; others their own, as
in RabbitMQ. The objects are the server's connections, read through what `ManagementTarget.connections`
holds (each has `.session`, `.peer`, `.transport`, `.force_close`).
"""

from __future__ import annotations

from typing import Any, Iterable

from aiohttp import web

from leveret.http.encoding import jsonable
from leveret.http.listing import item_response, list_response
from leveret.http.nodes import node_name
from leveret.http.responses import USER, no_content, tags_of
from leveret.http.target import target_of
from leveret.http.vhost_access import ObjectNotFound, named_vhost
from leveret.http.vhosts import SEES_ALL

CLOSED_VIA_API = "Closed via management plugin"


def _address(address: Any) -> tuple[str, int]:
    if isinstance(address, (tuple, list)) and len(address) >= 2:
        return str(address[0]), int(address[1])
    return "", 0


def endpoints(conn: Any) -> tuple[tuple[str, int], tuple[str, int]]:
    """(peer host and port, local host and port) of a connection."""
    transport = getattr(conn, "transport", None)
    local = transport.get_extra_info("sockname") if transport is not None else None
    return _address(conn.peer), _address(local)


def connection_name(conn: Any) -> str:
    """RabbitMQ's name of a connection: "127.0.0.1:54321 -> 127.0.0.1:5672"."""
    (peer_host, peer_port), (host, port) = endpoints(conn)
    return f"{peer_host}:{peer_port} -> {host}:{port}"


def connection_info(conn: Any) -> dict[str, Any]:
    """One connection as a management API object."""
    session = conn.session
    handshake = session.handshake
    (peer_host, peer_port), (host, port) = endpoints(conn)
    transport = getattr(conn, "transport", None)
    tls = transport.get_extra_info("ssl_object") if transport is not None else None
    cipher = tls.cipher() if tls is not None else None
    external = session.certificate_user is not None and session.certificate_user == session.username
    return {
        "name": connection_name(conn),
        "node": node_name(),
        "type": "network",
        "protocol": "AMQP 0-9-1",
        "state": "running" if session.vhost is not None and not session.closed else "starting",
        "user": session.username,
        "user_who_performed_action": session.username,
        "vhost": session.vhost.name if session.vhost is not None else None,
        "host": host,
        "port": port,
        "peer_host": peer_host,
        "peer_port": peer_port,
        "auth_mechanism": "EXTERNAL" if external else "PLAIN",
        "channels": len(session.channels),
        "channel_max": handshake.channel_max,
        "frame_max": handshake.frame_max,
        "timeout": handshake.heartbeat,
        "client_properties": jsonable(getattr(handshake, "client_properties", {}) or {}),
        "ssl": tls is not None,
        "ssl_protocol": tls.version() if tls is not None else None,
        "ssl_cipher": cipher[0] if cipher else None,
        "ssl_hash": None,
        "ssl_key_exchange": None,
        "peer_cert_issuer": None,
        "peer_cert_subject": None,
        "peer_cert_validity": None,
        "send_pend": 0,
    }


def visible_connections(request: web.Request, vhost: str | None = None) -> list[Any]:
    """The open connections the user may see (all for administrator and monitoring, else its own), in
    name order; only those of `vhost` when given."""
    user = request[USER]
    sees_all = bool(SEES_ALL.intersection(tags_of(request)))
    found = []
    for conn in target_of(request).connections:
        session = conn.session
        if not sees_all and session.username != user.name:
            continue
        if vhost is not None and (session.vhost is None or session.vhost.name != vhost):
            continue
        found.append(conn)
    return sorted(found, key=connection_name)


def named_connection(request: web.Request) -> Any:
    name = request.match_info["connection"]
    for conn in visible_connections(request):
        if connection_name(conn) == name:
            return conn
    raise ObjectNotFound()


async def list_connections(request: web.Request) -> web.Response:
    """GET /api/connections and /api/vhosts/{vhost}/connections."""
    vhost = named_vhost(request).name if "vhost" in request.match_info else None
    return list_response(request, [connection_info(conn) for conn in visible_connections(request, vhost)])


async def get_connection(request: web.Request) -> web.Response:
    """GET /api/connections/{connection}."""
    return item_response(request, connection_info(named_connection(request)))


async def delete_connection(request: web.Request) -> web.Response:
    """DELETE /api/connections/{connection}: close it (320, "CONNECTION_FORCED - " and `X-Reason`)."""
    conn = named_connection(request)
    reason = request.headers.get("X-Reason", CLOSED_VIA_API)
    conn.force_close(320, f"CONNECTION_FORCED - {reason}")
    return no_content()


def channel_sessions(connections: Iterable[Any]) -> list[tuple[Any, Any]]:
    """(connection, open channel) pairs, in connection then channel number order."""
    return [(conn, conn.session.channels[number]) for conn in connections for number in sorted(conn.session.channels)]
