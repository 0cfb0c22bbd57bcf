"""kill -9 in the middle of a move task: the task resumes at the restart, under its id, nothing is lost, and a
message moved twice is flagged redelivered.

Three thousand persistent dead letters (x-death naming their original queue) are replayed at a rate limit;
the broker process is killed while the task runs, restarted (the task resumes and is listed as resumed),
killed again while the resumed task runs, and restarted, and the task finishes. Every message id is then in
the original queue at least once, and an id found n times has at least n - 1 copies flagged redelivered
(the copy made before a kill comes back flagged by crash recovery; a copy of a source message recovered
after the crash is flagged by the move). Dead letters that arrive after the task started, before or after
a restart, are not the task's: they stay in the dead-letter queue. A clean stop pauses a task; the next
start resumes it, with nothing moved twice.
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


def _fill(url: str, first: int = 0, count: int = MESSAGES) -> None:
    """Dead letters with ids first..first+count-1 into durable queue dlq (declared with work if needed)."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare("work", durable=True)
    ch.queue_declare("dlq", durable=True)
    death = {"count": 1, "reason": "rejected", "queue": "work", "exchange": "", "routing-keys": ["work"]}
    ch.tx_select()
    for ident in range(first, first + count):
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


def _wait_for_task(proc: BrokerProcess, task_id: str, until: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    task = _task(proc, task_id)
    while not until(task) and time.monotonic() < deadline:
        time.sleep(0.01)
        task = _task(proc, task_id)
    assert until(task), task
    return task


def _check_moved(work: list[tuple[int, bool]], ids: range) -> None:
    seen = Counter(ident for ident, _ in work)
    assert set(seen) == set(ids)
    flagged: dict[int, int] = defaultdict(int)
    for ident, redelivered in work:
        flagged[ident] += redelivered
    assert all(flagged[ident] >= count - 1 for ident, count in seen.items())


def test_kill_mid_move_resumes_the_task_and_loses_nothing(tmp_path: Any) -> None:
    data_dir = str(tmp_path / "data")
    with BrokerProcess(data_dir, settings={"http_port": 0}) as proc:
        _fill(proc.url)
        task = call(_api(proc), "POST", "/move-tasks", {"source": "dlq", "max_rate": 250}).body
        assert (task["total"], task["durable"], task["resumed"]) == (MESSAGES, True, 0)
        _fill(proc.url, MESSAGES, 100)  # late dead letters: not the task's
        _wait_for_task(proc, task["id"], lambda t: t["moved"] >= 300)
        proc.kill()
    with BrokerProcess(data_dir, settings={"http_port": 0}) as proc:
        (resumed,) = call(_api(proc), "GET", "/move-tasks").body
        assert (resumed["id"], resumed["resumed"], resumed["total"]) == (task["id"], 1, MESSAGES)
        _fill(proc.url, MESSAGES + 100, 100)  # dead letters arriving after the restart: not the task's either
        # At 250/s the resumed task has about ten seconds of work left: the second kill lands in it even on a
        # busy machine (at 1,000/s it had finished between two polls under loadavg 14, at 500/s under 20).
        running = _wait_for_task(proc, task["id"], lambda t: t["moved"] >= resumed["moved"] + 100)
        assert running["state"] == "running"
        proc.kill()
    with BrokerProcess(data_dir, settings={"http_port": 0}) as proc:
        finished = _wait_for_task(proc, task["id"], lambda t: t["state"] != "running")
        assert (finished["state"], finished["resumed"], finished["remaining"]) == ("finished", 2, 0)
        assert 0 < finished["moved"] <= MESSAGES
        work = _drain(proc.url, "work")
        left = _drain(proc.url, "dlq")
        proc.stop()
    _check_moved(work, range(MESSAGES))
    assert sorted(ident for ident, _ in left) == list(range(MESSAGES, MESSAGES + 200))


def test_a_clean_stop_pauses_the_task_and_the_next_start_resumes_it(tmp_path: Any) -> None:
    data_dir = str(tmp_path / "data")
    with BrokerProcess(data_dir, settings={"http_port": 0}) as proc:
        _fill(proc.url)
        # At 500/s the task has seconds of work left when the stop comes, even on a busy machine.
        task = call(_api(proc), "POST", "/move-tasks", {"source": "dlq", "max_rate": 500, "count": 2500}).body
        assert _wait_for_task(proc, task["id"], lambda t: t["moved"] >= 200)["state"] == "running"
        assert proc.stop() == 0
    with BrokerProcess(data_dir, settings={"http_port": 0}) as proc:
        assert call(_api(proc), "GET", f"/move-tasks/{task['id']}").status == 200  # resumed
        finished = _wait_for_task(proc, task["id"], lambda t: t["state"] != "running")
        assert (finished["state"], finished["resumed"], finished["moved"]) == ("finished", 1, 2500)
        work = _drain(proc.url, "work")
        left = _drain(proc.url, "dlq")
        assert call(_api(proc), "GET", "/move-tasks").body[0]["state"] == "finished"
        proc.stop()
    # A clean stop leaves nothing to move twice: each of the first 2,500 once, unflagged; the rest untouched.
    assert work == [(ident, False) for ident in range(2500)]
    assert left == [(ident, False) for ident in range(2500, MESSAGES)]
