"""Move tasks through the management API: POST/GET /api/move-tasks, GET/DELETE /api/move-tasks/{id}.

Replays go to each message's original queue (x-death), or to a named queue or exchange; counts, rate
limits, cancelling, failures that leave the message where it was, and the copies' headers.
"""

from __future__ import annotations

import time
from typing import Any

import pika

from leveret.embedded import EmbeddedBroker
from tests.http.api_client import api, call


def dead_letter(channel: Any, queues: dict[str, int], dlq: str = "dlq", durable: bool = False) -> None:
    """`dlq` gets, from each work queue named in `queues`, that many messages rejected there (bodies
    "<queue>-<i>", in the order of `queues`)."""
    channel.exchange_declare("dlx", "fanout", durable=durable)
    channel.queue_declare(dlq, durable=durable)
    channel.queue_bind(dlq, "dlx")
    for name, count in queues.items():
        channel.queue_declare(name, durable=durable, arguments={"x-dead-letter-exchange": "dlx"})
        for i in range(count):
            channel.basic_publish("", name, f"{name}-{i}".encode(), pika.BasicProperties(delivery_mode=2))
        for _ in range(count):
            method, _, _ = channel.basic_get(name)
            channel.basic_reject(method.delivery_tag, requeue=False)


def start(broker: EmbeddedBroker, **body: Any) -> dict[str, Any]:
    answer = call(api(broker), "POST", "/move-tasks", {"vhost": "/", "source": "dlq", **body})
    assert answer.status == 201, answer
    assert answer.headers["Location"] == f"/api/move-tasks/{answer.body['id']}"
    return answer.body


def wait_done(broker: EmbeddedBroker, task_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """The task once it is no longer running (the API has no event to wait on: polled, bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        task = call(api(broker), "GET", f"/move-tasks/{task_id}").body
        if task["state"] != "running" or time.monotonic() > deadline:
            return task
        time.sleep(0.02)


def drain(channel: Any, queue: str) -> list[tuple[bytes, Any, bool]]:
    out = []
    while True:
        method, props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append((body, props.headers or {}, method.redelivered))


def test_replay_sends_each_dead_letter_back_to_its_original_queue(broker: EmbeddedBroker, channel: Any) -> None:
    dead_letter(channel, {"work-a": 3, "work-b": 2})
    task = start(broker)
    assert task["destination"] == {"type": "original-queue"} and task["total"] == 5
    done = wait_done(broker, task["id"])
    assert {k: done[k] for k in ("state", "reason", "moved", "remaining", "total")} == {
        "state": "finished", "reason": None, "moved": 5, "remaining": 0, "total": 5}
    assert done["finished_at"] >= done["started_at"]
    assert drain(channel, "dlq") == []
    for name, count in (("work-a", 3), ("work-b", 2)):
        got = drain(channel, name)
        assert [body for body, _, _ in got] == [f"{name}-{i}".encode() for i in range(count)]
        for _, headers, redelivered in got:
            assert not redelivered
            assert headers["x-replay-count"] == 1
            assert headers["x-death"][0]["queue"] == name  # x-death is kept
    listed = call(api(broker), "GET", "/move-tasks").body
    assert [t["id"] for t in listed] == [task["id"]]


def test_a_second_replay_counts_up_and_count_moves_only_that_many(broker: EmbeddedBroker, channel: Any) -> None:
    dead_letter(channel, {"work": 4})
    first = wait_done(broker, start(broker, count=3)["id"])
    assert (first["state"], first["moved"], first["total"]) == ("finished", 3, 3)
    # the three moved come back dead (rejected again), behind the fourth
    for _ in range(3):
        method, _, _ = channel.basic_get("work")
        channel.basic_reject(method.delivery_tag, requeue=False)
    second = wait_done(broker, start(broker, replay_count=True)["id"])
    assert second["moved"] == 4
    got = drain(channel, "work")
    assert [(body, headers.get("x-replay-count")) for body, headers, _ in got] == [
        (b"work-3", 1), (b"work-0", 2), (b"work-1", 2), (b"work-2", 2)]
    assert drain(channel, "dlq") == []


def test_move_to_a_named_queue_or_through_an_exchange(broker: EmbeddedBroker, channel: Any) -> None:
    dead_letter(channel, {"work": 4})
    channel.queue_declare("parking")
    done = wait_done(broker, start(broker, queue="parking", count=1, replay_count=False)["id"])
    assert (done["state"], done["destination"]) == ("finished", {"type": "queue", "queue": "parking"})
    assert [(b, "x-replay-count" in h) for b, h, _ in drain(channel, "parking")] == [(b"work-0", False)]
    channel.exchange_declare("retry", "topic")
    channel.queue_declare("retry-q")
    channel.queue_bind("retry-q", "retry", "again.#")
    done = wait_done(broker, start(broker, exchange="retry", routing_key="again.now", count=2)["id"])
    assert done["destination"] == {"type": "exchange", "exchange": "retry", "routing_key": "again.now"}
    assert [b for b, _, _ in drain(channel, "retry-q")] == [b"work-1", b"work-2"]
    # without a routing key each message keeps its own (the dead-lettered copy's: "work"), routed nowhere here
    failed = wait_done(broker, start(broker, exchange="retry")["id"])
    assert failed["state"] == "failed" and "routed to no queue" in failed["reason"] and failed["moved"] == 0
    assert [(b, r) for b, _, r in drain(channel, "dlq")] == [(b"work-3", False)]


def test_a_message_that_cannot_go_back_stops_the_task_and_stays_unflagged(broker: EmbeddedBroker, channel: Any) -> None:
    dead_letter(channel, {"work-a": 2, "work-b": 2})
    channel.queue_delete("work-b")
    channel.basic_publish("", "dlq", b"never died")
    done = wait_done(broker, start(broker)["id"])
    assert (done["state"], done["moved"], done["remaining"]) == ("failed", 2, 3)
    assert done["reason"] == "no queue 'work-b' in vhost '/'"
    assert [(b, r) for b, _, r in drain(channel, "dlq")] == [(b"work-b-0", False), (b"work-b-1", False),
                                                            (b"never died", False)]
    channel.queue_declare("full", arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    channel.basic_publish("", "dlq", b"a")
    channel.basic_publish("", "dlq", b"b")
    done = wait_done(broker, start(broker, queue="full")["id"])
    assert (done["state"], done["moved"]) == ("failed", 1) and "length limit" in done["reason"]
    no_death = wait_done(broker, start(broker)["id"])
    assert no_death["reason"].startswith("a message has no x-death header")


def test_rate_limit_and_cancel(broker: EmbeddedBroker, channel: Any) -> None:
    dead_letter(channel, {"work": 300})
    began = time.monotonic()
    paced = wait_done(broker, start(broker, count=60, max_rate=200)["id"])
    assert paced["moved"] == 60 and time.monotonic() - began >= 59 / 200
    assert paced["rate"] <= 260 and paced["max_rate"] == 200
    slow = start(broker, max_rate=25)
    deadline = time.monotonic() + 10
    while call(api(broker), "GET", f"/move-tasks/{slow['id']}").body["moved"] < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert call(api(broker), "DELETE", f"/move-tasks/{slow['id']}").status == 204
    cancelled = wait_done(broker, slow["id"], timeout=2)
    assert cancelled["state"] == "cancelled" and 3 <= cancelled["moved"] < 240
    assert cancelled["remaining"] == 240 - cancelled["moved"]
    moved = [b for b, _, _ in drain(channel, "work")]
    assert moved == [f"work-{i}".encode() for i in range(60 + cancelled["moved"])]
    assert len(drain(channel, "dlq")) == 240 - cancelled["moved"]
    assert call(api(broker), "DELETE", f"/move-tasks/{slow['id']}").status == 204  # cancelled already: no change


def test_a_durable_move_survives_a_restart(tmp_path: Any) -> None:
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn = pika.BlockingConnection(pika.URLParameters(broker.url))
        dead_letter(conn.channel(), {"work": 50}, durable=True)
        conn.close()
        assert wait_done(broker, start(broker)["id"])["moved"] == 50
    with EmbeddedBroker(data_dir=str(tmp_path)) as again:
        assert call(api(again), "GET", "/move-tasks").body == []  # tasks are not kept across restarts
        conn = pika.BlockingConnection(pika.URLParameters(again.url))
        ch = conn.channel()
        assert [b for b, _, _ in drain(ch, "work")] == [f"work-{i}".encode() for i in range(50)]
        assert drain(ch, "dlq") == []
        conn.close()


def test_move_task_errors(broker: EmbeddedBroker, channel: Any) -> None:
    dead_letter(channel, {"work": 1})
    base = api(broker)
    assert call(base, "POST", "/move-tasks", {}).body == {"error": "bad_request", "reason": "[{key_missing,source}]"}
    missing = call(base, "POST", "/move-tasks", {"source": "nope"})
    assert missing.status == 404 and missing.body["reason"] == "NOT_FOUND - no queue 'nope' in vhost '/'"
    assert call(base, "POST", "/move-tasks", {"source": "dlq", "vhost": "nope"}).status == 404
    assert call(base, "POST", "/move-tasks", {"source": "dlq", "exchange": "nope"}).status == 404
    assert call(base, "POST", "/move-tasks", {"source": "dlq", "queue": "nope"}).status == 404
    assert call(base, "POST", "/move-tasks", {"source": "dlq", "count": "x"}).body["reason"] == ["not_int", "count"]
    assert call(base, "POST", "/move-tasks", {"source": "dlq", "max_rate": 0}).status == 400
    assert call(base, "POST", "/move-tasks", {"source": "dlq", "queue": "work", "exchange": "dlx"}).status == 400
    assert call(base, "GET", "/move-tasks/nope").status == 404
    assert call(base, "DELETE", "/move-tasks/nope").status == 404
    assert call(base, "PUT", "/users/reader", {"password": "pw", "tags": "management"}).status == 201
    assert call(base, "PUT", "/permissions/%2F/reader", {"configure": "", "write": "", "read": ".*"}).status == 201
    refused = call(base, "POST", "/move-tasks", {"source": "dlq"}, auth=("reader", "pw"))
    assert (refused.status, refused.body) == (401, {"error": "not_authorised", "reason": "Access refused."})
    assert call(base, "GET", "/move-tasks", auth=("reader", "pw")).body == []
    assert [b for b, _, _ in drain(channel, "dlq")] == [b"work-0"]
