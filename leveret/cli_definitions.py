"""`leveret policies set|clear` and `leveret definitions export|import`: policies and whole definitions
files through a running broker's management API (leveret/http/), in the spirit of rabbitmqctl's
set_policy, clear_policy, export_definitions and import_definitions.

As the other administration commands (cli_admin.py): a few requests with `ManagementClient`, one line
printed, a failure one line on stderr and exit status 1 (a refused policy with RabbitMQ's reason).
"""

from __future__ import annotations

import json

import click

from leveret.cli_admin import api_options, vhost_option
from leveret.cli_client import ManagementClient, NotFound, segment


@click.group()
def policies() -> None:
    """Set and clear policies (`leveret list policies` lists them)."""


@policies.command("set")
@click.argument("name")
@click.argument("pattern")
@click.argument("definition")
@click.option("--priority", type=int, default=0, show_default=True, help="The highest priority match applies.")
@click.option("--apply-to", default="all", show_default=True,
              type=click.Choice(["all", "queues", "exchanges", "classic_queues", "quorum_queues", "streams"]))
@vhost_option
@api_options
def policies_set(client: ManagementClient, name: str, pattern: str, definition: str, priority: int, apply_to: str,
                 vhost: str) -> None:
    """Set policy NAME: queues or exchanges matching the regex PATTERN get DEFINITION (a JSON object such
    as '{"max-length": 1000}')."""
    try:
        parsed = json.loads(definition)
    except ValueError as exc:
        raise click.ClickException(f"DEFINITION is not JSON: {exc}") from None
    try:
        client.request("PUT", f"/api/policies/{segment(vhost)}/{segment(name)}",
                       {"pattern": pattern, "definition": parsed, "priority": priority, "apply-to": apply_to})
    except NotFound:
        raise click.ClickException(f"vhost '{vhost}' does not exist") from None
    click.echo(f"Set policy '{name}' for pattern '{pattern}' in vhost '{vhost}'.")


@policies.command("clear")
@click.argument("name")
@vhost_option
@api_options
def policies_clear(client: ManagementClient, name: str, vhost: str) -> None:
    """Delete policy NAME."""
    try:
        client.request("DELETE", f"/api/policies/{segment(vhost)}/{segment(name)}")
    except NotFound:
        raise click.ClickException(f"no policy '{name}' in vhost '{vhost}'") from None
    click.echo(f"Cleared policy '{name}' in vhost '{vhost}'.")


COMMANDS = (policies,)
