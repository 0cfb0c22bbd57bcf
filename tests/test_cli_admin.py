"""`leveret users|vhosts|permissions|topic-permissions` against a running embedded broker's management API."""

from __future__ import annotations

import socket
from typing import Iterator

import pika
import pytest
from click.testing import CliRunner

from leveret.cli import main
from leveret.embedded import EmbeddedBroker


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def leveret(broker: EmbeddedBroker, *args: str, auth: tuple[str, str] = ("guest", "guest")):
    url = f"http://127.0.0.1:{broker.server.http_port}"
    command = [*args, "--url", url, "--user", auth[0], "--password", auth[1]]
    return CliRunner().invoke(main, command)


def ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def fails(result, message: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


def test_users_add_list_passwd_tags_delete(broker: EmbeddedBroker) -> None:
    registry = broker.server.users
    ok(leveret(broker, "users", "add", "ann", "pw1", "--tags", "management,monitoring"))
    assert registry.users["ann"].tags == ("management", "monitoring")
    table = ok(leveret(broker, "users", "list")).splitlines()
    assert table[0].split() == ["user", "tags"]
    assert ["ann", "management,monitoring"] in [line.split() for line in table]
    fails(leveret(broker, "users", "add", "ann", "pw"), "user 'ann' already exists")
    ok(leveret(broker, "users", "passwd", "ann", "pw2"))
    assert registry.authenticate("ann", "pw2", from_loopback=True) is not None
    assert registry.users["ann"].tags == ("management", "monitoring")
    ok(leveret(broker, "users", "tags", "ann", "administrator"))
    assert registry.users["ann"].tags == ("administrator",)
    assert registry.authenticate("ann", "pw2", from_loopback=True) is not None
    ok(leveret(broker, "users", "list", auth=("ann", "pw2")))
    ok(leveret(broker, "users", "delete", "ann"))
    assert "ann" not in registry.users


def test_unknown_user_is_one_clear_line(broker: EmbeddedBroker) -> None:
    for command in (("users", "delete", "nobody"), ("users", "passwd", "nobody", "x"), ("users", "tags", "nobody"),
                    ("permissions", "set", "nobody", ".*", ".*", ".*")):
        fails(leveret(broker, *command), "user 'nobody' does not exist")


def test_vhosts_add_list_delete(broker: EmbeddedBroker) -> None:
    ok(leveret(broker, "vhosts", "add", "team", "--description", "the team's"))
    assert broker.server.users.vhosts["team"].description == "the team's"
    rows = [line.split() for line in ok(leveret(broker, "vhosts", "list")).splitlines()]
    assert rows[0] == ["name", "description", "messages"] and rows[2][0] == "team"
    fails(leveret(broker, "vhosts", "add", "team"), "vhost 'team' already exists")
    ok(leveret(broker, "vhosts", "delete", "team"))
    assert "team" not in broker.server.broker.vhosts
    fails(leveret(broker, "vhosts", "delete", "team"), "vhost 'team' does not exist")


def test_vhost_limits_set_list_clear(broker: EmbeddedBroker) -> None:
    ok(leveret(broker, "vhosts", "set-limit", "/", "max-queues", "3"))
    ok(leveret(broker, "vhosts", "set-limit", "/", "max-connections", "-1"))
    assert broker.server.users.vhosts["/"].limits == {"max-queues": 3, "max-connections": -1}
    rows = [line.split() for line in ok(leveret(broker, "vhosts", "limits", "/")).splitlines()]
    assert rows == [["vhost", "limit", "value"], ["/", "max-connections", "-1"], ["/", "max-queues", "3"]]
    ok(leveret(broker, "vhosts", "clear-limit", "/", "max-queues"))
    assert broker.server.users.vhosts["/"].limits == {"max-connections": -1}
    assert broker.server.broker.vhosts["/"].max_queues is None
    fails(leveret(broker, "vhosts", "set-limit", "nowhere", "max-queues", "1"), "vhost 'nowhere' does not exist")
    fails(leveret(broker, "vhosts", "limits", "nowhere"), "vhost 'nowhere' does not exist")


def test_user_limits_set_list_clear(broker: EmbeddedBroker) -> None:
    ok(leveret(broker, "users", "set-limit", "guest", "max-channels", "5"))
    ok(leveret(broker, "users", "set-limit", "guest", "max-connections", "-1"))
    assert broker.server.users.users["guest"].limits == {"max-channels": 5, "max-connections": -1}
    rows = [line.split() for line in ok(leveret(broker, "users", "limits", "guest")).splitlines()]
    assert rows == [["user", "limit", "value"], ["guest", "max-channels", "5"], ["guest", "max-connections", "-1"]]
    ok(leveret(broker, "users", "clear-limit", "guest", "max-channels"))
    assert broker.server.users.users["guest"].limits == {"max-connections": -1}
    fails(leveret(broker, "users", "set-limit", "nobody", "max-channels", "1"), "user 'nobody' does not exist")
    fails(leveret(broker, "users", "limits", "nobody"), "user 'nobody' does not exist")


def test_permissions_set_list_clear_and_they_apply(broker: EmbeddedBroker) -> None:
    ok(leveret(broker, "users", "add", "app", "pw"))
    ok(leveret(broker, "permissions", "set", "app", "^app-", ".*", "", "--vhost", "/"))
    rows = [line.split() for line in ok(leveret(broker, "permissions", "list", "-p", "/")).splitlines()]
    assert rows[0] == ["user", "vhost", "configure", "write", "read"] and ["app", "/", "^app-", ".*"] in rows
    connection = pika.BlockingConnection(pika.URLParameters(f"amqp://app:pw@127.0.0.1:{broker.port}/%2F"))
    connection.close()
    fails(leveret(broker, "permissions", "set", "app", "(", ".*", ".*"), "invalid regular expression '('")
    fails(leveret(broker, "permissions", "set", "app", ".*", ".*", ".*", "-p", "nowhere"),
          "vhost 'nowhere' does not exist")
    ok(leveret(broker, "permissions", "clear", "app"))
    assert ("app", "/") not in broker.server.users.permissions
    fails(leveret(broker, "permissions", "clear", "app"), "user 'app' has no permissions in vhost '/'")


def test_topic_permissions_set_list_clear(broker: EmbeddedBroker) -> None:
    ok(leveret(broker, "topic-permissions", "set", "guest", "amq.topic", "^a", ".*"))
    rows = [line.split() for line in ok(leveret(broker, "topic-permissions", "list")).splitlines()]
    assert rows == [["user", "vhost", "exchange", "write", "read"], ["guest", "/", "amq.topic", "^a", ".*"]]
    fails(leveret(broker, "topic-permissions", "set", "guest", "amq.topic", "[", ".*"), "invalid regular expression")
    ok(leveret(broker, "topic-permissions", "clear", "guest"))
    assert broker.server.users.topic_permissions == {}
    fails(leveret(broker, "topic-permissions", "clear", "guest"), "has no topic permissions")


def test_refused_credentials_and_non_administrators_fail(broker: EmbeddedBroker) -> None:
    fails(leveret(broker, "users", "list", auth=("guest", "wrong")), "HTTP 401 access refused")
    broker.server.users.add_user("mgr", "pw", ("management",))
    fails(leveret(broker, "vhosts", "add", "x", auth=("mgr", "pw")), "Not administrator user")
    assert "x" not in broker.server.users.vhosts


def test_broker_not_running_is_one_line() -> None:
    with socket.socket() as probe:  # a port nobody listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        result = CliRunner().invoke(main, ["users", "list", "--url", f"http://127.0.0.1:{port}"])
    fails(result, "is the broker running?")
