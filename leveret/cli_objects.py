"""`leveret list KIND`, `leveret purge QUEUE`, `leveret delete queue|exchange NAME`: a running broker's
queues, exchanges, bindings, connections, channels, consumers and policies through its management API.

Columns are the management API's field names, as rabbitmqadmin and rabbitmqctl take them
(`--columns name,messages`; a dotted name reaches inside an object: `message_stats.publish_details.rate`).
Without `--columns` each kind has a default choice, RabbitMQ's plus what an operator looks at first.
`--json` prints the rows as a JSON array (only the chosen columns when `--columns` is given) for scripts.
"""

from __future__ import annotations

import json
from typing import Any

import click

from leveret.cli_admin import api_options, vhost_option
from leveret.cli_client import ManagementClient, NotFound, segment
from leveret.cli_table import aligned, print_table

# Default columns: (heading, field of the management API object). Kinds listed per vhost have a
# /api/KIND/{vhost} endpoint; the others are filtered by their `vhost` field here.
LIST_COLUMNS = {
    "queues": (("vhost", "vhost"), ("name", "name"), ("type", "type"), ("messages", "messages"),
               ("ready", "messages_ready"), ("unacked", "messages_unacknowledged"), ("consumers", "consumers")),
    "exchanges": (("vhost", "vhost"), ("name", "name"), ("type", "type"), ("durable", "durable"),
                  ("delayed_messages", "delayed_messages")),
    "bindings": (("vhost", "vhost"), ("source", "source"), ("destination", "destination"),
                 ("destination_type", "destination_type"), ("routing_key", "routing_key")),
    "connections": (("name", "name"), ("user", "user"), ("vhost", "vhost"), ("channels", "channels"),
                    ("state", "state")),
    "channels": (("name", "name"), ("user", "user"), ("vhost", "vhost"), ("consumers", "consumer_count"),
                 ("unacked", "messages_unacknowledged"), ("prefetch", "prefetch_count")),
    "consumers": (("vhost", "queue.vhost"), ("queue", "queue.name"), ("consumer_tag", "consumer_tag"),
                  ("channel", "channel_details.name"), ("ack_required", "ack_required"),
                  ("prefetch", "prefetch_count")),
    "policies": (("vhost", "vhost"), ("name", "name"), ("pattern", "pattern"), ("apply-to", "apply-to"),
                 ("priority", "priority"), ("definition", "definition")),
    # Kafka's side (http/kafka.py): topics and consumer groups; a group's lag is over its committed partitions.
    "topics": (("vhost", "vhost"), ("name", "name"), ("partitions", "partition_count"), ("messages", "messages")),
    "groups": (("vhost", "vhost"), ("name", "name"), ("state", "state"), ("members", "member_count"),
               ("lag", "lag")),
}
PER_VHOST = frozenset({"queues", "exchanges", "bindings", "consumers", "policies"})


def field(row: dict[str, Any], path: str) -> Any:
    """`row`'s value at a dotted `path` (None where any step is missing)."""
    value: Any = row
    for step in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def cell(kind: str, path: str, row: dict[str, Any]) -> str:
    """One table cell: booleans as true/false, objects and lists as compact JSON, None as nothing."""
    value = field(row, path)
    if kind == "exchanges" and path == "name" and value == "":
        return "(AMQP default)"  # as RabbitMQ's management UI names the nameless exchange
    if value is None:
        return ""  # e.g. delayed_messages of an exchange that is not x-delayed-message
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def columns_of(kind: str, columns: str | None) -> tuple[tuple[str, str], ...]:
    """(heading, field) pairs: the kind's defaults, or the --columns given (each its own heading)."""
    if not columns:
        return LIST_COLUMNS[kind]
    return tuple((name, name) for name in (c.strip() for c in columns.split(",")) if name)


def format_table(kind: str, rows: list[dict[str, Any]], columns: str | None = None) -> str:
    """An aligned text table of management API objects; numbers right-aligned."""
    chosen = columns_of(kind, columns)
    return aligned([heading for heading, _ in chosen], [[cell(kind, f, row) for _, f in chosen] for row in rows])


def fetch_rows(client: ManagementClient, kind: str, vhost: str | None) -> list[dict[str, Any]]:
    """Every object of `kind` (of `vhost` only, when given); a missing vhost or endpoint is one line."""
    per_vhost = vhost is not None and kind in PER_VHOST
    try:
        rows = client.get(f"/api/{kind}" + (f"/{segment(vhost)}" if per_vhost else ""))
    except NotFound:
        if per_vhost:
            raise click.ClickException(f"vhost '{vhost}' does not exist (HTTP 404)") from None
        raise click.ClickException(f"this broker's API has no /api/{kind} (HTTP 404)") from None
    if isinstance(rows, dict) and "items" in rows:  # a paged answer
        rows = rows["items"]
    if vhost is not None and not per_vhost:
        rows = [row for row in rows if row.get("vhost") == vhost]
    return rows


@click.command("list")
@click.argument("kind", type=click.Choice(sorted(LIST_COLUMNS)))
@click.option("--vhost", "-p", default=None, help="Only this vhost (default: all).")
@click.option("--columns", "-c", default=None, metavar="A,B,...",
              help="The management API fields to show, comma-separated (dotted for nested ones).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@api_options
def list_command(client: ManagementClient, kind: str, vhost: str | None, columns: str | None,
                 as_json: bool) -> None:
    """List a running broker's queues, exchanges, bindings, connections, channels, consumers or policies."""
    rows = fetch_rows(client, kind, vhost)
    if as_json:
        if columns:
            rows = [{name: field(row, name) for _, name in columns_of(kind, columns)} for row in rows]
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    chosen = columns_of(kind, columns)
    print_table([heading for heading, _ in chosen], [[cell(kind, f, row) for _, f in chosen] for row in rows])


def _queue_path(vhost: str, name: str) -> str:
    return f"/api/queues/{segment(vhost)}/{segment(name)}"


@click.command()
@click.argument("queue")
@vhost_option
@api_options
def purge(client: ManagementClient, queue: str, vhost: str) -> None:
    """Remove every ready message from QUEUE (unacknowledged ones stay with their consumers)."""
    what = f"queue '{queue}' in vhost '{vhost}'"
    try:
        client.request("DELETE", _queue_path(vhost, queue) + "/contents")
    except NotFound:
        raise click.ClickException(f"{what} does not exist") from None
    click.echo(f"Purged {what}.")


@click.group()
def delete() -> None:
    """Delete a queue or an exchange."""


@delete.command("queue")
@click.argument("name")
@vhost_option
@click.option("--if-empty", is_flag=True, help="Only if it holds no messages.")
@click.option("--if-unused", is_flag=True, help="Only if it has no consumers.")
@api_options
def delete_queue(client: ManagementClient, name: str, vhost: str, if_empty: bool, if_unused: bool) -> None:
    """Delete queue NAME and its messages."""
    conditions = "&".join(flag for flag, on in (("if-empty=true", if_empty), ("if-unused=true", if_unused)) if on)
    what = f"queue '{name}' in vhost '{vhost}'"
    try:
        client.request("DELETE", _queue_path(vhost, name) + (f"?{conditions}" if conditions else ""))
    except NotFound:
        raise click.ClickException(f"{what} does not exist") from None
    click.echo(f"Deleted {what}.")


@delete.command("exchange")
@click.argument("name")
@vhost_option
@click.option("--if-unused", is_flag=True, help="Only if nothing is bound to or from it.")
@api_options
def delete_exchange(client: ManagementClient, name: str, vhost: str, if_unused: bool) -> None:
    """Delete exchange NAME and its bindings."""
    what = f"exchange '{name}' in vhost '{vhost}'"
    try:
        client.request("DELETE", f"/api/exchanges/{segment(vhost)}/{segment(name)}"
                       + ("?if-unused=true" if if_unused else ""))
    except NotFound:
        raise click.ClickException(f"{what} does not exist") from None
    click.echo(f"Deleted {what}.")


COMMANDS = (list_command, purge, delete)
