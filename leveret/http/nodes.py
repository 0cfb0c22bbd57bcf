"""`GET /api/nodes`: the one node, with RabbitMQ's resource fields (memory and disk, their limits and alarms).

RabbitMQ lists every cluster node; leveret is one process, so the list has one entry. The field names are
RabbitMQ's (`mem_used`, `mem_limit`, `mem_alarm`, `disk_free`, `disk_free_limit`, `disk_free_alarm`), so
dashboards and alert rules written for RabbitMQ read them unchanged. `mem_used` is the process's resident
set size at the last memory check, as RabbitMQ's default `rss` calculation strategy reports.
Also RabbitMQ's `partitions` (none), `uptime` (ms since the API started with the broker), `rates_mode`,
`exchange_types` and `auth_mechanisms`. Leveret extensions: `connections_output_paused`, the connections not being read because they owe their
client more than `max_output_buffer`, and `output_pauses`, how often that happened since start.
"""

from __future__ import annotations

import os

from aiohttp import web

from leveret.broker.cluster_name import node_name
from leveret.broker.exchanges import exchange_class
from leveret.http.listing import item_response, list_response
from leveret.http.rates import rates_of
from leveret.http.responses import monitor_only
from leveret.http.target import ManagementTarget, target_of


def resources(target: ManagementTarget) -> dict:
    """Memory and disk, their limits and alarms, in RabbitMQ's field names (zeros where not measured yet)."""
    memory = getattr(target, "memory_alarm", None)
    disk = getattr(target, "disk_alarm", None)
    return {
        "mem_used": memory.used if memory is not None else 0,
        "mem_limit": memory.limit if memory is not None else 0,
        "mem_alarm": bool(memory is not None and memory.active),
        "mem_calculation_strategy": "rss",
        "disk_free": (disk.free or 0) if disk is not None else 0,
        "disk_free_limit": disk.limit if disk is not None else target.settings.disk_free_limit,
        "disk_free_alarm": bool(disk is not None and disk.active),
    }


def output_paused(target: ManagementTarget) -> int:
    """Connections not being read because of their unsent output."""
    return sum(1 for conn in target.connections if "output" in getattr(getattr(conn, "gate", None), "reasons", ()))


EXCHANGE_TYPES = (
    ("direct", "AMQP direct exchange, as per the AMQP specification"),
    ("fanout", "AMQP fanout exchange, as per the AMQP specification"),
    ("topic", "AMQP topic exchange, as per the AMQP specification"),
    ("headers", "AMQP headers exchange, as per the AMQP specification"),
    ("x-consistent-hash", "Consistent Hashing Exchange"),
    ("x-delayed-message", "Delayed Message Exchange."),
)


def exchange_types() -> list[dict]:
    return [{"name": name, "description": text, "enabled": True}
            for name, text in EXCHANGE_TYPES if exchange_class(name) is not None]


AUTH_MECHANISMS = (("PLAIN", "SASL PLAIN authentication mechanism"), ("AMQPLAIN", "QPid AMQPLAIN mechanism"),
                   ("EXTERNAL", "SASL EXTERNAL authentication mechanism"))


def node_info(target: ManagementTarget, uptime_ms: int = 0) -> dict:
    """The node object for `target`."""
    ssl = getattr(target, "ssl_port", None) is not None
    return {
        "name": node_name(),
        "type": "disc",
        "running": True,
        "os_pid": str(os.getpid()),
        "processors": os.cpu_count() or 1,
        "partitions": [],
        "uptime": uptime_ms,
        "rates_mode": "basic",
        "exchange_types": exchange_types(),
        "auth_mechanisms": [{"name": name, "description": text, "enabled": name != "EXTERNAL" or ssl}
                            for name, text in AUTH_MECHANISMS],
        **resources(target),
        "connections_output_paused": output_paused(target),
        "output_pauses": getattr(target, "output_pauses", 0),
    }


@monitor_only
async def list_nodes(request: web.Request) -> web.Response:
    """GET /api/nodes."""
    return list_response(request, [node_info(target_of(request), rates_of(request).uptime_ms())])


@monitor_only
async def get_node(request: web.Request) -> web.Response:
    """GET /api/nodes/{name}."""
    target = target_of(request)
    if request.match_info["name"] != node_name():
        return web.json_response({"error": "Object Not Found", "reason": "Not Found"}, status=404)
    return item_response(request, node_info(target, rates_of(request).uptime_ms()))
