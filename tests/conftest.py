"""Fixtures shared by every test suite.

`amqp_url` and `leveret_broker` come from leveret's pytest plugin (`leveret/pytest_plugin.py`);
this file adds what the cross-cutting suites (tests/clients, tests/diff, tests/server) need on top:
the URL of the local RabbitMQ that serves as the reference, and unique names so that the same
tests can run against a long-lived broker (`--amqp-url`) without colliding with earlier runs.

It also guards every test: a broker that logs a traceback, or an internal error (an unexpected
exception on client input, see leveret/server/errorlog.py), fails the test during which it did. A test
that provokes one on purpose says so with `@pytest.mark.internal_error`.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Callable

import pytest

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "internal_error: the test provokes a broker traceback or internal error on purpose",
    )


class _BrokerTracebacks(logging.Handler):
    """Collects log records that mean a broker bug: a traceback from leveret, or an internal error line."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "internal_error", False):
            self.found.append(record.getMessage())
            return
        if not record.exc_info:
            return
        text = logging.Formatter().format(record)
        # leveret's own loggers, and asyncio's reports of a leveret callback or protocol that raised;
        # tracebacks that clients log about their own connections are theirs.
        if record.name.startswith("leveret") or "leveret" in text:
            self.found.append(text)


@pytest.fixture(autouse=True)
def _no_broker_tracebacks(request: pytest.FixtureRequest):
    """Fail a test during which an in-process broker logged a traceback or an internal error."""
    handler = _BrokerTracebacks()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
    if handler.found and request.node.get_closest_marker("internal_error") is None:
        shown = "\n---\n".join(text[-3000:] for text in handler.found[:3])
        pytest.fail(f"the broker logged {len(handler.found)} traceback(s) or internal error(s):\n{shown}",
                    pytrace=False)


def _rabbitmq_reachable(host: str = "127.0.0.1", port: int = 5672) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def _rabbitmq_up() -> bool:
    # Probed once per session: a refused connect is cheap, but a filtered port costs the full second.
    return _rabbitmq_reachable()


@pytest.fixture
def rabbitmq_url(_rabbitmq_up: bool) -> str:
    """URL of the reference RabbitMQ on 127.0.0.1:5672; the test is skipped when it is not running."""
    if not _rabbitmq_up:
        pytest.skip("RabbitMQ is not reachable on 127.0.0.1:5672")
    return RABBITMQ_URL


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Factory of names unique to this test run: `unique("q")` -> "q.test_name.1a2b3c4d".

    Tests may run against a shared broker, so a name must never repeat across runs; the test name
    is kept in it so that leftovers on a shared broker point at the test that left them.
    """
    run = uuid.uuid4().hex[:8]
    test = request.node.name.split("[")[0][:40]

    def make(prefix: str) -> str:
        return f"{prefix}.{test}.{run}"

    return make


def pika_parameters(url: str):
    """Connection parameters with short, bounded timeouts: a hung broker must fail a test, not stall it."""
    import pika

    params = pika.URLParameters(url)
    # Generous bounds: the reference RabbitMQ is shared by everyone's tests and is at times slow to
    # finish a handshake; a broker that never answers still fails the test within 20 s.
    params.socket_timeout = 10
    params.stack_timeout = 20
    params.blocked_connection_timeout = 20
    params.connection_attempts = 1
    return params


class Cleanup:
    """Deletes the queues and exchanges a test declared, on whichever broker it declared them.

    Teardown happens over a fresh connection because the test's own connections may be closed
    (often on purpose). Failures are swallowed: an in-process broker may already be gone, and a
    leftover on a shared broker has a unique name, so it cannot disturb a later test.
    """

    def __init__(self) -> None:
        self._items: list[tuple[str, str, str]] = []

    def queue(self, url: str, name: str) -> str:
        self._items.append((url, "queue", name))
        return name

    def exchange(self, url: str, name: str) -> str:
        self._items.append((url, "exchange", name))
        return name

    def run(self) -> None:
        import pika

        by_url: dict[str, list[tuple[str, str]]] = {}
        for url, kind, name in self._items:
            by_url.setdefault(url, []).append((kind, name))
        for url, items in by_url.items():
            try:
                connection = pika.BlockingConnection(pika_parameters(url))
            except Exception:
                continue
            try:
                channel = connection.channel()
                for kind, name in items:
                    try:
                        if kind == "queue":
                            channel.queue_delete(name)
                        else:
                            channel.exchange_delete(name)
                    except pika.exceptions.ChannelClosed:
                        channel = connection.channel()
            except Exception:
                pass
            finally:
                try:
                    connection.close()
                except Exception:
                    pass


@pytest.fixture
def cleanup():
    """A `Cleanup` whose registrations are deleted after the test, pass or fail."""
    registry = Cleanup()
    yield registry
    registry.run()


@pytest.fixture
def connect():
    """Factory of pika BlockingConnections (`connect(url)`), all closed after the test."""
    import pika

    opened: list[pika.BlockingConnection] = []

    def make(url: str) -> pika.BlockingConnection:
        connection = pika.BlockingConnection(pika_parameters(url))
        opened.append(connection)
        return connection

    yield make
    for connection in opened:
        try:
            if connection.is_open:
                connection.close()
        except Exception:
            pass
