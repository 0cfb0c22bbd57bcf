"""Channels and consumers in RabbitMQ 3.10's management API: `/api/channels[/{name}]`,
`/api/connections/{name}/channels`, `/api/vhosts/{vhost}/channels` and `/api/consumers[/{vhost}]`.

A channel is named "CONNECTION NAME (N)" and a consumer shows its channel's details, as RabbitMQ shows
them; users see the channels and consumers of the connections they may see (connections.py).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leveret.http.connections import (
    channel_sessions,
    connection_name,
    endpoints,
    named_connection,
    visible_connections,
)
from leveret.http.encoding import jsonable
from leveret.http.listing import item_response, list_response
from leveret.http.nodes import node_name
from leveret.http.vhost_access import ObjectNotFound, named_vhost


def channel_name(conn: Any, number: int) -> str:
    return f"{connection_name(conn)} ({number})"


def channel_info(conn: Any, channel: Any) -> dict[str, Any]:
    """One open channel (the server's ChannelSession) as a management API object."""
    session = conn.session
    broker_channel = channel.broker_channel
    (peer_host, peer_port), _ = endpoints(conn)
    transaction = getattr(channel, "transaction", None)
    return {
        "name": channel_name(conn, channel.number),
        "node": node_name(),
        "number": channel.number,
        "user": session.username,
        "user_who_performed_action": session.username,
        "vhost": session.vhost.name if session.vhost is not None else None,
        "state": "closing" if channel.closing else "running",
        "confirm": channel.confirm_mode,
        "transactional": channel.tx,
        "consumer_count": len(broker_channel.consumers),
        "messages_unacknowledged": broker_channel.unacked_count,
        "messages_unconfirmed": max(0, channel.publish_seq - channel.confirmed_upto) if channel.confirm_mode else 0,
        "messages_uncommitted": len(getattr(transaction, "actions", ()) or ()),
        "acks_uncommitted": 0,
        "prefetch_count": broker_channel.prefetch_count,
        "global_prefetch_count": broker_channel.global_prefetch_count,
        "pending_raft_commands": 0,
        "connection_details": {"name": connection_name(conn), "peer_host": peer_host, "peer_port": peer_port},
    }


def consumer_info(consumer: Any) -> dict[str, Any]:
    """One consumer as a management API object (as in /api/consumers and a queue's consumer_details)."""
    queue = consumer.queue
    target = consumer.channel.target
    session = getattr(target, "session", None)
    conn = getattr(session, "writer", None)
    details: dict[str, Any] = {}
    if conn is not None and hasattr(conn, "peer"):
        (peer_host, peer_port), _ = endpoints(conn)
        details = {"connection_name": connection_name(conn), "name": channel_name(conn, target.number),
                   "node": node_name(), "number": target.number, "peer_host": peer_host,
                   "peer_port": peer_port, "user": session.username}
    settings = getattr(queue, "settings", None)
    single_active = bool(getattr(settings, "single_active_consumer", False))
    active = not single_active or getattr(queue, "active_consumer", None) is consumer
    return {
        "arguments": jsonable(consumer.arguments),
        "ack_required": not consumer.no_ack,
        "active": active,
        "activity_status": ("single_active" if active else "waiting") if single_active else "up",
        "channel_details": details,
        "consumer_tag": consumer.tag,
        "exclusive": consumer.exclusive,
        "prefetch_count": consumer.prefetch,
        "queue": {"name": queue.name, "vhost": queue.vhost_name},
    }


async def list_channels(request: web.Request) -> web.Response:
    """GET /api/channels, /api/vhosts/{vhost}/channels and /api/connections/{connection}/channels."""
    if "connection" in request.match_info:
        connections = [named_connection(request)]
    else:
        vhost = named_vhost(request).name if "vhost" in request.match_info else None
        connections = visible_connections(request, vhost)
    return list_response(request, [channel_info(conn, ch) for conn, ch in channel_sessions(connections)])


async def get_channel(request: web.Request) -> web.Response:
    """GET /api/channels/{channel}."""
    name = request.match_info["channel"]
    for conn, channel in channel_sessions(visible_connections(request)):
        if channel_name(conn, channel.number) == name:
            info = channel_info(conn, channel)
            info["consumer_details"] = [consumer_info(c) for c in channel.broker_channel.consumers.values()]
            info["deliveries"], info["publishes"] = [], []
            return item_response(request, info)
    raise ObjectNotFound()


async def list_consumers(request: web.Request) -> web.Response:
    """GET /api/consumers[/{vhost}]: the consumers on the channels the user may see."""
    vhost = named_vhost(request).name if "vhost" in request.match_info else None
    rows = []
    for _conn, channel in channel_sessions(visible_connections(request, vhost)):
        rows.extend(consumer_info(consumer) for consumer in channel.broker_channel.consumers.values())
    return list_response(request, rows)
