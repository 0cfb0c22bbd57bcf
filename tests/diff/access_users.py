"""A limited user on both brokers, for the differential tests of permissions.

`access_differential(permissions, scenario, topics=...)` creates one user with the same name, password,
permissions and topic permissions on RabbitMQ (through its management API: the same change as
`rabbitmqctl add_user` / `set_permissions` / `set_topic_permissions`, without a CLI start per call) and on
the leveret under test, runs `scenario(user_url, admin_url, names)` against each, deletes the user again
and asserts both results are equal.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from differential import Names

RABBITMQ_API = "http://127.0.0.1:15672/api"
PASSWORD = "limited-pw"


def _rabbitmq(method: str, path: str, body: Any = None) -> None:
    request = urllib.request.Request(RABBITMQ_API + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
    request.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


class RabbitMQUsers:
    def create(self, user: str, vhost: str, permissions: tuple[str, str, str] | None,
               topics: dict[str, tuple[str, str]]) -> None:
        quoted_user, quoted_vhost = (urllib.parse.quote(x, safe="") for x in (user, vhost))
        _rabbitmq("PUT", f"/users/{quoted_user}", {"password": PASSWORD, "tags": ""})
        if permissions is not None:
            configure, write, read = permissions
            _rabbitmq("PUT", f"/permissions/{quoted_vhost}/{quoted_user}",
                      {"configure": configure, "write": write, "read": read})
        for exchange, (t_write, t_read) in topics.items():
            _rabbitmq("PUT", f"/topic-permissions/{quoted_vhost}/{quoted_user}",
                      {"exchange": exchange, "write": t_write, "read": t_read})

    def delete(self, user: str) -> None:
        """Delete the user; already gone is fine (a scenario may have deleted it)."""
        try:
            _rabbitmq("DELETE", f"/users/{urllib.parse.quote(user, safe='')}")
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise


class LeveretUsers:
    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def create(self, user: str, vhost: str, permissions: tuple[str, str, str] | None,
               topics: dict[str, tuple[str, str]]) -> None:
        self.registry.add_user(user, PASSWORD)
        if permissions is not None:
            self.registry.set_permissions(user, vhost, *permissions)
        for exchange, (t_write, t_read) in topics.items():
            self.registry.set_topic_permissions(user, vhost, exchange, t_write, t_read)

    def delete(self, user: str) -> None:
        if user in self.registry.users:
            self.registry.delete_user(user)


def user_url(admin_url: str, user: str) -> str:
    parts = urllib.parse.urlsplit(admin_url)
    netloc = f"{urllib.parse.quote(user, safe='')}:{PASSWORD}@{parts.hostname}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


Scenario = Callable[[str, str, Names], Any]


@pytest.fixture
def access_differential(request: pytest.FixtureRequest, rabbitmq_url: str) -> Callable[..., Any]:
    """`access_differential(permissions, scenario, topics=None)`: equal results on both brokers (see above);
    permissions None: the user has no permission row."""
    external = request.config.getoption("--amqp-url")
    if external:
        brokers = [("broker under test", external, RabbitMQUsers())]
    else:
        leveret = request.getfixturevalue("leveret_broker")
        brokers = [("broker under test", leveret.url, LeveretUsers(leveret.server.users))]
    brokers.insert(0, ("rabbitmq", rabbitmq_url, RabbitMQUsers()))

    def run(permissions: tuple[str, str, str] | None, scenario: Scenario,
            topics: dict[str, tuple[str, str]] | None = None, vhost: str = "/", pass_users: bool = False) -> Any:
        """`pass_users`: the scenario takes a fourth argument, the broker's users (`delete(user)`)."""
        user = f"diff-user-{uuid.uuid4().hex[:8]}"
        results = {}
        for label, admin_url, users in brokers:
            users.create(user, vhost, permissions, topics or {})
            try:
                names = Names()
                extra = (users,) if pass_users else ()
                results[label] = names.normalise(scenario(user_url(admin_url, user), admin_url, names, *extra))
            finally:
                users.delete(user)
        assert results["broker under test"] == results["rabbitmq"]
        return results["rabbitmq"]

    return run
