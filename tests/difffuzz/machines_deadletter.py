"""Fuzzer machines for dead-lettering: chains and cycles of queues, and TTL with length limits.

- `DeadLetterChains`: three queues, each with its own dead-letter exchange and routing key (the default
  exchange, a direct `dlx`, one that does not exist), TTL 0 or none, length limits; messages die by
  expiry, by overflow and by reject or nack, and chains may be cycles. The `x-death` entries each copy
  collects (counts, order, reasons, queues, routing keys) are compared, with the publisher's own forged
  x-death headers among the inputs.
- `ExpiryAndLimits`: one queue whose TTL, length limits and overflow mode meet per-message expirations,
  dead-lettering into a queue `dl`, with gets and settles on both.

A dead letter travels from one queue to the next asynchronously, so every operation that can kill a
message is `settled`: passive declares of the queues, in chain order and twice round (lockstep.py,
`op_settled`), after which each queue has done what the operation started.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from machines import QUEUES, LockstepMachine, settlement

_DEATH = ("F", [("count", ("l", 2)), ("reason", ("S", "expired")), ("queue", ("S", "q1")),
                ("exchange", ("S", "")), ("routing-keys", ("A", [("S", "q1")]))])
_FORGED_DEATHS = st.sampled_from([
    [],
    [("x-death", ("A", [_DEATH]))],
    [("x-death", ("A", [("F", [("queue", ("S", "q0")), ("reason", ("S", "rejected")), ("count", ("I", 1))])]))],
    [("x-death", ("S", "not an array"))],
    # Not an array with other entries than tables: RabbitMQ 3.10's queue crashes dead-lettering it
    # (docs/compatibility.md, "x-death arrays holding something other than tables").
    [("x-first-death-queue", ("S", "elsewhere"))],
])
_EXPIRATIONS = st.sampled_from([None, "0", "60000"])


def _optional(key: str, values: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.just([]), values.map(lambda value: [(key, value)]))


_CHAIN_ARGUMENTS = st.tuples(
    _optional("x-dead-letter-exchange", st.sampled_from([("S", ""), ("S", "dlx"), ("S", "missing")])),
    _optional("x-dead-letter-routing-key", st.sampled_from([("S", q) for q in QUEUES])),
    _optional("x-message-ttl", st.sampled_from([("I", 0), ("I", 60000)])),
    _optional("x-max-length", st.sampled_from([("I", 0), ("I", 1)])),
    _optional("x-overflow", st.sampled_from([("S", "drop-head"), ("S", "reject-publish-dlx")])),
).map(lambda parts: [entry for part in parts for entry in part])


class DeadLetterChains(LockstepMachine):
    def __init__(self) -> None:
        self.declared: list[str] = []
        self.published = 0
        super().__init__()

    def prepare(self) -> None:
        self.step(("declare_exchange", "dlx", "direct", []))

    def settled(self, operation: tuple) -> None:
        order = [queue for queue in QUEUES if queue in self.declared]
        self.step(("settled", operation, order * 2))

    @precondition(lambda self: len(self.declared) < len(QUEUES))
    @rule(data=st.data(), arguments=_CHAIN_ARGUMENTS)
    def declare(self, data, arguments):
        queue = data.draw(st.sampled_from([q for q in QUEUES if q not in self.declared]))
        self.declared.append(queue)
        self.step(("declare_queue", queue, arguments))

    @rule(queue=st.sampled_from(QUEUES), key=st.sampled_from(QUEUES))
    def bind(self, queue, key):
        self.step(("bind", queue, "dlx", key, []))

    @precondition(lambda self: self.declared)
    @rule(queue=st.sampled_from(QUEUES), expiration=_EXPIRATIONS, headers=_FORGED_DEATHS)
    def publish(self, queue, expiration, headers):
        self.published += 1
        properties = {"headers": headers}
        if expiration is not None:
            properties["expiration"] = expiration
        self.settled(("publish", "", queue, properties, b"m%d" % self.published, True))

    @rule(queue=st.sampled_from(QUEUES), no_ack=st.booleans())
    def get(self, queue, no_ack):
        self.step(("get", queue, no_ack))

    @precondition(lambda self: self.declared)
    @rule(tag=st.integers(1, 4), multiple=st.booleans(), how=st.sampled_from(["nack", "reject"]),
          requeue=st.booleans())
    def kill(self, tag, multiple, how, requeue):
        self.settled(settlement(tag, multiple, how, requeue))


_LIMIT_ARGUMENTS = st.tuples(
    _optional("x-message-ttl", st.sampled_from([("I", 0), ("I", 60000), ("l", 0)])),
    _optional("x-max-length", st.sampled_from([("I", 0), ("I", 1), ("I", 2)])),
    _optional("x-max-length-bytes", st.sampled_from([("I", 0), ("I", 3)])),
    _optional("x-overflow", st.sampled_from([("S", "drop-head"), ("S", "reject-publish"),
                                             ("S", "reject-publish-dlx")])),
    _optional("x-dead-letter-exchange", st.sampled_from([("S", ""), ("S", "nowhere")])),
    _optional("x-dead-letter-routing-key", st.sampled_from([("S", "dl"), ("S", "q0")])),
).map(lambda parts: [entry for part in parts for entry in part])


class ExpiryAndLimits(LockstepMachine):
    """q0 with drawn limits, dead-lettering (through the default exchange) to `dl`."""

    def __init__(self) -> None:
        self.declared = False
        self.published = 0
        super().__init__()

    def prepare(self) -> None:
        self.step(("declare_queue", "dl", []))

    def settled(self, operation: tuple) -> None:
        self.step(("settled", operation, ["q0", "dl", "q0", "dl"]))

    @precondition(lambda self: not self.declared)
    @rule(arguments=_LIMIT_ARGUMENTS)
    def declare(self, arguments):
        self.declare_limited_queue(arguments)

    @precondition(lambda self: self.declared)
    @rule(expiration=st.sampled_from([None, "0", "60000", "-1", "abc", ""]), size=st.integers(0, 4))
    def publish(self, expiration, size):
        self.published += 1
        properties = {} if expiration is None else {"expiration": expiration}
        self.settled(("publish", "", "q0", properties, (b"%d" % self.published).ljust(size, b"."), True))

    @precondition(lambda self: self.declared)
    @rule(queue=st.sampled_from(["q0", "dl"]), no_ack=st.booleans())
    def get(self, queue, no_ack):
        self.step(("get", queue, no_ack))

    @precondition(lambda self: self.declared)
    @rule(tag=st.integers(1, 4), multiple=st.booleans(), how=st.sampled_from(["ack", "nack", "reject"]),
          requeue=st.booleans())
    def settle(self, tag, multiple, how, requeue):
        self.settled(settlement(tag, multiple, how, requeue))

    @precondition(lambda self: self.declared)
    @rule()
    def purge(self):
        self.settled(("purge", "q0"))
