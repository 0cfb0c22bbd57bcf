"""Idempotent producers: producer ids, and each producer's sequence numbers per partition.

A producer with `enable.idempotence` numbers its batches per partition; when a batch is retried (its
response was lost) the broker must acknowledge it again without writing it twice. Like Kafka, leveret
remembers the last five batches of each (producer, partition): a batch that is one of them is a duplicate and
gets the offset it was written at; a batch that is not the next sequence is OUT_OF_ORDER_SEQUENCE_NUMBER;
an older epoch is INVALID_PRODUCER_EPOCH. Producer ids start from the clock so that ids handed out after a
restart never repeat earlier ones.

Durable without writing anything more: a produced batch is stored whole (data.py), producer id, epoch and
sequence in its header, so the states are rebuilt from the log. The first time a partition is produced to
after a start, the batches of its newest segments are read back (RECOVERY_SEGMENTS, the end of the log a
retry can concern) and replayed into the states before the batch is checked.

Expiry, as Kafka's producer.id.expiration.ms (7 days by default): a (producer, partition) state not used for
that long is dropped, its producer's next batch then accepted as new; swept at most once a minute, while
batches are checked, on the listener's clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from leveret.kafka import errors
from leveret.kafka.records import BATCH_HEADER, BATCH_HEADER_SIZE, BatchView
from leveret.store.api import BATCH_FORMAT_KAFKA, StoredBatch

REMEMBERED_BATCHES = 5
INT32_MAX = 0x7FFFFFFF
# Kafka's producer.id.expiration.ms default: 7 days.
DEFAULT_EXPIRATION_MS = 7 * 24 * 3600 * 1000
SWEEP_INTERVAL_MS = 60_000
# How many of a partition's newest segments are read back for the producers' states after a start.
RECOVERY_SEGMENTS = 2


class SequenceError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _State:
    __slots__ = ("epoch", "batches", "last_used")

    def __init__(self, epoch: int, now: int) -> None:
        self.epoch = epoch
        # (base sequence, last sequence, base offset) of the newest batches, oldest first
        self.batches: deque[tuple[int, int, int]] = deque(maxlen=REMEMBERED_BATCHES)
        self.last_used = now  # ms


class ProducerStates:
    """Producer ids handed out, and the sequence state of every (producer, partition)."""

    def __init__(self, first_id: int, now_ms: Callable[[], int] | None = None,
                 expiration_ms: int = DEFAULT_EXPIRATION_MS) -> None:
        self._next_id = first_id
        self._states: dict[tuple[int, Any], _State] = {}
        self._now = now_ms or (lambda: 0)
        self.expiration_ms = expiration_ms
        self._swept = self._now()
        self._recovered: set[Any] = set()  # partitions whose states were read back from their logs

    def new_producer_id(self) -> int:
        producer_id = self._next_id
        self._next_id += 1
        return producer_id

    def __len__(self) -> int:
        return len(self._states)

    def check(self, partition: Any, batch: BatchView) -> int | None:
        """The base offset a duplicate batch was written at, None for a batch to write; SequenceError to refuse."""
        now = self._now()
        if now - self._swept >= SWEEP_INTERVAL_MS:
            self.expire(now)
        if partition not in self._recovered:
            self._recover(partition)
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
                state.last_used = now
                return base_offset
        if state.batches:
            expected = (state.batches[-1][1] + 1) & INT32_MAX
            if batch.base_sequence != expected:
                raise SequenceError(errors.OUT_OF_ORDER_SEQUENCE_NUMBER)
        return None

    def appended(self, partition: Any, batch: BatchView, base_offset: int) -> None:
        self._note(batch.producer_id, batch.producer_epoch, batch.base_sequence, batch.last_offset_delta,
                   partition, base_offset, self._now())

    def _note(self, producer_id: int, epoch: int, base_sequence: int, last_delta: int, partition: Any,
              base_offset: int, now: int) -> None:
        key = (producer_id, partition)
        state = self._states.get(key)
        if state is None or state.epoch != epoch:
            state = self._states[key] = _State(epoch, now)
        last = (base_sequence + last_delta) & INT32_MAX
        state.batches.append((base_sequence, last, base_offset))
        state.last_used = now

    def _recover(self, partition: Any) -> None:
        """Replay the producers' batches of the partition's newest segments (see the module docstring)."""
        self._recovered.add(partition)
        store = partition.stream_store
        oldest = self._now() - self.expiration_ms
        for entry in partition.read_from(store.recent_offset(RECOVERY_SEGMENTS)):
            if type(entry) is not StoredBatch or entry.batch_format != BATCH_FORMAT_KAFKA \
                    or len(entry.data) < BATCH_HEADER_SIZE or entry.timestamp < oldest:
                continue
            fields = BATCH_HEADER.unpack_from(entry.data, 0)
            last_delta, producer_id, epoch, base_sequence = fields[6], fields[9], fields[10], fields[11]
            if producer_id >= 0:
                self._note(producer_id, epoch, base_sequence, last_delta, partition, entry.offset, entry.timestamp)

    def expire(self, now: int) -> int:
        """Drop the states not used for `expiration_ms`; how many went."""
        self._swept = now
        oldest = now - self.expiration_ms
        idle = [key for key, state in self._states.items() if state.last_used < oldest]
        for key in idle:
            del self._states[key]
        return len(idle)

    def forget_partition(self, partition: Any) -> None:
        """A deleted partition's states go with it."""
        for key in [k for k in self._states if k[1] is partition]:
            del self._states[key]
        self._recovered.discard(partition)
