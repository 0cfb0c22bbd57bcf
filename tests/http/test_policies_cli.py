"""`leveret policies set|clear` against a running embedded broker's management API."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from click.testing import CliRunner

from leveret.cli import main
from leveret.embedded import EmbeddedBroker


def leveret(broker: EmbeddedBroker, *args: str):
    return CliRunner().invoke(main, [*args, "--url", f"http://127.0.0.1:{broker.server.http_port}"])


def test_policies_set_and_clear(broker: EmbeddedBroker) -> None:
    result = leveret(broker, "policies", "set", "short", "^jobs", '{"max-length": 2}', "--priority", "3",
                     "--apply-to", "queues")
    assert result.exit_code == 0 and result.output == "Set policy 'short' for pattern '^jobs' in vhost '/'.\n"
    stored = broker.server.broker.policies.get("/", "short")
    assert (stored.pattern, stored.definition, stored.priority, stored.apply_to) == (
        "^jobs", {"max-length": 2}, 3, "queues")
    listed = CliRunner().invoke(main, ["list", "policies", "--url", f"http://127.0.0.1:{broker.server.http_port}"])
    assert "short" in listed.output and "^jobs" in listed.output
    result = leveret(broker, "policies", "clear", "short")
    assert result.exit_code == 0 and broker.server.broker.policies.get("/", "short") is None


def test_policy_refusals_are_one_line(broker: EmbeddedBroker) -> None:
    for args, message in (
        (("set", "p", ".*", '{"max-length": -1}'), "HTTP 400 Validation failed -1 is not a valid maximum length"),
        (("set", "p", ".*", "{nope"), "DEFINITION is not JSON"),
        (("set", "p", ".*", '{"expires": 1}', "--vhost", "nowhere"), "vhost 'nowhere' does not exist"),
        (("clear", "p"), "no policy 'p' in vhost '/'"),
    ):
        result = leveret(broker, "policies", *args)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1 and message in lines[0], result.output


@pytest.mark.skipif(shutil.which("rabbitmqadmin") is None, reason="rabbitmqadmin is not installed")
def test_rabbitmqadmin_declares_lists_and_deletes_policies(broker: EmbeddedBroker) -> None:
    base = ["rabbitmqadmin", "-H", "127.0.0.1", "-P", str(broker.server.http_port)]

    def run(*args: str) -> str:
        done = subprocess.run([*base, *args], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert run("declare", "policy", "name=short", "pattern=^jobs", 'definition={"message-ttl": 60000}',
               "apply-to=queues", "priority=2") == "policy declared\n"
    stored = broker.server.broker.policies.get("/", "short")
    assert (stored.definition, stored.apply_to, stored.priority) == ({"message-ttl": 60000}, "queues", 2)
    assert "short" in run("list", "policies")
    assert run("delete", "policy", "name=short") == "policy deleted\n"
    assert broker.server.broker.policies.list() == []
