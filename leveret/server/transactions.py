"""AMQP transactions (tx.select / commit / rollback) of one channel, as RabbitMQ runs them.

Inside a transaction a publish is checked at once (user_id, the exchange) but routed only at commit; an
ack, nack or reject takes its deliveries at once (so a second ack of the same tag fails at once, as in
RabbitMQ) and settles them at commit; rollback gives the taken deliveries back as still unacked and
forgets the publishes. A commit runs its publishes first: if the store refuses one, none of the
commit's settles is applied and the connection closes with 541 (which gives the taken deliveries back,
requeued). When the commit's messages must reach disk, commit-ok and the settles wait for the group
commit (`TxCommitWaiter` stands in the durability queue like a confirming channel).
"""

from __future__ import annotations

from typing import Any, Callable


class TxSettle:
    """An ack, nack or reject held for tx.commit (settled after the commit's publishes were stored)."""

    __slots__ = ("settle",)

    def __init__(self, settle: Callable[[], None]) -> None:
        self.settle = settle

    def __call__(self) -> None:
        self.settle()


class Transaction:
    """One transactional channel's held work. `channel` is the broker's Channel (take/settle/restore)."""

    __slots__ = ("channel", "actions", "taken")

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.actions: list[Callable[[], None]] = []  # publishes (route calls) and TxSettles, in order
        self.taken: list[Any] = []  # deliveries acked inside the open transaction, given back on rollback

    def hold_publish(self, route: Callable[[], None]) -> None:
        self.actions.append(route)

    def hold_settle(self, tag: int, multiple: bool, *, ack: bool, requeue: bool) -> None:
        channel = self.channel
        records = channel.take(tag, multiple)
        self.taken.extend(records)
        self.actions.append(TxSettle(lambda: channel.settle(records, ack=ack, requeue=requeue)))

    def commit(self) -> tuple[list[TxSettle], list[Any]]:
        """Run the held publishes now; return the settles, to be applied once those are durable, and the
        deliveries they take (given back if the commit's fsync fails: `TxCommitWaiter`).

        An OSError from the store propagates; the taken deliveries stay held, to be given back (requeued)
        when the channel is released."""
        actions, self.actions = self.actions, []
        taken, self.taken = self.taken, []
        try:
            for action in actions:
                if type(action) is not TxSettle:
                    action()
        except OSError:
            self.taken = taken
            raise
        return [action for action in actions if type(action) is TxSettle], taken

    def rollback(self) -> None:
        """Forget the held publishes; the taken deliveries are unacked again."""
        self.actions = []
        taken, self.taken = self.taken, []
        if taken:
            self.channel.restore(taken)

    def give_back(self, taken: list[Any]) -> None:
        """A commit's taken deliveries whose commit failed: held again, ahead of later ones."""
        self.taken = taken + self.taken


class TxCommitWaiter:
    """Stands in for a confirming channel in Durability's queue: when the commit's fsync is done, settle the
    commit's acks and send tx.commit-ok; when it failed, settle nothing and close with 541.

    `channel` is the server's channel (`closing`, `transaction`, `broker_channel`, `commit_ok()`);
    `write_frame` sends commit-ok; `fail` closes the connection with 541."""

    __slots__ = ("channel", "settles", "taken", "write_frame", "fail")

    def __init__(self, channel: Any, settles: list[TxSettle], taken: list[Any],
                 write_frame: Callable[[bytes], None], fail: Callable[[], None]) -> None:
        self.channel = channel
        self.settles = settles
        self.taken = taken
        self.write_frame = write_frame
        self.fail = fail

    def confirm_ready(self, seq: int) -> None:
        for settle in self.settles:
            settle()  # the client committed them, whether or not it is still there to hear commit-ok
        if not self.channel.closing:
            self.write_frame(self.channel.commit_ok())

    def confirm_failed(self, seq: int) -> None:
        # The fsync failed: the store rolled the commit's messages back, and its acks are not applied.
        ch = self.channel
        if not ch.closing:
            ch.transaction.give_back(self.taken)  # given back (requeued) as the connection closes
            self.fail()
        elif self.taken:
            ch.broker_channel.settle(self.taken, ack=False, requeue=True)
