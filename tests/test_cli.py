"""The `leveret` command line: `list` against a running broker's HTTP API, and `serve`'s start errors."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from typing import Iterator

import pika
import pytest
from click.testing import CliRunner

from leveret.cli import main
from leveret.cli_objects import format_table
from leveret.cli_table import fitted
from leveret.embedded import EmbeddedBroker


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        conn = pika.BlockingConnection(pika.URLParameters(b.url))
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("jobs", arguments={"x-max-length": 1000})
        for _ in range(2):
            ch.basic_publish("", "jobs", b"x")
        ch.exchange_declare("later", "x-delayed-message", arguments={"x-delayed-type": "direct"})
        for _ in range(5):
            ch.basic_publish("later", "k", b"y", pika.BasicProperties(headers={"x-delay": 60000}))
        conn.close()
        yield b


def run_list(broker: EmbeddedBroker, *args: str):
    url = f"http://127.0.0.1:{broker.server.http_port}"
    return CliRunner().invoke(main, ["list", *args, "--url", url])


def test_list_queues_prints_counts_under_headings(broker: EmbeddedBroker) -> None:
    result = run_list(broker, "queues")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["vhost", "name", "type", "messages", "ready", "unacked", "consumers"]
    assert lines[1].split() == ["/", "jobs", "classic", "2", "2", "0", "0"]


def test_list_exchanges_shows_delayed_messages(broker: EmbeddedBroker) -> None:
    result = run_list(broker, "exchanges", "--vhost", "/")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["vhost", "name", "type", "durable", "delayed_messages"]
    later = next(line for line in lines if " later " in line)
    assert later.split() == ["/", "later", "x-delayed-message", "false", "5"]
    assert any("(AMQP default)" in line for line in lines)


def test_list_columns_are_aligned(broker: EmbeddedBroker) -> None:
    lines = run_list(broker, "exchanges").output.splitlines()
    # every row starts its type cell exactly under the heading, after a gap
    column = lines[0].index("type")
    assert all(line[column - 2:column] == "  " and line[column] != " " for line in lines)


def test_list_with_wrong_password_fails_with_one_line(broker: EmbeddedBroker) -> None:
    url = f"http://127.0.0.1:{broker.server.http_port}"
    result = CliRunner().invoke(main, ["list", "queues", "--url", url, "--password", "wrong"])
    assert result.exit_code == 1
    assert "401" in result.output and len(result.output.strip().splitlines()) == 1


def test_list_unknown_vhost_fails(broker: EmbeddedBroker) -> None:
    result = run_list(broker, "queues", "--vhost", "nowhere")
    assert result.exit_code == 1
    assert "404" in result.output


def test_format_table_right_aligns_numbers() -> None:
    rows = [{"vhost": "/", "name": "a", "type": "classic", "messages": 5, "messages_ready": 5,
             "messages_unacknowledged": 0, "consumers": 12}]
    lines = format_table("queues", rows).splitlines()
    assert lines[0].endswith("consumers") and lines[1].endswith("       12")


def test_columns_choose_the_fields_shown_each_under_its_own_name(broker: EmbeddedBroker) -> None:
    result = run_list(broker, "queues", "--columns", "name,messages,arguments.x-max-length")
    assert result.exit_code == 0, result.output
    assert [line.split() for line in result.output.splitlines()] == [
        ["name", "messages", "arguments.x-max-length"], ["jobs", "2", "1000"]]


def test_objects_in_a_cell_are_compact_json(broker: EmbeddedBroker) -> None:
    result = run_list(broker, "queues", "-c", "name,arguments")
    assert result.output.splitlines()[1].split() == ["jobs", '{"x-max-length":1000}']


def test_json_prints_the_rows_for_scripts(broker: EmbeddedBroker) -> None:
    rows = json.loads(run_list(broker, "queues", "--json").output)
    assert [(row["name"], row["messages_ready"]) for row in rows] == [("jobs", 2)]
    chosen = json.loads(run_list(broker, "queues", "--json", "--columns", "name,messages").output)
    assert chosen == [{"name": "jobs", "messages": 2}]


def test_a_terminal_table_fits_its_width() -> None:
    headings = ["vhost", "name", "messages", "arguments"]
    rows = [["/", "a-queue-name-" * 4, "12", json.dumps({"x-queue-type": "quorum", "x-max-length": 1000})]]
    lines = re.sub(r"\x1b\[[0-9;]*m", "", fitted(headings, rows, 48)).splitlines()  # without the bold
    assert max(len(line.rstrip()) for line in lines) <= 48
    assert len(lines) > 2  # the long cells folded onto more lines rather than widening the table
    assert lines[0].split() == headings


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port held open (listening) by this test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def serve(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "leveret", "serve", "--data-dir", str(tmp_path / "data"), *args],
        capture_output=True, text=True, timeout=60,
    )


def test_serve_on_a_taken_amqp_port_prints_one_line_and_exits_1(tmp_path, taken_port: int) -> None:
    result = serve(tmp_path, "--port", str(taken_port), "--http-port", "-1")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"leveret: cannot listen on 127.0.0.1:{taken_port}: address already in use"]


def test_serve_on_a_taken_http_port_prints_one_line_and_exits_1(tmp_path, taken_port: int) -> None:
    result = serve(tmp_path, "--port", "0", "--http-port", str(taken_port))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"leveret: cannot listen on 127.0.0.1:{taken_port}: address already in use"]


@pytest.fixture
def captured_settings(monkeypatch) -> list:
    """Settings `leveret serve` would run with, captured instead of starting a broker."""
    import logging

    import leveret.server.app

    seen: list = []
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: None)  # keep the test process's logging as it is
    monkeypatch.setattr(leveret.server.app, "run", lambda settings: seen.append(settings) or 0)
    return seen


def test_serve_on_an_ephemeral_amqp_port_also_takes_an_ephemeral_http_port(captured_settings, tmp_path) -> None:
    result = CliRunner().invoke(main, ["serve", "--port", "0", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert captured_settings[0].http_port == 0


def test_serve_http_port_flag_wins(captured_settings, tmp_path) -> None:
    CliRunner().invoke(main, ["serve", "--port", "0", "--http-port", "-1", "--data-dir", str(tmp_path)])
    CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path)])
    assert [s.http_port for s in captured_settings] == [-1, 15672]


def test_connections_channels_consumers_and_bindings_list_from_leveret(broker: EmbeddedBroker) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        channel = conn.channel()
        channel.exchange_declare("cli-ex", "direct")
        channel.queue_bind("jobs", "cli-ex", "job.key")
        channel.basic_consume("jobs", lambda *args: None, consumer_tag="cli-consumer")
        (connection,) = [row[0] for row in (line.split() for line in run_list(broker, "connections", "-c", "name").output
                                            .splitlines()[1:])]
        assert run_list(broker, "consumers").output.splitlines()[1].split()[:3] == ["/", "jobs", "cli-consumer"]
        channels = run_list(broker, "channels", "--columns", "name,consumer_count").output.splitlines()[1:]
        assert [line.split()[-2:] for line in channels] == [["(1)", "1"]] and channels[0].startswith(connection)
        bindings = run_list(broker, "bindings", "--vhost", "/", "-c", "source,destination,routing_key").output
        assert ["cli-ex", "jobs", "job.key"] in [line.split() for line in bindings.splitlines()]
    finally:
        conn.close()
