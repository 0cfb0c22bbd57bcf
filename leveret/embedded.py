"""A broker inside your own process, on an ephemeral port: for tests and for applications that embed one.

`EmbeddedBroker` runs the broker on a thread with its own event loop, so blocking clients (pika's
BlockingConnection, kombu, Celery) can talk to it from the calling thread. `AsyncEmbeddedBroker` runs it on
the caller's running loop. Both stop every connection and remove a temporary data directory on exit.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from typing import Any
from urllib.parse import quote

from leveret.config import Settings, check_setting

_START_TIMEOUT = 30.0


def _url(host: str, port: int, settings: Settings) -> str:
    vhost = quote(settings.default_vhost, safe="")
    return f"amqp://{settings.default_user}:{settings.default_pass}@{host}:{port}/{vhost}"


class _Base:
    """Settings and data-directory handling shared by the sync and async variants."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, data_dir: str | None = None,
                 file_io: Any = None, **settings: Any) -> None:
        """`file_io`: a leveret.store.fsio.FileIO for every store write (default: the real file system)."""
        # The management API too listens on an ephemeral port, so embedded brokers never collide on 15672.
        settings.setdefault("http_port", 0)
        settings.setdefault("kafka_port", 0)  # and the Kafka listener (kafka_bootstrap)
        # Checked as strictly as `leveret serve` checks its settings, before anything is created.
        checked = {name: check_setting(name, value, "embedded broker argument")
                   for name, value in {"host": host, "port": port, **settings}.items()}
        self._own_dir = data_dir is None
        self.file_io = file_io
        self.data_dir = data_dir if data_dir is not None else tempfile.mkdtemp(prefix="leveret-")
        self.settings = Settings(data_dir=self.data_dir, **checked)
        self.server: Any = None
        self.port: int = 0
        self.ssl_port: int | None = None  # the amqps listener's port, with ssl_port=0 (or another) given
        self.kafka_port: int | None = None  # the Kafka listener's port (None with kafka_port=-1)
        self.host = host

    @property
    def url(self) -> str:
        """The AMQP URL of the running broker, for the default user and vhost."""
        return _url(self.host, self.port, self.settings)

    @property
    def ssl_url(self) -> str:
        """The amqps URL of the running broker's TLS listener, for the default user and vhost."""
        if self.ssl_port is None:
            raise RuntimeError("this broker has no amqps listener (pass ssl_port=0 and the ssl_* settings)")
        return "amqps" + _url(self.host, self.ssl_port, self.settings)[4:]

    @property
    def kafka_bootstrap(self) -> str:
        """host:port of the running broker's Kafka listener, for Kafka clients' bootstrap servers."""
        if self.kafka_port is None:
            raise RuntimeError("this broker has no Kafka listener (kafka_port is negative)")
        return f"{self.host}:{self.kafka_port}"

    def _cleanup(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class EmbeddedBroker(_Base):
    """A broker on a background thread; use as a context manager or call start()/stop()."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> "EmbeddedBroker":
        self._thread = threading.Thread(target=self._run, name="leveret-embedded", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            raise RuntimeError("embedded broker did not start in time")
        if self._error is not None:
            # No stop() follows a start that raised (a `with` block never begins): leave nothing behind.
            self._thread.join(_START_TIMEOUT)
            self._thread = None
            self._cleanup()
            raise RuntimeError("embedded broker failed to start") from self._error
        return self

    def _run(self) -> None:
        from leveret.server.app import Server  # only the embedding entry points import the server

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self.server = Server(self.settings, file_io=self.file_io)
            loop.run_until_complete(self.server.start())
            self.port = self.server.port
            self.ssl_port = self.server.ssl_port
            self.kafka_port = self.server.kafka_port
        except BaseException as exc:  # reported to the starting thread, which raises it
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.server.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_START_TIMEOUT)
        self._thread = None
        self._cleanup()

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class AsyncEmbeddedBroker(_Base):
    """A broker on the caller's running event loop; use with `async with`."""

    async def start(self) -> "AsyncEmbeddedBroker":
        from leveret.server.app import Server

        self.server = Server(self.settings, file_io=self.file_io)
        await self.server.start()
        self.port = self.server.port
        self.ssl_port = self.server.ssl_port
        self.kafka_port = self.server.kafka_port
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None
        self._cleanup()

    async def __aenter__(self) -> "AsyncEmbeddedBroker":
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
