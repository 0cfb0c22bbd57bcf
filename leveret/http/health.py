"""Health checks, the aliveness test, extensions and the cluster name, as RabbitMQ 3.10's management API
answers them: `/api/health/checks/{alarms,local-alarms,virtual-hosts}`,
`/api/health/checks/port-listener/{port}`, `/api/health/checks/protocol-listener/{protocol}`,
`/api/aliveness-test/{vhost}`, `/api/extensions` and `/api/cluster-name`.

A passing check is 200 `{"status": "ok"}`, a failing one 503 `{"status": "failed", "reason": ...}` with
RabbitMQ's extra fields. Leveret is one node, so the cluster's alarms are the node's. The cluster name is
the global parameter `cluster_name`, as in RabbitMQ (so it is durable, exported with the definitions, and
the node name while unset).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leveret.amqp.properties import BasicProperties
from leveret.broker.cluster_name import CLUSTER_NAME_PARAMETER, cluster_name, node_name
from leveret.broker.message import Message
from leveret.broker.stats import count_get
from leveret.http.responses import USER, BadRequest, administrator_only, json_body, no_content, require_keys, text_field
from leveret.http.target import ManagementTarget, target_of
from leveret.http.vhost_access import named_vhost, require

ALIVENESS_QUEUE = "aliveness-test"


def listeners(target: ManagementTarget) -> list[tuple[str, str, int]]:
    """(protocol, address, port) of what listens, in RabbitMQ's protocol names."""
    settings = target.settings
    https = bool(getattr(settings, "http_ssl", False))
    found = []
    if target.port:
        found.append(("amqp", settings.host, target.port))
    if getattr(target, "ssl_port", None):
        found.append(("amqp/ssl", settings.host, target.ssl_port))
    if target.http_port is not None:
        found.append(("https" if https else "http", settings.http_host, target.http_port))
    return found


def _ok(**extra: Any) -> web.Response:
    return web.json_response({"status": "ok", **extra})


def _failed(reason: str, **extra: Any) -> web.Response:
    return web.json_response({"status": "failed", "reason": reason, **extra}, status=503)


def _alarms(target: ManagementTarget) -> list[dict[str, str]]:
    found = []
    for resource, alarm in (("memory", target.memory_alarm), ("disk", target.disk_alarm)):
        if alarm is not None and alarm.active:
            found.append({"node": node_name(), "resource": resource})
    return found


async def alarms(request: web.Request) -> web.Response:
    """GET /api/health/checks/alarms."""
    found = _alarms(target_of(request))
    return _failed("There are alarms in effect in the cluster", alarms=found) if found else _ok()


async def local_alarms(request: web.Request) -> web.Response:
    """GET /api/health/checks/local-alarms."""
    found = _alarms(target_of(request))
    return _failed("There are alarms in effect on the node", alarms=found) if found else _ok()


async def virtual_hosts(request: web.Request) -> web.Response:
    """GET /api/health/checks/virtual-hosts: every vhost runs while the node runs."""
    return _ok()


async def port_listener(request: web.Request) -> web.Response:
    """GET /api/health/checks/port-listener/{port}."""
    try:
        port = int(request.match_info["port"])
    except ValueError:
        raise BadRequest("Invalid port") from None
    ports = [p for _, _, p in listeners(target_of(request))]
    if port in ports:
        return _ok(port=port)
    return _failed("No active listener", missing=port, ports=ports)


async def protocol_listener(request: web.Request) -> web.Response:
    """GET /api/health/checks/protocol-listener/{protocol}."""
    protocol = request.match_info["protocol"]
    protocols = [p for p, _, _ in listeners(target_of(request))]
    if protocol in protocols:
        return _ok(protocol=protocol)
    return _failed("No active listener", missing=protocol, protocols=protocols)


async def aliveness_test(request: web.Request) -> web.Response:
    """GET /api/aliveness-test/{vhost}: declare the queue "aliveness-test", publish to it and get the message
    back, as RabbitMQ does (the queue stays)."""
    vhost = named_vhost(request)
    user = request[USER].name
    refused = f"ACCESS_REFUSED - access to queue '{ALIVENESS_QUEUE}' in vhost '{vhost.name}' refused for user '{user}'"
    for permission in ("configure", "write", "read"):
        require(request, vhost.name, "queue", ALIVENESS_QUEUE, permission, refused)
    queue, _, _ = vhost.declare_queue(ALIVENESS_QUEUE, durable=False)
    vhost.publish("", ALIVENESS_QUEUE, Message("", ALIVENESS_QUEUE, BasicProperties(), b"test_message"))
    entry = queue.fetch(True)
    count_get(queue.stats, entry, True)
    if entry is None or bytes(entry.message.body) != b"test_message":
        return _failed("aliveness test failed")
    return _ok()


async def extensions(request: web.Request) -> web.Response:
    """GET /api/extensions: the management UI's plugin scripts; leveret has none."""
    return web.json_response([])


async def get_cluster_name(request: web.Request) -> web.Response:
    """GET /api/cluster-name."""
    return web.json_response({"name": cluster_name(target_of(request).broker.parameters)})


@administrator_only
async def put_cluster_name(request: web.Request) -> web.Response:
    """PUT /api/cluster-name: {"name": ...}, 204."""
    body = await json_body(request)
    require_keys(body, "name")
    name = text_field(body, "name")
    target_of(request).broker.parameters.set_global(CLUSTER_NAME_PARAMETER, name)
    return no_content()
