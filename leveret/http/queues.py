"""Queues in RabbitMQ 3.10's management API: list, get one, PUT, DELETE, purge, bindings and actions.

Counts are read from the live queues (O(1) each). `messages` is ready + unacknowledged, as in RabbitMQ;
messages parked for an x-requeue-delay are in neither. `message_stats` are the broker's counters
(broker/stats.py) with rates from http/rates.py's samples; `idle_since` is the time of the last sample
in which the queue's counters had not moved since the one before (so it is at most INTERVAL late).
`policy`, `operator_policy` and `effective_policy_definition` are http/policies.py's `policy_fields`.
Leveret extension: DELETE .../contents?count=N purges only the first N ready messages.
POST .../get is queue_get.py's.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leveret.broker.errors import BrokerError
from leveret.broker.queue_type import QueueType
from leveret.broker.stream import StreamQueue
from leveret.http.bindings import binding_rows
from leveret.http.channels import consumer_info
from leveret.http.encoding import jsonable
from leveret.http.listing import item_response, list_response
from leveret.http.messages import flag, integer
from leveret.http.nodes import node_name
from leveret.http.policies import policy_fields
from leveret.http.rates import QUEUE_FIELDS, Rates, depths, rates_of
from leveret.http.responses import BadRequest, created_or_updated, json_body, no_content, require_keys
from leveret.http.vhost_access import (
    BrokerRefusal,
    NotAuthorised,
    ObjectNotFound,
    commit_soon,
    named_vhost,
    require,
    reserved,
)
from leveret.http.vhosts import selected_vhosts


def queue_type(queue: QueueType) -> str:
    """classic, quorum or stream, as RabbitMQ's `type` field."""
    if isinstance(queue, StreamQueue):
        return "stream"
    return queue.settings.queue_type


def _utilisation(queue: QueueType) -> float | int:
    """1.0 while a consumer could take a message now, 0.0 while none could; 0 without consumers (RabbitMQ
    measures the fraction of time; leveret reports the present state)."""
    consumers = queue.consumers
    if not consumers:
        return 0
    return 1.0 if any(not consumer.blocked or consumer.has_credit() for consumer in consumers) else 0.0


def queue_info(queue: QueueType, rates: Rates, full: bool = False) -> dict[str, Any]:
    """One queue as a management API object (`full`: with its consumers, as GET of one queue shows it)."""
    key = ("queue", queue.vhost_name, queue.name)
    active = getattr(queue, "active_consumer", None)
    sac = getattr(getattr(queue, "settings", None), "single_active_consumer", False)
    exclusive = next((c.tag for c in queue.consumers if c.exclusive), None)
    utilisation = _utilisation(queue)
    info: dict[str, Any] = {
        "name": queue.name,
        "vhost": queue.vhost_name,
        "durable": queue.durable,
        "auto_delete": queue.auto_delete,
        "exclusive": queue.exclusive,
        "arguments": jsonable(queue.arguments),
        "type": queue_type(queue),
        "node": node_name(),
        "state": "running",
        **rates.depth_details(key, depths(queue)),
        "consumers": queue.consumer_count,
        "consumer_utilisation": utilisation,
        "consumer_capacity": utilisation,
        "exclusive_consumer_tag": exclusive,
        "single_active_consumer_tag": active.tag if sac and active is not None else None,
        "head_message_timestamp": None,
        "idle_since": rates.idle_since(key),
        "message_stats": rates.message_stats(key, queue.stats, QUEUE_FIELDS),
        **policy_fields(queue),
        "recoverable_slaves": None,
    }
    if full:
        info["consumer_details"] = [consumer_info(consumer) for consumer in queue.consumers]
        info["deliveries"] = []
        info["incoming"] = []
    return info


def named_queue(request: web.Request) -> QueueType:
    """The queue in the path, or ObjectNotFound."""
    queue = named_vhost(request).queues.get(request.match_info["queue"])
    if queue is None:
        raise ObjectNotFound()
    return queue


async def list_queues(request: web.Request) -> web.Response:
    """GET /api/queues[/{vhost}]: every queue, sorted by vhost then name as RabbitMQ sorts them."""
    vhosts = selected_vhosts(request)
    if vhosts is None:
        raise ObjectNotFound()
    rates = rates_of(request)
    return list_response(request, (queue_info(vhost.queues[name], rates)
                                   for vhost in vhosts for name in sorted(vhost.queues)))


async def get_queue(request: web.Request) -> web.Response:
    """GET /api/queues/{vhost}/{queue}."""
    return item_response(request, queue_info(named_queue(request), rates_of(request), full=True))


async def put_queue(request: web.Request) -> web.Response:
    """PUT /api/queues/{vhost}/{queue}: declare it; 201 created, 204 when it existed and is equivalent."""
    vhost = named_vhost(request)
    name = request.match_info["queue"]
    body = await json_body(request)
    if reserved(name):
        raise NotAuthorised("Access refused.")
    require(request, vhost.name, "queue", name, "configure")
    arguments = body.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise BadRequest("arguments must be an object")
    durable, auto_delete = flag(body, "durable", False), flag(body, "auto_delete", False)
    existed = name in vhost.queues
    try:
        vhost.declare_queue(name, durable=durable, auto_delete=auto_delete, arguments=arguments)
    except BrokerError as exc:
        raise BrokerRefusal(exc) from None
    commit_soon(request)
    return created_or_updated(not existed)


async def delete_queue(request: web.Request) -> web.Response:
    """DELETE /api/queues/{vhost}/{queue} (`if-empty`, `if-unused`): 204, its consumers cancelled."""
    queue = named_queue(request)
    require(request, queue.vhost_name, "queue", queue.name, "configure")
    vhost = named_vhost(request)
    query = request.query
    try:
        vhost.delete_queue(queue.name, if_unused=query.get("if-unused") == "true",
                           if_empty=query.get("if-empty") == "true", owner=queue.owner)
    except BrokerError as exc:
        raise BrokerRefusal(exc) from None
    commit_soon(request)
    return no_content()


async def purge_queue(request: web.Request) -> web.Response:
    """DELETE /api/queues/{vhost}/{queue}/contents: drop its ready messages (204). `?count=N` (a leveret
    extension) drops only the first N, oldest first."""
    queue = named_queue(request)
    require(request, queue.vhost_name, "queue", queue.name, "read")
    count = request.query.get("count")
    try:
        if count is None:
            queue.purge()
        else:
            limit = integer({"count": count}, "count")
            if limit < 0:
                raise BadRequest("count must not be negative")
            purge_first(queue, limit)
    except BrokerError as exc:
        raise BrokerRefusal(exc) from None
    commit_soon(request)
    return no_content()


def purge_first(queue: QueueType, count: int) -> int:
    """Drop up to `count` ready messages from the head, as an auto-acked basic.get of each would."""
    dropped = 0
    while dropped < count and queue.fetch(True) is not None:
        dropped += 1
    return dropped


async def queue_bindings(request: web.Request) -> web.Response:
    """GET /api/queues/{vhost}/{queue}/bindings: the bindings whose destination is this queue."""
    queue = named_queue(request)
    vhost = named_vhost(request)
    return list_response(request, binding_rows(vhost, destination=queue))


async def queue_actions(request: web.Request) -> web.Response:
    """POST /api/queues/{vhost}/{queue}/actions: sync and cancel_sync, which a classic queue without
    mirrors answers 204 to doing nothing, as RabbitMQ 3.10 does."""
    named_queue(request)
    body = await json_body(request)
    require_keys(body, "action")
    if body["action"] not in ("sync", "cancel_sync"):
        raise BadRequest(["unknown", body["action"]])
    return no_content()
