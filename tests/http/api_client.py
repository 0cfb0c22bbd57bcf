"""A tiny management API client for tests: one request, its status, headers and decoded body."""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.request
from typing import Any, NamedTuple


class Answer(NamedTuple):
    status: int
    headers: Any
    body: Any  # the decoded JSON, or None for an empty body


def call(base: str, method: str, path: str, body: Any = None,
         auth: tuple[str, str] | None = ("guest", "guest")) -> Answer:
    """`method` `base + path` with `body` as JSON; never raises for an HTTP error status."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(base + path, method=method, data=data)
    request.add_header("Content-Type", "application/json")
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, headers, raw = exc.code, exc.headers, exc.read()
    return Answer(status, headers, json.loads(raw) if raw.strip() else None)


def api(broker: Any) -> str:
    """The /api base URL of an embedded broker."""
    return f"http://127.0.0.1:{broker.server.http_port}/api"


RABBITMQ_API = "http://127.0.0.1:15672/api"


def rabbitmq_api_up() -> bool:
    """Whether the local RabbitMQ's management API (the differential tests' reference) is reachable."""
    try:
        socket.create_connection(("127.0.0.1", 15672), timeout=1).close()
        return True
    except OSError:
        return False
