"""In-memory twins of the stores in api.py, held to the same contract tests as the file stores.

Used by broker tests and by brokers run without a data directory. Nothing here is durable; a
commit only numbers itself, so code that waits for commits behaves the same against both.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterator

from leveret.store.api import (
    BindingDef,
    Definitions,
    ExchangeDef,
    GlobalParameterDef,
    OperatorPolicyDef,
    ParameterDef,
    PermissionDef,
    PolicyDef,
    QueueDef,
    StoredBatch,
    StoredMessage,
    TopicPermissionDef,
    UserDef,
    VHostDef,
    entry_end,
)
from leveret.store.stream import FLAG_CHUNK_START


class MemoryCommit:
    """A commit with nothing to fsync."""

    __slots__ = ("seq",)

    def __init__(self, seq: int) -> None:
        self.seq = seq

    def run(self) -> int:
        return self.seq


class MemoryQueueStore:
    """One queue's unacked messages in a dict (insertion order is offset order)."""

    def __init__(self, on_dirty=None) -> None:
        self._messages: dict[int, StoredMessage] = {}
        self._next = 0
        self._on_dirty = on_dirty
        self.deleted = False
        self.on_lost = None  # a memory store never fails a write
        self.on_unacked = None  # ... nor rolls an ack back

    @property
    def next_offset(self) -> int:
        return self._next

    def __len__(self) -> int:
        return len(self._messages)

    def append(
        self, exchange: str, routing_key: str, props_raw: bytes, body: bytes, timestamp: int, flags: int = 0
    ) -> int:
        if len(exchange.encode()) > 255 or len(routing_key.encode()) > 255:
            raise ValueError("exchange and routing key are AMQP shortstrs (at most 255 bytes)")
        offset = self._next
        self._next += 1
        self._messages[offset] = StoredMessage(offset, timestamp, flags, exchange, routing_key, bytes(props_raw), bytes(body))
        if self._on_dirty is not None:
            self._on_dirty()
        return offset

    def ack(self, offset: int) -> bool:
        if self._messages.pop(offset, None) is None:
            return False
        if self._on_dirty is not None:
            self._on_dirty()
        return True

    def read(self, offset: int) -> StoredMessage:
        return self._messages[offset]

    def recover(self) -> Iterator[tuple[int, StoredMessage]]:
        for offset, message in list(self._messages.items()):
            if offset in self._messages:
                yield offset, message

    def recover_index(self) -> Iterator[tuple[int, int, int]]:
        for offset, message in self.recover():
            yield offset, len(message.body), message.timestamp

    def read_batch(self, start: int, limit: int) -> list[StoredMessage]:
        out = []
        for offset in sorted(o for o in self._messages if o >= start):
            if len(out) >= limit:
                break
            out.append(self._messages[offset])
        return out

    def delete(self) -> None:
        self._messages.clear()
        self.deleted = True

    def close(self) -> None:
        """Nothing to release."""


class MemoryStreamStore:
    """A stream's messages in memory, grouped into segments of about `segment_size` bytes.

    Segment sizes count what the file store would write (record overhead included), so retention
    by x-max-length-bytes drops the same segments in both implementations.
    """

    def __init__(
        self,
        on_dirty=None,
        *,
        segment_size: int = 8 * 1024 * 1024,
        max_age_ms: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.segment_size = segment_size
        self.max_age_ms = max_age_ms
        self.max_bytes = max_bytes
        self._on_dirty = on_dirty
        self._bases: list[int] = []
        self._segments: list[list[StoredMessage | StoredBatch]] = []
        self._starts: list[list[int]] = []  # each segment's entries' first offsets (batches span several)
        self._sizes: list[int] = []
        self._next = 0
        self._last_chunk = 0
        self._chunk_open = False
        self._tracked: dict[str, int] = {}
        self._metadata: dict[str, str] = {}
        self.deleted = False

    @property
    def first_offset(self) -> int:
        return self._bases[0] if self._segments and self._segments[0] else self._next

    @property
    def next_offset(self) -> int:
        return self._next

    @property
    def last_chunk_offset(self) -> int:
        return self._last_chunk if self._segments else self._next

    @property
    def size_bytes(self) -> int:
        return sum(self._sizes)

    @property
    def segment_count(self) -> int:
        return len(self._segments)

    def append(self, exchange: str, routing_key: str, props_raw: bytes, body: bytes, timestamp: int) -> int:
        size = 38 + len(exchange.encode()) + len(routing_key.encode()) + len(props_raw) + len(body)
        return self._add(lambda offset, flags: StoredMessage(offset, timestamp, flags, exchange, routing_key,
                                                             bytes(props_raw), bytes(body)), size, 1, timestamp)

    def append_batch(self, exchange: str, span: int, batch_format: int, data: list[bytes], timestamp: int) -> int:
        raw = b"".join(data)
        size = 38 + len(exchange.encode()) + len(raw)
        return self._add(lambda offset, flags: StoredBatch(offset, timestamp, flags, exchange, span, batch_format, raw),
                         size, span, timestamp)

    def _add(self, make, size: int, span: int, timestamp: int) -> int:
        offset = self._next
        rolled = False
        if not self._segments or (self._segments[-1] and self._sizes[-1] + size > self.segment_size):
            self._bases.append(offset)
            self._segments.append([])
            self._starts.append([])
            self._sizes.append(16)
            rolled = len(self._segments) > 1
        flags = 0 if self._chunk_open else FLAG_CHUNK_START
        if not self._chunk_open:
            self._chunk_open = True
            self._last_chunk = offset
        self._segments[-1].append(make(offset, flags))
        self._starts[-1].append(offset)
        self._sizes[-1] += size
        self._next = offset + span
        if self._on_dirty is not None:
            self._on_dirty()
        if rolled:
            self.apply_retention(timestamp)
        return offset

    def commit_began(self) -> None:
        """A commit began: the next append starts a new chunk."""
        self._chunk_open = False

    def recent_offset(self, segments: int) -> int:
        return self._bases[-segments:][0] if self._segments else self._next

    def read_from(self, offset: int) -> Iterator[StoredMessage | StoredBatch]:
        while True:
            if not self._segments or offset >= self._next:
                return
            i = max(bisect_right(self._bases, offset) - 1, 0)
            segment, starts = self._segments[i], self._starts[i]
            j = max(bisect_right(starts, offset) - 1, 0)
            if j < len(segment) and entry_end(segment[j]) <= offset:
                j += 1
            if j >= len(segment):
                if i + 1 >= len(self._segments):
                    return
                offset = self._bases[i + 1]
                continue
            entry = segment[j]
            offset = entry_end(entry)
            yield entry

    def seek_time(self, timestamp: int) -> int:
        for segment in self._segments:
            for message in segment:
                if message.timestamp >= timestamp:
                    return message.offset
        return self._next

    def apply_retention(self, now_ms: int) -> list[int]:
        dropped = []
        before = None if self.max_age_ms is None else now_ms - self.max_age_ms
        while len(self._segments) > 1:
            head = self._segments[0]
            if (self.max_bytes is not None and self.size_bytes > self.max_bytes) or (
                before is not None and (not head or max(m.timestamp for m in head) < before)
            ):
                dropped.append(self._bases.pop(0))
                self._segments.pop(0)
                self._starts.pop(0)
                self._sizes.pop(0)
            else:
                break
        return dropped

    def tracked_offset(self, consumer: str) -> int | None:
        return self._tracked.get(consumer)

    def tracked_metadata(self, consumer: str) -> str:
        return self._metadata.get(consumer, "")

    def track_offset(self, consumer: str, offset: int, metadata: str = "") -> None:
        self._tracked[consumer] = offset
        self._metadata[consumer] = metadata
        if self._on_dirty is not None:
            self._on_dirty()

    def forget_offset(self, consumer: str) -> None:
        self._tracked.pop(consumer, None)
        self._metadata.pop(consumer, None)

    def tracked_names(self) -> list[str]:
        return list(self._tracked)

    def delete(self) -> None:
        self._segments.clear()
        self._starts.clear()
        self._bases.clear()
        self._sizes.clear()
        self.deleted = True


class MemoryMessageStore:
    """Queues by (vhost, name) in a dict; commits are numbered like the file store's."""

    def __init__(self) -> None:
        self._queues: dict[tuple[str, str], MemoryQueueStore] = {}
        self._streams: dict[tuple[str, str], MemoryStreamStore] = {}
        self._seq = 0
        self._dirty = False

    def _mark_dirty(self) -> None:
        self._dirty = True

    def open_queue(self, vhost: str, name: str) -> MemoryQueueStore:
        store = self._queues.get((vhost, name))
        if store is None:
            store = self._queues[(vhost, name)] = MemoryQueueStore(self._mark_dirty)
        return store

    def delete_queue(self, vhost: str, name: str) -> None:
        store = self._queues.pop((vhost, name), None)
        if store is not None:
            store.delete()

    def open_spill(self) -> "MemorySpill":
        """The twin of FileSpill: the batches stay in a deque (never part of a commit)."""
        return MemorySpill()

    def open_stream(
        self,
        vhost: str,
        name: str,
        *,
        segment_size: int | None = None,
        max_age_ms: int | None = None,
        max_bytes: int | None = None,
    ) -> MemoryStreamStore:
        store = self._streams.get((vhost, name))
        if store is None:
            store = self._streams[(vhost, name)] = MemoryStreamStore(
                self._mark_dirty, segment_size=segment_size or 8 * 1024 * 1024, max_age_ms=max_age_ms,
                max_bytes=max_bytes,
            )
        return store

    def streams(self) -> list[tuple[str, str]]:
        return sorted(self._streams)

    def delete_stream(self, vhost: str, name: str) -> None:
        store = self._streams.pop((vhost, name), None)
        if store is not None:
            store.delete()

    def queues(self) -> list[tuple[str, str]]:
        return sorted(self._queues)

    @property
    def commit_pending(self) -> bool:
        return self._dirty

    def begin_commit(self) -> MemoryCommit:
        for stream in self._streams.values():
            stream.commit_began()
        self._seq += 1
        self._dirty = False
        return MemoryCommit(self._seq)

    def end_commit(self, handle: MemoryCommit) -> None:
        """Nothing to settle: a memory commit cannot fail."""

    def sync(self) -> int:
        return self.begin_commit().run()

    def close(self) -> None:
        """Nothing to release; the queues stay readable (a memory store has no restart)."""


class MemoryDefinitionStore:
    """Definitions held in a Definitions value; load() returns a deep copy."""

    def __init__(self) -> None:
        self._defs = Definitions()

    def load(self) -> Definitions:
        return self._defs.copy()

    def put_vhost(self, vhost: VHostDef) -> None:
        self._defs.apply_put(vhost)

    def delete_vhost(self, name: str) -> None:
        self._defs.apply_delete("vhost", (name,))

    def put_user(self, user: UserDef) -> None:
        self._defs.apply_put(user)

    def delete_user(self, name: str) -> None:
        self._defs.apply_delete("user", (name,))

    def put_permission(self, permission: PermissionDef) -> None:
        self._defs.apply_put(permission)

    def delete_permission(self, user: str, vhost: str) -> None:
        self._defs.apply_delete("permission", (user, vhost))

    def put_topic_permission(self, permission: TopicPermissionDef) -> None:
        self._defs.apply_put(permission)

    def delete_topic_permission(self, user: str, vhost: str, exchange: str) -> None:
        self._defs.apply_delete("topic_permission", (user, vhost, exchange))

    def put_exchange(self, exchange: ExchangeDef) -> None:
        self._defs.apply_put(exchange)

    def delete_exchange(self, vhost: str, name: str) -> None:
        self._defs.apply_delete("exchange", (vhost, name))

    def put_queue(self, queue: QueueDef) -> None:
        self._defs.apply_put(queue)

    def delete_queue(self, vhost: str, name: str) -> None:
        self._defs.apply_delete("queue", (vhost, name))

    def put_binding(self, binding: BindingDef) -> None:
        self._defs.apply_put(binding)

    def delete_binding(self, binding: BindingDef) -> None:
        self._defs.apply_delete("binding", binding.key())

    def put_policy(self, policy: PolicyDef) -> None:
        self._defs.apply_put(policy)

    def delete_policy(self, vhost: str, name: str) -> None:
        self._defs.apply_delete("policy", (vhost, name))

    def put_operator_policy(self, policy: OperatorPolicyDef) -> None:
        self._defs.apply_put(policy)

    def delete_operator_policy(self, vhost: str, name: str) -> None:
        self._defs.apply_delete("operator_policy", (vhost, name))

    def put_parameter(self, parameter: ParameterDef) -> None:
        self._defs.apply_put(parameter)

    def delete_parameter(self, vhost: str, component: str, name: str) -> None:
        self._defs.apply_delete("parameter", (vhost, component, name))

    def put_global_parameter(self, parameter: GlobalParameterDef) -> None:
        self._defs.apply_put(parameter)

    def delete_global_parameter(self, name: str) -> None:
        self._defs.apply_delete("global_parameter", (name,))

    def close(self) -> None:
        """Nothing to release."""


class MemorySpill:
    """A Spill held in memory (store/spill.py has the file one)."""

    def __init__(self) -> None:
        self._batches: deque[list] = deque()
        self.deleted = False

    def __len__(self) -> int:
        return len(self._batches)

    def push(self, batch: list) -> None:
        self._batches.append(list(batch))

    def pop(self) -> list:
        return self._batches.popleft()

    def peek(self, index: int) -> list:
        return list(self._batches[index])

    def delete(self) -> None:
        self._batches.clear()
        self.deleted = True
