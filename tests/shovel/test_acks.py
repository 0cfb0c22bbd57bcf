"""SourceAcks (leveret/shovel/acks.py): source deliveries settled in order, a run of them with one `multiple`
ack, never past one still unsettled, and never on a tag already given back. A recording channel stands in
for the source; the engine tests (test_engine.py) move real messages through it."""

from __future__ import annotations

import asyncio

from leveret.shovel.acks import SourceAcks


class RecordingChannel:
    def __init__(self) -> None:
        self.sent: list[tuple] = []

    async def basic_ack(self, tag: int, multiple: bool = False) -> None:
        self.sent.append(("ack", tag, multiple))

    async def basic_nack(self, tag: int, requeue: bool = True) -> None:
        self.sent.append(("nack", tag, requeue))

    async def basic_reject(self, tag: int, requeue: bool = True) -> None:
        self.sent.append(("reject", tag, requeue))


def settle(steps) -> list[tuple]:
    """Deliver tags 1..5, then run `steps(acks)` (coroutines run concurrently, as delivery tasks do)."""

    async def run() -> list[tuple]:
        channel = RecordingChannel()
        acks = SourceAcks(channel)  # type: ignore[arg-type]
        for tag in range(1, 6):
            acks.delivered(tag)
        for batch in steps(acks):
            await asyncio.gather(*batch)
        return channel.sent

    return asyncio.run(run())


def test_one_confirm_batch_is_one_multiple_ack() -> None:
    assert settle(lambda acks: [[acks.ack(tag) for tag in (1, 2, 3, 4, 5)]]) == [("ack", 5, True)]


def test_an_ack_never_reaches_past_an_unsettled_delivery() -> None:
    sent = settle(lambda acks: [[acks.ack(2), acks.ack(3)], [acks.ack(1)], [acks.ack(5)], [acks.ack(4)]])
    assert sent == [("ack", 3, True), ("ack", 5, True)]


def test_a_given_back_delivery_is_settled_alone_and_never_the_acks_tag() -> None:
    sent = settle(lambda acks: [[acks.ack(1), acks.give_back(2, nack=True)], [acks.give_back(5, nack=False)],
                                [acks.ack(3), acks.ack(4)]])
    assert ("nack", 2, True) in sent and ("reject", 5, True) in sent
    assert [s for s in sent if s[0] == "ack"] == [("ack", 1, True), ("ack", 4, True)]
