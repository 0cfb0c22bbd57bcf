"""Requests no route of the management API matches, against RabbitMQ 3.10's: the status, the body and the
`allow` header, with no credentials, wrong ones and good ones. RabbitMQ answers them before asking who the
client is (its catch-all resource refuses other methods than GET, HEAD and OPTIONS with 405, then finds
nothing: 404), so credentials change nothing. Skipped when RabbitMQ's management API is not reachable."""

from __future__ import annotations

from typing import Iterator

import pytest

from leveret.embedded import EmbeddedBroker
from tests.http.api_client import RABBITMQ_API, api, call, rabbitmq_api_up

pytestmark = pytest.mark.skipif(not rabbitmq_api_up(), reason="RabbitMQ's management API is not reachable")

CREDENTIALS = {"none": None, "wrong": ("guest", "wrong"), "good": ("guest", "guest")}
REQUESTS = [  # (method, path below /api)
    ("GET", "/nonexistent"),
    ("GET", "/overview/x"),
    ("GET", "/nodes/a/b/c"),
    ("GET", "/cluster-name/x"),
    ("GET", "/health/checks/nope"),
    ("GET", "/users/guest/x"),
    ("GET", "/queues/x/q/nonexistent/x/y"),
    ("GET", "/exchanges/x/amq.direct/bindings/nope"),
    ("GET", "/nonexistent?columns=name"),
    ("GET", "/queues/%2F/q/nonexistent"),  # an encoded slash in a path no route takes: 400, no body
    ("GET", "/nope%2f"),
    # empty segments: RabbitMQ's router takes these as empty names (so asks for credentials), or not
    ("GET", "/queues//"),  # what Flower asks for the default vhost
    ("GET", "/queues//q1"),
    ("GET", "/exchanges//x"),
    ("GET", "/vhosts//"),
    ("DELETE", "/queues//q1"),
    ("GET", "/nope//"),
    ("GET", "//overview"),
    ("GET", "/queues//x/y/z"),
    ("HEAD", "/nonexistent"),
    ("OPTIONS", "/nonexistent"),
    ("POST", "/nonexistent"),
    ("PUT", "/overview/x"),
    ("DELETE", "/queues/%2F/q/nonexistent"),
    # known paths, methods they do not take: `allow` names the path's own methods
    ("PATCH", "/overview"),
    ("POST", "/cluster-name"),
    ("OPTIONS", "/overview"),
    ("OPTIONS", "/queues/%2F/nope"),
]


@pytest.fixture(scope="module")
def leveret_api() -> Iterator[str]:
    with EmbeddedBroker() as broker:
        yield api(broker)


def answer(base: str, method: str, path: str, auth: tuple[str, str] | None) -> tuple:
    got = call(base, method, path, auth=auth)
    allow = got.headers.get("allow")
    return got.status, got.body, None if allow is None else sorted(m.strip() for m in allow.split(","))


@pytest.mark.parametrize("who", CREDENTIALS)
@pytest.mark.parametrize("method,path", REQUESTS, ids=[f"{m} {p}" for m, p in REQUESTS])
def test_an_unmatched_request_is_answered_as_rabbitmq_answers_it(leveret_api: str, method: str, path: str,
                                                                  who: str) -> None:
    auth = CREDENTIALS[who]
    assert answer(leveret_api, method, path, auth) == answer(RABBITMQ_API, method, path, auth)


@pytest.mark.parametrize("who", ["none", "wrong"])
def test_a_known_path_without_good_credentials_is_refused_as_rabbitmq_refuses_it(leveret_api: str, who: str) -> None:
    # No credentials: the challenge alone; wrong ones: the challenge and {"error": ..., "reason": "Login failed"}.
    auth = CREDENTIALS[who]
    mine, theirs = call(leveret_api, "GET", "/overview", auth=auth), call(RABBITMQ_API, "GET", "/overview", auth=auth)
    assert (mine.status, mine.body) == (theirs.status, theirs.body)
    assert mine.headers["www-authenticate"].startswith("Basic realm=")
