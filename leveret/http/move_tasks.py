"""Move tasks through the management API (leveret extensions; the tasks are server/move_tasks.py's).

- `POST /api/move-tasks` `{"vhost": "/", "source": "dlq", "count": N, "max_rate": R, "replay_count": true}`
  plus where to: nothing (each message's original queue, from x-death), `"queue": NAME`, or
  `"exchange": NAME` with an optional `"routing_key"` (else each message's own). 201 with the task
  (and a `Location` header).
- `GET /api/move-tasks` (the tasks of the vhosts the user may see), `GET /api/move-tasks/{id}`: progress
  (`total`, `moved`, `remaining`, `rate`, `state` running|finished|cancelled|failed, `reason`; `durable`: a
  restart resumes it, `resumed`: how many restarts did).
- `DELETE /api/move-tasks/{id}`: cancel (204; the batch in hand is finished first). 404 when unknown.

Permissions as RabbitMQ's management plugin applies them to a get and a publish: read on the source
queue, write on the destination (the exchange; a queue's copies go through the default exchange, whose
write permission RabbitMQ checks against the default exchange's name).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leveret.broker.queue import Queue
from leveret.http.responses import BadRequest, NotAuthorisedForVHost, json_body, no_content, not_found
from leveret.http.target import target_of
from leveret.http.vhost_access import require
from leveret.http.vhosts import visible


def _task_json(task: Any) -> dict[str, Any]:
    return task.describe()


def _optional_number(body: dict[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise BadRequest(["not_int" if kind is int else "not_number", key])
    if value <= 0:
        raise BadRequest(f"{key} must be positive")
    return value


def _name(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    return value


async def create_move_task(request: web.Request) -> web.Response:
    """POST /api/move-tasks."""
    target = target_of(request)
    body = await json_body(request)
    vhost_name = _name(body, "vhost") or "/"
    source_name = _name(body, "source")
    if source_name is None:
        raise BadRequest("[{key_missing,source}]")
    vhost = target.broker.vhosts.get(vhost_name)
    if vhost is None or vhost_name not in target.users.vhosts:
        return not_found()
    if not visible(request, vhost_name):
        raise NotAuthorisedForVHost()
    source = vhost.queues.get(source_name)
    if source is None:
        return web.json_response(
            {"error": "not_found", "reason": f"NOT_FOUND - no queue '{source_name}' in vhost '{vhost_name}'"}, status=404)
    if not isinstance(source, Queue):
        raise BadRequest(f"{source.describe()} is a stream: its messages cannot be moved")
    exchange, queue = _name(body, "exchange"), _name(body, "queue")
    if exchange is not None and queue is not None:
        raise BadRequest("give an exchange or a queue, not both")
    routing_key = _name(body, "routing_key")
    if exchange is not None and exchange not in vhost.exchanges:
        return web.json_response(
            {"error": "not_found", "reason": f"NOT_FOUND - no exchange '{exchange}' in vhost '{vhost_name}'"}, status=404)
    if queue is not None and queue not in vhost.queues:
        return web.json_response(
            {"error": "not_found", "reason": f"NOT_FOUND - no queue '{queue}' in vhost '{vhost_name}'"}, status=404)
    require(request, vhost_name, "queue", source_name, "read")
    require(request, vhost_name, "exchange", exchange if exchange is not None else "", "write")
    replay_count = body.get("replay_count", True)
    if not isinstance(replay_count, bool):
        raise BadRequest(["not_boolean", replay_count])
    task = target.move_tasks.start(vhost, source, queue=queue, exchange=exchange, routing_key=routing_key,
                                   count=_optional_number(body, "count", int),
                                   max_rate=_optional_number(body, "max_rate", float), replay_count=replay_count)
    response = web.json_response(_task_json(task), status=201)
    response.headers["Location"] = f"/api/move-tasks/{task.id}"
    return response


def _visible_task(request: web.Request) -> Any:
    task = target_of(request).move_tasks.get(request.match_info["id"])
    if task is None or not visible(request, task.vhost.name):
        return None
    return task


async def list_move_tasks(request: web.Request) -> web.Response:
    """GET /api/move-tasks: oldest first."""
    tasks = target_of(request).move_tasks.list()
    return web.json_response([_task_json(t) for t in tasks if visible(request, t.vhost.name)])


async def get_move_task(request: web.Request) -> web.Response:
    """GET /api/move-tasks/{id}."""
    task = _visible_task(request)
    return not_found() if task is None else web.json_response(_task_json(task))


async def cancel_move_task(request: web.Request) -> web.Response:
    """DELETE /api/move-tasks/{id}: cancel a running task (a finished one is left as it is)."""
    task = _visible_task(request)
    if task is None:
        return not_found()
    task.cancel()
    return no_content()
