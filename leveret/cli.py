"""The `leveret` command line: `serve`, and the commands acting on a running broker: `list`, `purge`,
`delete` (cli_objects.py) and the administration of users, vhosts and permissions (cli_admin.py). No
broker logic lives here; commands that act on a running broker go through its management API
(cli_client.py)."""

from __future__ import annotations

import logging
import sys

import click

from leveret.cli_admin import COMMANDS as ADMIN_COMMANDS
from leveret.cli_definitions import COMMANDS as DEFINITION_COMMANDS
from leveret.cli_dlq import dlq
from leveret.cli_objects import COMMANDS as OBJECT_COMMANDS
from leveret.cli_migrate import COMMANDS as MIGRATE_COMMANDS
from leveret.cli_shovels import COMMANDS as SHOVEL_COMMANDS
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


# users, vhosts, permissions, topic-permissions (cli_admin.py); list, purge, delete (cli_objects.py); shovels;
# migrate; policies, definitions (cli_definitions.py)
for _command in (*ADMIN_COMMANDS, *OBJECT_COMMANDS, *SHOVEL_COMMANDS, *MIGRATE_COMMANDS, *DEFINITION_COMMANDS):
    main.add_command(_command)
main.add_command(dlq)  # dead letters (cli_dlq.py)
