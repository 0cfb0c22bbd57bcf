"""One AMQP connection's dispatcher: codec events in, the right collaborator called, AMQP frames out.

The protocol is amqp/'s: `ConnectionReader` turns bytes into events, `ServerHandshake` runs the
connection's own states, `ChannelTable` the channels'. A `Session` feeds the one into the others and
answers what they leave to the server: credentials (leveret/access/), virtual hosts (the broker), resource
alarms, and the channel methods (server/handlers.py, over server/channel_session.py's channels). It is
given narrow collaborators (settings, broker, users, error log, durability, alarms, `call_soon`), never
a socket: bytes come from server/protocol.py and frames leave through the `Writer` it is given.

Errors follow RabbitMQ: a channel exception closes only its channel, a connection exception closes the
connection, naming the class and method that caused it; an unexpected exception closes the connection
with 541 INTERNAL_ERROR. Each such close is one line in the log (server/errorlog.py), never a traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

from leveret.amqp import errors as codes
from leveret.amqp import serializer, spec
from leveret.amqp.channels import ChannelTable
from leveret.amqp.connection import AWAITING_HEADER, ConnectionReader
from leveret.amqp.errors import AMQPChannelError, AMQPError, BadProtocolHeader, MalformedProperties
from leveret.amqp.events import ChannelFailed, ContentReceived, MethodReceived
from leveret.amqp.handshake import (
    AWAIT_HEADER, CLOSING, EXTERNAL, RUNNING, ClientClosed, CloseFinished, LoginRequested, OpenRequested,
    ServerHandshake, Tuned, connection_error, frame_before_open,
)
from leveret.broker.errors import BrokerError
from leveret.server.alarms import blocked_reason
from leveret.server.announce import server_properties
from leveret.server.channel_session import ChannelSession
from leveret.server.errorlog import peer_name
from leveret.server.handlers import ChannelMethods
from leveret.server.permissions import PermissionChecks
from leveret.server.replies import reply_for
from leveret.store.fsio import failures

if TYPE_CHECKING:
    from leveret.access import AccessRegistry, Grants
    from leveret.broker.vhost import Broker
    from leveret.config import Settings
    from leveret.server.alarms import ResourceAlarms
    from leveret.server.durability import Durability
    from leveret.server.errorlog import ErrorLog


class Writer(Protocol):
    """What a session needs from the socket layer."""

    def write_frames(self, frames: list[bytes]) -> None: ...
    def write_frame(self, frame: bytes) -> None: ...
    def close_after_flush(self) -> None: ...
    def is_loopback(self) -> bool: ...
    def start_heartbeat(self, interval: int) -> None: ...
    def close_soon(self) -> None: ...
    def set_reading(self, reading: bool) -> None: ...
    peer: Any  # the client's address, for the log


def _not_open(*args: Any) -> None:
    raise AssertionError("a publish reached a connection that is not open")  # channels exist only once open


class Session:
    """The server side of one AMQP connection."""

    def __init__(self, writer: Writer, *, settings: Settings, broker: Broker, users: AccessRegistry, errors: ErrorLog,
                 durability: Durability | None, alarms: ResourceAlarms,
                 call_soon: Callable[[Callable[[], None]], Any]) -> None:
        self.settings = settings
        self.broker = broker
        self.users = users
        self.writer = writer
        self.errors = errors
        self.durability = durability  # group commits (None: nothing waits for an fsync)
        self.alarms = alarms  # the resource alarms on now, applied as the connection opens
        self.call_soon = call_soon  # runs a callback after this loop turn
        # Until tune-ok agrees on a frame size, frames are limited to the spec's minimum (as RabbitMQ does).
        self.reader = ConnectionReader(
            frame_max=spec.FRAME_MIN_SIZE, max_body_size=self.settings.max_message_size, channels_open=False
        )
        self.handshake = ServerHandshake(
            frame_max=self.settings.frame_max, channel_max=self.settings.channel_max,
            heartbeat=self.settings.heartbeat, server_properties=server_properties(broker.parameters),
        )
        self.channel_table = ChannelTable(self.settings.channel_max)
        self.channels: dict[int, ChannelSession] = self.channel_table.by_number  # (http/ counts them too)
        # The one piece of connection state read per event (the hot path): the handshake's CLOSED, mirrored.
        self.closed = False
        self.username = ""
        # The user a verified TLS client certificate names (server/tls.py): who EXTERNAL logs in.
        self.certificate_user: str | None = None
        self.vhost: Any = None
        self.grants: Grants | None = None  # what the user may do in the vhost (leveret/access/), once open
        self.permissions: PermissionChecks | None = None  # their checks on the channel methods, once open
        self.blocked_by: set[str] = set()  # resource alarms that are on ("disk", "memory")
        self.reading_paused = False  # we stopped reading because of it
        self.write_paused = False  # the socket's write buffer is over its high-water mark
        # The channel methods' handlers (server/handlers.py), bound to the vhost once the connection opens.
        self._handlers: dict[type, Callable[[ChannelSession, Any], None]] = {}
        self._publish: Callable[..., None] = _not_open
        # Broker channels whose refill waits for the end of the read being handled (`refill_later`).
        self._reading = False
        self._refills_due: list[Any] = []

    @property
    def name(self) -> str:
        """The client's connection_name (start-ok's client properties), for the log."""
        return self.handshake.name

    @property
    def client_capabilities(self) -> dict:
        return self.handshake.client_capabilities

    # --- input ------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        """Feed bytes from the socket. Never raises: errors become AMQP closes."""
        if self.closed:
            return
        # During the handshake the reader hands out one frame at a time (amqp/connection.py), so a client
        # that pipelines start-ok, tune-ok, open, channel.open and more in one write is served in order.
        reader = self.reader
        self._reading = True
        try:
            while True:
                if not self._receive(data):
                    return
                if not reader.pending:
                    break
                data = b""
        finally:
            self._reading = False
            self._dispatch_now()  # before the refills: the order the publishes and acks of the read came in
            if self._refills_due:
                self._refill_channels()
        durability = self.durability
        if durability is not None:
            durability.kick()

    def refill_later(self, channel: Any) -> bool:
        """A broker channel's acks freed credit: while a read is being handled, its consumers go back into
        rotation once, at the end of the read, so a read of many acks dispatches one run of deliveries
        per consumer instead of one dispatch per ack. False outside a read: the channel refills now."""
        if not self._reading:
            return False
        self._refills_due.append(channel)
        return True

    def _dispatch_now(self) -> None:
        """The queues this read's publishes reached dispatch now, and further publishes dispatch at once (until
        the next content event: see `_handle_event`)."""
        vhost = self.vhost
        if vhost is not None and vhost.dispatch_due is not None:
            try:
                vhost.dispatch_deferred(stop=True)
            except Exception as exc:  # a bug: as for any event, one line and 541
                self._internal_error(exc)

    def _refill_channels(self) -> None:
        due = self._refills_due
        self._refills_due = []
        for channel in due:
            try:
                channel.refill_due()
            except Exception as exc:  # a bug: as for any event, one line and 541
                self._internal_error(exc)

    def _receive(self, data: bytes) -> bool:
        """Handle the events data completes; False once nothing more may be read from this connection."""
        try:
            events = self.reader.receive_data(data)
        except BadProtocolHeader as exc:
            self.errors.warning("closing connection %s: %s", peer_name(getattr(self.writer, "peer", None)), exc.reply_text)
            self.writer.write_frame(serializer.PROTOCOL_HEADER)
            self._shutdown()
            return False
        except AMQPError as exc:
            if self.handshake.state == AWAIT_HEADER:
                self._send_start()  # the header was good; the bad frame came in the same read
            for event in getattr(exc, "events", ()):
                if not self._handle_event(event):
                    return False
            self._fail(exc)
            return False
        except Exception as exc:  # a codec bug, not the client's fault: one line and 541
            self._internal_error(exc)
            return False
        if self.handshake.state == AWAIT_HEADER:
            if self.reader.state == AWAITING_HEADER:
                return False
            self._send_start()
        for event in events:
            if not self._handle_event(event):
                return False
        return True

    def _handle_event(self, event: Any) -> bool:
        """Handle one event; False once the connection is closing and later events must be dropped."""
        try:
            kind = type(event)
            if kind is ContentReceived:
                # basic.publish with its content (the hot path, inline): route now, or hold it for tx.commit.
                # A BrokerError closes the channel (below), naming basic.publish.
                ch = self.channels.get(event.channel)
                if ch is None or ch.closing:
                    self._content_without_channel(ch, event.method)
                else:
                    # Properties that do not decode are 541 now, as in RabbitMQ, not later in whatever rewrites them.
                    event.properties.check()
                    if self.blocked_by and not self.reading_paused:
                        self._dispatch_now()
                        self._block_now()  # a publish during a resource alarm blocks its connection (RabbitMQ's rule)
                    # Deferred dispatch: the queues these publishes reach dispatch once, at the next other event
                    # or error or the end of the read (broker/vhost.py `dispatch_deferred`).
                    vhost = self.vhost
                    if vhost.dispatch_due is None:
                        vhost.dispatch_due = []
                    self._publish(ch, event.method, event.properties, event.body)  # handlers.py's ChannelMethods.publish
            else:
                if self.vhost is not None and self.vhost.dispatch_due is not None:
                    self._dispatch_now()  # what this method does comes after the deliveries of the publishes before
                if kind is MethodReceived:
                    self._on_method(event.channel, event.method)
                elif kind is ChannelFailed:
                    err = event.error
                    self.close_channel(event.channel, err.reply_code, err.reply_text, err.class_id, err.method_id)
        except AMQPError as exc:
            self._dispatch_now()
            self._fail(exc)
        except BrokerError as exc:
            self._dispatch_now()
            method = getattr(event, "method", None)
            self._fail_broker(getattr(event, "channel", 0), method, exc)
        except OSError as exc:
            # The store could not write a definition (disk full, I/O error) and the broker undid the change:
            # RabbitMQ's answer to an internal failure. One rate-limited line, no traceback.
            self._dispatch_now()
            failures.note("write to the store", exc, "(the connection that asked for it was closed with 541)")
            self.close_connection(codes.INTERNAL_ERROR, "INTERNAL_ERROR", 0, 0, log=False)
        except Exception as exc:
            self._dispatch_now()
            self._internal_error(exc)
        return not self.closed

    # --- errors -----------------------------------------------------------------------------------
    def _fail(self, exc: AMQPError) -> None:
        if isinstance(exc, AMQPChannelError):
            self.close_channel(exc.channel, exc.reply_code, exc.reply_text, exc.class_id, exc.method_id)
        else:
            detail = exc.detail if isinstance(exc, MalformedProperties) else ""
            self.close_connection(exc.reply_code, exc.reply_text, exc.class_id, exc.method_id, detail=detail)

    def _internal_error(self, exc: Exception) -> None:
        """An unexpected exception on client input is a leveret bug: one ERROR line, then 541 (once)."""
        if self.handshake.state < CLOSING:
            self.errors.internal_error(getattr(self.writer, "peer", None), self.name, exc)
        self.close_connection(codes.INTERNAL_ERROR, "INTERNAL_ERROR", 0, 0, log=False)

    def _fail_broker(self, channel: int, method: Any, exc: BrokerError) -> None:
        class_id = method.CLASS_ID if method is not None else 0
        method_id = method.METHOD_ID if method is not None else 0
        reply = reply_for(exc)
        if reply.closes_connection or channel == 0:
            self.close_connection(reply.code, reply.text, class_id, method_id)
        else:
            self.close_channel(channel, reply.code, reply.text, class_id, method_id)

    def close_channel(self, number: int, code: int, text: str, class_id: int, method_id: int) -> None:
        """Server-initiated channel.close: the channel's broker state ends now; wait for close-ok."""
        ch = self.channels.get(number)
        if ch is None or ch.closing:
            return
        self.errors.channel_error(getattr(self.writer, "peer", None), self.name, number, code, text)
        frame = ch.close_frame(code, text, class_id, method_id)
        ch.release()
        self.writer.write_frame(frame)

    def close_connection(self, code: int, text: str, class_id: int = 0, method_id: int = 0, *,
                         detail: str = "", log: bool = True) -> None:
        """Server-initiated connection.close; everything after it except close-ok is dropped.

        An error close is logged as one line (`log=False` when the caller already did); a shutdown's
        320 CONNECTION_FORCED is not an error of this connection.
        """
        if self.handshake.state >= CLOSING:
            return
        if log and code != codes.CONNECTION_FORCED:
            self.errors.connection_error(getattr(self.writer, "peer", None), self.name, code, text, detail)
        self._release_channels()
        self.handshake.close(code, text, class_id, method_id)
        self._send_handshake_frames()
        self.writer.close_soon()

    def connection_lost(self) -> None:
        """The socket is gone: return unacked messages, drop exclusive queues."""
        self._release_channels()
        self.handshake.closed()
        self.closed = True
        if self.vhost is not None:
            self.vhost.connection_closed(self)

    def _release_channels(self, drop_exclusive: bool = False) -> None:
        """Every channel gives its deliveries back; while running (or as the client closes), exclusive queues go."""
        channels = list(self.channels.values())
        self.channels.clear()
        for ch in channels:
            if not ch.closing:
                try:
                    ch.release()
                except OSError as exc:
                    # An auto-delete queue whose deletion the store could not write: every other channel
                    # of this connection must still give its deliveries back.
                    failures.note("write to the store (releasing a channel)", exc)
        if self.vhost is not None and (drop_exclusive or self.handshake.state == RUNNING):
            try:
                self.vhost.connection_closed(self)
            except OSError as exc:
                failures.note("write to the store (dropping exclusive queues)", exc)

    def _shutdown(self) -> None:
        self.handshake.closed()
        self.closed = True
        self.writer.close_after_flush()

    # --- flow control -----------------------------------------------------------------------------
    def set_alarm(self, resource: str, on: bool) -> None:
        """A resource alarm ("disk", "memory") went on or off.

        As in RabbitMQ, an alarm blocks a connection only when it publishes while the alarm is on, so
        consumers and idle connections go on as before. Blocking means one connection.blocked (naming the
        alarms on at that moment) for a client with that capability and no more reading from the socket;
        connection.unblocked and reading again once every alarm has cleared. A further alarm while blocked
        sends nothing new, as in RabbitMQ.
        """
        if on:
            self.blocked_by.add(resource)
            return
        self.blocked_by.discard(resource)
        if not self.blocked_by and self.reading_paused:
            self.reading_paused = False
            if self.handshake.state == RUNNING and self.client_capabilities.get("connection.blocked"):
                self.send_method(0, spec.ConnectionUnblocked())
            self.writer.set_reading(True)

    def _block_now(self) -> None:
        if self.reading_paused:
            return
        self.reading_paused = True
        if self.handshake.state == RUNNING and self.client_capabilities.get("connection.blocked"):
            self.send_method(0, spec.ConnectionBlocked(reason=blocked_reason(self.blocked_by)))
        self.writer.set_reading(False)

    def set_write_paused(self, paused: bool) -> None:
        """Socket back-pressure: pause or resume deliveries on every channel of this connection."""
        self.write_paused = paused
        for ch in list(self.channels.values()):
            if paused:
                ch.broker_channel.pause_deliveries()
            else:
                ch.broker_channel.resume_deliveries()

    # --- output -----------------------------------------------------------------------------------
    def send_method(self, channel: int, method: Any) -> None:
        self.writer.write_frame(serializer.method_frame(channel, method))

    def _send_handshake_frames(self) -> None:
        frames = self.handshake.data_to_send()
        if frames:
            self.writer.write_frames(frames)

    # --- handshake (amqp/handshake.py decides the protocol; here: credentials, vhosts, heartbeats) -------
    def _send_start(self) -> None:
        self.handshake.start()
        self._send_handshake_frames()

    def _on_connection_method(self, channel: int, method: Any) -> None:
        handshake = self.handshake
        try:
            event = handshake.receive(channel, method)
        finally:
            self._send_handshake_frames()
        kind = type(event)
        if kind is LoginRequested:
            self._on_login(event)
        elif kind is Tuned:
            self.channel_table.channel_max = event.channel_max
            self.reader.frame_max = event.frame_max
            if event.heartbeat:
                self.writer.start_heartbeat(event.heartbeat)
        elif kind is OpenRequested:
            self._on_open(event, method)
        elif kind is ClientClosed:
            self._release_channels(drop_exclusive=True)
            self._shutdown()
        elif kind is CloseFinished:
            self._shutdown()

    def offer_external(self, certificate_user: str | None) -> None:
        """Offer the EXTERNAL mechanism (a TLS connection); its user is the one the client's verified
        certificate names, None when it presented none (EXTERNAL is then refused)."""
        self.certificate_user = certificate_user
        self.handshake.offer(EXTERNAL)

    def _on_login(self, event: LoginRequested) -> None:
        user = None
        username = event.username
        if event.mechanism == EXTERNAL:
            # Offered on TLS connections only (the handshake refuses a mechanism it did not offer); without a
            # verified certificate there is no user, and "" names none.
            username = self.certificate_user or ""
            user = self.users.authenticate_certificate(username, from_loopback=self.writer.is_loopback())
        elif event.password is not None:
            user = self.users.authenticate(username, event.password, from_loopback=self.writer.is_loopback())
        else:
            self.users.count_attempt("amqp091", False)  # a mechanism without a password: no authenticate
        if user is None:
            mechanism = event.mechanism
            self.close_connection(codes.ACCESS_REFUSED, self.handshake.refusal(mechanism), 0, 0,
                                  detail=f"login refused for user {username!r} using {mechanism}")
            return
        self.username = user.name
        self.handshake.accept_login()
        self._send_handshake_frames()

    def _on_open(self, event: OpenRequested, m: Any) -> None:
        name = event.virtual_host
        node_limit = self.settings.max_connections
        # The open connections are those the vhosts count (VHost.connections); only an open needs the sum.
        if node_limit >= 0 and sum(len(v.connections) for v in self.broker.vhosts.values()) >= node_limit:
            raise connection_error(codes.NOT_ALLOWED, f"connection refused: node connection limit ({node_limit}) "
                                   "is reached", m.CLASS_ID, m.METHOD_ID)
        vhost = self.broker.vhost(name)
        if vhost is None or name not in self.users.vhosts:
            raise connection_error(codes.NOT_ALLOWED, f"vhost {name} not found", m.CLASS_ID, m.METHOD_ID)
        # RabbitMQ 3.10 checks the vhost's connection limit before the user's access to it.
        reached = vhost.connection_limit_reached()
        if reached is not None:
            raise connection_error(codes.NOT_ALLOWED, f"access to vhost '{name}' refused for user '{self.username}': "
                                   f"connection limit ({reached}) is reached", m.CLASS_ID, m.METHOD_ID)
        # Then the user's own connection limit, then its rights here: RabbitMQ 3.10's order.
        limit = self.users.user_limit(self.username, "max-connections")
        if limit is not None and len(self._user_sessions()) >= limit:
            raise connection_error(codes.NOT_ALLOWED, f"connection refused for user '{self.username}': user "
                                   f"connection limit ({limit}) is reached", m.CLASS_ID, m.METHOD_ID)
        # The user's rights here, read live at each check (a changed permission applies to the next decision).
        grants = self.users.grants(self.username, name)
        if grants is None:
            raise connection_error(codes.NOT_ALLOWED, f"access to vhost '{name}' refused for user '{self.username}'",
                                   m.CLASS_ID, m.METHOD_ID)
        vhost.connection_opened(self)
        self.grants = grants
        self.vhost = vhost
        methods = ChannelMethods(
            vhost=vhost, owner=self, channels=self.channel_table, write_frame=self.writer.write_frame,
            write_frames=self.writer.write_frames, frame_max=self.handshake.frame_max, durability=self.durability,
            close_connection=self.close_connection,
        )
        checks = self.permissions = PermissionChecks(grants, vhost, methods.table(), methods.publish)
        methods.authorize_queue = checks.queue_authorizer
        self._handlers, self._publish = checks.handlers()
        self.reader.channels_open = True
        self.handshake.open_ok()
        self._send_handshake_frames()
        for resource in self.alarms.active:
            self.set_alarm(resource, True)

    def permissions_changed(self, user: str | None, vhost: str | None) -> None:
        """The access registry changed `user`'s permissions in `vhost` (None: any): take the handlers that
        fit them now (server/permissions.py)."""
        checks = self.permissions
        if checks is not None and user in (None, self.username) and vhost in (None, checks.grants.vhost):
            self._handlers, self._publish = checks.handlers()

    # --- method dispatch --------------------------------------------------------------------------
    def _on_method(self, channel: int, method: Any) -> None:
        # Channels exist only while the connection runs (closing releases them all), so an open channel
        # found here is the whole check of the hot path; the rest is amqp/channels.py's and handshake.py's.
        ch = self.channels.get(channel) if channel else None
        if ch is not None and not ch.closing:
            handler = self._handlers.get(type(method))
            if handler is None:
                raise connection_error(codes.COMMAND_INVALID, f"unexpected method {method.NAME}", method.CLASS_ID, method.METHOD_ID)
            try:
                handler(ch, method)
            except BrokerError as exc:
                self._fail_broker(channel, method, exc)
            return
        if channel and self.handshake.state == RUNNING:
            opens, reply = self.channel_table.receive_unrouted(channel, method)
            if opens:
                self._on_channel_open(channel)
            elif reply is not None:
                self.writer.write_frame(reply)
            return
        self._on_connection_method(channel, method)

    def _user_sessions(self) -> list[Session]:
        """This user's open connections (those the vhosts count), this one once it is open. Only a user
        limit asks, so only users with one pay for the walk."""
        return [owner for vhost in self.broker.vhosts.values() for owner in vhost.connections
                if getattr(owner, "username", None) == self.username]

    def _on_channel_open(self, number: int) -> None:
        limit = self.users.user_limit(self.username, "max-channels")
        if limit is not None and sum(len(s.channels) for s in self._user_sessions()) >= limit:
            raise connection_error(codes.NOT_ALLOWED, f"number of channels opened for user '{self.username}' has "
                                   f"reached the maximum allowed user limit of ({limit})", 20, 10)
        ch, reply = self.channel_table.open(number, lambda n: ChannelSession(self, n))
        if self.write_paused:
            ch.broker_channel.pause_deliveries()
        self.writer.write_frame(reply)

    def _content_without_channel(self, ch: ChannelSession | None, method: Any) -> None:
        """A publish's content for a channel that is closing (dropped) or not open (an error)."""
        # Channels exist only while the connection runs: no open channel is the one check of the hot path.
        state = self.handshake.state
        if ch is not None or state == CLOSING:
            return
        if state != RUNNING:
            raise frame_before_open(method)
        raise self.channel_table.content_on_unopened()
