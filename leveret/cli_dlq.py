"""`leveret dlq peek|deadletters|replay|move|tasks|cancel|purge`: dead letters from the command line,
through a running broker's management API (leveret/http/deadletters.py and move_tasks.py).

`replay` sends each message back to the queue it died in (x-death), `move` to a named queue or exchange;
both start a server-side move task and print its id, or, with `--wait`, follow it with a progress bar
until it ends (exit status 1 when it failed). `--json` prints the API's answer for scripts.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from leveret.cli_admin import api_options, vhost_option
from leveret.cli_client import ManagementClient, NotFound, segment
from leveret.cli_table import aligned

PAYLOAD_WIDTH = 40
POLL_S = 0.2  # how often --wait asks for progress


def _queue_path(vhost: str, queue: str, what: str) -> str:
    return f"/api/queues/{segment(vhost)}/{segment(queue)}/{what}"


def _page(client: ManagementClient, vhost: str, queue: str, what: str, count: int, offset: int,
          as_json: bool) -> Any:
    """The answer of GET .../{what}?count=&offset= for a table, or None once printed as JSON."""
    try:
        answer = client.get(_queue_path(vhost, queue, f"{what}?count={count}&offset={offset}"))
    except NotFound:
        raise click.ClickException(f"no queue '{queue}' in vhost '{vhost}'") from None
    if as_json:
        _echo_json(answer)
        return None
    return answer


def _payload(row: dict[str, Any]) -> str:
    text = row["payload"] if row["payload_encoding"] == "string" else f"(base64) {row['payload']}"
    text = " ".join(text.split())
    return text if len(text) <= PAYLOAD_WIDTH else text[: PAYLOAD_WIDTH - 3] + "..."


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def _when(seconds: int | None) -> str:
    return "" if seconds is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


@click.group()
def dlq() -> None:
    """Look at dead letters and move them back (server-side move tasks)."""


def _decorated(*decorators: Any) -> Any:
    """One decorator applying `decorators` as if stacked in this order."""

    def apply(command: Any) -> Any:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


# QUEUE, --count, --offset, --json, --vhost and the API options of a command that shows messages.
_page_options = _decorated(
    click.argument("queue"),
    click.option("--count", "-n", default=20, show_default=True, help="How many messages."),
    click.option("--offset", default=0, show_default=True, help="Skip this many from the head."),
    click.option("--json", "as_json", is_flag=True, help="The API's answer as JSON."),
    vhost_option,
    api_options,
)


@dlq.command("peek")
@_page_options
def peek(client: ManagementClient, queue: str, count: int, offset: int, as_json: bool, vhost: str) -> None:
    """Show QUEUE's next messages without taking them (no redelivered flag, no reordering)."""
    rows = _page(client, vhost, queue, "peek", count, offset, as_json)
    if rows is None:
        return
    click.echo(aligned(["#", "redelivered", "exchange", "routing key", "bytes", "payload"], [
        [str(offset + i), "yes" if r["redelivered"] else "no", r["exchange"], r["routing_key"], str(r["payload_bytes"]),
         _payload(r)] for i, r in enumerate(rows)]))


@dlq.command("deadletters")
@_page_options
def deadletters(client: ManagementClient, queue: str, count: int, offset: int, as_json: bool, vhost: str) -> None:
    """Show QUEUE's messages with their x-death decoded, and counts per reason and original queue."""
    view = _page(client, vhost, queue, "dead-letters", count, offset, as_json)
    if view is None:
        return
    summary = view["summary"]
    scope = "all" if summary["complete"] else f"the first {summary['examined']}"
    click.echo(f"{view['messages_ready']} ready in queue '{queue}'; by reason ({scope}): "
               + ", ".join(f"{k} {v}" for k, v in summary["by_reason"].items()))
    click.echo("by original queue: " + ", ".join(f"{k or '(none)'} {v}" for k, v in summary["by_queue"].items()))
    click.echo(aligned(["#", "reason", "from queue", "exchange", "routing keys", "deaths", "died at (UTC)", "payload"], [
        [str(offset + i), d["reason"] or "", d["queue"] or "", d["exchange"] or "", ",".join(d["routing_keys"]),
         str(d["count"]), _when(d["time"]), _payload(item)]
        for i, item in enumerate(view["items"]) for d in [item["dead_letter"]]]))


def _start(client: ManagementClient, body: dict[str, Any], wait: bool, as_json: bool) -> None:
    try:
        task = client.request("POST", "/api/move-tasks", body)
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None
    if not wait:
        if as_json:
            _echo_json(task)
        else:
            click.echo(f"Started move task {task['id']}: {task['total']} messages from queue '{body['source']}'.")
        return
    task = _follow(client, task)
    if as_json:
        _echo_json(task)
    else:
        click.echo(f"Move task {task['id']} {task['state']}: {task['moved']} of {task['total']} moved"
                   + (f" ({task['reason']})" if task["reason"] else "") + ".")
    if task["state"] == "failed":
        sys.exit(1)


def _follow(client: ManagementClient, task: dict[str, Any]) -> dict[str, Any]:
    """Poll the task until it ends, with a rich progress bar on a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("moving"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}/s"),
               TimeRemainingColumn())
    with Progress(*columns, transient=True, disable=not sys.stderr.isatty()) as progress:
        bar = progress.add_task("move", total=task["total"], rate=0)
        while task["state"] == "running":
            time.sleep(POLL_S)
            task = client.get(f"/api/move-tasks/{segment(task['id'])}")
            progress.update(bar, completed=task["moved"], rate=task["rate"])
    return task


# The options of `replay` and `move`.
_move_options = _decorated(
    click.option("--count", "-n", type=click.IntRange(min=1), default=None,
                 help="At most this many (default: all ready now)."),
    click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None,
                 help="At most this many messages a second."),
    click.option("--no-replay-count", is_flag=True, help="Do not add x-replay-count to the copies."),
    click.option("--wait", is_flag=True, help="Follow the task with a progress bar until it ends."),
    click.option("--json", "as_json", is_flag=True, help="The task as JSON."),
)


def _body(vhost: str, queue: str, count: int | None, rate: float | None, no_replay_count: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"vhost": vhost, "source": queue, "replay_count": not no_replay_count}
    if count is not None:
        body["count"] = count
    if rate is not None:
        body["max_rate"] = rate
    return body


@dlq.command("replay")
@click.argument("queue")
@_move_options
@vhost_option
@api_options
def replay(client: ManagementClient, queue: str, count: int | None, rate: float | None, no_replay_count: bool,
           wait: bool, as_json: bool, vhost: str) -> None:
    """Send QUEUE's dead letters back to the queues they died in (each message's x-death)."""
    _start(client, _body(vhost, queue, count, rate, no_replay_count), wait, as_json)


@dlq.command("move")
@click.argument("queue")
@click.option("--to-queue", default=None, help="Straight into this queue.")
@click.option("--exchange", default=None, help="Publish through this exchange.")
@click.option("--routing-key", default=None, help="With --exchange (default: each message's own).")
@_move_options
@vhost_option
@api_options
def move(client: ManagementClient, queue: str, to_queue: str | None, exchange: str | None, routing_key: str | None,
         count: int | None, rate: float | None, no_replay_count: bool, wait: bool, as_json: bool, vhost: str) -> None:
    """Move QUEUE's messages to another queue (--to-queue) or through an exchange (--exchange)."""
    if (to_queue is None) == (exchange is None):
        raise click.UsageError("give one of --to-queue or --exchange")
    if routing_key is not None and exchange is None:
        raise click.UsageError("--routing-key goes with --exchange")
    body = _body(vhost, queue, count, rate, no_replay_count)
    body.update({"queue": to_queue} if to_queue is not None else {"exchange": exchange, "routing_key": routing_key})
    _start(client, body, wait, as_json)


@dlq.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="The API's answer as JSON.")
@api_options
def tasks(client: ManagementClient, as_json: bool) -> None:
    """List move tasks (running, and the last finished ones) with their progress."""
    rows = client.get("/api/move-tasks")
    if as_json:
        _echo_json(rows)
        return

    def target(d: dict[str, Any]) -> str:
        if d["type"] == "exchange":
            return f"exchange '{d['exchange']}'" + (f" key '{d['routing_key']}'" if d["routing_key"] is not None else "")
        return f"queue '{d['queue']}'" if d["type"] == "queue" else "original queues"

    # `resumed`: restarts the task went on after (a broker older than durable tasks has no such field).
    click.echo(aligned(["id", "vhost", "source", "to", "state", "moved", "total", "rate", "resumed", "reason"], [
        [t["id"], t["vhost"], t["source"], target(t["destination"]), t["state"], str(t["moved"]), str(t["total"]),
         f"{t['rate']:g}", str(t.get("resumed", 0)), t["reason"] or ""] for t in rows]))


@dlq.command("cancel")
@click.argument("task_id")
@api_options
def cancel(client: ManagementClient, task_id: str) -> None:
    """Cancel a running move task (the batch in hand is finished first)."""
    try:
        client.request("DELETE", f"/api/move-tasks/{segment(task_id)}")
    except NotFound:
        raise click.ClickException(f"no move task '{task_id}'") from None
    click.echo(f"Cancelled move task {task_id}.")


@dlq.command("purge")
@click.argument("queue")
@click.option("--count", "-n", type=click.IntRange(min=1), default=None, help="Only the first N ready messages.")
@vhost_option
@api_options
def purge(client: ManagementClient, queue: str, count: int | None, vhost: str) -> None:
    """Drop QUEUE's ready messages (all, or the first --count)."""
    path = f"/api/queues/{segment(vhost)}/{segment(queue)}/contents" + (f"?count={count}" if count else "")
    try:
        client.request("DELETE", path)
    except NotFound:
        raise click.ClickException(f"no queue '{queue}' in vhost '{vhost}'") from None
    click.echo(f"Purged {'the first ' + str(count) if count else 'the ready'} messages of queue '{queue}'.")
