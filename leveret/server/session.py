"""The glue between one AMQP connection and the broker: codec events in, broker calls, AMQP methods out.

A `Session` owns the connection-level protocol state (handshake, tune, heartbeats, close) and one
`ChannelSession` per open channel. It never touches a socket: it is handed bytes by `server/protocol.py`
and writes frames through the `Transport`-like object it is given. Errors follow RabbitMQ: a channel
exception closes only its channel, a connection exception closes the connection, naming the class and
method that caused it; an unexpected exception closes the connection with 541 INTERNAL_ERROR. Each such
close is one line in the log (server/errorlog.py), never a traceback.
"""

from __future__ import annotations

import errno
import platform
from typing import Any, Callable, Protocol

from leveret import __version__
from leveret.amqp import errors as codes
from leveret.amqp import serializer, spec
from leveret.amqp.channels import ChannelState, ChannelTable
from leveret.amqp.connection import AWAITING_HEADER, ConnectionReader
from leveret.amqp.errors import AMQPChannelError, AMQPError, BadProtocolHeader, MalformedProperties
from leveret.amqp.events import ChannelFailed, ContentReceived, HeartbeatReceived, MethodReceived
from leveret.amqp.handshake import (
    AWAIT_HEADER, CLOSED, CLOSING, RUNNING, ClientClosed, CloseFinished, LoginRequested, OpenRequested,
    ServerHandshake, Tuned, connection_error, frame_before_open,
)
from leveret.amqp.properties import BasicProperties
from leveret.broker.channel import Channel
from leveret.broker.errors import BrokerError
from leveret.broker.message import Message
from leveret.server.alarms import blocked_reason
from leveret.server.auth import UserStore
from leveret.server.errorlog import ErrorLog, peer_name
from leveret.server.replies import reply_for
from leveret.store.fsio import failures


# What we announce in connection.start; clients switch features on from these (pika checks several).
CAPABILITIES = {
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "basic.nack": True,
    "consumer_cancel_notify": True,
    "connection.blocked": True,
    "consumer_priorities": True,
    "authentication_failure_close": True,
    "per_consumer_qos": True,
    "direct_reply_to": True,
}


def server_properties() -> dict:
    """connection.start's server-properties."""
    return {
        "product": "leveret",
        "version": __version__,
        "platform": f"Python {platform.python_version()}",
        "copyright": "the leveret authors",
        "information": "Licensed under the Apache License 2.0",
        "cluster_name": "leveret@localhost",
        "capabilities": dict(CAPABILITIES),
    }


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


class ChannelSession(ChannelState):
    """One open AMQP channel: its protocol state (amqp/channels.py), the broker-side Channel, confirms and
    transactions, and frame encoding.

    It is the broker's delivery target for this channel (`deliver`, `consumer_cancelled`).
    """

    __slots__ = (
        "session", "broker_channel", "ready_upto", "confirm_scheduled", "sync_upto", "tx_actions", "tx_taken",
        "write_frames", "frame_max",
    )

    def __init__(self, session: "Session", number: int) -> None:
        super().__init__(number)
        self.session = session
        self.write_frames = session.writer.write_frames
        self.frame_max = session.handshake.frame_max
        self.broker_channel = Channel(session.vhost, self, session, user=session.username)
        self.ready_upto = 0  # highest sequence number whose message is routed (and durable, where it must be)
        self.confirm_scheduled = False
        self.sync_upto = 0  # highest sequence number waiting for a group commit
        self.tx_actions: list[Callable[[], None]] = []
        self.tx_taken: list[Any] = []  # deliveries acked inside the open transaction, given back on rollback

    def release(self) -> None:
        """The channel is closing: an open transaction's taken deliveries go back, then everything is requeued."""
        self.closing = True  # no confirms or deliveries are written for it from now on
        if self.tx_taken:
            self.broker_channel.restore(self.tx_taken)
            self.tx_taken = []
        self.tx_actions = []
        self.broker_channel.close()

    # --- delivery target -------------------------------------------------------------------------
    def deliver(self, consumer_tag: str, delivery_tag: int, redelivered: bool, message: Message) -> None:
        self.write_frames(
            serializer.basic_deliver_frames(
                self.number, consumer_tag, delivery_tag, redelivered, message.exchange, message.routing_key,
                message.properties.raw, message.body, self.frame_max,
            )
        )

    def channel_error(self, error: BrokerError) -> None:
        """The broker closes this channel (e.g. consumer timeout: 406 with RabbitMQ's text)."""
        reply = reply_for(error)
        self.session.close_channel(self.number, reply.code, reply.text, 0, 0)

    def consumer_cancelled(self, consumer_tag: str) -> None:
        if self.session.client_capabilities.get("consumer_cancel_notify"):
            self.session.send_method(self.number, spec.BasicCancel(consumer_tag=consumer_tag, no_wait=True))

    # --- confirms --------------------------------------------------------------------------------
    def confirm_ready(self, seq: int) -> None:
        """Everything up to `seq` may be acked; acks are coalesced into one multiple-ack per loop turn."""
        if seq > self.ready_upto:
            self.ready_upto = seq
        if not self.confirm_scheduled:
            self.confirm_scheduled = True
            self.session.after_turn(self._send_confirms)

    def _send_confirms(self) -> None:
        self.confirm_scheduled = False
        upto = self.ready_upto
        if self.closing or upto <= self.confirmed_upto:
            return
        self._ack_upto(upto)

    def _ack_upto(self, upto: int) -> None:
        self.write_frames([self.ack_frame(upto)])

    def confirm_failed(self, seq: int) -> None:
        """Publish `seq` could not be made durable (or was refused): nack it, after acking what precedes it."""
        if self.closing:
            return
        if seq - 1 > self.confirmed_upto and self.ready_upto >= seq - 1:
            self._ack_upto(seq - 1)
        self.ready_upto = max(self.ready_upto, seq)
        self.write_frames([self.nack_frame(seq)])


class _TxSettle:
    """An ack, nack or reject held for tx.commit (settled after the commit's publishes were stored)."""

    __slots__ = ("settle",)

    def __init__(self, settle: Callable[[], None]) -> None:
        self.settle = settle

    def __call__(self) -> None:
        self.settle()


class _TxCommitWaiter:
    """Stands in for a confirming channel in Durability's queue: when the commit's fsync is done, settle the
    commit's acks and send tx.commit-ok; when it failed, settle nothing and close with 541."""

    __slots__ = ("session", "channel", "settles", "taken")

    def __init__(self, session: "Session", channel: ChannelSession, settles: list[Any], taken: list[Any]) -> None:
        self.session = session
        self.channel = channel
        self.settles = settles
        self.taken = taken

    def _open(self) -> bool:
        return not self.channel.closing and self.session.channels.get(self.channel.number) is self.channel

    def confirm_ready(self, seq: int) -> None:
        for settle in self.settles:
            settle()  # the client committed them, whether or not it is still there to hear commit-ok
        if self._open():
            self.session.send_method(self.channel.number, spec.TxCommitOk())

    def confirm_failed(self, seq: int) -> None:
        # The fsync failed: the store rolled the commit's messages back, and its acks are not applied.
        ch = self.channel
        if self._open():
            ch.tx_taken = self.taken + ch.tx_taken  # given back (requeued) as the connection closes
            self.session.close_connection(codes.INTERNAL_ERROR, "INTERNAL_ERROR", 90, 20)
        elif self.taken:
            ch.broker_channel.settle(self.taken, ack=False, requeue=True)


class Session:
    """The server side of one AMQP connection."""

    def __init__(self, server: Any, writer: Writer) -> None:
        self.server = server
        self.settings = server.settings
        self.broker = server.broker
        self.users: UserStore = server.users
        self.writer = writer
        self.errors: ErrorLog = server.errorlog
        # Until tune-ok agrees on a frame size, frames are limited to the spec's minimum (as RabbitMQ does).
        self.reader = ConnectionReader(
            frame_max=spec.FRAME_MIN_SIZE, max_body_size=self.settings.max_message_size, channels_open=False
        )
        self.handshake = ServerHandshake(
            frame_max=self.settings.frame_max, channel_max=self.settings.channel_max,
            heartbeat=self.settings.heartbeat, server_properties=server_properties(),
        )
        self.channels: ChannelTable = ChannelTable(self.settings.channel_max)
        # The one piece of connection state read per event (the hot path): the handshake's CLOSED, mirrored.
        self.closed = False
        self.username = ""
        self.vhost: Any = None
        self.blocked_by: set[str] = set()  # resource alarms that are on ("disk", "memory")
        self.reading_paused = False  # we stopped reading because of it
        self.write_paused = False  # the socket's write buffer is over its high-water mark
        self._handlers = self._method_handlers()

    @property
    def name(self) -> str:
        """The client's connection_name (start-ok's client properties), for the log."""
        return self.handshake.name

    @property
    def client_capabilities(self) -> dict:
        return self.handshake.client_capabilities

    @property
    def frame_max(self) -> int:
        return self.handshake.frame_max

    # --- input ------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        """Feed bytes from the socket. Never raises: errors become AMQP closes."""
        if self.closed:
            return
        # During the handshake the reader hands out one frame at a time (amqp/connection.py), so a client
        # that pipelines start-ok, tune-ok, open, channel.open and more in one write is served in order.
        reader = self.reader
        while True:
            if not self._receive(data):
                return
            if not reader.pending:
                break
            data = b""
        durability = self.server.durability
        if durability is not None:
            durability.kick()

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
                self._on_content(event)
            elif kind is MethodReceived:
                self._on_method(event.channel, event.method)
            elif kind is HeartbeatReceived:
                pass
            elif kind is ChannelFailed:
                err = event.error
                self.close_channel(event.channel, err.reply_code, err.reply_text, err.class_id, err.method_id)
        except AMQPError as exc:
            self._fail(exc)
        except BrokerError as exc:
            method = getattr(event, "method", None)
            self._fail_broker(getattr(event, "channel", 0), method, exc)
        except OSError as exc:
            # The store could not write a definition (disk full, I/O error) and the broker undid the change:
            # RabbitMQ's answer to an internal failure. One rate-limited line, no traceback.
            failures.note("write to the store", exc, "(the connection that asked for it was closed with 541)")
            self.close_connection(codes.INTERNAL_ERROR, "INTERNAL_ERROR", 0, 0, log=False)
        except Exception as exc:
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

    def after_turn(self, callback: Callable[[], None]) -> None:
        self.server.loop.call_soon(callback)

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
            self.channels.channel_max = event.channel_max
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

    def _on_login(self, event: LoginRequested) -> None:
        user = None
        if event.password is not None:
            user = self.users.authenticate(event.username, event.password, from_loopback=self.writer.is_loopback())
        if user is None:
            mechanism = event.mechanism
            self.close_connection(codes.ACCESS_REFUSED, self.handshake.refusal(mechanism), 0, 0,
                                  detail=f"login refused for user {event.username!r} using {mechanism}")
            return
        self.username = user.name
        self.handshake.accept_login()
        self._send_handshake_frames()

    def _on_open(self, event: OpenRequested, m: Any) -> None:
        vhost = self.broker.vhost(event.virtual_host)
        if vhost is None:
            raise connection_error(codes.NOT_ALLOWED, f"vhost {event.virtual_host} not found", m.CLASS_ID, m.METHOD_ID)
        self.vhost = vhost
        self.reader.channels_open = True
        self.handshake.open_ok()
        self._send_handshake_frames()
        for resource in self.server.alarms.active:
            self.set_alarm(resource, True)

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
            opens, reply = self.channels.receive_unrouted(channel, method)
            if opens:
                self._on_channel_open(channel)
            elif reply is not None:
                self.writer.write_frame(reply)
            return
        self._on_connection_method(channel, method)

    def _on_channel_open(self, number: int) -> None:
        ch, reply = self.channels.open(number, self._new_channel)
        if self.write_paused:
            ch.broker_channel.pause_deliveries()
        self.writer.write_frame(reply)

    def _new_channel(self, number: int) -> ChannelSession:
        return ChannelSession(self, number)

    def _method_handlers(self) -> dict[type, Callable[[ChannelSession, Any], None]]:
        return {
            spec.ChannelOpen: self._channel_reopen,
            spec.ChannelClose: self._channel_close,
            spec.ChannelCloseOk: lambda ch, m: None,
            spec.ChannelFlow: self._channel_flow,
            spec.ExchangeDeclare: self._exchange_declare,
            spec.ExchangeDelete: self._exchange_delete,
            spec.ExchangeBind: self._exchange_bind,
            spec.ExchangeUnbind: self._exchange_unbind,
            spec.QueueDeclare: self._queue_declare,
            spec.QueueBind: self._queue_bind,
            spec.QueueUnbind: self._queue_unbind,
            spec.QueuePurge: self._queue_purge,
            spec.QueueDelete: self._queue_delete,
            spec.BasicQos: self._basic_qos,
            spec.BasicConsume: self._basic_consume,
            spec.BasicCancel: self._basic_cancel,
            spec.BasicGet: self._basic_get,
            spec.BasicAck: self._basic_ack,
            spec.BasicNack: self._basic_nack,
            spec.BasicReject: self._basic_reject,
            spec.BasicRecover: self._basic_recover,
            spec.BasicRecoverAsync: self._basic_recover_async,
            spec.ConfirmSelect: self._confirm_select,
            spec.TxSelect: self._tx_select,
            spec.TxCommit: self._tx_commit,
            spec.TxRollback: self._tx_rollback,
        }

    # --- channel class ----------------------------------------------------------------------------
    def _channel_reopen(self, ch: ChannelSession, m: Any) -> None:
        raise self.channels.reopen_error(m)

    def _channel_close(self, ch: ChannelSession, m: Any) -> None:
        ch.release()
        self.writer.write_frame(self.channels.close_requested(ch.number))

    def _channel_flow(self, ch: ChannelSession, m: Any) -> None:
        ch.broker_channel.flow(m.active)
        self.writer.write_frame(ch.flow_ok(m.active))

    # --- exchange class ---------------------------------------------------------------------------
    def _exchange_declare(self, ch: ChannelSession, m: Any) -> None:
        self.vhost.declare_exchange(
            m.exchange, m.type, passive=m.passive, durable=m.durable, auto_delete=m.auto_delete,
            internal=m.internal, arguments=m.arguments or {},
        )
        if not m.no_wait:
            self.send_method(ch.number, spec.ExchangeDeclareOk())

    def _exchange_delete(self, ch: ChannelSession, m: Any) -> None:
        self.vhost.delete_exchange(m.exchange, if_unused=m.if_unused)
        if not m.no_wait:
            self.send_method(ch.number, spec.ExchangeDeleteOk())

    def _exchange_bind(self, ch: ChannelSession, m: Any) -> None:
        self.vhost.bind_exchange(m.destination, m.source, m.routing_key, m.arguments or {})
        if not m.no_wait:
            self.send_method(ch.number, spec.ExchangeBindOk())

    def _exchange_unbind(self, ch: ChannelSession, m: Any) -> None:
        self.vhost.unbind_exchange(m.destination, m.source, m.routing_key, m.arguments or {})
        if not m.no_wait:
            self.send_method(ch.number, spec.ExchangeUnbindOk())

    # --- queue class ------------------------------------------------------------------------------
    def _queue_declare(self, ch: ChannelSession, m: Any) -> None:
        queue, messages, consumers = self.vhost.declare_queue(
            m.queue, passive=m.passive, durable=m.durable, exclusive=m.exclusive, auto_delete=m.auto_delete,
            arguments=m.arguments or {}, owner=self,
        )
        if not m.no_wait:
            self.send_method(ch.number, spec.QueueDeclareOk(queue=queue.name, message_count=messages,
                                                            consumer_count=consumers))

    def _queue_bind(self, ch: ChannelSession, m: Any) -> None:
        self.vhost.bind_queue(m.queue, m.exchange, m.routing_key, m.arguments or {}, owner=self)
        if not m.no_wait:
            self.send_method(ch.number, spec.QueueBindOk())

    def _queue_unbind(self, ch: ChannelSession, m: Any) -> None:
        self.vhost.unbind_queue(m.queue, m.exchange, m.routing_key, m.arguments or {}, owner=self)
        self.send_method(ch.number, spec.QueueUnbindOk())

    def _queue_purge(self, ch: ChannelSession, m: Any) -> None:
        count = self.vhost.purge_queue(m.queue, owner=self)
        if not m.no_wait:
            self.send_method(ch.number, spec.QueuePurgeOk(message_count=count))

    def _queue_delete(self, ch: ChannelSession, m: Any) -> None:
        count = self.vhost.delete_queue(m.queue, if_unused=m.if_unused, if_empty=m.if_empty, owner=self)
        if not m.no_wait:
            self.send_method(ch.number, spec.QueueDeleteOk(message_count=count))

    # --- basic class ------------------------------------------------------------------------------
    def _basic_qos(self, ch: ChannelSession, m: Any) -> None:
        ch.broker_channel.qos(m.prefetch_size, m.prefetch_count, m.global_)
        self.send_method(ch.number, spec.BasicQosOk())

    def _basic_consume(self, ch: ChannelSession, m: Any) -> None:
        tag = ch.broker_channel.consume(
            m.queue, m.consumer_tag, no_ack=m.no_ack, exclusive=m.exclusive, arguments=m.arguments or {},
        )
        if not m.no_wait:
            self.send_method(ch.number, spec.BasicConsumeOk(consumer_tag=tag))
        ch.broker_channel.start_consumer(tag)

    def _basic_cancel(self, ch: ChannelSession, m: Any) -> None:
        ch.broker_channel.cancel(m.consumer_tag)
        if not m.no_wait:
            self.send_method(ch.number, spec.BasicCancelOk(consumer_tag=m.consumer_tag))

    def _basic_get(self, ch: ChannelSession, m: Any) -> None:
        got = ch.broker_channel.get(m.queue, no_ack=m.no_ack)
        if got is None:
            self.send_method(ch.number, spec.BasicGetEmpty())
            return
        delivery_tag, redelivered, message, remaining = got
        self.writer.write_frames(serializer.basic_get_ok_frames(
            ch.number, delivery_tag, redelivered, message.exchange, message.routing_key, remaining,
            message.properties.raw, message.body, self.frame_max,
        ))

    def _basic_ack(self, ch: ChannelSession, m: Any) -> None:
        if ch.tx:
            self._tx_settle(ch, m.delivery_tag, m.multiple, ack=True, requeue=False)
            return
        ch.broker_channel.ack(m.delivery_tag, m.multiple)

    def _basic_nack(self, ch: ChannelSession, m: Any) -> None:
        if ch.tx:
            self._tx_settle(ch, m.delivery_tag, m.multiple, ack=False, requeue=m.requeue)
            return
        ch.broker_channel.nack(m.delivery_tag, m.multiple, m.requeue)

    def _basic_reject(self, ch: ChannelSession, m: Any) -> None:
        if ch.tx:
            self._tx_settle(ch, m.delivery_tag, False, ack=False, requeue=m.requeue)
            return
        ch.broker_channel.reject(m.delivery_tag, m.requeue)

    def _tx_settle(self, ch: ChannelSession, tag: int, multiple: bool, *, ack: bool, requeue: bool) -> None:
        """In a transaction an ack/nack/reject takes its deliveries now (so a second ack of the same tag fails
        at once, as in RabbitMQ) and settles them at commit; rollback gives them back as still unacked."""
        records = ch.broker_channel.take(tag, multiple)
        ch.tx_taken.extend(records)
        ch.tx_actions.append(_TxSettle(lambda: ch.broker_channel.settle(records, ack=ack, requeue=requeue)))

    def _basic_recover(self, ch: ChannelSession, m: Any) -> None:
        ch.broker_channel.recover(m.requeue)
        self.send_method(ch.number, spec.BasicRecoverOk())

    def _basic_recover_async(self, ch: ChannelSession, m: Any) -> None:
        ch.broker_channel.recover(m.requeue)

    def _on_content(self, event: ContentReceived) -> None:
        """basic.publish with its content: route now, or hold it for tx.commit."""
        number = event.channel
        ch = self.channels.get(number)
        if ch is None or ch.closing:
            # Channels exist only while the connection runs: no open channel is the one check of the hot path.
            state = self.handshake.state
            if ch is not None or state == CLOSING:
                return
            if state != RUNNING:
                raise frame_before_open(event.method)
            raise self.channels.content_on_unopened()
        # Properties that do not decode are 541 now, as in RabbitMQ, not later in whatever rewrites them.
        event.properties.check()
        m = event.method
        if self.blocked_by and not self.reading_paused:
            self._block_now()  # a publish during a resource alarm blocks its connection (RabbitMQ's rule)
        try:
            self._publish(ch, m, event.properties, event.body)
        except BrokerError as exc:
            self._fail_broker(number, m, exc)

    def _publish(self, ch: ChannelSession, m: Any, properties: BasicProperties, body: bytes) -> None:
        if m.immediate:
            raise connection_error(codes.NOT_IMPLEMENTED, "immediate=true",
                                      m.CLASS_ID, m.METHOD_ID)
        message = Message(m.exchange, m.routing_key, properties, body)
        if ch.tx:
            # Validate now (RabbitMQ checks user_id and the exchange at publish time), route at commit.
            ch.broker_channel.check_user_id(message)
            self.vhost.check_publish(m.exchange)
            ch.tx_actions.append(lambda: self._route(ch, m, message, None))
            return
        seq = 0
        if ch.confirm_mode:
            ch.publish_seq += 1
            seq = ch.publish_seq
        self._route(ch, m, message, seq)

    def _route(self, ch: ChannelSession, m: Any, message: Message, seq: int | None) -> None:
        durability = self.server.durability
        aborts = durability.aborts if durability is not None else 0
        try:
            result = ch.broker_channel.publish(m.exchange, m.routing_key, message, mandatory=m.mandatory)
            if durability is not None and durability.aborts != aborts:
                # Routing this message did more than append it (a head expired and was dead-lettered, say),
                # that failed, and the store rolled back everything not yet durable: this message too.
                raise OSError(errno.EIO, "the store rolled back this publish")
        except OSError:
            # The store could not write (disk full, I/O error) and rolled back what was not yet durable:
            # the publisher hears basic.nack and may retry; the connection, and the broker, stay up.
            if seq is None:
                raise  # inside tx.commit: the commit fails as a whole (_tx_commit)
            if seq:
                if ch.sync_upto > ch.ready_upto:
                    ch.sync_upto = seq
                    self.server.durability.wait_for_commit(ch, seq, ok=False)
                else:
                    ch.confirm_failed(seq)
            return
        if m.mandatory and not result.routed:
            self.writer.write_frames(serializer.basic_return_frames(
                ch.number, codes.NO_ROUTE, "NO_ROUTE", m.exchange, m.routing_key,
                message.properties.raw, message.body, self.frame_max,
            ))
        if seq:
            # Wait for the fsync when this publish (or an earlier one on this channel) wrote to the store;
            # `commit_pending` may also be set by others' writes, which only costs this confirm a little latency.
            # A refused publish (x-overflow reject-publish) is nacked, in order with the acks around it.
            if ch.sync_upto > ch.ready_upto or (durability is not None and durability.store.commit_pending):
                ch.sync_upto = seq
                durability.wait_for_commit(ch, seq, ok=not result.nack)
            elif result.nack:
                ch.confirm_failed(seq)
            else:
                ch.confirm_ready(seq)

    # --- confirm and tx ---------------------------------------------------------------------------
    def _confirm_select(self, ch: ChannelSession, m: Any) -> None:
        reply = ch.select_confirm(m)
        if reply is not None:
            self.writer.write_frame(reply)

    def _tx_select(self, ch: ChannelSession, m: Any) -> None:
        self.writer.write_frame(ch.select_tx(m))

    def _tx_commit(self, ch: ChannelSession, m: Any) -> None:
        ch.require_tx(m)
        actions, ch.tx_actions = ch.tx_actions, []
        taken, ch.tx_taken = ch.tx_taken, []
        # Publishes first: if the store refuses one, no ack of the commit has been applied either.
        try:
            for action in actions:
                if type(action) is not _TxSettle:
                    action()
        except OSError as exc:
            # The store rolled back every message of the commit not yet durable (this one's with them);
            # the publisher must not hear commit-ok. RabbitMQ answers an internal failure with 541; closing
            # gives the commit's acked deliveries back (requeued), so nothing of it is applied.
            failures.note("write to the message store", exc, "(a tx.commit failed: its connection was closed with 541)")
            ch.tx_taken = taken
            self.close_connection(codes.INTERNAL_ERROR, "INTERNAL_ERROR", m.CLASS_ID, m.METHOD_ID)
            return
        settles = [action for action in actions if type(action) is _TxSettle]
        durability = self.server.durability
        if durability is not None and durability.store.commit_pending:
            # commit-ok (and the commit's acks) only once its persistent messages are on stable storage.
            durability.wait_for_commit(_TxCommitWaiter(self, ch, settles, taken), 0)
            return
        for settle in settles:
            settle()
        self.send_method(ch.number, spec.TxCommitOk())

    def _tx_rollback(self, ch: ChannelSession, m: Any) -> None:
        ch.require_tx(m)
        ch.tx_actions = []
        taken, ch.tx_taken = ch.tx_taken, []
        if taken:
            ch.broker_channel.restore(taken)
        self.send_method(ch.number, spec.TxRollbackOk())
