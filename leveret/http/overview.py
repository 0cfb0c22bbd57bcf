"""`GET /api/overview`: product, version, listeners and object and message totals, as RabbitMQ's.

Totals are summed over the live model on each request: one pass over queues and exchanges, no counters
to keep in step. Leveret extensions: `delayed_messages`, the messages every x-delayed-message exchange
holds for later, `memory_budget`, the bytes of queued bodies held in memory against the broker-wide
limit past which transient backlogs spill to disk (squeezed while memory is past half the high watermark),
and the node's resource fields as /api/nodes has them (`mem_used`, `mem_limit`, `mem_alarm`, `disk_free`,
`disk_free_limit`, `disk_free_alarm`), so one request tells whether publishers are blocked.
"""

from __future__ import annotations

from aiohttp import web

from leveret import __version__
from leveret.broker.exchanges import exchange_class
from leveret.broker.exchanges.delayed import DelayedMessageExchange
from leveret.http.nodes import node_name, resources
from leveret.http.target import ManagementTarget, target_of

EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers", "x-consistent-hash", "x-delayed-message")


def channel_count(target: ManagementTarget) -> int:
    """Open channels over every AMQP connection."""
    return sum(len(getattr(getattr(conn, "session", None), "channels", ())) for conn in target.connections)


def overview_info(target: ManagementTarget) -> dict:
    """The overview object for `target`."""
    vhosts = target.broker.vhosts.values()
    queues = [q for v in vhosts for q in v.queues.values()]
    exchanges = [x for v in vhosts for x in v.exchanges.values()]
    ready = sum(q.message_count for q in queues)
    unacked = sum(q.unacked_count for q in queues)
    settings = target.settings
    listeners = [{"node": node_name(), "protocol": "amqp", "ip_address": settings.host, "port": target.port}]
    if target.http_port is not None:
        listeners.append({"node": node_name(), "protocol": "http", "ip_address": settings.http_host,
                          "port": target.http_port})
    return {
        "product_name": "leveret",
        "product_version": __version__,
        "management_version": __version__,
        "node": node_name(),
        "exchange_types": [{"name": name} for name in EXCHANGE_TYPES if exchange_class(name) is not None],
        "listeners": listeners,
        "object_totals": {
            "connections": len(target.connections),
            "channels": channel_count(target),
            "exchanges": len(exchanges),
            "queues": len(queues),
            "consumers": sum(q.consumer_count for q in queues),
        },
        "queue_totals": {
            "messages": ready + unacked,
            "messages_ready": ready,
            "messages_unacknowledged": unacked,
        },
        "delayed_messages": sum(x.pending_count for x in exchanges if isinstance(x, DelayedMessageExchange)),
        "memory_budget": memory_budget(target),
        **resources(target),
    }


def memory_budget(target: ManagementTarget) -> dict:
    """{"limit": bytes, "used": bytes} of the broker-wide memory budget."""
    budget = target.memory_budget
    return {"limit": budget.limit, "used": budget.used}


async def get_overview(request: web.Request) -> web.Response:
    """GET /api/overview."""
    return web.json_response(overview_info(target_of(request)))
