"""Publisher confirms of one channel: when a publish may be acked, and acks coalesced per loop turn.

A publish in confirm mode has a sequence number (amqp/channels.py numbers them). Once routed it is
confirmed in one of three ways (`confirm_routed`):

* nothing of it (nor of an earlier publish still waiting) must reach disk first: `confirm_ready`, which
  acks it together with every other publish made ready in the same loop turn (one multiple ack);
* it, or an earlier publish of this channel, waits for a group commit: it joins the commit's waiters
  (server/durability.py), which call `confirm_ready` or `confirm_failed` when the fsync is done, in order;
* the broker refused it (x-overflow reject-publish): `confirm_failed`, a nack, in order with the acks
  around it.

A publish the store could not write (disk full) is nacked (`confirm_unstored`), after every earlier
publish waiting for a commit, so confirms leave in sequence order. Nothing is written for a channel
that is closing.
"""

from __future__ import annotations

from typing import Any, Callable

from leveret.amqp.channels import ChannelState


class ConfirmingChannel(ChannelState):
    """A channel's confirm bookkeeping (the server's channel extends it: one object on the hot path)."""

    __slots__ = ("write_frames", "call_soon", "ready_upto", "confirm_scheduled", "sync_upto")

    def __init__(self, number: int, write_frames: Callable[[list[bytes]], None],
                 call_soon: Callable[[Callable[[], None]], Any]) -> None:
        super().__init__(number)
        self.write_frames = write_frames
        self.call_soon = call_soon  # runs a callback after this loop turn
        self.ready_upto = 0  # highest sequence number whose message is routed (and durable, where it must be)
        self.confirm_scheduled = False
        self.sync_upto = 0  # highest sequence number waiting for a group commit

    def confirm_routed(self, seq: int, refused: bool, durability: Any) -> None:
        """Publish `seq` is routed (`refused`: the broker turned it away): ack it, nack it, or wait for the fsync.

        `commit_pending` may also be set by other channels' writes, which only costs this confirm a
        little latency."""
        if self.sync_upto > self.ready_upto or (durability is not None and durability.store.commit_pending):
            self.sync_upto = seq
            durability.wait_for_commit(self, seq, ok=not refused)
        elif refused:
            self.confirm_failed(seq)
        else:
            # confirm_ready, inline: this is the per-publish path of every confirming publisher.
            if seq > self.ready_upto:
                self.ready_upto = seq
            if not self.confirm_scheduled:
                self.confirm_scheduled = True
                self.call_soon(self._send_confirms)

    def confirm_unstored(self, seq: int, durability: Any) -> None:
        """The store could not write publish `seq` and rolled it back: nack it, in order."""
        if self.sync_upto > self.ready_upto:
            self.sync_upto = seq
            durability.wait_for_commit(self, seq, ok=False)
        else:
            self.confirm_failed(seq)

    def confirm_ready(self, seq: int) -> None:
        """Everything up to `seq` may be acked; acks are coalesced into one multiple-ack per loop turn."""
        if seq > self.ready_upto:
            self.ready_upto = seq
        if not self.confirm_scheduled:
            self.confirm_scheduled = True
            self.call_soon(self._send_confirms)

    def _send_confirms(self) -> None:
        self.confirm_scheduled = False
        upto = self.ready_upto
        if self.closing or upto <= self.confirmed_upto:
            return
        self.write_frames([self.ack_frame(upto)])

    def confirm_failed(self, seq: int) -> None:
        """Publish `seq` could not be made durable (or was refused): nack it, after acking what precedes it."""
        if self.closing:
            return
        if seq - 1 > self.confirmed_upto and self.ready_upto >= seq - 1:
            self.write_frames([self.ack_frame(seq - 1)])
        self.ready_upto = max(self.ready_upto, seq)
        self.write_frames([self.nack_frame(seq)])
