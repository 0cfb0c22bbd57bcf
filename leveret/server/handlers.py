"""The channel-level AMQP methods of one running connection, against its virtual host.

Each handler takes the channel (server/channel_session.py) and the decoded method, calls the broker, and
writes the reply (none with no-wait). Broker errors propagate to server/session.py, which closes the
channel or the connection with RabbitMQ's reply (server/replies.py). `publish` is the one content path:
it checks, numbers (confirm mode) or holds (tx mode) a basic.publish and routes it; its confirm goes
through server/confirms.py, a transaction through server/transactions.py.

The hot path (basic.publish content, basic.ack) is one bound method looked up in a dict per method, as
before this module existed: no further layer of calls.
"""

from __future__ import annotations

import errno
from functools import partial
from typing import Any, Callable

from leveret.amqp import errors as codes
from leveret.amqp import serializer, spec
from leveret.amqp.channels import ChannelTable
from leveret.amqp.handshake import connection_error
from leveret.amqp.properties import BasicProperties
from leveret.broker.message import Message
from leveret.server.channel_session import ChannelSession
from leveret.server.transactions import Transaction, TxCommitWaiter
from leveret.store.fsio import failures


class ChannelMethods:
    """The method handlers of one connection: `table()` maps each method class to its bound handler."""

    def __init__(self, *, vhost: Any, owner: Any, channels: ChannelTable, write_frame: Callable[[bytes], None],
                 write_frames: Callable[[list[bytes]], None], frame_max: int, durability: Any,
                 close_connection: Callable[..., None],
                 authorize_queue: Callable[[ChannelSession, Any], Callable[[str], None] | None] = lambda ch, m: None,
                 ) -> None:
        self.vhost = vhost
        # The permission check of a queue.declare's final name (server/permissions.py; None: nothing to check).
        self.authorize_queue = authorize_queue
        self.owner = owner  # the connection, as exclusive queues know it
        self.channels = channels
        self.write_frame = write_frame
        self.write_frames = write_frames
        self.frame_max = frame_max
        self.durability = durability  # server/durability.py (None: nothing waits for an fsync)
        self.close_connection = close_connection

    def send_method(self, channel: int, method: Any) -> None:
        self.write_frame(serializer.method_frame(channel, method))

    def table(self) -> dict[type, Callable[[ChannelSession, Any], None]]:
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
        self.write_frame(self.channels.close_requested(ch.number))

    def _channel_flow(self, ch: ChannelSession, m: Any) -> None:
        ch.broker_channel.flow(m.active)
        self.write_frame(ch.flow_ok(m.active))

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
            arguments=m.arguments or {}, owner=self.owner, authorize=self.authorize_queue(ch, m),
        )
        if not m.no_wait:
            self.send_method(ch.number, spec.QueueDeclareOk(queue=queue.name, message_count=messages,
                                                            consumer_count=consumers))

    def _queue_bind(self, ch: ChannelSession, m: Any) -> None:
        self.vhost.bind_queue(m.queue, m.exchange, m.routing_key, m.arguments or {}, owner=self.owner)
        if not m.no_wait:
            self.send_method(ch.number, spec.QueueBindOk())

    def _queue_unbind(self, ch: ChannelSession, m: Any) -> None:
        self.vhost.unbind_queue(m.queue, m.exchange, m.routing_key, m.arguments or {}, owner=self.owner)
        self.send_method(ch.number, spec.QueueUnbindOk())

    def _queue_purge(self, ch: ChannelSession, m: Any) -> None:
        count = self.vhost.purge_queue(m.queue, owner=self.owner)
        if not m.no_wait:
            self.send_method(ch.number, spec.QueuePurgeOk(message_count=count))

    def _queue_delete(self, ch: ChannelSession, m: Any) -> None:
        count = self.vhost.delete_queue(m.queue, if_unused=m.if_unused, if_empty=m.if_empty, owner=self.owner)
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
        self.write_frames(serializer.basic_get_ok_frames(
            ch.number, delivery_tag, redelivered, message.exchange, message.routing_key, remaining,
            message.properties.raw, message.body, self.frame_max,
        ))

    def _basic_ack(self, ch: ChannelSession, m: Any) -> None:
        if ch.tx:
            ch.transaction.hold_settle(m.delivery_tag, m.multiple, ack=True, requeue=False)
            return
        ch.broker_channel.ack(m.delivery_tag, m.multiple)

    def _basic_nack(self, ch: ChannelSession, m: Any) -> None:
        if ch.tx:
            ch.transaction.hold_settle(m.delivery_tag, m.multiple, ack=False, requeue=m.requeue)
            return
        ch.broker_channel.nack(m.delivery_tag, m.multiple, m.requeue)

    def _basic_reject(self, ch: ChannelSession, m: Any) -> None:
        if ch.tx:
            ch.transaction.hold_settle(m.delivery_tag, False, ack=False, requeue=m.requeue)
            return
        ch.broker_channel.reject(m.delivery_tag, m.requeue)

    def _basic_recover(self, ch: ChannelSession, m: Any) -> None:
        ch.broker_channel.recover(m.requeue)
        self.send_method(ch.number, spec.BasicRecoverOk())

    def _basic_recover_async(self, ch: ChannelSession, m: Any) -> None:
        ch.broker_channel.recover(m.requeue)

    def publish(self, ch: ChannelSession, m: Any, properties: BasicProperties, body: bytes) -> None:
        if m.immediate:
            raise connection_error(codes.NOT_IMPLEMENTED, "immediate=true",
                                      m.CLASS_ID, m.METHOD_ID)
        message = Message(m.exchange, m.routing_key, properties, body)
        if ch.tx:
            # Validate now (RabbitMQ checks user_id and the exchange at publish time), route at commit.
            ch.broker_channel.check_user_id(message)
            self.vhost.check_publish(m.exchange)
            ch.transaction.hold_publish(lambda: self._route(ch, m, message, None))
            return
        seq = 0
        if ch.confirm_mode:
            ch.publish_seq += 1
            seq = ch.publish_seq
        self._route(ch, m, message, seq)

    def _route(self, ch: ChannelSession, m: Any, message: Message, seq: int | None) -> None:
        durability = self.durability
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
                self.vhost.dispatch_deferred()  # earlier publishes' deliveries before this nack
                ch.confirm_unstored(seq, durability)
            return
        if not result.routed or result.rejected:
            # A basic.return or a nack may be written now: earlier publishes' deliveries go first, as they
            # would have without deferred dispatch (broker/vhost.py `dispatch_deferred`).
            self.vhost.dispatch_deferred()
        if not result.routed:
            self.vhost.lifecycle.unroutable(m.mandatory)
            if m.mandatory:
                self.write_frames(serializer.basic_return_frames(
                    ch.number, codes.NO_ROUTE, "NO_ROUTE", m.exchange, m.routing_key,
                    message.properties.raw, message.body, self.frame_max,
                ))
        if seq:
            ch.confirm_routed(seq, result.nack, durability)

    # --- confirm and tx ---------------------------------------------------------------------------
    def _confirm_select(self, ch: ChannelSession, m: Any) -> None:
        reply = ch.select_confirm(m)
        if reply is not None:
            self.write_frame(reply)

    def _tx_select(self, ch: ChannelSession, m: Any) -> None:
        reply = ch.select_tx(m)
        if ch.transaction is None:
            ch.transaction = Transaction(ch.broker_channel)
        self.write_frame(reply)

    def _tx_commit(self, ch: ChannelSession, m: Any) -> None:
        ch.require_tx(m)
        try:
            settles, taken = ch.transaction.commit()
        except OSError as exc:
            # The store rolled back every message of the commit not yet durable (this one's with them);
            # the publisher must not hear commit-ok. RabbitMQ answers an internal failure with 541; closing
            # gives the commit's acked deliveries back (requeued), so nothing of it is applied.
            failures.note("write to the message store", exc, "(a tx.commit failed: its connection was closed with 541)")
            self.close_connection(codes.INTERNAL_ERROR, "INTERNAL_ERROR", m.CLASS_ID, m.METHOD_ID)
            return
        durability = self.durability
        if durability is not None and durability.store.commit_pending:
            # commit-ok (and the commit's acks) only once its persistent messages are on stable storage.
            fail = partial(self.close_connection, codes.INTERNAL_ERROR, "INTERNAL_ERROR", 90, 20)
            durability.wait_for_commit(TxCommitWaiter(ch, settles, taken, self.write_frame, fail), 0)
            return
        for settle in settles:
            settle()
        self.write_frame(ch.commit_ok())

    def _tx_rollback(self, ch: ChannelSession, m: Any) -> None:
        ch.require_tx(m)
        ch.transaction.rollback()
        self.write_frame(ch.rollback_ok())
