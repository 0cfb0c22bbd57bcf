"""The management HTTP API as the command line calls it: one request, JSON in and out, and every failure
as one line of reason (a `click.ClickException`: the CLI prints it and exits 1).

Only the standard library's urllib: the CLI must not need aiohttp's event loop to send one request.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

import click


# 401 reasons given to right credentials without the needed tag.
ADMIN_ONLY = ("Not administrator user", "Not management user")


class NotFound(click.ClickException):
    """A 404: the caller says what was not found."""


def segment(name: str) -> str:
    """A name as one URL path segment ("/" is %2F, as RabbitMQ's API wants vhost names)."""
    return quote(name, safe="")


def _reason(status: int, body: bytes) -> str:
    """One line for a refused request: the status and RabbitMQ's reason, said plainly where it is terse."""
    try:
        reason = json.loads(body).get("reason")
    except (ValueError, AttributeError):
        reason = None
    if status == 401:
        detail = "access refused: check --user and --password"
        return f"HTTP 401 {detail} ({reason})" if reason in ADMIN_ONLY else f"HTTP 401 {detail}"
    if isinstance(reason, list) and reason[:1] == ["invalid_regexp"]:
        return f"HTTP {status} invalid regular expression {reason[1]!r}" + (f": {reason[2]}" if len(reason) > 2 else "")
    # One line: RabbitMQ's validation reasons span several ("Validation failed\n\n...").
    return f"HTTP {status} {' '.join(str(reason).split())}" if reason else f"HTTP {status}"


class ManagementClient:
    """Requests to one broker's management API (`url` such as http://127.0.0.1:15672) as one user."""

    def __init__(self, url: str, user: str, password: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """The decoded JSON answer (None when empty); NotFound for a 404, ClickException for other failures."""
        url = self.url + path
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Authorization": self._auth, "Content-Type": "application/json"}
        if method != "DELETE":  # RabbitMQ answers a purge that asks for JSON back 406: it sends nothing back
            headers["Accept"] = "application/json"
        request = urllib.request.Request(url, method=method, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise NotFound(f"{url}: HTTP 404 not found") from None
            raise click.ClickException(_reason(exc.code, exc.read())) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise click.ClickException(f"cannot reach {self.url} ({reason}): is the broker running?") from None
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise click.ClickException(f"{url}: the answer is not JSON") from None

    def get(self, path: str) -> Any:
        return self.request("GET", path)
