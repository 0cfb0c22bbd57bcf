"""A broker in this process over a given data directory and file layer, that can stop cleanly or "crash".

A crash here is what kill -9 leaves: the event loop stops with nothing flushed, fsynced or closed (the
stores' user-space buffers are lost, the kernel keeps what was written), so the next start over the same
directory runs the crash recovery. It lets a test inject faults through a FaultyIO in-process and still
check what a killed broker leaves behind.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from leveret.config import Settings
from leveret.server.app import Server


class InProcessBroker:
    """`start()`, then `stop()` (clean) or `crash()`; `url` while running."""

    def __init__(self, data_dir: str, file_io: Any = None, **settings: Any) -> None:
        settings.setdefault("http_port", -1)
        self.settings = Settings(host="127.0.0.1", port=0, data_dir=data_dir, **settings)
        self.file_io = file_io
        self.server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._crash = False

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"amqp://guest:guest@127.0.0.1:{self.server.port}/%2F"

    def start(self) -> "InProcessBroker":
        self._thread = threading.Thread(target=self._run, name="leveret-faults", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("broker did not start")
        if self._error is not None:
            raise RuntimeError("broker failed to start") from self._error
        return self

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self.server = Server(self.settings, file_io=self.file_io)
            loop.run_until_complete(self.server.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server = self.server
            if self._crash:
                # Sockets die with the process; nothing else is flushed, synced or closed.
                for conn in list(server.connections):
                    if conn.transport is not None:
                        conn.transport.abort()
                if server.amqp_listener is not None:
                    server.amqp_listener.close()
                for stopper in (server.disk_alarm, server.timer_driver, getattr(server, "memory_alarm", None)):
                    if stopper is not None:
                        stopper.stop()
                if server.durability is not None:
                    server.durability._executor.shutdown(wait=True)
                loop.run_until_complete(asyncio.sleep(0))
            else:
                loop.run_until_complete(server.stop())
            loop.close()

    def call(self, fn: Any) -> Any:
        """Run `fn()` on the broker's loop and return its result (to look at broker state safely)."""
        assert self._loop is not None
        done = threading.Event()
        out: list[Any] = []

        def run() -> None:
            try:
                out.append(fn())
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        assert done.wait(10)
        return out[0]

    def _halt(self, crash: bool) -> None:
        self._crash = crash
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def stop(self) -> None:
        self._halt(False)

    def crash(self) -> None:
        self._halt(True)
