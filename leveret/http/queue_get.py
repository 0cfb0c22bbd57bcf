"""POST /api/queues/{vhost}/{queue}/get: take up to `count` messages and ack, requeue or reject them,
as RabbitMQ 3.10's management plugin does.

`ackmode` is ack_requeue_true or reject_requeue_true (the messages go back where they were, redelivered
from then on), ack_requeue_false (gone) or reject_requeue_false (dead-lettered with reason rejected where
the queue has a dead-letter exchange); `encoding` auto (text when the payload is UTF-8) or base64;
`truncate` cuts payloads to that many bytes. Each message is fetched as a basic.get (counted as one in
the queue's message_stats) and the messages are settled together afterwards.
"""

from __future__ import annotations

from aiohttp import web

from leveret.broker.errors import BrokerError
from leveret.broker.stats import count_get
from leveret.http.encoding import dumps
from leveret.http.messages import got_message, integer
from leveret.http.queues import named_queue
from leveret.http.responses import BadRequest, json_body, require_keys
from leveret.http.vhost_access import BrokerRefusal, commit_soon, require

ACKMODES = ("ack_requeue_true", "ack_requeue_false", "reject_requeue_true", "reject_requeue_false")


async def get_messages(request: web.Request) -> web.Response:
    """POST .../get: a JSON list of the messages taken."""
    queue = named_queue(request)
    body = await json_body(request)
    require_keys(body, "count", "ackmode")
    count = integer(body, "count")
    ackmode = body["ackmode"]
    encoding = body.get("encoding", "auto")
    truncate = integer(body, "truncate") if body.get("truncate") not in (None, "") else None
    if ackmode not in ACKMODES:
        raise BadRequest(["unknown_ackmode", ackmode])
    if encoding not in ("auto", "base64"):
        raise BadRequest("Unsupported encoding. Please use auto or base64.")
    require(request, queue.vhost_name, "queue", queue.name, "read")
    taken, answer = [], []
    try:
        while len(taken) < count:
            entry = queue.fetch(False)
            count_get(queue.stats, entry, False)
            if entry is None:
                break
            taken.append(entry)
            message = queue.message_for_delivery(entry, get=True) if queue.adds_delivery_count else entry.message
            answer.append(got_message(message, entry.redelivered, queue.message_count, encoding, truncate))
    except BrokerError as exc:
        raise BrokerRefusal(exc) from None
    finally:
        if taken:
            if ackmode == "ack_requeue_false":
                queue.settle(taken)
                queue.stats.ack += len(taken)
            elif ackmode == "reject_requeue_false":
                queue.discard(taken, "rejected")
            else:
                queue.requeue(taken)
            commit_soon(request)
    return web.json_response(answer, dumps=dumps)
