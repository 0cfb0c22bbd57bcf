"""`leveret shovels list|add|delete|restart`: dynamic shovels through a running broker's management API, in
the spirit of `rabbitmqctl set_parameter shovel` and `rabbitmqctl list_shovels` / `restart_shovel`.

A shovel is the runtime parameter `shovel/{vhost}/{name}` (PUT/DELETE /api/parameters/shovel/...); its
state is read from GET /api/shovels. Errors are one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
from typing import Any

import click

from leveret.cli_admin import api_options, delete_or_fail, print_table, vhost_option
from leveret.cli_client import ManagementClient, NotFound, segment

# The add command's options, each the parameter key it sets (RabbitMQ's names with the prefix dropped).
_KEYS = ("src-uri", "src-queue", "src-exchange", "src-exchange-key", "src-prefetch-count", "src-delete-after",
         "dest-uri", "dest-queue", "dest-exchange", "dest-exchange-key", "ack-mode", "reconnect-delay")


@click.group()
def shovels() -> None:
    """List, add, delete and restart dynamic shovels (RabbitMQ's shovel parameters)."""


@shovels.command("list")
@click.option("--vhost", "-p", default=None, help="Only this virtual host's shovels.")
@api_options
def shovels_list(client: ManagementClient, vhost: str | None) -> None:
    """Every shovel, its state, and where it moves messages from and to (or why it stopped)."""
    path = "/api/shovels" if vhost is None else f"/api/shovels/{segment(vhost)}"
    try:
        rows = client.get(path)
    except NotFound:
        raise click.ClickException(f"vhost '{vhost}' does not exist") from None
    print_table(["vhost", "name", "state", "source", "destination"],
                 [[row["vhost"], row["name"], row["state"], _end(row, "src"), row.get("reason") or _end(row, "dest")]
                  for row in rows])


def _end(row: dict[str, Any], side: str) -> str:
    """'uri queue' or 'uri exchange/key' of one side of a listing row (empty before the shovel started)."""
    if f"{side}_uri" not in row:
        return ""
    what = row.get(f"{side}_queue")
    if what is None:
        exchange = row.get(f"{side}_exchange")
        what = f"exchange {exchange}" if exchange is not None else ""
        if row.get(f"{side}_exchange_key") is not None:
            what += f" ({row[f'{side}_exchange_key']})"
    else:
        what = f"queue {what}"
    return f"{row[f'{side}_uri']} {what}".strip()


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


@shovels.command("add")
@click.argument("name")
@click.option("--src-uri", multiple=True, help="Source URI (repeat for several; amqp:// is this broker).")
@click.option("--src-queue")
@click.option("--src-exchange")
@click.option("--src-exchange-key")
@click.option("--src-prefetch-count", type=int)
@click.option("--src-delete-after", help="never, queue-length or a number of messages.")
@click.option("--dest-uri", multiple=True, help="Destination URI (repeat for several).")
@click.option("--dest-queue")
@click.option("--dest-exchange")
@click.option("--dest-exchange-key")
@click.option("--ack-mode", type=click.Choice(["on-confirm", "on-publish", "no-ack"]))
@click.option("--reconnect-delay", type=float)
@click.option("--forward-headers", is_flag=True, help="Add x-shovelled headers (dest-add-forward-headers).")
@click.option("--timestamp-header", is_flag=True, help="Add x-shovelled-timestamp (dest-add-timestamp-header).")
@click.option("--value", "value_json", help="The whole parameter value as JSON (instead of the options).")
@vhost_option
@api_options
def shovels_add(client: ManagementClient, name: str, vhost: str, value_json: str | None, forward_headers: bool,
                timestamp_header: bool, **options: Any) -> None:
    """Define (or redefine) the shovel NAME; the broker checks the value as RabbitMQ does."""
    if value_json is not None:
        try:
            value = json.loads(value_json)
        except ValueError as exc:
            raise click.ClickException(f"--value is not JSON: {exc}") from None
    else:
        value = {}
        for key in _KEYS:
            given = options.get(key.replace("-", "_"))
            if given in (None, ()):
                continue
            if isinstance(given, tuple):
                given = given[0] if len(given) == 1 else list(given)
            value[key] = _number(given) if key == "src-delete-after" else given
        if forward_headers:
            value["dest-add-forward-headers"] = True
        if timestamp_header:
            value["dest-add-timestamp-header"] = True
    try:
        client.request("PUT", f"/api/parameters/shovel/{segment(vhost)}/{segment(name)}", {"value": value})
    except NotFound:
        raise click.ClickException(f"vhost '{vhost}' does not exist") from None
    click.echo(f"Set shovel '{name}' in vhost '{vhost}'.")


@shovels.command("delete")
@click.argument("name")
@vhost_option
@api_options
def shovels_delete(client: ManagementClient, name: str, vhost: str) -> None:
    """Delete the shovel NAME: it stops, and what it had not acknowledged returns to its source."""
    delete_or_fail(client, f"/api/parameters/shovel/{segment(vhost)}/{segment(name)}",
            f"shovel '{name}' does not exist in vhost '{vhost}'", f"Deleted shovel '{name}' in vhost '{vhost}'.")


@shovels.command("restart")
@click.argument("name")
@vhost_option
@api_options
def shovels_restart(client: ManagementClient, name: str, vhost: str) -> None:
    """Stop the shovel NAME and start it afresh (its connections are opened again)."""
    delete_or_fail(client, f"/api/shovels/vhost/{segment(vhost)}/{segment(name)}/restart",
            f"shovel '{name}' does not exist in vhost '{vhost}'", f"Restarted shovel '{name}' in vhost '{vhost}'.")


COMMANDS = (shovels,)
