"""The `leveret` command line. No broker logic lives here."""

from __future__ import annotations

import base64
import json
import logging
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

import click

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
    headings = [heading for heading, _ in columns]
    widths = [max(len(r[i]) for r in [headings, *body]) for i in range(len(columns))]
    numeric = [all(r[i].isdigit() or r[i] == "" for r in body) and bool(body) for i in range(len(columns))]
    lines = []
    for r in [headings, *body]:
        cells = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def fetch_json(url: str, user: str, password: str, timeout: float = 10.0) -> Any:
    """GET a management API URL with basic auth; a click error with one line of reason on failure."""
    token = base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        reason = {401: "access refused (check --user and --password)", 404: "not found"}.get(exc.code, exc.reason)
        raise click.ClickException(f"{url}: HTTP {exc.code} {reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise click.ClickException(f"cannot reach {url}: {reason}") from None
    except ValueError:
        raise click.ClickException(f"{url}: the answer is not JSON") from None


@main.command("list")
@click.argument("kind", type=click.Choice(sorted(LIST_COLUMNS)))
@click.option("--url", default="http://127.0.0.1:15672", show_default=True, help="The broker's management API.")
@click.option("--user", default="guest", show_default=True)
@click.option("--password", default="guest", show_default=True)
@click.option("--vhost", default=None, help="Only this vhost (default: all).")
def list_command(kind: str, url: str, user: str, password: str, vhost: str | None) -> None:
    """List queues or exchanges of a running broker, with message counts (and delayed messages)."""
    path = f"/api/{kind}" + (f"/{quote(vhost, safe='')}" if vhost is not None else "")
    rows = fetch_json(url.rstrip("/") + path, user, password)
    click.echo(format_table(kind, rows))
