"""The Kafka-protocol listener: the asyncio side of leveret/kafka/ (docs/kafka.md).

`KafkaListener` has server/listeners.py's `Listener` shape: `Server.start` starts it on `kafka_port` unless
that is negative. It serves the default vhost's streams as topics (kafka/topics.py) through one `DataPlane`
and one group coordinator shared by its connections, and closes its own connections when stopped (they
are not AMQP connections, so `Server.stop` does not know them).

`KafkaProtocol` is one connection: bytes read into its `KafkaSession`'s buffers (server/kafka_session.py), responses out
through one `writelines` per loop turn. A client that does not read its responses stops being read once
the transport's buffer passes its high-water mark, until it drains.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time
from collections import deque
from typing import Any, Protocol

from leveret.broker.vhost import Broker
from leveret.clock import Clock
from leveret.config import Settings
from leveret.kafka.data import DataPlane
from leveret.kafka.groups import GroupCoordinator
from leveret.kafka.listing import group_rows, topic_rows
from leveret.kafka.producers import ProducerStates
from leveret.kafka.topics import Topics
from leveret.server.durability import Durability
from leveret.server.errorlog import ErrorLog
from leveret.server.kafka_session import KafkaSession
from leveret.server.kafka_snapshots import SnapshotFiles


class KafkaServer(Protocol):
    """What the Kafka listener needs of the running server (server/app.py's `Server`)."""

    loop: asyncio.AbstractEventLoop
    settings: Settings
    broker: Broker
    clock: Clock
    errorlog: ErrorLog
    durability: Durability | None
    users: Any  # leveret.access.AccessRegistry: authenticate(...) and grants(...)
    tls_context: ssl.SSLContext | None  # the amqps listener's (ssl_* settings), used with kafka_ssl


class KafkaListener:
    """Kafka clients on one port, over the server's broker and storage."""

    def __init__(self, server: KafkaServer) -> None:
        self.server = server
        self.loop = server.loop
        self.errorlog = server.errorlog
        settings = server.settings
        vhost = server.broker.vhost(settings.default_vhost) or server.broker.add_vhost(settings.default_vhost)
        topics = Topics(vhost, auto_create=settings.kafka_auto_create_topics,
                        default_partitions=settings.kafka_partitions)
        self.topics = topics
        self.vhost_name = vhost.name
        self.sasl_required = settings.kafka_sasl
        clock = server.clock
        self.data = DataPlane(topics, ProducerStates(int(time.time() * 1000) << 8,
                                                     now_ms=lambda: int(clock.time() * 1000),
                                                     expiration_ms=settings.kafka_producer_id_expiration_ms,
                                                     files=SnapshotFiles()))
        self.groups: GroupCoordinator | None = GroupCoordinator(
            topics, server.broker.timers, server.clock, retention=settings.kafka_offsets_retention_minutes * 60.0)
        self.connections: set[KafkaProtocol] = set()
        self._server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> int:
        tls = self.server.tls_context if self.server.settings.kafka_ssl else None
        self._server = await self.loop.create_server(lambda: KafkaProtocol(self), host, port, reuse_address=True,
                                                     backlog=1024, ssl=tls)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
        for connection in list(self.connections):
            connection.close()
        if self.groups is not None:
            self.groups.stop()
        # After the connections: no produce changes a state any more. The server's drain then fsyncs the log
        # up to every snapshot's offset.
        self.data.producers.save_snapshots()

    # -- what the management API shows (http/kafka.py) ------------------------------------------------------
    def topics_status(self) -> list[dict[str, Any]]:
        return topic_rows(self.topics)

    def groups_status(self) -> list[dict[str, Any]]:
        return group_rows(self.groups, self.topics) if self.groups is not None else []

    # -- what sessions need of the server ------------------------------------------------------------------
    def check_user(self, user: str, password: str, peer: Any) -> bool:
        """SASL/PLAIN (kafka/sasl.py): the password is right, the user may connect from `peer` (loopback_users)
        and has a permission row in the listener's vhost."""
        try:
            from_loopback = not peer or ipaddress.ip_address(peer[0]).is_loopback
        except ValueError:
            from_loopback = False
        users = self.server.users
        found = users.authenticate(user, password, from_loopback=from_loopback, protocol="kafka")
        return found is not None and users.grants(user, self.vhost_name) is not None

    def kick_durability(self) -> None:
        durability = self.server.durability
        if durability is not None:
            producers = self.data.producers
            if producers.due:
                # Taken now, written once the commit covering the log up to now is durable.
                durability.wait_for_commit(_SnapshotsAfterCommit(producers, producers.take_due()), 0)
            durability.kick()

    def wait_for_commit(self, waiter: Any) -> None:
        """Call `waiter.confirm_ready` after the group commit covering everything appended so far."""
        durability = self.server.durability
        assert durability is not None
        durability.wait_for_commit(waiter, 0)


class _SnapshotsAfterCommit:
    """Producer state snapshots (kafka/producers.py), written when the group commit they wait for is done; a
    failed commit drops them (the next segment or the clean stop writes newer ones)."""

    def __init__(self, producers: ProducerStates, snapshots: list[tuple[Any, bytes]]) -> None:
        self.producers = producers
        self.snapshots = snapshots

    def confirm_ready(self, _seq: int) -> None:
        self.producers.write_snapshots(self.snapshots)

    def confirm_failed(self, _seq: int) -> None:
        pass


# A response part at least this large is handed to the transport alone, in pieces of at most WRITE_SLICE, and
# only while the transport's buffer is under its high-water mark (KafkaProtocol._flush).
LARGE_PART = 64 * 1024
WRITE_SLICE = 256 * 1024


class KafkaProtocol(asyncio.BufferedProtocol):
    """One Kafka client connection. Buffered: the socket is read straight into the session's frame buffers (a
    large produce request into a buffer of its own), not into a new bytes object per read to be copied again."""

    def __init__(self, listener: KafkaListener) -> None:
        self.listener = listener
        self.loop = listener.loop
        self.transport: asyncio.Transport | None = None
        self.session = KafkaSession(listener, self)
        self.peer: Any = None
        self.local_address: tuple[str, int] = ("127.0.0.1", 0)
        self._out: deque[bytes | memoryview] = deque()
        self._flush_scheduled = False
        self._writes_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer = transport.get_extra_info("peername")
        sockname = transport.get_extra_info("sockname")
        if sockname:
            # Metadata names the address the client reached us at, so it reconnects to the same one.
            self.local_address = (sockname[0], sockname[1])
        transport.set_write_buffer_limits(high=WRITE_SLICE)  # type: ignore[attr-defined]
        self.listener.connections.add(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.session.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        try:
            self.session.buffer_updated(nbytes)
        except Exception as exc:  # a leveret bug: one line, this connection closed, nothing else touched
            self.listener.errorlog.internal_error(self.peer, "", exc)
            self.close()

    def write(self, parts: list[bytes]) -> None:
        self._out.extend(parts)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self, everything: bool = False) -> None:
        """Hand queued response bytes to the transport while it is under its high-water mark (all of them when
        closing): large parts in WRITE_SLICE pieces, small ones joined. Kept out of the transport's buffer, a
        fetch's megabytes are not moved again each time the socket takes a piece of them."""
        self._flush_scheduled = False
        out = self._out
        transport = self.transport
        if transport is None or transport.is_closing():
            out.clear()
            return
        small: list[bytes] = []
        while out and (everything or not self._writes_paused):
            part = out.popleft()
            if len(part) < LARGE_PART:
                small.append(part)
                continue
            if small:
                transport.write(b"".join(small))
                small = []
            if everything or len(part) <= WRITE_SLICE:
                transport.write(part)
                continue
            view = memoryview(part)
            out.appendleft(view[WRITE_SLICE:])
            transport.write(view[:WRITE_SLICE])  # may pause writes (pause_writing), which ends the loop
        if small:
            transport.write(b"".join(small))

    def pause_writing(self) -> None:
        self._writes_paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._writes_paused = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
            if self._out:
                self._flush()

    def close(self) -> None:
        self.session.closed = True
        if self.transport is not None:
            self._flush(everything=True)
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.connections.discard(self)
        self.transport = None
        self.session.connection_lost()
