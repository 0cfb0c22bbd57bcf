"""`GET /api/overview`: versions, cluster name, listeners, object and queue totals and message stats with
rates, in RabbitMQ 3.10's shape.

Totals are summed over the live model on each request: one pass over queues and exchanges, no counters
to keep in step; message_stats are the broker's counters (broker/stats.py: `publish` is what was published
to exchanges, deliver/get/ack what queues handed out) with rates from http/rates.py. `rabbitmq_version`
and `management_version` name the RabbitMQ API leveret answers as (3.10.8), `product_name` and
`product_version` leveret's own. Leveret extensions: `delayed_messages`, the messages every
x-delayed-message exchange holds for later, `memory_budget`, the bytes of queued bodies held in memory
against the broker-wide limit past which transient backlogs spill to disk (squeezed while memory is past
half the high watermark), and the node's resource fields as /api/nodes has them (`mem_used`, `mem_limit`,
`mem_alarm`, `disk_free`, `disk_free_limit`, `disk_free_alarm`), so one request tells whether publishers
are blocked.
"""

from __future__ import annotations

from aiohttp import web

from leveret import __version__
from leveret.broker.cluster_name import cluster_name
from leveret.broker.exchanges.delayed import DelayedMessageExchange
from leveret.broker.stats import total
from leveret.http.health import listeners
from leveret.http.listing import item_response
from leveret.http.nodes import exchange_types, node_name, resources
from leveret.http.rates import QUEUE_FIELDS, Rates, rates_of, vhost_stats
from leveret.http.target import ManagementTarget, target_of

# The RabbitMQ release whose management API leveret answers as.
RABBITMQ_API_VERSION = "3.10.8"


def channel_count(target: ManagementTarget) -> int:
    """Open channels over every AMQP connection."""
    return sum(len(getattr(getattr(conn, "session", None), "channels", ())) for conn in target.connections)


def overview_info(target: ManagementTarget, rates: Rates, name: str) -> dict:
    """The overview object for `target` (`name`: the cluster name)."""
    vhosts = target.broker.vhosts.values()
    queues = [q for v in vhosts for q in v.queues.values()]
    exchanges = [x for v in vhosts for x in v.exchanges.values()]
    ready = sum(q.message_count for q in queues)
    unacked = sum(q.unacked_count for q in queues)
    stats = total(vhost_stats(v) for v in vhosts)
    message_stats = rates.message_stats(("node",), stats, QUEUE_FIELDS + ("publish_in",))
    # RabbitMQ's node-wide `publish` counts publishes by channels: what entered exchanges.
    message_stats["publish"] = message_stats.pop("publish_in")
    message_stats["publish_details"] = message_stats.pop("publish_in_details")
    return {
        "management_version": RABBITMQ_API_VERSION,
        "rabbitmq_version": RABBITMQ_API_VERSION,
        "product_name": "leveret",
        "product_version": __version__,
        "cluster_name": name,
        "node": node_name(),
        "rates_mode": "basic",
        "disable_stats": False,
        "enable_queue_totals": False,
        "statistics_db_event_queue": 0,
        "sample_retention_policies": {"global": [600, 3600, 28800, 86400], "basic": [600, 3600],
                                      "detailed": [600]},
        "exchange_types": exchange_types(),
        "listeners": [{"node": node_name(), "protocol": protocol, "ip_address": address, "port": port}
                      for protocol, address, port in listeners(target)],
        "contexts": [{"node": node_name(), "description": "RabbitMQ Management", "path": "/",
                      "port": str(target.http_port)}] if target.http_port is not None else [],
        "message_stats": message_stats,
        "object_totals": {
            "connections": len(target.connections),
            "channels": channel_count(target),
            "exchanges": len(exchanges),
            "queues": len(queues),
            "consumers": sum(q.consumer_count for q in queues),
        },
        "queue_totals": rates.depth_details(("node",), (ready + unacked, ready, unacked)),
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
    target = target_of(request)
    info = overview_info(target, rates_of(request), cluster_name(target.broker.parameters))
    return item_response(request, info, nested=False)
