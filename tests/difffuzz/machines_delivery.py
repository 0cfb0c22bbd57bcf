"""Fuzzer machines for delivery to consumers, prefetch, publisher confirms and transactions.

- `ConsumeAndQos`: one queue (plain, length-limited with reject-publish so confirms can be nacks, or with
  priorities), consumers with and without acks, exclusive, with priorities; basic.qos per consumer and per
  channel; acks, nacks, rejects (valid and unknown tags), recover, cancel, get. Which consumer gets which
  message, in what order, with what delivery tag and redelivered flag, is compared.
- `Transactions`: a channel without confirms; tx.select, commit and rollback around publishes (routed,
  mandatory and unroutable) and acks, nacks and rejects of fetched messages; confirm.select on it.

One queue only: deliveries from two queues to one channel interleave as their processes run in RabbitMQ,
and the delivery tags with them. Operations that make the queue send something are `settled` (lockstep.py,
`op_settled`): a passive declare of the queue follows, and what the broker sent until its reply is the
operation's.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from machines import LockstepMachine, settlement

_QUEUE_KINDS = st.sampled_from([
    [],
    [("x-max-length", ("I", 1)), ("x-overflow", ("S", "reject-publish"))],
    [("x-max-length", ("I", 2))],
    [("x-max-priority", ("I", 3))],
])
_CONSUMER_TAGS = st.sampled_from(["c0", "c1"])
_CONSUMER_ARGUMENTS = st.sampled_from([[], [("x-priority", ("I", 1))], [("x-priority", ("I", -1))],
                                       [("x-priority", ("S", "high"))]])


_SETTLES = st.tuples(st.integers(0, 5), st.booleans(), st.sampled_from(["ack", "nack", "reject"]), st.booleans())


class ConsumeAndQos(LockstepMachine):
    def __init__(self) -> None:
        self.declared = False
        self.published = 0
        self.global_qos = None
        super().__init__()

    def settled(self, operation: tuple) -> None:
        self.step(("settled", operation, ["q0"]))

    @precondition(lambda self: not self.declared)
    @rule(arguments=_QUEUE_KINDS)
    def declare(self, arguments):
        self.declare_limited_queue(arguments)

    @precondition(lambda self: self.declared)
    @rule(prefetch=st.integers(0, 3), global_qos=st.booleans())
    def qos(self, prefetch, global_qos):
        # One kind of prefetch per sequence: with both, RabbitMQ 3.10 enforces only the consumer's
        # (docs/compatibility.md, "Channel and consumer prefetch together").
        if self.global_qos is None:
            self.global_qos = global_qos
        self.settled(("qos", prefetch, self.global_qos))

    @precondition(lambda self: self.declared)
    @rule(tag=_CONSUMER_TAGS, no_ack=st.booleans(), exclusive=st.integers(0, 4), arguments=_CONSUMER_ARGUMENTS)
    def consume(self, tag, no_ack, exclusive, arguments):
        self.settled(("consume", "q0", tag, no_ack, exclusive == 0, arguments))

    @precondition(lambda self: self.declared)
    @rule(tag=_CONSUMER_TAGS)
    def cancel(self, tag):
        self.settled(("cancel", tag))

    @precondition(lambda self: self.declared)
    @rule(priority=st.one_of(st.none(), st.integers(0, 4)), routed=st.integers(0, 5))
    def publish(self, priority, routed):
        self.published += 1
        properties = {} if priority is None else {"priority": priority}
        key = "q0" if routed else "nowhere"
        self.settled(("publish", "", key, properties, b"m%d" % self.published, True))

    @precondition(lambda self: self.declared)
    @rule(no_ack=st.booleans())
    def get(self, no_ack):
        self.settled(("get", "q0", no_ack))

    @precondition(lambda self: self.declared)
    @rule(settle=_SETTLES)
    def settle(self, settle):
        self.settled(settlement(*settle))

    @precondition(lambda self: self.declared)
    @rule(requeue=st.booleans())
    def recover(self, requeue):
        self.settled(("recover", requeue))


class Transactions(LockstepMachine):
    """Publishes happen only in transactional mode: without confirms or a transaction nothing says when
    RabbitMQ's queue has a message (on a channel reopened after an error, a passive declare answered
    before the publish that preceded it had arrived), while tx.commit answers once the queues have it."""

    confirm = False

    def __init__(self) -> None:
        self.published = 0
        self.transactional = False
        super().__init__()

    def prepare(self) -> None:
        self.step(("declare_queue", "q0", []))

    def settled(self, operation: tuple):
        observed = self.step(("settled", operation, ["q0"]))
        if self.closed(observed):
            self.transactional = False
        return observed

    @rule()
    def select(self):
        observed = self.settled(("tx_select",))
        self.transactional = not self.closed(observed)

    @rule()
    def commit(self):
        self.settled(("tx_commit",))

    @rule()
    def rollback(self):
        self.settled(("tx_rollback",))

    @precondition(lambda self: self.transactional)
    @rule(routed=st.integers(0, 3), mandatory=st.booleans())
    def publish(self, routed, mandatory):
        self.published += 1
        key = "q0" if routed else "nowhere"
        self.settled(("publish", "", key, {}, b"m%d" % self.published, mandatory))

    @rule(no_ack=st.booleans())
    def get(self, no_ack):
        self.settled(("get", "q0", no_ack))

    @rule(settle=_SETTLES)
    def settle(self, settle):
        self.settled(settlement(*settle))

    @rule()
    def confirm_select(self):
        self.settled(("confirm_select",))
