"""Idempotent producers: producer ids, and each producer's sequence numbers per partition.

A producer with `enable.idempotence` numbers its batches per partition; when a batch is retried (its
response was lost) the broker must acknowledge it again without writing it twice. Like Kafka, leveret
remembers the last five batches of each (producer, partition): a batch that is one of them is a duplicate and
gets the offset it was written at; a batch that is not the next sequence is OUT_OF_ORDER_SEQUENCE_NUMBER;
an older epoch is INVALID_PRODUCER_EPOCH. Producer ids start from the clock so that ids handed out after a
restart never repeat earlier ones. The states live in memory (docs/kafka.md: what a restart forgets).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from leveret.kafka import errors
from leveret.kafka.records import Batch

REMEMBERED_BATCHES = 5
INT32_MAX = 0x7FFFFFFF


class SequenceError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _State:
    __slots__ = ("epoch", "batches")

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        # (base sequence, last sequence, base offset) of the newest batches, oldest first
        self.batches: deque[tuple[int, int, int]] = deque(maxlen=REMEMBERED_BATCHES)


class ProducerStates:
    """Producer ids handed out, and the sequence state of every (producer, partition)."""

    def __init__(self, first_id: int) -> None:
        self._next_id = first_id
        self._states: dict[tuple[int, Any], _State] = {}

    def new_producer_id(self) -> int:
        producer_id = self._next_id
        self._next_id += 1
        return producer_id

    def check(self, partition: Any, batch: Batch) -> int | None:
        """The base offset a duplicate batch was written at, None for a batch to write; SequenceError to refuse."""
        state = self._states.get((batch.producer_id, partition))
        if state is None:
            return None
        if batch.producer_epoch < state.epoch:
            raise SequenceError(errors.INVALID_PRODUCER_EPOCH)
        if batch.producer_epoch > state.epoch:
            if batch.base_sequence != 0:
                raise SequenceError(errors.OUT_OF_ORDER_SEQUENCE_NUMBER)
            return None
        for base_seq, _last_seq, base_offset in state.batches:
            if base_seq == batch.base_sequence:
                return base_offset
        if state.batches:
            expected = (state.batches[-1][1] + 1) & INT32_MAX
            if batch.base_sequence != expected:
                raise SequenceError(errors.OUT_OF_ORDER_SEQUENCE_NUMBER)
        return None

    def appended(self, partition: Any, batch: Batch, base_offset: int) -> None:
        key = (batch.producer_id, partition)
        state = self._states.get(key)
        if state is None or state.epoch != batch.producer_epoch:
            state = self._states[key] = _State(batch.producer_epoch)
        last = (batch.base_sequence + batch.last_offset_delta) & INT32_MAX
        state.batches.append((batch.base_sequence, last, base_offset))

    def forget_partition(self, partition: Any) -> None:
        """A deleted partition's states go with it."""
        for key in [k for k in self._states if k[1] is partition]:
            del self._states[key]
