"""`leveret definitions export|import` against running embedded brokers' management APIs."""

from __future__ import annotations

import json

from click.testing import CliRunner

from leveret.cli import main
from leveret.embedded import EmbeddedBroker

from .api_client import api, call
from .test_definitions import populate


def leveret(broker: EmbeddedBroker, *args: str, stdin: str | None = None):
    return CliRunner().invoke(main, [*args, "--url", f"http://127.0.0.1:{broker.server.http_port}"], input=stdin)


def test_export_then_import_into_another_broker(broker: EmbeddedBroker, tmp_path) -> None:
    populate(api(broker))
    path = tmp_path / "defs.json"
    result = leveret(broker, "definitions", "export", str(path))
    assert result.exit_code == 0 and result.output.startswith("Exported ") and result.output.endswith(
        f"definitions to {path}.\n")
    exported = json.loads(path.read_text())
    assert {q["name"] for q in exported["queues"]} == {"q1", "q2"}
    with EmbeddedBroker() as other:
        result = leveret(other, "definitions", "import", str(path))
        total = sum(len(exported[s]) for s in exported if isinstance(exported[s], list))
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[-1] == f"Imported {total} definitions from {path}."
        assert call(api(other), "GET", "/definitions").body == exported
        # one vhost, through standard output and input
        one = leveret(broker, "definitions", "export", "-", "--vhost", "v1").output
        call(api(other), "PUT", "/vhosts/copy")
        assert leveret(other, "definitions", "import", "-", "--vhost", "copy", stdin=one).exit_code == 0
        assert sorted(other.server.broker.vhosts["copy"].queues) == ["q1", "q2"]


def test_import_failures_are_one_line(broker: EmbeddedBroker, tmp_path) -> None:
    bad = tmp_path / "bad.json"
    for content, message in (
        ("{nope", "is not JSON"),
        ("[]", "is not a definitions file"),
        (json.dumps({"queues": [{"name": "q", "vhost": "nowhere", "durable": True}]}),
         "HTTP 400 ['no_such_vhost', 'nowhere']"),
    ):
        bad.write_text(content)
        result = leveret(broker, "definitions", "import", str(bad))
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1 and message in lines[-1], result.output
    result = leveret(broker, "definitions", "export", str(tmp_path / "x.json"), "--vhost", "nowhere")
    assert result.exit_code == 1 and "vhost 'nowhere' does not exist" in result.output
