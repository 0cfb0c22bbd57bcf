"""The durable composition: what the hooks record, what recovery writes back (nothing), and a refused write
leaving the model as it was."""

from __future__ import annotations

from typing import Any

import pytest

from leveret.amqp.properties import BasicProperties
from leveret.broker import Message
from leveret.broker.stream import StreamQueue
from leveret.clock import ManualClock
from leveret.durable import DurableBroker
from leveret.store.memory import MemoryDefinitionStore, MemoryMessageStore

from tests.broker.conftest import CODEC

STREAM = {"x-queue-type": "stream"}


class CountingDefinitions(MemoryDefinitionStore):
    """Counts every write; `refuse` makes the next writes fail as a full disk does."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.refuse = False

    def _write(self) -> None:
        if self.refuse:
            raise OSError(28, "No space left on device")
        self.writes += 1

    def put_exchange(self, exchange: Any) -> None:
        self._write()
        super().put_exchange(exchange)

    def put_queue(self, queue: Any) -> None:
        self._write()
        super().put_queue(queue)

    def put_binding(self, binding: Any) -> None:
        self._write()
        super().put_binding(binding)


def _node(definitions: CountingDefinitions, messages: MemoryMessageStore) -> DurableBroker:
    return DurableBroker(definitions, messages, CODEC, clock=ManualClock())


def _model(definitions: CountingDefinitions, messages: MemoryMessageStore) -> DurableBroker:
    node = _node(definitions, messages)
    vhost = node.broker.vhost("/")
    vhost.declare_exchange("later", "x-delayed-message", durable=True, arguments={"x-delayed-type": "direct"})
    vhost.declare_exchange("x", "topic", durable=True)
    vhost.declare_queue("q", durable=True)
    vhost.declare_queue("s", durable=True, arguments=STREAM)
    vhost.declare_queue("transient")
    vhost.bind_queue("q", "x", "k.#")
    vhost.publish("x", "k.1", Message("x", "k.1", BasicProperties(delivery_mode=2), b"kept"))
    return node


def test_only_durable_things_are_recorded_and_recovery_writes_none_of_them_back() -> None:
    definitions, messages = CountingDefinitions(), MemoryMessageStore()
    _model(definitions, messages)
    # two exchanges, two durable queues (the stream too), one binding; the transient queue is not recorded
    assert definitions.writes == 5
    again = _node(definitions, messages)
    result = again.recover(delivered=None)
    assert (result.exchanges, result.queues, result.bindings, result.messages) == (2, 2, 1, 1)
    assert definitions.writes == 5
    vhost = again.broker.vhost("/")
    assert isinstance(vhost.queues["s"], StreamQueue)
    assert vhost.exchanges["later"].store is not None  # rebuilt with its store, not given one afterwards
    # after recovery the hooks record again
    vhost.declare_queue("new", durable=True)
    assert definitions.writes == 6


@pytest.mark.parametrize(
    "declare",
    [
        lambda v: v.declare_queue("q2", durable=True),
        lambda v: v.declare_queue("s2", durable=True, arguments=STREAM),
        lambda v: v.declare_exchange("x2", "direct", durable=True),
        lambda v: v.declare_exchange("later2", "x-delayed-message", durable=True,
                                     arguments={"x-delayed-type": "direct"}),
        lambda v: v.bind_queue("q", "x", "other"),
    ],
    ids=["queue", "stream", "exchange", "delayed exchange", "binding"],
)
def test_a_refused_definition_write_leaves_the_model_unchanged(declare) -> None:
    definitions, messages = CountingDefinitions(), MemoryMessageStore()
    node = _model(definitions, messages)
    vhost = node.broker.vhost("/")
    before = (set(vhost.queues), set(vhost.exchanges), len(vhost.exchanges["x"].destinations()),
              vhost.queues["q"].sources == {vhost.exchanges["x"]})
    definitions.refuse = True
    with pytest.raises(OSError):
        declare(vhost)
    after = (set(vhost.queues), set(vhost.exchanges), len(vhost.exchanges["x"].destinations()),
             vhost.queues["q"].sources == {vhost.exchanges["x"]})
    assert after == before
    definitions.refuse = False
    declare(vhost)  # and the same declaration goes through once the disk takes it
    assert definitions.writes == 6
