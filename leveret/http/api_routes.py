"""The routes of the management API's queues, exchanges, bindings, connections, channels, consumers,
health checks and cluster name (RabbitMQ 3.10's paths), in one place so app.py adds them with one call.

`{vhost}` and names are URL-encoded path segments ("/" is %2F), as in RabbitMQ; the default exchange is
`amq.default` in a path.
"""

from __future__ import annotations

from aiohttp import web

from leveret.http import bindings, channels, connections, exchanges, health, queue_get, queues, rates
from leveret.http.target import ManagementTarget

Q = "/api/queues/{vhost}/{queue}"
X = "/api/exchanges/{vhost}/{exchange}"
B = "/api/bindings/{vhost}/e/{source}/{kind:[qe]}/{destination}"


def add_routes(app: web.Application, target: ManagementTarget) -> None:
    """Add these endpoints to `app`, and the rate sampler they read (http/rates.py)."""
    rates.install(app, target.broker)
    get, put, post, delete = app.router.add_get, app.router.add_put, app.router.add_post, app.router.add_delete
    get("/api/queues", queues.list_queues)
    get("/api/queues/{vhost}", queues.list_queues)
    get(Q, queues.get_queue)
    put(Q, queues.put_queue)
    delete(Q, queues.delete_queue)
    delete(Q + "/contents", queues.purge_queue)
    post(Q + "/get", queue_get.get_messages)
    post(Q + "/actions", queues.queue_actions)
    get(Q + "/bindings", queues.queue_bindings)
    get("/api/exchanges", exchanges.list_exchanges)
    get("/api/exchanges/{vhost}", exchanges.list_exchanges)
    get(X, exchanges.get_exchange)
    put(X, exchanges.put_exchange)
    delete(X, exchanges.delete_exchange)
    post(X + "/publish", exchanges.publish)
    get(X + "/bindings/source", exchanges.source_bindings)
    get(X + "/bindings/destination", exchanges.destination_bindings)
    get("/api/bindings", bindings.list_bindings)
    get("/api/bindings/{vhost}", bindings.list_bindings)
    get(B, bindings.list_between)
    post(B, bindings.post_binding)
    get(B + "/{props}", bindings.get_binding)
    delete(B + "/{props}", bindings.delete_binding)
    get("/api/connections", connections.list_connections)
    get("/api/connections/{connection}", connections.get_connection)
    delete("/api/connections/{connection}", connections.delete_connection)
    get("/api/connections/{connection}/channels", channels.list_channels)
    get("/api/vhosts/{vhost}/connections", connections.list_connections)
    get("/api/vhosts/{vhost}/channels", channels.list_channels)
    get("/api/channels", channels.list_channels)
    get("/api/channels/{channel}", channels.get_channel)
    get("/api/consumers", channels.list_consumers)
    get("/api/consumers/{vhost}", channels.list_consumers)
    get("/api/extensions", health.extensions)
    get("/api/cluster-name", health.get_cluster_name)
    put("/api/cluster-name", health.put_cluster_name)
    get("/api/health/checks/alarms", health.alarms)
    get("/api/health/checks/local-alarms", health.local_alarms)
    get("/api/health/checks/virtual-hosts", health.virtual_hosts)
    get("/api/health/checks/port-listener/{port}", health.port_listener)
    get("/api/health/checks/protocol-listener/{protocol}", health.protocol_listener)
    get("/api/aliveness-test/{vhost}", health.aliveness_test)
