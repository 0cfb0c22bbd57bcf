"""One open AMQP channel on the server side: the broker's delivery target, with confirms and transactions.

Its protocol state (open/closing, modes, confirm numbering) is amqp/channels.py's `ChannelState`, its
confirm bookkeeping server/confirms.py's `ConfirmingChannel`; this class adds the broker-side `Channel`
and the frames the broker asks for (deliveries, cancel notifications, a channel close of the broker's).
One object per channel, so the publish and delivery paths read plain attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from leveret.amqp import serializer, spec
from leveret.broker.channel import Channel
from leveret.broker.errors import BrokerError
from leveret.broker.message import Message
from leveret.server.confirms import ConfirmingChannel
from leveret.server.replies import reply_for
from leveret.server.transactions import Transaction

if TYPE_CHECKING:
    from leveret.server.session import Session


class ChannelSession(ConfirmingChannel):
    """One open channel of `session`: the `DeliveryTarget` the broker's Channel writes through."""

    __slots__ = ("session", "broker_channel", "transaction", "frame_max")

    def __init__(self, session: "Session", number: int) -> None:
        super().__init__(number, session.writer.write_frames, session.call_soon)
        self.session = session
        self.frame_max = session.handshake.frame_max
        self.broker_channel = Channel(session.vhost, self, session, user=session.username,
                                      refill_later=session.refill_later,
                                      may_impersonate=session.users.is_internal(session.username))
        self.transaction: Transaction | None = None  # from tx.select on

    def release(self) -> None:
        """The channel is closing: an open transaction's taken deliveries go back, then everything is requeued."""
        self.closing = True  # no confirms or deliveries are written for it from now on
        if self.transaction is not None:
            self.transaction.rollback()
        self.broker_channel.close()

    # --- delivery target -------------------------------------------------------------------------
    def deliver(self, consumer_tag: str, delivery_tag: int, redelivered: bool, message: Message) -> None:
        self.write_frames(
            serializer.basic_deliver_frames(
                self.number, consumer_tag, delivery_tag, redelivered, message.exchange, message.routing_key,
                message.properties.raw, message.body, self.frame_max,
            )
        )

    def deliver_batch(self, consumer_tag: str, deliveries: list) -> None:
        frames: list = []
        serializer.basic_deliver_batch(self.number, consumer_tag, deliveries, self.frame_max, frames)
        self.write_frames(frames)

    def channel_error(self, error: BrokerError) -> None:
        """The broker closes this channel (e.g. consumer timeout: 406 with RabbitMQ's text)."""
        reply = reply_for(error)
        self.session.close_channel(self.number, reply.code, reply.text, 0, 0)

    def consumer_cancelled(self, consumer_tag: str) -> None:
        if self.session.client_capabilities.get("consumer_cancel_notify"):
            self.session.send_method(self.number, spec.BasicCancel(consumer_tag=consumer_tag, no_wait=True))
