"""User limits (max-connections, max-channels) against RabbitMQ 3.10: the management API's
`/api/user-limits` answers, and the refusals an AMQP client meets, on both brokers with the same steps.

Skipped when RabbitMQ's management API (127.0.0.1:15672) is not reachable. Each test makes its own user
and vhost on both brokers and deletes them (tests/diff/test_admin_api_diff.py's `differential`).
"""

from __future__ import annotations

import urllib.parse

import pika
import pytest

from tests.diff.test_admin_api_diff import differential, leveret_api, pytestmark  # noqa: F401  (fixture, skip mark)
from tests.http.api_client import call

PASSWORD = "limited-pw"


def test_the_user_limits_api_answers_alike(leveret_api):
    def steps(user: str, vhost: str) -> list:
        limit = f"/user-limits/{user}"
        monitor = (user, PASSWORD)
        return [
            ("PUT", f"/users/{user}", {"password": PASSWORD, "tags": "management"}, None),
            ("GET", limit, None, None),
            ("PUT", f"{limit}/max-connections", {"value": 3}, None),
            ("PUT", f"{limit}/max-channels", {"value": 7}, None),
            ("GET", limit, None, None),
            ("GET", f"/users/{user}", None, None),
            ("PUT", f"/users/{user}", {"password": PASSWORD, "tags": "management"}, None),  # keeps its limits
            ("GET", limit, None, None),
            ("PUT", f"{limit}/max-connections", {"value": "x"}, None),
            ("PUT", f"{limit}/max-connections", {"value": True}, None),
            ("PUT", f"{limit}/max-queues", {"value": 3}, None),
            ("PUT", f"{limit}/max-channels", {}, None),
            ("PUT", f"/user-limits/{user}-missing/max-channels", {"value": 3}, None),
            ("GET", f"/user-limits/{user}-missing", None, None),
            ("PUT", f"{limit}/max-channels", {"value": 1}, monitor),  # not an administrator
            ("DELETE", f"{limit}/max-channels", None, None),
            ("DELETE", f"{limit}/max-channels", None, None),  # not set: 204 all the same
            ("DELETE", f"{limit}/max-queues", None, None),
            ("GET", limit, None, None),
            ("PUT", f"{limit}/max-connections", {"value": -1}, None),
            ("GET", limit, None, None),
            # What a user tagged only `management` may read: every user's limits, the limits of the vhosts
            # it may enter, and no node.
            ("GET", limit, None, monitor),
            ("PUT", f"/vhosts/{vhost}", {}, None),
            ("PUT", f"/vhost-limits/{vhost}/max-queues", {"value": 5}, None),
            ("GET", f"/vhost-limits/{vhost}", None, monitor),
            ("PUT", f"/permissions/{vhost}/{user}", {"configure": ".*", "write": ".*", "read": ".*"}, None),
            ("GET", f"/vhost-limits/{vhost}", None, monitor),
            ("GET", f"/vhost-limits/{vhost}-missing", None, monitor),
            ("GET", "/nodes", None, monitor),
        ]

    results = differential(leveret_api, steps)
    assert results[4][1] == [{"user": results[4][1][0]["user"], "value": {"max-connections": 3, "max-channels": 7}}]


def _amqp_port_of(api: str) -> int:
    overview = call(api, "GET", "/overview").body
    return next(listener["port"] for listener in overview["listeners"] if listener["protocol"] == "amqp")


def _open(port: int, user: str, vhost: str) -> tuple[str, pika.BlockingConnection | None]:
    parameters = pika.ConnectionParameters("127.0.0.1", port, vhost, pika.PlainCredentials(user, PASSWORD),
                                           connection_attempts=1, socket_timeout=10)
    try:
        return "open", pika.BlockingConnection(parameters)
    except pika.exceptions.AMQPConnectionError as exc:
        return f"{type(exc).__name__}: {exc}", None


def _limits_scenario(api: str, user: str, vhost: str) -> list[str]:
    """A user limited to one connection and two channels, with full rights in `vhost` and none in
    `vhost`-closed: what its connections and channels meet, in order."""
    q = urllib.parse.quote
    closed = f"{vhost}-closed"
    for path, body in ((f"/users/{user}", {"password": PASSWORD, "tags": ""}), (f"/vhosts/{q(vhost, safe='')}", {}),
                       (f"/vhosts/{q(closed, safe='')}", {}),
                       (f"/permissions/{q(vhost, safe='')}/{user}", {"configure": ".*", "write": ".*", "read": ".*"}),
                       (f"/user-limits/{user}/max-connections", {"value": 1}),
                       (f"/user-limits/{user}/max-channels", {"value": 2})):
        assert call(api, "PUT", path, body).status in (201, 204), path
    port = _amqp_port_of(api)
    seen = []
    first, connection = _open(port, user, vhost)
    seen.append(first)
    try:
        # A second connection: to the same vhost, a missing one, one without permissions (the order of checks).
        for target in (vhost, f"{vhost}-missing", closed):
            outcome, extra = _open(port, user, target)
            seen.append(outcome)
            if extra is not None:
                extra.close()
        channels = [connection.channel() for _ in range(2)]
        seen.append(f"{len(channels)} channels")
        try:
            connection.channel()
            seen.append("third channel open")
        except pika.exceptions.AMQPConnectionError as exc:
            seen.append(f"third channel: {type(exc).__name__}: {exc}")
    finally:
        if connection.is_open:
            connection.close()
        call(api, "DELETE", f"/vhosts/{q(closed, safe='')}")
    # The limits gone, a second connection opens.
    call(api, "DELETE", f"/user-limits/{user}/max-connections")
    one, a = _open(port, user, vhost)
    two, b = _open(port, user, vhost)
    seen.append(f"without limits: {one}, {two}")
    for c in (a, b):
        if c is not None:
            c.close()
    return seen


def test_a_limited_users_connections_and_channels_are_refused_alike(leveret_api):
    results = {}
    for number, (label, api) in enumerate((("rabbitmq", "http://127.0.0.1:15672/api"), ("leveret", leveret_api))):
        # Names without "leveret" in them: conftest.py takes a logged traceback naming leveret for the broker's.
        user, vhost = f"ulim{number}", f"ulim{number}-vhost"
        try:
            results[label] = [text.replace(user, "U") for text in _limits_scenario(api, user, vhost)]
        finally:
            call(api, "DELETE", f"/users/{user}")
            call(api, "DELETE", f"/vhosts/{urllib.parse.quote(vhost, safe='')}")
    assert results["leveret"] == results["rabbitmq"]
    assert "user connection limit (1) is reached" in results["leveret"][1]
    assert "maximum allowed user limit of (2)" in results["leveret"][5]
