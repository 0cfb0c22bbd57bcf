"""Idempotent producers: producer ids, and each producer's sequence numbers per partition.

A producer with `enable.idempotence` numbers its batches per partition; when a batch is retried (its
response was lost) the broker must acknowledge it again without writing it twice. Like Kafka, leveret
remembers the last five batches of each (producer, partition): a batch that is one of them is a duplicate and
gets the offset it was written at; a batch that is not the next sequence is OUT_OF_ORDER_SEQUENCE_NUMBER;
an older epoch is INVALID_PRODUCER_EPOCH. Producer ids start from the clock so that ids handed out after a
restart never repeat earlier ones.

Durable: a produced batch is stored whole (data.py), producer id, epoch and sequence in its header, so the
states can be rebuilt from the log; and, as Kafka snapshots producer state, a partition's states are written
to a snapshot (`SnapshotFiles`: a file in its stream's directory, with the offset it was taken at) when an idempotent
producer's batch went into a new segment (once the group commit covering the log up to that offset is done:
the listener's) and at a clean stop. The first time a partition is produced to after a start, its states
are loaded from the snapshot and the log after that offset is replayed into them; without a usable snapshot
(none yet, or one the log no longer matches: its newest batch is not where it says, as after a crash that
cut the log's tail) the batches of the partition's newest segments are replayed instead (RECOVERY_SEGMENTS,
the end of the log a retry can concern). So a producer's state survives a restart and a crash however many segments follow its last batch;
a producer idle for longer than the expiration is new again either way.

Expiry, as Kafka's producer.id.expiration.ms (7 days by default): a (producer, partition) state not used for
that long is dropped, its producer's next batch then accepted as new; swept at most once a minute, while
batches are checked, on the listener's clock.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from leveret.kafka import errors
from leveret.kafka.records import BATCH_HEADER, BATCH_HEADER_SIZE, BatchView
from leveret.store.api import BATCH_FORMAT_KAFKA, StoredBatch

REMEMBERED_BATCHES = 5
INT32_MAX = 0x7FFFFFFF
# Kafka's producer.id.expiration.ms default: 7 days.
DEFAULT_EXPIRATION_MS = 7 * 24 * 3600 * 1000
SWEEP_INTERVAL_MS = 60_000
# How many of a partition's newest segments are read back for the producers' states after a start without a
# usable snapshot.
RECOVERY_SEGMENTS = 2

log = logging.getLogger("leveret.kafka")


class SnapshotFiles(Protocol):
    """Where partitions' snapshots are kept (server/kafka_snapshots.py: a file in each stream's directory)."""

    def read(self, partition: Any) -> bytes | None: ...

    def write(self, partition: Any, data: bytes) -> None: ...


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
                 expiration_ms: int = DEFAULT_EXPIRATION_MS, files: SnapshotFiles | None = None) -> None:
        self.files = files
        self._next_id = first_id
        self._states: dict[tuple[int, Any], _State] = {}
        self._now = now_ms or (lambda: 0)
        self.expiration_ms = expiration_ms
        self._swept = self._now()
        self._recovered: set[Any] = set()  # partitions whose states were read back from their logs
        self._newest_segment: dict[Any, int] = {}  # partition -> base of its newest segment at its last batch
        self.due: set[Any] = set()  # partitions whose newest segment changed since: their snapshot is due

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
        newest = partition.stream_store.recent_offset(1)
        if self._newest_segment.setdefault(partition, newest) != newest:
            self._newest_segment[partition] = newest
            self.due.add(partition)

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
        """Load the partition's snapshot and replay the batches after it, or without one replay the batches of
        its newest segments (see the module docstring)."""
        self._recovered.add(partition)
        store = partition.stream_store
        oldest = self._now() - self.expiration_ms
        start = self._load_snapshot(partition, oldest)
        if start is None:
            start = store.recent_offset(RECOVERY_SEGMENTS)
        for entry in partition.read_from(start):
            if type(entry) is not StoredBatch or entry.batch_format != BATCH_FORMAT_KAFKA \
                    or len(entry.data) < BATCH_HEADER_SIZE or entry.timestamp < oldest:
                continue
            fields = BATCH_HEADER.unpack_from(entry.data, 0)
            last_delta, producer_id, epoch, base_sequence = fields[6], fields[9], fields[10], fields[11]
            if producer_id >= 0:
                self._note(producer_id, epoch, base_sequence, last_delta, partition, entry.offset, entry.timestamp)

    def _load_snapshot(self, partition: Any, oldest: int) -> int | None:
        """The states of the partition's snapshot (those used since `oldest`), and the offset to replay from;
        None, with nothing loaded, when there is no snapshot or the log does not hold what it says."""
        data = self.files.read(partition) if self.files is not None else None
        if data is None:
            return None
        try:
            snapshot = json.loads(data)
            offset = snapshot["offset"]
            states = [(int(pid), int(epoch), int(used), [tuple(map(int, b)) for b in batches])
                      for pid, epoch, used, batches in snapshot["states"]]
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a malformed producer state snapshot of %s: %s", getattr(partition, "name", "?"),
                        exc)
            return None
        if offset > partition.stream_store.next_offset:
            return None  # taken past what the log kept
        newest = max(((batches[-1][2], pid, batches[-1][0]) for pid, _e, _u, batches in states if batches),
                     default=None)
        if newest is not None and not _holds_batch(partition, *newest):
            return None
        for pid, epoch, used, batches in states:
            if used >= oldest:
                state = self._states[(pid, partition)] = _State(epoch, used)
                state.batches.extend(batches)  # type: ignore[arg-type]
        return offset

    def snapshots(self, partitions: set[Any]) -> list[tuple[Any, bytes]]:
        """(partition, snapshot) for each of these partitions, taken now: to be written (write_snapshots) once
        the log up to now is durable. None without `files`."""
        if self.files is None:
            return []
        by_partition: dict[Any, list[list[Any]]] = {partition: [] for partition in partitions}
        for (pid, partition), state in self._states.items():
            if partition in by_partition:
                by_partition[partition].append([pid, state.epoch, state.last_used, [list(b) for b in state.batches]])
        return [(partition, json.dumps({"offset": partition.stream_store.next_offset, "states": states}).encode())
                for partition, states in by_partition.items()]

    def take_due(self) -> list[tuple[Any, bytes]]:
        """The snapshots of the partitions whose newest segment changed (see `due`)."""
        due, self.due = self.due, set()
        return self.snapshots(due)

    def write_snapshots(self, snapshots: list[tuple[Any, bytes]]) -> None:
        if self.files is not None:
            for partition, data in snapshots:
                self.files.write(partition, data)

    def save_snapshots(self) -> None:
        """Write the states of every partition produced to since the start to its snapshot (a clean stop: the
        log up to each snapshot's offset is made durable after this, before the broker stops)."""
        self.due.clear()
        self.write_snapshots(self.snapshots(self._recovered))

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
        self._newest_segment.pop(partition, None)
        self.due.discard(partition)


def _holds_batch(partition: Any, offset: int, producer_id: int, base_sequence: int) -> bool:
    """Whether the log has, at `offset`, that producer's batch with that base sequence."""
    for entry in partition.read_from(offset):
        if type(entry) is not StoredBatch or entry.offset != offset or entry.batch_format != BATCH_FORMAT_KAFKA \
                or len(entry.data) < BATCH_HEADER_SIZE:
            return False
        fields = BATCH_HEADER.unpack_from(entry.data, 0)
        return fields[9] == producer_id and fields[11] == base_sequence
    return False
