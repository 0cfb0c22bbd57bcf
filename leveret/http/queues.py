"""Queues: `GET /api/queues` and `GET /api/queues/{vhost}`, in the shape of RabbitMQ's management API.

Counts are read from the live queues (O(1) each). `messages` is ready + unacknowledged, as in RabbitMQ;
messages parked for an x-requeue-delay are in neither.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leveret.broker.queue_type import QueueType
from leveret.broker.stream import StreamQueue
from leveret.http.encoding import dumps, jsonable
from leveret.http.responses import not_found
from leveret.http.vhosts import selected_vhosts


def queue_type(queue: QueueType) -> str:
    """classic, quorum or stream, as RabbitMQ's `type` field."""
    if isinstance(queue, StreamQueue):
        return "stream"
    return queue.settings.queue_type


def queue_info(queue: QueueType) -> dict[str, Any]:
    """One queue as a management API object."""
    ready = queue.message_count
    unacked = queue.unacked_count
    return {
        "name": queue.name,
        "vhost": queue.vhost_name,
        "durable": queue.durable,
        "auto_delete": queue.auto_delete,
        "exclusive": queue.exclusive,
        "arguments": jsonable(queue.arguments),
        "type": queue_type(queue),
        "state": "running",
        "messages": ready + unacked,
        "messages_ready": ready,
        "messages_unacknowledged": unacked,
        "consumers": queue.consumer_count,
    }


async def list_queues(request: web.Request) -> web.Response:
    """GET /api/queues[/{vhost}]: every queue, sorted by vhost then name as RabbitMQ sorts them."""
    vhosts = selected_vhosts(request)
    if vhosts is None:
        return not_found()
    rows = [queue_info(vhost.queues[name]) for vhost in vhosts for name in sorted(vhost.queues)]
    return web.json_response(rows, dumps=dumps)
