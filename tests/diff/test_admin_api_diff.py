"""The management API's users, vhosts and permissions endpoints against RabbitMQ 3.10's: the same sequence
of requests on both, the same status codes and bodies (password hashes are salted, so only their presence is
compared; RabbitMQ's regex error detail is Erlang's, so only its first element).

Skipped when RabbitMQ's management API (127.0.0.1:15672) is not reachable.
"""

from __future__ import annotations

import urllib.parse
import uuid
from typing import Any, Callable, Iterator

import pytest

from leveret.embedded import EmbeddedBroker
from tests.http.api_client import RABBITMQ_API, call, rabbitmq_api_up

# The fields of a vhost both brokers fill the same way (RabbitMQ adds rates, cluster_state, ...).
VHOST_FIELDS = ("name", "description", "tags", "metadata", "tracing")


pytestmark = pytest.mark.skipif(not rabbitmq_api_up(), reason="RabbitMQ's management API is not reachable")


@pytest.fixture(scope="module")
def leveret_api() -> Iterator[str]:
    with EmbeddedBroker() as broker:
        yield f"http://127.0.0.1:{broker.server.http_port}/api"


def _normalise(body: Any) -> Any:
    if isinstance(body, list):
        return [_normalise(item) for item in body]
    if not isinstance(body, dict):
        return body
    if "password_hash" in body:
        return {**body, "password_hash": bool(body["password_hash"])}
    if "tracing" in body:
        return {key: body[key] for key in VHOST_FIELDS}
    if isinstance(body.get("reason"), list) and body["reason"][:1] == ["invalid_regexp"]:
        return {**body, "reason": "invalid_regexp"}
    return body


Step = tuple[str, str, Any, Any]  # method, path, body, auth (None: guest)


def _run(base: str, steps: list[Step]) -> list[tuple[int, Any, bool]]:
    results = []
    for method, path, body, auth in steps:
        answer = call(base, method, path, body, auth=auth or ("guest", "guest"))
        results.append((answer.status, _normalise(answer.body), "WWW-Authenticate" in answer.headers))
    return results


def differential(leveret_api: str, make_steps: Callable[[str, str], list[Step]]) -> list[tuple[int, Any, bool]]:
    """The steps for fresh user and vhost names, on both brokers; the same results from both (RabbitMQ's
    returned). Whatever the steps leave behind is deleted from both."""
    results = {}
    user, vhost = f"adm-{uuid.uuid4().hex[:8]}", f"adm-{uuid.uuid4().hex[:8]}"
    for label, base in (("rabbitmq", RABBITMQ_API), ("leveret", leveret_api)):
        try:
            results[label] = _run(base, make_steps(user, vhost))
        finally:
            call(base, "DELETE", f"/users/{user}")
            call(base, "DELETE", f"/vhosts/{urllib.parse.quote(vhost, safe='')}")
    assert results["leveret"] == results["rabbitmq"]
    return results["rabbitmq"]



def test_user_lifecycle_matches(leveret_api: str) -> None:
    def steps(user: str, vhost: str) -> list[Step]:
        path = f"/users/{user}"
        return [
            ("GET", path, None, None),
            ("PUT", path, {"password": "pw"}, None),
            ("PUT", path, {"password": "pw", "tags": "management"}, None),
            ("PUT", path, {"password": "pw", "tags": "monitoring, management"}, None),
            ("GET", path, None, None),
            ("GET", "/whoami", None, (user, "pw")),
            ("GET", "/users", None, (user, "pw")),
            ("PUT", "/vhosts/x", {}, (user, "pw")),
            ("GET", "/whoami", None, (user, "wrong")),
            ("PUT", path, {"tags": ["a", "b"]}, None),
            ("GET", path, None, None),
            ("PUT", path, {"password_hash": "abc", "tags": ""}, None),
            ("PUT", path, b"not json", None),
            ("DELETE", path, None, None),
            ("DELETE", path, None, None),
        ]

    results = differential(leveret_api, steps)
    assert [status for status, _, _ in results][:4] == [404, 400, 201, 204]


def test_vhost_and_permission_lifecycle_matches(leveret_api: str) -> None:
    def steps(user: str, vhost: str) -> list[Step]:
        v = urllib.parse.quote(vhost, safe="")
        perms, topics = f"/permissions/{v}/{user}", f"/topic-permissions/{v}/{user}"
        full = {"configure": ".*", "write": ".*", "read": ".*"}
        return [
            ("GET", f"/vhosts/{v}", None, None),
            ("PUT", f"/vhosts/{v}", {"description": "d", "tags": "a,b"}, None),
            ("PUT", f"/vhosts/{v}", {"description": "e", "tags": "a,b"}, None),
            ("GET", f"/vhosts/{v}", None, None),
            ("PUT", perms, full, None),
            ("PUT", f"/users/{user}", {"password": "pw", "tags": ""}, None),
            ("GET", perms, None, None),
            ("PUT", perms, {"configure": ".*"}, None),
            ("PUT", perms, {"configure": "(", "write": ".*", "read": ".*"}, None),
            ("PUT", perms, full, None),
            ("PUT", perms, {"configure": "^a", "write": "", "read": ".*"}, None),
            ("GET", perms, None, None),
            ("GET", f"/users/{user}/permissions", None, None),
            ("GET", f"/vhosts/{v}/permissions", None, None),
            ("GET", topics, None, None),
            ("PUT", topics, {"write": "^a", "read": ".*"}, None),
            ("PUT", topics, {"exchange": "amq.topic", "write": "(", "read": ".*"}, None),
            ("PUT", topics, {"exchange": "amq.topic", "write": "^a", "read": ".*"}, None),
            ("PUT", topics, {"exchange": "amq.topic", "write": "^b", "read": ".*"}, None),
            ("GET", topics, None, None),
            ("GET", f"/users/{user}/topic-permissions", None, None),
            ("DELETE", topics, None, None),
            ("DELETE", topics, None, None),
            ("DELETE", perms, None, None),
            ("DELETE", perms, None, None),
            ("DELETE", f"/vhosts/{v}", None, None),
            ("DELETE", f"/vhosts/{v}", None, None),
            ("PUT", perms, full, None),
        ]

    results = differential(leveret_api, steps)
    assert results[1][0] == 201 and results[-1][1] == {"error": "bad_request", "reason": "vhost_or_user_not_found"}


def test_vhost_limits_match(leveret_api: str) -> None:
    def steps(user: str, vhost: str) -> list[Step]:
        v = urllib.parse.quote(vhost, safe="")
        return [
            ("PUT", f"/vhost-limits/{v}/max-queues", {"value": 1}, None),
            ("PUT", f"/vhosts/{v}", {}, None),
            ("GET", f"/vhost-limits/{v}", None, None),
            ("PUT", f"/vhost-limits/{v}/max-queues", {"value": 1}, None),
            ("PUT", f"/vhost-limits/{v}/max-connections", {"value": -1}, None),
            ("PUT", f"/vhost-limits/{v}/max-queues", {}, None),
            ("PUT", f"/vhost-limits/{v}/max-queues", {"value": "x"}, None),
            ("PUT", f"/vhost-limits/{v}/bogus", {"value": 1}, None),
            ("GET", f"/vhost-limits/{v}", None, None),
            ("DELETE", f"/vhost-limits/{v}/max-queues", None, None),
            ("DELETE", f"/vhost-limits/{v}/max-queues", None, None),
            ("GET", f"/vhost-limits/{v}", None, None),
        ]

    results = differential(leveret_api, steps)
    assert results[0] == (404, {"error": "not_found", "reason": "vhost_not_found"}, False)


def test_a_management_user_sees_only_its_vhosts(leveret_api: str) -> None:
    def steps(user: str, vhost: str) -> list[Step]:
        v = urllib.parse.quote(vhost, safe="")
        me = (user, "pw")
        return [
            ("PUT", f"/users/{user}", {"password": "pw", "tags": "management"}, None),
            ("PUT", f"/vhosts/{v}", {}, None),
            ("PUT", f"/permissions/{v}/{user}", {"configure": ".*", "write": ".*", "read": ".*"}, None),
            ("GET", f"/queues/{v}", None, me),
            ("GET", "/queues/%2F", None, me),
            ("GET", "/exchanges/%2F", None, me),
            ("GET", f"/vhosts/{v}", None, me),
            ("GET", "/queues/no-such-vhost", None, me),
        ]

    results = differential(leveret_api, steps)
    assert results[4][0] == 401
