"""The `leveret` command line: `serve`, `list`, and (cli_admin.py) the administration of users, vhosts and
permissions. No broker logic lives here; commands that act on a running broker go through its management
API (cli_client.py)."""

from __future__ import annotations

import logging
import sys
from typing import Any
from urllib.parse import quote

import click

from leveret.cli_admin import COMMANDS, DEFAULT_URL
from leveret.cli_client import ManagementClient
from leveret.cli_table import aligned
from leveret.config import Settings, SettingsError, load_settings


class BadSettings(click.ClickException):
    """A setting that cannot be used: one line on stderr and exit status 2, as click does for a bad option."""

    exit_code = 2


@click.group()
@click.version_option(package_name="leveret")
def main() -> None:
    """Leveret: a message broker speaking AMQP 0-9-1 with RabbitMQ's extensions."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="AMQP port (default 5672; 0 picks a free one).")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False), help="Where durable data lives.")
@click.option("--config", "config_file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="A TOML file of settings.")
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR.")
@click.option("--http-port", type=int, default=None,
              help="Management HTTP API port (default 15672, or 0 when the AMQP port is 0; negative disables it).")
def serve(host: str | None, port: int | None, data_dir: str | None, config_file: str | None,
          log_level: str | None, http_port: int | None) -> None:
    """Run the broker until SIGINT or SIGTERM."""
    try:
        settings = load_settings(config_file, overrides={
            "host": host, "port": port, "data_dir": data_dir, "log_level": log_level, "http_port": http_port,
        })
    except SettingsError as exc:
        raise BadSettings(str(exc)) from None
    if settings.port == 0 and settings.http_port == Settings.http_port:
        # A broker on an ephemeral AMQP port (tests, benchmarks, several side by side) must not fight
        # over the fixed management port either, unless a port was asked for explicitly.
        settings = settings.replace(http_port=0)
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from leveret.server.app import run  # the CLI is one of the few places allowed to import the server

    sys.exit(run(settings))


# Columns of `leveret list`: (heading, field of the management API object).
LIST_COLUMNS = {
    "queues": (("vhost", "vhost"), ("name", "name"), ("type", "type"), ("messages", "messages"),
               ("ready", "messages_ready"), ("unacked", "messages_unacknowledged"), ("consumers", "consumers")),
    "exchanges": (("vhost", "vhost"), ("name", "name"), ("type", "type"), ("durable", "durable"),
                  ("delayed_messages", "delayed_messages")),
}


def _cell(kind: str, field: str, row: dict[str, Any]) -> str:
    value = row.get(field)
    if kind == "exchanges" and field == "name" and value == "":
        return "(AMQP default)"  # as RabbitMQ's management UI names the nameless exchange
    if value is None:
        return ""  # e.g. delayed_messages of an exchange that is not x-delayed-message
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def format_table(kind: str, rows: list[dict[str, Any]]) -> str:
    """An aligned text table of management API objects; numbers right-aligned."""
    columns = LIST_COLUMNS[kind]
    body = [[_cell(kind, field, row) for _, field in columns] for row in rows]
    return aligned([heading for heading, _ in columns], body)


@main.command("list")
@click.argument("kind", type=click.Choice(sorted(LIST_COLUMNS)))
@click.option("--url", default=DEFAULT_URL, show_default=True, help="The broker's management API.")
@click.option("--user", default="guest", show_default=True)
@click.option("--password", default="guest", show_default=True)
@click.option("--vhost", default=None, help="Only this vhost (default: all).")
def list_command(kind: str, url: str, user: str, password: str, vhost: str | None) -> None:
    """List queues or exchanges of a running broker, with message counts (and delayed messages)."""
    path = f"/api/{kind}" + (f"/{quote(vhost, safe='')}" if vhost is not None else "")
    rows = ManagementClient(url, user, password).get(path)
    click.echo(format_table(kind, rows))


for _command in COMMANDS:  # users, vhosts, permissions, topic-permissions (cli_admin.py)
    main.add_command(_command)
