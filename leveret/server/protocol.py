"""The socket adapter: asyncio.Protocol in, one `writelines` per loop turn out.

`data_received` hands bytes to the session and returns; no coroutine per frame. Everything written while
handling a read (or while another connection's publish delivers to this one) is collected and leaves in a
single `transport.writelines` call scheduled with `call_soon`, so frames coalesce into few syscalls.
Heartbeats and the handshake deadline are the only timers, one of each per connection, plus a stall
watch while the client is not taking our output.

Output is bounded in two steps. Past the transport's high-water mark (64 KiB) deliveries to this
connection pause (messages wait in their queues). What the client's own requests still earn it (confirms,
returns of unroutable mandatory messages, method replies) keeps coming, so once the unsent output passes
`max_output_buffer` we stop reading the connection (server/reading.py) until the transport drains to its
low-water mark: a client that publishes and never reads costs at most about that much, its publishes
waiting in the kernel. A client that takes nothing for `send_timeout` seconds (or, with heartbeats, for
the heartbeat timeout) is closed. While we are not reading a client we do not hold its silence against it:
the heartbeat receive check is paused (RabbitMQ pauses it for blocked connections too).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import TYPE_CHECKING, Any

from leveret.amqp import serializer
from leveret.amqp.heartbeat import OVERDUE, SEND, Heartbeats
from leveret.server.errorlog import peer_name
from leveret.server.reading import BLOCKED, OUTPUT, ReadingGate
from leveret.server.session import Session
from leveret.server.tls import certificate_user

if TYPE_CHECKING:
    from leveret.server.app import Server

log = logging.getLogger("leveret.connection")

# How long we wait for connection.close-ok after sending connection.close (RabbitMQ waits a few seconds too).
CLOSE_OK_TIMEOUT = 3.0


class AMQPProtocol(asyncio.Protocol):
    """One client connection's transport side; implements the session's Writer interface."""

    def __init__(self, server: "Server") -> None:
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.session = Session(
            self, settings=server.settings, broker=server.broker, users=server.users, errors=server.errorlog,
            durability=server.durability, alarms=server.alarms, call_soon=server.loop.call_soon,
        )
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._close_after_flush = False
        # Heartbeat bookkeeping (amqp/heartbeat.py); its interval is 0 (no ticks) until tune-ok asks for one.
        self.heartbeats = Heartbeats(0, self.loop.time)
        self._heartbeat_handle: asyncio.TimerHandle | None = None
        self._deadline_handle: asyncio.TimerHandle | None = None
        self.peer: Any = None
        self.paused = False  # the transport is over its high-water mark: deliveries are paused
        self.gate = ReadingGate()
        # Progress of a backed-up transport: bytes written into it since it passed its high-water mark, its
        # buffer size then, and how many bytes the kernel had taken at the last stall check (and when).
        self._written_since_pause = 0
        self._buffered_at_pause = 0
        self._sent_mark = 0
        self._progress_at = 0.0
        self._stall_handle: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.gate.transport = transport  # type: ignore[assignment]
        self.peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Latency matters more than packet count: we already coalesce writes per loop turn.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self)
        self.server.broker.lifecycle.connections_opened += 1
        self._deadline_handle = self.loop.call_later(self.server.settings.handshake_timeout, self._handshake_deadline)

    def data_received(self, data: bytes) -> None:
        self.heartbeats.heard = True
        self.session.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        for handle in (self._heartbeat_handle, self._deadline_handle, self._stall_handle):
            if handle is not None:
                handle.cancel()
        self.server.connections.discard(self)
        self.server.broker.lifecycle.connections_closed += 1
        try:
            self.session.connection_lost()
        except Exception as error:  # a bug: one line, never a traceback per connection
            self.server.errorlog.internal_error(self.peer, self.session.name, error)
        self._out.clear()

    def pause_writing(self) -> None:
        # The client reads slower than we deliver: stop delivering to it (messages wait in their queues)
        # instead of growing the transport's buffer without bound.
        self.paused = True
        self.session.set_write_paused(True)
        transport = self.transport
        self._buffered_at_pause = transport.get_write_buffer_size() if transport is not None else 0
        self._written_since_pause = 0
        self._sent_mark = 0
        self._progress_at = self.loop.time()
        self._arm_stall_check()

    def resume_writing(self) -> None:
        # Drained to the low-water mark: deliveries resume, and so does reading if the backlog stopped it.
        self.paused = False
        if self._stall_handle is not None:
            self._stall_handle.cancel()
            self._stall_handle = None
        self.gate.resume(OUTPUT)
        self.session.set_write_paused(False)

    # --- Writer interface ----------------------------------------------------------------------------
    def write_frames(self, frames: list[bytes]) -> None:
        self._out.extend(frames)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def write_frame(self, frame: bytes) -> None:
        self._out.append(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        transport = self.transport
        if transport is None or transport.is_closing():
            self._out.clear()
            return
        if self._out:
            out, self._out = self._out, []
            was_paused = self.paused
            transport.writelines(out)  # may call pause_writing, which counts `out` in the buffer it notes
            self.heartbeats.sent = True
            if self.paused:
                # Backed up: count what we add (for the stall check) and stop reading past the limit.
                if was_paused:
                    self._written_since_pause += sum(map(len, out))
                self._check_output_limit(transport)
        if self._close_after_flush:
            transport.close()

    def close_after_flush(self) -> None:
        self._close_after_flush = True
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def close_soon(self) -> None:
        """After our connection.close: give the peer a moment to answer close-ok, then drop it."""
        self.loop.call_later(CLOSE_OK_TIMEOUT, self._abort)

    def _check_output_limit(self, transport: asyncio.Transport) -> None:
        unsent = transport.get_write_buffer_size()
        server = self.server
        if unsent > server.peak_output:
            server.peak_output = unsent
        if unsent > server.settings.max_output_buffer and OUTPUT not in self.gate.reasons:
            server.output_pauses += 1
            self.gate.pause(OUTPUT)

    def set_reading(self, reading: bool) -> None:
        """The session's resource-alarm block: stop or resume reading; bytes wait in the kernel's buffers."""
        if reading:
            self.gate.resume(BLOCKED)
        else:
            self.gate.pause(BLOCKED)

    def is_loopback(self) -> bool:
        if not self.peer:
            return True  # a Unix socket
        try:
            return ipaddress.ip_address(self.peer[0]).is_loopback
        except ValueError:
            return False

    def start_heartbeat(self, interval: int) -> None:
        # Ticks at half the interval: send when we were silent, declare the peer dead after two silent intervals.
        beats = Heartbeats(interval, self.loop.time)
        beats.sent = self.heartbeats.sent
        self.heartbeats = beats
        self._heartbeat_handle = self.loop.call_later(beats.tick_interval, self._heartbeat_tick)

    # --- timers ---------------------------------------------------------------------------------------
    def _heartbeat_tick(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        beats = self.heartbeats
        # While we are not reading the peer, its heartbeats wait unread in the kernel: not its fault.
        due = beats.tick(paused=self.gate.paused)
        if due is OVERDUE:
            self.server.errorlog.warning("missed heartbeats from client %s, timeout: %ss", peer_name(self.peer),
                                         beats.interval)
            transport.abort()
            return
        if due is SEND:
            self.write_frame(serializer.HEARTBEAT)
        self._heartbeat_handle = self.loop.call_later(beats.tick_interval, self._heartbeat_tick)

    def _stall_timeout(self) -> float:
        """Seconds without output progress after which the peer counts as gone (0: never)."""
        timeouts = [t for t in (self.server.settings.send_timeout, self.heartbeats.overdue_after()) if t > 0]
        return min(timeouts) if timeouts else 0.0

    def _arm_stall_check(self) -> None:
        timeout = self._stall_timeout()
        if timeout and self._stall_handle is None:
            self._stall_handle = self.loop.call_later(timeout / 4, self._stall_check)

    def _stall_check(self) -> None:
        """While the transport is backed up: has the kernel taken any of our output since the last look?"""
        self._stall_handle = None
        transport = self.transport
        if transport is None or transport.is_closing() or not self.paused:
            return
        sent = self._buffered_at_pause + self._written_since_pause - transport.get_write_buffer_size()
        now = self.loop.time()
        if sent > self._sent_mark:
            self._sent_mark = sent
            self._progress_at = now
        elif now - self._progress_at >= self._stall_timeout():
            log.warning("closing connection from %s: it took none of our output for %.0f s (%d bytes unsent)",
                        self.peer, now - self._progress_at, transport.get_write_buffer_size())
            transport.abort()
            return
        self._arm_stall_check()

    def _handshake_deadline(self) -> None:
        self._deadline_handle = None
        if self.session.vhost is None and self.transport is not None and not self.transport.is_closing():
            self.server.errorlog.warning("closing connection from %s: handshake timeout", peer_name(self.peer))
            self.transport.abort()

    def _abort(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._flush()
            self.transport.abort()

    def force_close(self, code: int, text: str) -> None:
        """Server-initiated close of an open connection (shutdown): connection.close then drop."""
        self.session.close_connection(code, text)
        self.close_after_flush()


class TLSProtocol(AMQPProtocol):
    """An AMQP connection over TLS (the amqps listener): as any other, plus the EXTERNAL mechanism, whose user
    is the one the client's verified certificate names (server/tls.py). Plain connections never run this.

    A listener that verifies peers (ssl_verify = verify_peer) offers EXTERNAL to every connection, with a
    certificate or without, as RabbitMQ 3.10 with EXTERNAL enabled does: a client that picks it without one
    hears the EXTERNAL refusal (403) rather than finding no mechanism to agree on. One that asks for no
    certificate (verify_none) never offers it. asyncio calls `connection_made` once the TLS handshake is
    complete, so the certificate is known before the client can send its protocol header."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        settings = self.server.settings
        if settings.ssl_verify == "verify_peer":
            self.session.offer_external(
                certificate_user(transport.get_extra_info("peercert"), settings.ssl_cert_login_from))
