"""`leveret dlq peek|deadletters|replay|move|tasks|cancel` against a running embedded broker."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from leveret.cli import main
from leveret.embedded import EmbeddedBroker
from tests.http.test_deadletters_move import dead_letter, drain, wait_done


def dlq(broker: EmbeddedBroker, *args: str, code: int = 0) -> str:
    url = f"http://127.0.0.1:{broker.server.http_port}"
    result = CliRunner().invoke(main, ["dlq", *args, "--url", url])
    assert result.exit_code == code, result.output
    return result.output


def test_peek_and_deadletters(broker: EmbeddedBroker, channel: Any) -> None:
    dead_letter(channel, {"work-a": 2, "work-b": 1})
    lines = dlq(broker, "peek", "dlq", "-n", "2").splitlines()
    assert lines[0].split() == ["#", "redelivered", "exchange", "routing", "key", "bytes", "payload"]
    assert [line.split() for line in lines[1:]] == [["0", "no", "dlx", "work-a", "8", "work-a-0"],
                                                   ["1", "no", "dlx", "work-a", "8", "work-a-1"]]
    assert [r["payload"] for r in json.loads(dlq(broker, "peek", "dlq", "--offset", "2", "--json"))] == ["work-b-0"]
    out = dlq(broker, "deadletters", "dlq").splitlines()
    assert out[0] == "3 ready in queue 'dlq'; by reason (all): rejected 3"
    assert out[1] == "by original queue: work-a 2, work-b 1"
    assert out[2].split()[:4] == ["#", "reason", "from", "queue"]
    assert out[5].split()[:3] == ["2", "rejected", "work-b"] and out[5].endswith("work-b-0")
    view = json.loads(dlq(broker, "deadletters", "dlq", "--json", "-n", "1"))
    assert view["items"][0]["dead_letter"]["queue"] == "work-a"
    assert "no queue 'nope' in vhost '/'" in dlq(broker, "peek", "nope", code=1)
    assert [b for b, _, r in drain(channel, "dlq") if not r] == [b"work-a-0", b"work-a-1", b"work-b-0"]


def test_replay_move_tasks_cancel(broker: EmbeddedBroker, channel: Any) -> None:
    dead_letter(channel, {"work": 5})
    out = dlq(broker, "replay", "dlq", "--count", "2", "--wait")
    assert out.startswith("Move task ") and out.rstrip().endswith("finished: 2 of 2 moved.")
    assert [b for b, _, _ in drain(channel, "work")] == [b"work-0", b"work-1"]
    channel.queue_declare("parking")
    task = json.loads(dlq(broker, "move", "dlq", "--to-queue", "parking", "--no-replay-count", "--wait", "--json"))
    assert (task["state"], task["moved"], task["replay_count"]) == ("finished", 3, False)
    assert [(b, "x-replay-count" in h) for b, h, _ in drain(channel, "parking")] == [
        (b"work-2", False), (b"work-3", False), (b"work-4", False)]
    lines = dlq(broker, "tasks").splitlines()
    assert lines[0].split() == ["id", "vhost", "source", "to", "state", "moved", "total", "rate", "resumed",
                                  "reason"]
    assert "original queues" in lines[1] and "queue 'parking'" in lines[2]
    assert [t["state"] for t in json.loads(dlq(broker, "tasks", "--json"))] == ["finished", "finished"]
    channel.basic_publish("", "dlq", b"stray")
    failed = dlq(broker, "replay", "dlq", "--wait", code=1)
    assert "failed: 0 of 1 moved (a message has no x-death header" in failed
    channel.basic_publish("", "dlq", b"stray 2")
    started = dlq(broker, "move", "dlq", "--to-queue", "parking", "--rate", "0.2")  # the second one is due in 5 s
    task_id = started.split()[3].rstrip(":")
    assert dlq(broker, "cancel", task_id) == f"Cancelled move task {task_id}.\n"
    assert wait_done(broker, task_id)["state"] == "cancelled"
    assert "no move task 'nope'" in dlq(broker, "cancel", "nope", code=1)
    assert "give one of --to-queue or --exchange" in dlq(broker, "move", "dlq", code=2)


def test_purge_all_or_the_first_n(broker: EmbeddedBroker, channel: Any) -> None:
    channel.queue_declare("dlq")
    for i in range(5):
        channel.basic_publish("", "dlq", str(i).encode())
    assert dlq(broker, "purge", "dlq", "--count", "2") == "Purged the first 2 messages of queue 'dlq'.\n"
    assert [r["payload"] for r in json.loads(dlq(broker, "peek", "dlq", "-n", "5", "--json"))] == ["2", "3", "4"]
    assert dlq(broker, "purge", "dlq") == "Purged the ready messages of queue 'dlq'.\n"
    assert json.loads(dlq(broker, "peek", "dlq", "--json")) == []
    assert "no queue 'nope' in vhost '/'" in dlq(broker, "purge", "nope", code=1)
