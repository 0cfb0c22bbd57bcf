"""A publisher that writes as fast as it can and never reads: by default mandatory messages no queue takes,
in confirm mode (hostile: every publish earns a basic.return and a basic.ack it never reads); with queue
names as routing keys and no confirms, a plain publisher flood.

Unless the broker stops reading it (leveret's bounded output, RabbitMQ's credit flow), the hostile kind
makes everything the broker owes it pile up on the broker's side of the connection. Used by
bench/bench_flow.py and tests/server/test_bounded_output.py.
"""

from __future__ import annotations

import socket
import threading
from typing import Sequence

from . import wire
from .client import Connection
from .wire import U16, bits, method_frame, shortstr

# Kept small so the kernel's buffers on our side hold little and the broker's side shows the backlog.
RECEIVE_BUFFER = 64 * 1024


class NeverReadingPublisher:
    """Handshake, confirm.select, then a thread that writes publishes until stopped; reads nothing after."""

    def __init__(self, url: str, *, body_size: int = 4096, routing_keys: Sequence[str] = ("leveret.nowhere",),
                 confirm: bool = True, mandatory: bool = True, batch: int = 64, heartbeat: int = 0) -> None:
        """Publishes to the default exchange, cycling through `routing_keys` (queue names, or none that exist).

        With `heartbeat` it negotiates heartbeats and then sends none (it only ever publishes)."""
        self.conn = Connection(url, name="never-reader", heartbeat=heartbeat)
        sock = self.conn.sock
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        self.conn.channel_open(1)
        if confirm:
            self.conn.confirm_select(1)
        content = wire.content_header(1, body_size, False) + b"".join(
            wire.body_frames(1, bytes(body_size), self.conn.frame_max))
        cycle = b"".join(
            method_frame(1, wire.BASIC_PUBLISH, U16.pack(0) + shortstr("") + shortstr(key) + bits(mandatory, False))
            + content for key in routing_keys)
        rounds = max(1, batch // len(routing_keys))
        self.chunk = memoryview(cycle * rounds)
        self.published = 0  # whole publishes written into the socket
        self.per_chunk = rounds * len(routing_keys)
        self.error: OSError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="never-reader", daemon=True)

    def start(self) -> "NeverReadingPublisher":
        self._thread.start()
        return self

    def _run(self) -> None:
        sock = self.conn.sock
        # Short timeouts only to notice stop(); a partial send resumes where it stopped, so frames stay whole.
        sock.settimeout(0.2)
        chunk = self.chunk
        while not self._stop.is_set():
            pos = 0
            while pos < len(chunk):
                if self._stop.is_set():
                    return
                try:
                    pos += sock.send(chunk[pos:])
                except TimeoutError:
                    continue
                except OSError as exc:
                    self.error = exc
                    return
            self.published += self.per_chunk

    def stop(self) -> None:
        """Stop writing and drop the connection without a goodbye."""
        self._stop.set()
        self._thread.join(5)
        try:
            self.conn.sock.close()
        except OSError:
            pass
