"""The fuzzer's strategies: hypothesis state machines whose every rule is one lockstep operation.

Each machine covers one area where differences hide, with names fixed per machine (each sequence has
vhosts of its own, so nothing collides) and values drawn to collide across types:

- `HeadersTyping`: headers-exchange bindings with x-match in every mode and typed arguments, messages with
  typed header tables (every tag, nested); which queue gets which message, and the header bytes it
  carries.
- `TopicRouting`: topic bindings and keys with empty words, `*` and `#` in every position, long keys.
- `QueueArguments`: queue declarations with valid and invalid arguments of every type, redeclarations
  (equivalence), passive declares and deletes.
- `QueueLimits`: max-length and max-length-bytes with each overflow mode, priorities, and what gets, acks,
  nacks, rejects (valid and unknown delivery tags), recovers and purges do to them.

Dead-lettering, consumers and transactions, and exchange-to-exchange bindings have modules of their own
(machines_deadletter.py, machines_delivery.py, machines_exchanges.py); catalog.py lists every machine.

`Machine.brokers` is set by the runner (tests/difffuzz/test_difffuzz.py, tools/difffuzz.py) before a run:
the reference first, then the broker under test.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from fieldvalues import INTEGER_RANGES, field_values, scalar_values
from lockstep import Lockstep

QUEUES = ("q0", "q1", "q2")


class LockstepMachine(RuleBasedStateMachine):
    """A state machine whose sequence runs on `brokers` in lockstep; one fresh vhost per sequence."""

    brokers: tuple = ()
    confirm = True  # channel 1 in confirm mode (a machine that uses transactions must not)

    def __init__(self) -> None:
        super().__init__()
        self.lockstep = Lockstep(self.brokers, self.confirm)
        self.step = self.lockstep.step
        try:
            self.prepare()
        except BaseException:
            self.lockstep.close()  # hypothesis calls teardown only for a machine whose __init__ returned
            raise

    def prepare(self) -> None:
        """The operations every sequence of this machine starts with (run in lockstep like the rules)."""

    @staticmethod
    def closed(observation) -> bool:
        """Whether an observation (plain, settled or with events) ended in a channel or connection close."""
        while isinstance(observation, tuple) and observation and isinstance(observation[0], tuple):
            observation = observation[0]
        return isinstance(observation, tuple) and bool(observation) and observation[0] in (
            "Channel.Close", "Connection.Close", "connection lost")

    def teardown(self) -> None:
        self.lockstep.close()

    def declare_limited_queue(self, arguments) -> None:
        """q0 with the drawn arguments, once per sequence (machines that drive one queue's limits)."""
        self.declared = True
        self.step(("declare_queue", "q0", arguments))

    def declare_exchange_and_queues(self, exchange: str, kind: str) -> None:
        self.step(("declare_exchange", exchange, kind, []))
        for queue in QUEUES:
            self.step(("declare_queue", queue, []))
        self.published = 0


# --- headers exchange and field-table typing ----------------------------------------------------------

_X_MATCH = st.one_of(
    st.sampled_from(["all", "any", "all-with-x", "any-with-x"]).map(lambda mode: ("S", mode)),
    st.sampled_from([("S", "bogus"), ("S", ""), ("x", b"any"), ("t", True), ("I", 1), ("V", None)]),
)
_KEYS = st.sampled_from(["a", "b", "x-a"])


@st.composite
def binding_arguments(draw):
    entries = draw(st.lists(st.tuples(_KEYS, field_values), max_size=3, unique_by=lambda e: e[0]))
    if draw(st.integers(0, 9)) < 8:
        entries.insert(draw(st.integers(0, len(entries))), ("x-match", draw(_X_MATCH)))
    return entries


header_tables = st.lists(st.tuples(_KEYS, field_values), max_size=3)


class HeadersTyping(LockstepMachine):
    def prepare(self) -> None:
        self.declare_exchange_and_queues("hx", "headers")

    @rule(queue=st.sampled_from(QUEUES), arguments=binding_arguments())
    def bind(self, queue, arguments):
        self.step(("bind", queue, "hx", "", arguments))

    @rule(queue=st.sampled_from(QUEUES), arguments=binding_arguments())
    def unbind(self, queue, arguments):
        self.step(("unbind", queue, "hx", "", arguments))

    @rule(headers=header_tables, mandatory=st.booleans())
    def publish(self, headers, mandatory):
        self.published += 1
        self.step(("publish", "hx", "", {"headers": headers}, b"m%d" % self.published, mandatory))

    @precondition(lambda self: self.published)
    @rule()
    def fetch_all(self):
        for queue in QUEUES:
            self.step(("get", queue))


# --- topic patterns and keys ----------------------------------------------------------------------------

_WORDS = st.sampled_from(["a", "b", "", "ab", "a.b"])
_PATTERN_WORDS = st.sampled_from(["a", "b", "", "*", "#", "a*", "#a", "ab"])


def _dotted(words):
    return st.lists(words, max_size=5).map(".".join)


routing_keys = st.one_of(_dotted(_WORDS), st.sampled_from(["a" * 255, ".".join(["a"] * 127), "#", "*", "."]))
# Not too many `#`: RabbitMQ's trie search is exponential in them (60 `#` against a 127-word key kept its
# channel busy past any timeout), and the reference broker is shared.
patterns = st.one_of(_dotted(_PATTERN_WORDS), st.sampled_from(["#", "#.#", "*.#.*", "a" * 255, "#.a.#.a.#"]))


class TopicRouting(LockstepMachine):
    def prepare(self) -> None:
        self.declare_exchange_and_queues("tx", "topic")

    @rule(queue=st.sampled_from(QUEUES), pattern=patterns)
    def bind(self, queue, pattern):
        self.step(("bind", queue, "tx", pattern, []))

    @rule(queue=st.sampled_from(QUEUES), pattern=patterns)
    def unbind(self, queue, pattern):
        self.step(("unbind", queue, "tx", pattern, []))

    @rule(key=routing_keys)
    def publish_and_fetch(self, key):
        self.published += 1
        self.step(("publish", "tx", key, {}, b"m%d" % self.published, True))
        for queue in QUEUES:
            self.step(("get", queue))


# --- queue argument validation and equivalence -----------------------------------------------------------

_QUEUE_ARGUMENT_KEYS = st.sampled_from([
    "x-message-ttl", "x-expires", "x-max-length", "x-max-length-bytes", "x-overflow", "x-dead-letter-exchange",
    "x-dead-letter-routing-key", "x-max-priority", "x-queue-mode", "x-single-active-consumer", "x-queue-type",
    "x-delivery-limit", "x-unknown",
])  # not x-queue-master-locator: RabbitMQ 3.10 answers an invalid one with 541 (docs/compatibility.md)
_ARGUMENT_VALUES = st.one_of(
    scalar_values,
    st.sampled_from([("S", "reject-publish"), ("S", "drop-head"), ("S", "reject-publish-dlx"), ("S", "lazy"),
                     ("S", "default"), ("S", "classic"), ("S", "quorum"), ("S", "stream"), ("S", "min-masters"),
                     ("S", "dlx"), ("I", 300000), ("I", -5), ("l", 256), ("b", 10), ("I", 255), ("I", 256)]),
)
_TIMED = ("x-message-ttl", "x-expires")


def _untimed(entry):
    """A TTL or x-expires of a few milliseconds would race the next operation on each broker (whether a
    message or queue is still there would depend on load): such a valid time becomes five minutes."""
    key, (tag, value) = entry
    if key in _TIMED and tag in INTEGER_RANGES and 0 < value < 300000:
        return (key, ("I", 300000))
    return entry


queue_arguments = st.lists(st.tuples(_QUEUE_ARGUMENT_KEYS, _ARGUMENT_VALUES).map(_untimed), max_size=3,
                           unique_by=lambda e: e[0])
_FLAGS = st.fixed_dictionaries({}, optional={"durable": st.booleans(), "exclusive": st.booleans(),
                                             "auto_delete": st.booleans()})


class QueueArguments(LockstepMachine):
    @rule(queue=st.sampled_from(QUEUES), arguments=queue_arguments, flags=_FLAGS)
    def declare(self, queue, arguments, flags):
        self.step(("declare_queue", queue, arguments, False, *_flag_values(flags)))

    @rule(queue=st.sampled_from(QUEUES))
    def declare_passive(self, queue):
        self.step(("declare_queue", queue, [], True))

    @rule(queue=st.sampled_from(QUEUES))
    def delete(self, queue):
        self.step(("delete_queue", queue))

    @rule(queue=st.sampled_from(QUEUES), headers=header_tables)
    def publish_and_fetch(self, queue, headers):
        self.step(("publish", "", queue, {"headers": headers}, b"body", True))
        self.step(("get", queue))


def settlement(tag: int, multiple: bool, how: str, requeue: bool) -> tuple:
    """The operation that acks, nacks or rejects `tag` (reject has no multiple, ack no requeue)."""
    if how == "ack":
        return ("ack", tag, multiple)
    if how == "nack":
        return ("nack", tag, multiple, requeue)
    return ("reject", tag, requeue)


def _flag_values(flags: dict) -> tuple:
    return tuple(flags.get(name, False) for name in ("durable", "exclusive", "auto_delete"))


# --- max-length, overflow, priorities, acknowledgements ------------------------------------------------

_LIMIT_ARGUMENTS = st.lists(st.one_of(
    st.tuples(st.just("x-max-length"), st.integers(0, 3).map(lambda n: ("I", n))),
    st.tuples(st.just("x-max-length-bytes"), st.integers(0, 8).map(lambda n: ("l", n))),
    st.tuples(st.just("x-overflow"), st.sampled_from(["drop-head", "reject-publish", "reject-publish-dlx"])
              .map(lambda mode: ("S", mode))),
    st.tuples(st.just("x-max-priority"), st.sampled_from([("b", 1), ("I", 3), ("I", 0)])),
), max_size=4, unique_by=lambda entry: entry[0])
_PRIORITIES = st.one_of(st.none(), st.integers(0, 5))


class QueueLimits(LockstepMachine):
    """One queue with random limits and priorities; publishes (confirmed or nacked), gets, acks, nacks,
    rejects, recovers and purges, all answered synchronously."""

    def __init__(self) -> None:
        super().__init__()
        self.declared = False
        self.published = 0

    @precondition(lambda self: not self.declared)
    @rule(arguments=_LIMIT_ARGUMENTS)
    def declare(self, arguments):
        self.declare_limited_queue(arguments)

    @precondition(lambda self: self.declared)
    @rule(priority=_PRIORITIES, size=st.integers(0, 5))
    def publish(self, priority, size):
        self.published += 1
        properties = {} if priority is None else {"priority": priority}
        body = (b"%d" % self.published).ljust(size, b".")
        self.step(("publish", "", "q0", properties, body, True))

    @precondition(lambda self: self.declared)
    @rule(no_ack=st.booleans())
    def get(self, no_ack):
        self.step(("get", "q0", no_ack))

    @precondition(lambda self: self.declared)
    @rule(tag=st.integers(0, 4), multiple=st.booleans(), how=st.sampled_from(["ack", "nack", "reject"]),
          requeue=st.booleans())
    def settle(self, tag, multiple, how, requeue):
        self.step(settlement(tag, multiple, how, requeue))

    @precondition(lambda self: self.declared)
    @rule(requeue=st.booleans())
    def recover(self, requeue):
        self.step(("recover", requeue))

    @precondition(lambda self: self.declared)
    @rule()
    def purge(self):
        self.step(("purge", "q0"))
