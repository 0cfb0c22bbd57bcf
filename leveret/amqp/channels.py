"""Channel states of one connection, sans IO: open, closing, confirm and tx modes, confirm numbering.

`ChannelState` is one open channel's protocol state; the server's per-channel object extends it (so the
hot path reads plain attributes, no second object). `ChannelTable` holds the connection's channels by
number (`by_number`, a plain dict: the hot path's one lookup, which a dict subclass would make slower) and
the rules for the methods that do not reach an open channel's handler: channel.open and RabbitMQ's channel_max limit, a method on a channel never
opened, what is still heard on a channel we are closing.

Every move that owes the peer a frame returns it as bytes; the caller writes them.

Confirm numbering (publisher confirms): the server counts the publishes of a channel in confirm mode
itself, inline on the publish path (`ch.publish_seq += 1`, the one fast path kept out of a call); the
acks and nacks it owes go out through `ack_frame` / `nack_frame`, which keep `confirmed_upto` and choose
`multiple` as RabbitMQ does (a single ack names one tag; more at once are one multiple ack).
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from . import errors as codes
from .errors import AMQPChannelError, AMQPConnectionError
from .serializer import basic_ack_frame, basic_nack_frame, method_frame
from .spec import (
    ChannelClose, ChannelCloseOk, ChannelFlowOk, ChannelOpen, ChannelOpenOk, ConfirmSelectOk, TxCommitOk,
    TxRollbackOk, TxSelectOk,
)


def channel_error(channel: int, code: int, detail: str, class_id: int = 0, method_id: int = 0) -> AMQPChannelError:
    """A channel exception with RabbitMQ's reply text for `code`."""
    return AMQPChannelError(channel, detail, class_id, method_id, reply_code=code)


class ChannelState:
    """One open channel's protocol state."""

    __slots__ = ("number", "closing", "confirm_mode", "publish_seq", "confirmed_upto", "tx")

    def __init__(self, number: int) -> None:
        self.number = number
        self.closing = False  # we sent channel.close and wait for close-ok: nothing more is written for it
        self.confirm_mode = False
        self.publish_seq = 0  # sequence number of the last publish seen in confirm mode
        self.confirmed_upto = 0  # highest sequence number already acked or nacked to the client
        self.tx = False

    # --- modes ------------------------------------------------------------------------------------
    def select_confirm(self, method: Any) -> bytes | None:
        """confirm.select: confirm-ok (None with nowait); a transactional channel cannot switch (406)."""
        if self.tx:
            raise channel_error(self.number, codes.PRECONDITION_FAILED, "cannot switch from tx to confirm mode",
                                method.CLASS_ID, method.METHOD_ID)
        self.confirm_mode = True
        return None if method.nowait else method_frame(self.number, ConfirmSelectOk())

    def select_tx(self, method: Any) -> bytes:
        """tx.select: select-ok; a confirming channel cannot switch (406)."""
        if self.confirm_mode:
            raise channel_error(self.number, codes.PRECONDITION_FAILED, "cannot switch from confirm to tx mode",
                                method.CLASS_ID, method.METHOD_ID)
        self.tx = True
        return method_frame(self.number, TxSelectOk())

    def require_tx(self, method: Any) -> None:
        """tx.commit and tx.rollback need tx.select first (406)."""
        if not self.tx:
            raise channel_error(self.number, codes.PRECONDITION_FAILED, "channel is not transactional",
                                method.CLASS_ID, method.METHOD_ID)

    def commit_ok(self) -> bytes:
        return method_frame(self.number, TxCommitOk())

    def rollback_ok(self) -> bytes:
        return method_frame(self.number, TxRollbackOk())

    def flow_ok(self, active: bool) -> bytes:
        return method_frame(self.number, ChannelFlowOk(active=active))

    # --- confirms ---------------------------------------------------------------------------------
    def ack_frame(self, upto: int) -> bytes:
        """basic.ack of every publish up to `upto` not confirmed yet (multiple when more than one)."""
        multiple = upto - self.confirmed_upto > 1
        self.confirmed_upto = upto
        return basic_ack_frame(self.number, upto, multiple)

    def nack_frame(self, seq: int) -> bytes:
        """basic.nack of publish `seq` (the ones before it ready by then were acked first, by the caller).

        As RabbitMQ 3.10 sends it: multiple when nothing before it is still unconfirmed (its nacks are always
        coalesced, only a lone ack goes out single), requeue true (the field's default, which it leaves)."""
        multiple = seq == self.confirmed_upto + 1  # every publish before it confirmed already
        if seq > self.confirmed_upto:
            self.confirmed_upto = seq
        return basic_nack_frame(self.number, seq, multiple, True)

    # --- close ------------------------------------------------------------------------------------
    def close_frame(self, code: int, text: str, class_id: int, method_id: int) -> bytes:
        """Server-initiated channel.close: the channel is closing until close-ok (see ChannelTable)."""
        self.closing = True
        return method_frame(self.number, ChannelClose(reply_code=code, reply_text=text, class_id=class_id,
                                                      method_id=method_id))


State = TypeVar("State", bound=ChannelState)


class ChannelTable:
    """The open (and closing) channels of one connection by number, and the rules around them."""

    def __init__(self, channel_max: int) -> None:
        self.by_number: dict[int, Any] = {}
        self.channel_max = channel_max  # negotiated by tune-ok (0 from the client means the server's)

    def open(self, number: int, make: Callable[[int], State]) -> tuple[State, bytes]:
        """channel.open on a free number: the new channel (from `make`) and its open-ok.

        RabbitMQ limits how many channels are open, not their numbers, and names no method in the reply."""
        by_number = self.by_number
        if len(by_number) >= self.channel_max:
            raise AMQPConnectionError(
                f"number of channels opened ({len(by_number)}) has reached the negotiated channel_max "
                f"({self.channel_max})", 0, 0, reply_code=codes.NOT_ALLOWED)
        ch = by_number[number] = make(number)
        return ch, method_frame(number, ChannelOpenOk())

    def receive_unrouted(self, number: int, method: Any) -> tuple[bool, bytes | None]:
        """A method on a channel that is not open, or is closing (the handlers get the others).

        Returns (open it, reply): (True, None) for a channel.open the caller then makes with `open`;
        (False, close-ok or None) for what a closing channel still hears. Raises 504 for anything else on
        a channel never opened."""
        ch = self.by_number.get(number)
        kind = type(method)
        if ch is None:
            if kind is ChannelOpen:
                return True, None
            raise AMQPConnectionError("expected 'channel.open'", method.CLASS_ID, method.METHOD_ID,
                                      reply_code=codes.CHANNEL_ERROR)
        # After our channel.close only close-ok (or a crossing close) counts; RabbitMQ drops the rest.
        if kind is ChannelCloseOk:
            del self.by_number[number]
        elif kind is ChannelClose:
            del self.by_number[number]
            return False, method_frame(number, ChannelCloseOk())
        return False, None

    def close_requested(self, number: int) -> bytes:
        """The client's channel.close on an open channel (the caller released it first): close-ok."""
        del self.by_number[number]
        return method_frame(number, ChannelCloseOk())

    @staticmethod
    def reopen_error(method: Any) -> AMQPConnectionError:
        """channel.open on a channel already open (504, a connection error in RabbitMQ)."""
        return AMQPConnectionError("second 'channel.open' seen", method.CLASS_ID, method.METHOD_ID,
                                   reply_code=codes.CHANNEL_ERROR)

    @staticmethod
    def content_on_unopened() -> AMQPConnectionError:
        """basic.publish content on a channel never opened (504, naming basic.publish as RabbitMQ does)."""
        return AMQPConnectionError("expected 'channel.open'", 60, 40, reply_code=codes.CHANNEL_ERROR)
