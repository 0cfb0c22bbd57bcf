"""The `leveret` command line. No broker logic lives here."""

from __future__ import annotations

import logging
import sys

import click

from leveret.config import load_settings


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
def serve(host: str | None, port: int | None, data_dir: str | None, config_file: str | None,
          log_level: str | None) -> None:
    """Run the broker until SIGINT or SIGTERM."""
    settings = load_settings(config_file, overrides={
        "host": host, "port": port, "data_dir": data_dir, "log_level": log_level,
    })
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from leveret.server.app import run  # the CLI is one of the few places allowed to import the server

    sys.exit(run(settings))
