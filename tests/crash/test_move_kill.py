"""kill -9 in the middle of a move task: nothing is lost, and a message moved twice is flagged redelivered.

Three thousand persistent dead letters (x-death naming their original queue) are replayed at a rate limit;
the broker process is killed while the task runs, restarted (the task is not resumed), and a second task
moves what is left. Every message id is then in the original queue at least once, none stays in the
dead-letter queue, and an id found n times has at least n - 1 copies flagged redelivered (the copy made
before the kill comes back flagged by crash recovery; a copy of a source message recovered after the crash
is flagged by the move).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

import pika

from tests.crash.broker_process import BrokerProcess
from tests.http.api_client import call

MESSAGES = 3000


def _api(proc: BrokerProcess) -> str:
    return f"http://127.0.0.1:{proc.http_port}/api"


def _fill(url: str) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare("work", durable=True)
    ch.queue_declare("dlq", durable=True)
    death = {"count": 1, "reason": "rejected", "queue": "work", "exchange": "", "routing-keys": ["work"]}
    ch.tx_select()
    for ident in range(MESSAGES):
        props = pika.BasicProperties(delivery_mode=2, headers={"x-death": [death], "id": ident})
        ch.basic_publish("", "dlq", str(ident).encode(), props)
    ch.tx_commit()  # durable once committed
    conn.close()


def _task(proc: BrokerProcess, task_id: str) -> dict[str, Any]:
    return call(_api(proc), "GET", f"/move-tasks/{task_id}").body


def _drain(url: str, queue: str) -> list[tuple[int, bool]]:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    out = []
    while True:
        method, _props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            break
        out.append((int(body), method.redelivered))
    conn.close()
    return out


def test_kill_mid_move_loses_nothing_and_flags_duplicates(tmp_path: Any) -> None:
    data_dir = str(tmp_path / "data")
    with BrokerProcess(data_dir, settings={"http_port": 0}) as proc:
        _fill(proc.url)
        task = call(_api(proc), "POST", "/move-tasks", {"source": "dlq", "max_rate": 4000}).body
        deadline = time.monotonic() + 20
        while _task(proc, task["id"])["moved"] < 800 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.kill()
    with BrokerProcess(data_dir, settings={"http_port": 0}) as proc:
        assert call(_api(proc), "GET", "/move-tasks").body == []  # not resumed
        left = call(_api(proc), "GET", "/queues/%2F").body
        in_dlq = next(q["messages"] for q in left if q["name"] == "dlq")
        assert 0 < in_dlq < MESSAGES  # the kill came in the middle of the move
        rest = call(_api(proc), "POST", "/move-tasks", {"source": "dlq"}).body
        deadline = time.monotonic() + 30
        while _task(proc, rest["id"])["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _task(proc, rest["id"])["state"] == "finished"
        work = _drain(proc.url, "work")
        assert _drain(proc.url, "dlq") == []
        proc.stop()
    seen = Counter(ident for ident, _ in work)
    assert set(seen) == set(range(MESSAGES))
    flagged: dict[int, int] = defaultdict(int)
    for ident, redelivered in work:
        flagged[ident] += redelivered
    assert all(flagged[ident] >= count - 1 for ident, count in seen.items())
