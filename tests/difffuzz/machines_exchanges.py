"""Fuzzer machine for exchange-to-exchange bindings.

`ExchangeBindings`: three exchanges of drawn types (direct, fanout, topic, headers; auto-delete or
internal), bound to each other (chains, fan-ins, cycles, self-bindings) and to two queues; publishes to
each (mandatory, so an unroutable one is returned) and gets. Exchange deletes with and without if-unused,
exchange unbinds (which can delete an auto-delete source), binds to missing exchanges, to the default
exchange and from it.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import rule

from machines import LockstepMachine

_EXCHANGES = st.sampled_from(["e0", "e1", "e2"])
_ANY_EXCHANGE = st.one_of(_EXCHANGES, st.sampled_from(["", "amq.fanout", "amq.topic"]))
_KINDS = st.sampled_from(["direct", "fanout", "topic", "headers"])
_KEYS = st.sampled_from(["a", "b", "#", "a.*", ""])
_BINDING_ARGUMENTS = st.sampled_from([[], [("k", ("I", 1))], [("x-match", ("S", "any")), ("k", ("I", 1))]])
_QUEUES = ("q0", "q1")


class ExchangeBindings(LockstepMachine):
    def __init__(self) -> None:
        self.published = 0
        super().__init__()

    def prepare(self) -> None:
        for queue in _QUEUES:
            self.step(("declare_queue", queue, []))

    @rule(name=_EXCHANGES, kind=_KINDS, auto_delete=st.integers(0, 3), internal=st.integers(0, 5))
    def declare(self, name, kind, auto_delete, internal):
        self.step(("declare_exchange", name, kind, [], False, False, auto_delete == 0, internal == 0))

    @rule(destination=_ANY_EXCHANGE, source=_ANY_EXCHANGE, key=_KEYS, arguments=_BINDING_ARGUMENTS)
    def bind_exchange(self, destination, source, key, arguments):
        self.step(("bind_exchange", destination, source, key, arguments))

    @rule(destination=_ANY_EXCHANGE, source=_ANY_EXCHANGE, key=_KEYS, arguments=_BINDING_ARGUMENTS)
    def unbind_exchange(self, destination, source, key, arguments):
        self.step(("unbind_exchange", destination, source, key, arguments))

    @rule(queue=st.sampled_from(_QUEUES), exchange=_EXCHANGES, key=_KEYS, arguments=_BINDING_ARGUMENTS)
    def bind_queue(self, queue, exchange, key, arguments):
        self.step(("bind", queue, exchange, key, arguments))

    @rule(queue=st.sampled_from(_QUEUES), exchange=_EXCHANGES, key=_KEYS, arguments=_BINDING_ARGUMENTS)
    def unbind_queue(self, queue, exchange, key, arguments):
        self.step(("unbind", queue, exchange, key, arguments))

    @rule(name=_EXCHANGES, if_unused=st.booleans())
    def delete(self, name, if_unused):
        self.step(("delete_exchange", name, if_unused))

    @rule(exchange=_ANY_EXCHANGE, key=st.sampled_from(["a", "b", "a.b", ""]),
          headers=st.sampled_from([[], [("k", ("I", 1))], [("k", ("l", 1))]]))
    def publish(self, exchange, key, headers):
        self.published += 1
        self.step(("publish", exchange, key, {"headers": headers}, b"m%d" % self.published, True))

    @rule()
    def fetch_all(self):
        for queue in _QUEUES:
            self.step(("get", queue))
