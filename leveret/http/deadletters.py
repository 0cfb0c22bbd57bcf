"""Looking at a queue without touching it: peek, and the dead-letter view (leveret extensions).

`GET /api/queues/{vhost}/{name}/peek?count=N&offset=M&encoding=auto|base64&truncate=B` answers what
RabbitMQ's `POST .../get` answers (the same message objects), but takes nothing: no message is delivered,
flagged redelivered or moved, and messages whose bodies are paged out to disk are read back for the answer
only (broker/ready.py and broker/paging.py `peek_at`). `message_count` is, as in a get answer, how many
ready messages follow this one.

`GET /api/queues/{vhost}/{name}/dead-letters?count=N&offset=M&...&summary=S` is the same page of messages,
each with its `x-death` decoded (`dead_letter`: the reason, queue, exchange, routing keys, count and time
of the death that brought it here, every death, the x-first-death-* values and the x-replay-count of move
tasks), and a summary of the first S ready messages (10,000 unless asked, 100,000 at most: a bounded
read even for a million-message queue) counted per reason and per original queue.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web

from leveret.broker import xdeath
from leveret.broker.entry import QueueEntry
from leveret.broker.queue import Queue
from leveret.http.encoding import dumps
from leveret.http.messages import got_message
from leveret.http.queues import named_queue
from leveret.http.responses import BadRequest
from leveret.http.vhost_access import require

MAX_COUNT = 10_000  # messages in one answer
SUMMARY_DEFAULT = 10_000
SUMMARY_MAX = 100_000


def _number(request: web.Request, key: str, default: int | None, limit: int) -> int | None:
    raw = request.query.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(["not_int", key]) from None
    if not 0 <= value <= limit:
        raise BadRequest(f"{key} must be between 0 and {limit}")
    return value


def _encoding(request: web.Request) -> str:
    encoding = request.query.get("encoding", "auto")
    if encoding not in ("auto", "base64"):
        raise BadRequest(["unsupported_encoding", encoding])
    return encoding


def queue_of(request: web.Request) -> Queue:
    """The queue in the path (404 when unknown) that the user may read (as a get needs); a stream has no ready
    list to look at: 400."""
    queue = named_queue(request)
    require(request, queue.vhost_name, "queue", queue.name, "read")
    if not isinstance(queue, Queue):
        raise BadRequest(f"{queue.describe()} is a stream: read it with a stream consumer")
    return queue


def _page(request: web.Request, queue: Queue, default_count: int) -> list[tuple[QueueEntry, int]]:
    """The requested entries with how many ready messages follow each."""
    count = _number(request, "count", default_count, MAX_COUNT) or 0
    offset = _number(request, "offset", 0, 1 << 62) or 0
    total = len(queue.ready)
    return [(entry, max(0, total - offset - i - 1)) for i, entry in enumerate(queue.ready.peek_at(offset, count))]


async def peek(request: web.Request) -> web.Response:
    """GET /api/queues/{vhost}/{name}/peek: RabbitMQ's get answer, nothing taken."""
    queue = queue_of(request)
    encoding, truncate = _encoding(request), _number(request, "truncate", None, 1 << 62)
    rows = [got_message(entry.message, entry.redelivered, remaining, encoding, truncate) for entry, remaining in _page(request, queue, 1)]
    return web.json_response(rows, dumps=dumps)


def dead_letter_json(entry: QueueEntry) -> dict[str, Any]:
    """What x-death says about one message: the latest death's facts first, then all of them."""
    message = entry.message
    deaths = xdeath.deaths(message)
    latest = deaths[0] if deaths else None
    return {
        "reason": latest.reason if latest else None,
        "queue": latest.queue if latest else None,
        "exchange": latest.exchange if latest else None,
        "routing_keys": latest.routing_keys if latest else [],
        "count": latest.count if latest else 0,
        "time": latest.time if latest else None,
        "deaths": [
            {"reason": d.reason, "queue": d.queue, "exchange": d.exchange, "routing_keys": d.routing_keys,
             "count": d.count, "time": d.time, "original_expiration": d.original_expiration}
            for d in deaths
        ],
        "first_death": xdeath.first_death(message),
        "replay_count": xdeath.replay_count(message),
    }


def summary(queue: Queue, limit: int) -> dict[str, Any]:
    """Counts per reason and per original queue over the first `limit` ready messages."""
    reasons: Counter[str] = Counter()
    origins: Counter[str] = Counter()
    batch = queue.ready.peek_at(0, limit)
    examined = len(batch)
    for entry in batch:
        deaths = xdeath.deaths(entry.message)
        reasons[(deaths[0].reason if deaths else None) or "none"] += 1
        origins[(deaths[0].queue if deaths else None) or ""] += 1
    return {
        "examined": examined,
        "complete": examined >= len(queue.ready),
        "by_reason": dict(reasons.most_common()),
        "by_queue": dict(origins.most_common()),
    }


async def dead_letters(request: web.Request) -> web.Response:
    """GET /api/queues/{vhost}/{name}/dead-letters: a page of messages with x-death decoded, and a summary."""
    queue = queue_of(request)
    encoding, truncate = _encoding(request), _number(request, "truncate", None, 1 << 62)
    limit = _number(request, "summary", SUMMARY_DEFAULT, SUMMARY_MAX) or 0
    items = []
    for entry, remaining in _page(request, queue, 100):
        item = got_message(entry.message, entry.redelivered, remaining, encoding, truncate)
        item["dead_letter"] = dead_letter_json(entry)
        items.append(item)
    return web.json_response({
        "vhost": queue.vhost_name,
        "queue": queue.name,
        "messages_ready": len(queue.ready),
        "offset": _number(request, "offset", 0, 1 << 62),
        "items": items,
        "summary": summary(queue, limit),
    }, dumps=dumps)
