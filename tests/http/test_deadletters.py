"""Peek and the dead-letter view: GET /api/queues/{vhost}/{name}/peek and .../dead-letters.

A peek takes nothing: after it, a consumer gets the same messages in the same order, none flagged
redelivered, and the queue's counts are unchanged; messages paged out to disk (a durable queue's stored
backlog, a transient backlog spilled past the memory budget) are read back for the answer only.
"""

from __future__ import annotations

import time
from typing import Any

import pika

from leveret.embedded import EmbeddedBroker
from tests.http.api_client import api, call


def _peek(broker: EmbeddedBroker, queue: str, query: str = "", vhost: str = "%2F") -> Any:
    answer = call(api(broker), "GET", f"/queues/{vhost}/{queue}/peek{query}")
    assert answer.status == 200, answer
    return answer.body


def _drain(channel: Any, queue: str) -> list[tuple[bytes, bool]]:
    out = []
    while True:
        method, _props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append((body, method.redelivered))


def _drain_some(channel: Any, queue: str, count: int) -> list[bytes]:
    return [channel.basic_get(queue, auto_ack=True)[2] for _ in range(count)]


def _ready(broker: EmbeddedBroker, queue: str) -> tuple[int, int]:
    rows = call(api(broker), "GET", "/queues/%2F").body
    row = next(r for r in rows if r["name"] == queue)
    return row["messages_ready"], row["messages_unacknowledged"]


def test_peek_answers_rabbitmqs_get_shape_and_takes_nothing(broker: EmbeddedBroker, channel: Any) -> None:
    channel.queue_declare("q")
    for i in range(5):
        channel.basic_publish("", "q", f"m{i}".encode(), pika.BasicProperties(headers={"i": i}, delivery_mode=2))
    channel.basic_publish("", "q", b"\xff\xfe binary")
    rows = _peek(broker, "q", "?count=3&offset=1")
    assert [r["payload"] for r in rows] == ["m1", "m2", "m3"]
    assert rows[0] == {
        "payload_bytes": 2, "redelivered": False, "exchange": "", "routing_key": "q", "message_count": 4,
        "properties": {"headers": {"i": 1}, "delivery_mode": 2}, "payload": "m1", "payload_encoding": "string",
    }
    assert [r["message_count"] for r in rows] == [4, 3, 2]
    assert _peek(broker, "q") == [{**_peek(broker, "q", "?count=1&offset=0")[0]}]
    binary = _peek(broker, "q", "?offset=5")[0]
    assert binary["payload_encoding"] == "base64" and binary["payload"] == "//4gYmluYXJ5"
    b64 = _peek(broker, "q", "?count=1&encoding=base64&truncate=1")[0]
    assert (b64["payload"], b64["payload_encoding"], b64["payload_bytes"]) == ("bQ==", "base64", 2)
    assert _peek(broker, "q", "?count=10&offset=6") == []
    assert _ready(broker, "q") == (6, 0)
    assert _drain(channel, "q") == [(f"m{i}".encode(), False) for i in range(5)] + [(b"\xff\xfe binary", False)]


def test_peek_errors(broker: EmbeddedBroker, channel: Any) -> None:
    channel.queue_declare("q")
    base = api(broker)
    missing = call(base, "GET", "/queues/%2F/nope/peek")
    assert (missing.status, missing.body) == (404, {"error": "Object Not Found", "reason": "Not Found"})
    assert call(base, "GET", "/queues/nope/q/peek").status == 404
    assert call(base, "GET", "/queues/%2F/q/peek?count=x").body == {"error": "bad_request", "reason": ["not_int", "count"]}
    assert call(base, "GET", "/queues/%2F/q/peek?count=-1").status == 400
    assert call(base, "GET", "/queues/%2F/q/peek?encoding=utf16").body["reason"] == ["unsupported_encoding", "utf16"]
    assert call(base, "GET", "/queues/%2F/q/peek", auth=("guest", "wrong")).status == 401
    channel.queue_declare("s", durable=True, arguments={"x-queue-type": "stream"})
    assert call(base, "GET", "/queues/%2F/s/peek").status == 400


def test_peek_follows_priority_order(broker: EmbeddedBroker, channel: Any) -> None:
    channel.queue_declare("p", arguments={"x-max-priority": 5})
    for i, priority in enumerate((1, 5, 3, 5, 0)):
        channel.basic_publish("", "p", str(i).encode(), pika.BasicProperties(priority=priority))
    expected = [body for body, _ in sorted(((str(i).encode(), -p) for i, p in enumerate((1, 5, 3, 5, 0))),
                                            key=lambda x: x[1])]
    assert [r["payload"].encode() for r in _peek(broker, "p", "?count=5")] == expected
    assert [r["payload"].encode() for r in _peek(broker, "p", "?count=2&offset=2")] == expected[2:4]
    assert [body for body, _ in _drain(channel, "p")] == expected


def test_peek_reads_messages_paged_out_to_disk_without_moving_them() -> None:
    """Past the memory window, stored (persistent) messages and spilled (transient) ones interleave on the
    disk tail: the memory budget of 0 makes every transient message past the window spill."""
    with EmbeddedBroker(memory_budget=0) as broker:
        conn = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = conn.channel()
        channel.queue_declare("paged", durable=True)
        total = 4321
        for i in range(total):
            channel.basic_publish("", "paged", str(i).encode(), pika.BasicProperties(delivery_mode=2 - i % 2))
        ready = broker.server.broker.vhosts["/"].queues["paged"].ready
        assert ready.tail_length > 2000  # the backlog is on disk: stored and spilled items
        taken = 0
        for offsets in ((0, 1995, 2999, 3000, 4300), (0, 500, 1499, 1500, 2200)):
            for offset in offsets:
                rows = _peek(broker, "paged", f"?count=25&offset={offset}")
                expected = range(taken + offset, min(total, taken + offset + 25))
                assert [int(r["payload"]) for r in rows] == list(expected)
                assert [r["properties"].get("delivery_mode") for r in rows] == [2 - i % 2 for i in expected]
                assert {r["redelivered"] for r in rows} == {False}
            assert _ready(broker, "paged") == (total - taken, 0)
            if not taken:  # take 2100: the first spilled batch is read back and partly in memory
                assert _drain_some(channel, "paged", 2100) == [str(i).encode() for i in range(2100)]
                taken = 2100
        drained = _drain(channel, "paged")
        assert drained == [(str(i).encode(), False) for i in range(taken, total)]
        conn.close()


def _dead_letter_setup(channel: Any) -> None:
    channel.exchange_declare("dlx", "fanout")
    channel.queue_declare("dlq")
    channel.queue_bind("dlq", "dlx")
    channel.exchange_declare("orders", "direct")
    channel.queue_declare("work", arguments={"x-dead-letter-exchange": "dlx", "x-max-length": 3})
    channel.queue_bind("work", "orders", "new")
    channel.queue_declare("slow", arguments={"x-dead-letter-exchange": "dlx", "x-message-ttl": 0})


def test_dead_letter_view_decodes_x_death_and_summarises(broker: EmbeddedBroker, channel: Any) -> None:
    _dead_letter_setup(channel)
    before = int(time.time())
    for i in range(2):
        channel.basic_publish("orders", "new", f"r{i}".encode(), pika.BasicProperties(headers={"CC": ["cc-key"]}))
    for _ in range(2):
        method, _, _ = channel.basic_get("work")
        channel.basic_reject(method.delivery_tag, requeue=False)
    channel.basic_publish("", "slow", b"late")  # x-message-ttl 0, no consumer: expired at once
    for i in range(4):  # x-max-length 3: the oldest is dropped (maxlen)
        channel.basic_publish("orders", "new", f"n{i}".encode())
    answer = call(api(broker), "GET", "/queues/%2F/dlq/dead-letters?count=10")
    assert answer.status == 200
    view = answer.body
    assert (view["queue"], view["vhost"], view["messages_ready"], view["offset"]) == ("dlq", "/", 4, 0)
    assert [item["payload"] for item in view["items"]] == ["r0", "r1", "late", "n0"]
    first = view["items"][0]["dead_letter"]
    assert {k: first[k] for k in ("reason", "queue", "exchange", "routing_keys", "count", "replay_count")} == {
        "reason": "rejected", "queue": "work", "exchange": "orders", "routing_keys": ["new", "cc-key"], "count": 1,
        "replay_count": 0}
    assert before <= first["time"] <= time.time() + 1
    assert first["first_death"] == {"reason": "rejected", "queue": "work", "exchange": "orders"}
    assert len(first["deaths"]) == 1 and first["deaths"][0]["original_expiration"] is None
    assert [item["dead_letter"]["reason"] for item in view["items"]] == ["rejected", "rejected", "expired", "maxlen"]
    assert view["items"][2]["dead_letter"]["queue"] == "slow"
    assert view["summary"] == {"examined": 4, "complete": True, "by_reason": {"rejected": 2, "expired": 1, "maxlen": 1},
                               "by_queue": {"work": 3, "slow": 1}}
    limited = call(api(broker), "GET", "/queues/%2F/dlq/dead-letters?count=1&offset=3&summary=2").body
    assert [item["payload"] for item in limited["items"]] == ["n0"]
    assert limited["summary"] == {"examined": 2, "complete": False, "by_reason": {"rejected": 2},
                                  "by_queue": {"work": 2}}
    assert _ready(broker, "dlq") == (4, 0)
    assert [body for body, redelivered in _drain(channel, "dlq") if not redelivered] == [b"r0", b"r1", b"late", b"n0"]


def test_dead_letter_view_of_messages_that_never_died(broker: EmbeddedBroker, channel: Any) -> None:
    channel.queue_declare("plain")
    channel.basic_publish("", "plain", b"x", pika.BasicProperties(headers={"x-death": "not a list"}))
    view = call(api(broker), "GET", "/queues/%2F/plain/dead-letters").body
    assert view["items"][0]["dead_letter"] == {
        "reason": None, "queue": None, "exchange": None, "routing_keys": [], "count": 0, "time": None,
        "deaths": [], "first_death": {"reason": None, "queue": None, "exchange": None}, "replay_count": 0}
    assert view["summary"]["by_reason"] == {"none": 1}
