"""`leveret policies set|clear` and `leveret definitions export|import`: policies and whole definitions
files through a running broker's management API (leveret/http/), in the spirit of rabbitmqctl's
set_policy, clear_policy, export_definitions and import_definitions.

As the other administration commands (cli_admin.py): a few requests with `ManagementClient`, one line
printed, a failure one line on stderr and exit status 1 (a refused policy with RabbitMQ's reason).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Iterator

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from leveret.cli_admin import api_options, vhost_option
from leveret.cli_client import ManagementClient, NotFound, segment

# A definitions document's sections in the order the broker imports them (http/definitions_import.py's;
# the CLI talks HTTP only, so it names them itself), and those a vhost's import takes.
SECTIONS = ("users", "vhosts", "permissions", "topic_permissions", "parameters", "global_parameters", "policies",
            "queues", "exchanges", "bindings")
VHOST_SECTIONS = ("parameters", "policies", "queues", "exchanges", "bindings")
# Objects sent per request on import: each request is a partial document, so the progress bar moves.
BATCH = 200


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


@click.group()
def definitions() -> None:
    """Export and import definitions: RabbitMQ's JSON of users, vhosts, permissions, policies, queues,
    exchanges and bindings (no messages)."""


def _definitions_path(vhost: str | None) -> str:
    return "/api/definitions" + (f"/{segment(vhost)}" if vhost is not None else "")


@definitions.command("export")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--vhost", "-p", default=None, help="Only this vhost's objects (default: the whole broker).")
@api_options
def definitions_export(client: ManagementClient, file: str, vhost: str | None) -> None:
    """Write the broker's definitions to FILE ("-": standard output)."""
    try:
        document = client.get(_definitions_path(vhost))
    except NotFound:
        raise click.ClickException(f"vhost '{vhost}' does not exist") from None
    text = json.dumps(document, indent=2) + "\n"
    if file == "-":
        sys.stdout.write(text)
        return
    try:
        with open(file, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise click.ClickException(f"cannot write {file}: {exc.strerror}") from None
    count = sum(len(document.get(section) or []) for section in SECTIONS)
    click.echo(f"Exported {count} definitions to {file}.")


def _batches(document: dict[str, Any], sections: tuple[str, ...]) -> Iterator[tuple[str, list[Any]]]:
    for section in sections:
        items = document.get(section) or []
        if not isinstance(items, list):
            raise click.ClickException(f"{section} is not a list")
        for start in range(0, len(items), BATCH):
            yield section, items[start:start + BATCH]


@definitions.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--vhost", "-p", default=None, help="Import into this vhost only (a vhost's export).")
@api_options
def definitions_import(client: ManagementClient, file: str, vhost: str | None) -> None:
    """Import the definitions in FILE ("-": standard input), with a progress bar. Stops at the first object
    the broker refuses, with its reason; what was imported before it stays (as RabbitMQ's import)."""
    try:
        raw = sys.stdin.read() if file == "-" else open(file, encoding="utf-8").read()
        document = json.loads(raw)
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror}") from None
    except ValueError as exc:
        raise click.ClickException(f"{file} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise click.ClickException(f"{file} is not a definitions file (a JSON object)")
    batches = list(_batches(document, VHOST_SECTIONS if vhost is not None else SECTIONS))
    total = sum(len(items) for _, items in batches)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("Importing", total=total)
        for section, items in batches:
            progress.update(task, description=f"Importing {section}")
            try:
                client.request("POST", _definitions_path(vhost), {section: items})
            except NotFound:
                raise click.ClickException(f"vhost '{vhost}' does not exist") from None
            progress.advance(task, len(items))
    click.echo(f"Imported {total} definitions from {file}.")


COMMANDS = (policies, definitions)
