"""The source side of one shovel attempt: settle deliveries in their order, many with one `multiple` ack.

A shovel acknowledges a source message once the destination confirmed it (or, `on-publish`, once it was
published). Acking each one on its own costs a frame and a write on the shovel's side and an ack frame on
the source broker's for every message; the destination confirms in batches anyway. So the deliveries are
kept in delivery-tag order, and whoever settles one acknowledges, with `multiple`, the longest run of
settled deliveries at the head: one ack per confirm batch. A delivery the destination refused (nack) or
that comes past the `src-delete-after` count is nacked or rejected on its own first; then it only takes
its place in the run, never as the ack's tag (a tag the source no longer holds could be refused as
unknown). A `multiple` ack never reaches past a delivery not yet settled, so nothing is acknowledged on the
source before the destination has it.
"""

from __future__ import annotations

import asyncio
from collections import deque

import aiormq


class SourceAcks:
    """Deliveries of one source channel, settled in order."""

    def __init__(self, channel: aiormq.abc.AbstractChannel) -> None:
        self.channel = channel
        self._open: deque[int] = deque()  # delivery tags not yet acked, nacked or rejected, in order
        self._to_ack: set[int] = set()  # settled: acknowledge
        self._given_back: set[int] = set()  # nacked or rejected on their own already
        self._sending = False  # a task is writing acks: the others leave theirs to it

    def delivered(self, tag: int) -> None:
        self._open.append(tag)

    async def ack(self, tag: int) -> None:
        self._to_ack.add(tag)
        await self._flush()

    async def give_back(self, tag: int, *, nack: bool) -> None:
        """Return the delivery to the source queue (basic.nack or basic.reject, requeue)."""
        if nack:
            await self.channel.basic_nack(tag, requeue=True)
        else:
            await self.channel.basic_reject(tag, requeue=True)
        self._given_back.add(tag)
        await self._flush()

    async def _flush(self) -> None:
        if self._sending:
            return
        self._sending = True
        try:
            # One loop turn first: the other confirms of the destination's batch resume and join this ack.
            await asyncio.sleep(0)
            while True:
                last = None
                while self._open and (self._open[0] in self._to_ack or self._open[0] in self._given_back):
                    tag = self._open.popleft()
                    if tag in self._to_ack:
                        self._to_ack.discard(tag)
                        last = tag
                    else:
                        self._given_back.discard(tag)
                if last is None:
                    return
                await self.channel.basic_ack(last, multiple=True)
        finally:
            self._sending = False
