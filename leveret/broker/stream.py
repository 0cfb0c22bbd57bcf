"""Stream queues (x-queue-type: stream) over AMQP 0-9-1: an append-only log that consumers read.

A stream keeps every message until retention drops it; acks never remove anything. Each consumer
has its own cursor (the next offset it will receive), so any number of consumers read the same
messages independently, from where their `x-stream-offset` consume argument put them. Behaviour and
error texts are RabbitMQ 3.10's, read from a live broker:

- declare: durable only (`invalid property 'non-durable' | 'exclusive-owner' | 'auto-delete'`), no
  server-named streams, queue arguments of other types refused (`invalid arg 'x-max-length' for queue
  'q' in vhost '/' of queue type rabbit_stream_queue`); x-max-age is "<n><Y|M|D|h|m|s>" with n > 0.
- consume: basic.qos prefetch must be set (406 `consumer prefetch count is not set for 'queue ...'`),
  no-ack is refused (540), x-priority is refused; prefetch is the consumer's credit.
- basic.get, queue.purge, basic.nack and basic.reject are refused with 540, connection level.
- every delivery carries the header x-stream-offset (long), appended after the message's own headers;
  delivery tags are the channel's; redelivered is always false.
- x-stream-offset: "first", "last" (start of the newest chunk: in RabbitMQ the batch its log writer
  wrote together, in leveret the messages one group commit made durable), "next" (default), an offset (below
  the first kept one means first; beyond the end waits for it), an AMQP timestamp (first message at or
  after it), or an interval "<n><Y|M|D|h|m|s>" (now minus the interval, as a timestamp).

Differences, on purpose: a malformed x-stream-offset or x-max-age that RabbitMQ answers with 541
INTERNAL_ERROR (a crash, e.g. "bogus" or "h") gets the 406 it gives for its near neighbours; basic.recover
on a channel with stream deliveries is a no-op where RabbitMQ crashes the connection (541).

Beyond RabbitMQ (LavinMQ's argument names): server-side offset tracking for AMQP consumers. With
`x-stream-automatic-offset-tracking: true`, or `x-stream-offset: null` (void, meaning "first" the first
time), the stream remembers, under the consumer tag (one the client chose: a server-generated tag is
never tracked), the highest offset the consumer acked, durably (fsynced by the next group commit);
a later consumer with that tag and tracking on resumes right after it, whatever its x-stream-offset.
Without either argument nothing is tracked and the default start stays "next".

The vhost declares streams (registry.py, arguments checked by stream_arguments.py) and opens the log, an
`api.StreamStore`, from the `StreamStores` the broker was built with, so a publish is confirmed after the
same group commit as queue messages. Recently appended messages are also kept in a small in-memory tail
(stream_tail.py), so consumers that keep up never touch the disk; a consumer that is behind reads through a
store iterator (bounded memory: one read chunk). A delivery's x-stream-offset header is added to the stored
property bytes by the codec (amqp/stream_offset.py, handed over as `PropertiesCodec.with_stream_offset`).

Batches. A Kafka producer's record batch is kept whole as one log entry that spans its records' offsets
(`enqueue_batch`, store/api.py `StoredBatch`): the Kafka fetch sends its bytes unchanged, and a consumer that
reaches it gets its records decoded out of it (by the `batch_messages` reader the server hands in, the Kafka
side's kafka/stored.py), one delivery per record at its own offset, as if each had been published alone.
The newest decoded batch is kept, so consumers reading together decode it once.

`StreamQueue` is a `QueueType` (queue_type.py), not a `Queue`: it shares the interface, not the machinery.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Iterable

from leveret.broker.arguments import as_text, field_type_name
from leveret.broker.entry import QueueEntry
from leveret.broker.errors import AccessRefused, NotImplementedByBroker, PreconditionFailed
from leveret.broker.message import Message, Properties
from leveret.broker.policy_definitions import NO_POLICY, AppliedPolicy
from leveret.broker.stats import MessageStats
from leveret.broker.stream_arguments import STREAM_MODULE, StreamSettings, parse_interval
from leveret.broker.stream_tail import TAIL_BYTES, Tail
from leveret.broker.timers import Slot
from leveret.store.api import StoredBatch, StoredMessage, StreamStore, entry_end

if TYPE_CHECKING:
    from leveret.broker.consumer import Consumer
    from leveret.broker.timers import Timers
    from leveret.clock import Clock

TRACKING_ARGUMENT = "x-stream-automatic-offset-tracking"
OFFSET_HEADER = "x-stream-offset"

# How often x-max-age retention runs when no segment roll triggers it (seconds).
RETENTION_INTERVAL = 30.0

# -- consuming -----------------------------------------------------------------------------------


class StreamCursor:
    """Where one consumer stands in a stream: the next offset, a disk reader, its tracking name, and the
    messages of the batch it is reading through (decoded once, when it reached the batch)."""

    __slots__ = ("offset", "reader", "tracking", "acked", "batch_base", "batch")

    def __init__(self, offset: int, tracking: str | None) -> None:
        self.offset = offset
        self.reader: Iterator[StoredMessage | StoredBatch] | None = None
        self.tracking = tracking
        self.acked = -1  # highest offset acked (tracked consumers only)
        self.batch_base = -1
        self.batch: list[StoredMessage | None] = []

    def drop_reader(self) -> None:
        if self.reader is not None:
            self.reader.close()  # type: ignore[attr-defined]
            self.reader = None


class StreamEntry(QueueEntry):
    """A delivered stream message, remembering whose cursor it came from (for offset tracking)."""

    __slots__ = ("cursor",)

    def __init__(self, offset: int, message: Message, cursor: StreamCursor) -> None:
        super().__init__(offset, message)
        self.cursor = cursor


class StreamQueue:
    """A stream queue: the store is the log, consumers are cursors over it; see the module docstring."""

    applied_policy: AppliedPolicy = NO_POLICY  # set by policies.py, which sets the retention it asks for

    def __init__(
        self,
        name: str,
        vhost_name: str = "/",
        *,
        arguments: dict[str, Any] | None = None,
        store: StreamStore,
        settings: StreamSettings | None = None,
        clock: "Clock",
        timers: "Timers",
        delivery_properties: Callable[[bytes, int], Properties],
        delete_store: Callable[[], None] | None = None,
        batch_messages: Callable[[StoredBatch], list[StoredMessage | None]] | None = None,
    ) -> None:
        """`delivery_properties` makes a delivery's properties from the stored bytes and the offset (the
        codec's, with the x-stream-offset header: broker/message.py `PropertiesCodec`); `batch_messages` reads
        the messages out of a stored batch (by offset from its base, None where there is none)."""
        self.name = name
        self.vhost_name = vhost_name
        self.arguments: dict[str, Any] = dict(arguments or {})
        self.sources: set[Any] = set()
        self.stats = MessageStats()  # the management API's message_stats (stats.py)
        self.deleted = False
        self.had_consumers = False
        self.stream_store = store
        self.stream_settings = settings or StreamSettings()
        self.clock = clock
        self.delivery_properties = delivery_properties
        self._delete_store = delete_store
        self._read_batch = batch_messages
        self._cursors: dict[Consumer, StreamCursor] = {}
        self._exclusive: Consumer | None = None
        self._tail = Tail(TAIL_BYTES)
        self._decoded: tuple[int, list[StoredMessage | None]] | None = None
        # Called after every append: readers that are not consumers (the Kafka listener's long-polling
        # fetches) wait for new messages through these.
        self.append_watchers: list[Callable[[], None]] = []
        self._retention = Slot(timers, self._on_retention_due)
        if self.stream_settings.max_age_ms is not None:
            self._retention.arm(clock.monotonic() + RETENTION_INTERVAL)

    # -- facts ----------------------------------------------------------------------------------
    # A stream is always durable, never exclusive or auto-delete (declaring refuses the others).
    durable = True
    exclusive = False
    auto_delete = False
    owner = None
    unacked_count = 0  # deliveries are counted by the channels' credit, never here
    ack_timeout = None
    adds_delivery_count = False
    store = None  # no QueueStore: the stream is its own log (stream_store)

    def describe(self) -> str:
        return f"queue '{self.name}' in vhost '{self.vhost_name}'"

    @property
    def message_count(self) -> int:
        """RabbitMQ reports 0 ready messages for a stream in declare-ok."""
        return 0

    @property
    def consumer_count(self) -> int:
        return len(self._cursors)

    @property
    def consumers(self) -> list[Consumer]:
        return list(self._cursors)

    @property
    def unused_for_auto_delete(self) -> bool:
        return False

    def touch(self) -> None:
        """Streams have no x-expires."""

    def _now_ms(self) -> int:
        return int(self.clock.time() * 1000)

    # -- messages in ----------------------------------------------------------------------------
    def enqueue(self, message: Message) -> QueueEntry:
        """Append to the log (every message, persistent or not, as RabbitMQ streams do) and feed cursors.

        The store marks its group commit dirty, so the server's `commit_pending` check makes a
        publisher confirm wait for the fsync covering this record.
        """
        raw = message.properties.raw
        body = message.body
        if type(body) is not bytes:
            body = bytes(body)  # the tail must not pin the codec's read buffer through a memoryview
        now = int(self.clock.time() * 1000)
        exchange = message.exchange
        routing_key = message.routing_key
        offset = self.stream_store.append(exchange, routing_key, raw, body, now)
        self._tail.append(StoredMessage(offset, now, 0, exchange, routing_key, raw, body), len(body) + len(raw) + 64)
        self._appended()
        return QueueEntry(offset, message)

    def _appended(self) -> None:
        """After an append: feed the cursors, and wake the readers waiting for new entries."""
        if self._cursors:
            self.dispatch()
        if self.append_watchers:
            for watcher in tuple(self.append_watchers):
                watcher()

    def enqueue_batch(self, exchange: str, span: int, batch_format: int, data: list[bytes]) -> int:
        """Append a batch of `span` messages kept in its producer's encoding (a Kafka record batch) as one
        entry; return its first offset. AMQP consumers get its messages decoded out of it (`batch_messages`)."""
        now = self._now_ms()
        raw = data[0] if len(data) == 1 else b"".join(data)  # kept by the tail: a view stays a view
        offset = self.stream_store.append_batch(exchange, span, batch_format, [raw], now)
        self._tail.append(StoredBatch(offset, now, 0, exchange, span, batch_format, raw), len(raw) + 64, span)
        self._appended()
        return offset

    def read_from(self, offset: int) -> Iterator[StoredMessage | StoredBatch]:
        """The stored entries from `offset` (or the first kept one) to the current end, from the in-memory
        tail where it holds them: how readers that are not consumers (the Kafka fetch) read the log. A batch
        spanning `offset` comes whole."""
        store = self.stream_store
        tail = self._tail
        end = store.next_offset
        offset = max(offset, store.first_offset)
        reader: Iterator[StoredMessage | StoredBatch] | None = None
        try:
            while offset < end:
                stored = tail.get(offset)
                if stored is None:
                    if reader is None:
                        reader = store.read_from(offset)
                    stored = next(reader, None)
                    if stored is None:
                        return
                    if entry_end(stored) <= offset:
                        continue
                yield stored
                offset = entry_end(stored)
        finally:
            if reader is not None:
                reader.close()  # type: ignore[attr-defined]

    def apply_retention(self) -> list[int]:
        """Drop head segments retention no longer keeps (also run on a timer and on segment rolls)."""
        return self.stream_store.apply_retention(self._now_ms())

    def set_retention(self, max_age_ms: int | None, max_bytes: int | None) -> None:
        """A policy changed what the stream keeps (its x-max-age and x-max-length-bytes met with the policy's
        max-age and max-length-bytes, by policies.py): keep that from now on, and drop what it no longer keeps."""
        store = self.stream_store
        store.max_age_ms, store.max_bytes = max_age_ms, max_bytes
        self._retention.cancel()
        if max_age_ms is not None:
            self._retention.arm(self.clock.monotonic() + RETENTION_INTERVAL)
        self.apply_retention()

    def _on_retention_due(self) -> None:
        if self.deleted:
            return
        self.apply_retention()
        self._retention.arm(self.clock.monotonic() + RETENTION_INTERVAL)

    # -- refusals -------------------------------------------------------------------------------
    def fetch(self, no_ack: bool) -> QueueEntry | None:
        raise NotImplementedByBroker(f"basic.get not supported by stream queues {self.describe()}")

    def purge(self) -> int:
        raise NotImplementedByBroker(f"queue.purge not supported by stream queues {self.describe()}")

    def _refuse_nack(self) -> NotImplementedByBroker:
        return NotImplementedByBroker(f"basic.nack and basic.reject not supported by stream queues {self.describe()}")

    # -- acknowledgements -----------------------------------------------------------------------
    def settle(self, entries: Iterable[QueueEntry]) -> None:
        """Acks free credit (the channel counts it) and advance tracked offsets; no data is removed."""
        if self.deleted:
            return  # acks that arrive after the stream was deleted have nothing left to track
        for entry in entries:
            cursor = getattr(entry, "cursor", None)
            if cursor is not None and cursor.tracking is not None and entry.seq > cursor.acked:
                cursor.acked = entry.seq
                self.stream_store.track_offset(cursor.tracking, entry.seq)

    def requeue(self, entries: Iterable[QueueEntry], *, delay: bool = False) -> None:
        """`delay` marks nack/reject (refused); a closing channel's requeue just lets the entries go."""
        if delay:
            raise self._refuse_nack()

    def discard(self, entries: Iterable[QueueEntry], reason: str = "rejected") -> None:
        raise self._refuse_nack()

    def settle_removed(self, entry: QueueEntry) -> None:
        """Nothing leaves a stream by being consumed."""

    def message_for_delivery(self, entry: QueueEntry, get: bool = False) -> Message:
        return entry.message

    # -- consumers ------------------------------------------------------------------------------
    def add_consumer(self, consumer: Consumer) -> None:
        """Check the consume against RabbitMQ's stream rules and place the consumer's cursor."""
        where = self.describe()
        if not consumer.prefetch:
            raise PreconditionFailed(f"consumer prefetch count is not set for '{where}'")
        if consumer.no_ack:
            raise NotImplementedByBroker(f"automatic acknowledgement not supported by stream queues {where}")
        arguments = consumer.arguments
        if "x-priority" in arguments:
            raise PreconditionFailed(f"invalid arg 'x-priority' for {where} of queue type {STREAM_MODULE}")
        if self._exclusive is not None or (consumer.exclusive and self._cursors):
            raise AccessRefused(f"{where} in exclusive use")
        tracking = None
        track = arguments.get(TRACKING_ARGUMENT)
        null_offset = OFFSET_HEADER in arguments and arguments[OFFSET_HEADER] is None
        if (null_offset or track is True or as_text(track) == "true") and not consumer.tag.startswith("amq.ctag-"):
            # A server-generated tag is new on every consume: nothing could ever resume from it.
            tracking = consumer.tag
        spec = arguments.get(OFFSET_HEADER, "next")
        start = self._start_offset("first" if spec is None else spec, where)
        if tracking is not None:
            tracked = self.stream_store.tracked_offset(tracking)
            if tracked is not None:
                start = tracked + 1
        self._cursors[consumer] = StreamCursor(start, tracking)
        if consumer.exclusive:
            self._exclusive = consumer
        self.had_consumers = True
        consumer.blocked = True

    def _start_offset(self, spec: Any, where: str) -> int:
        store = self.stream_store
        if isinstance(spec, datetime.datetime):
            moment = spec if spec.tzinfo is not None else spec.replace(tzinfo=datetime.timezone.utc)
            return store.seek_time(int(moment.timestamp() * 1000))
        if isinstance(spec, int) and not isinstance(spec, bool):
            if type(spec).__name__ == "Timestamp":  # the codec's int subclass for field type 'T'
                return store.seek_time(int(spec) * 1000)
            return max(spec, 0)
        text = as_text(spec)
        if isinstance(text, str):
            if text == "first":
                return store.first_offset
            if text == "last":
                return store.last_chunk_offset
            if text == "next":
                return store.next_offset
            interval = parse_interval(text)
            if interval is not None:
                return store.seek_time(self._now_ms() - interval)
            kind = "longstr"
            shown = text
        else:
            kind = field_type_name(spec)
            shown = str(spec).lower()
        raise PreconditionFailed(
            f"invalid arg '{OFFSET_HEADER}' for {where}: {{invalid_stream_offset_arg,{{{kind},<<\"{shown}\">>}}}}"
        )

    def remove_consumer(self, consumer: Consumer) -> None:
        cursor = self._cursors.pop(consumer, None)
        if cursor is None:
            return
        cursor.drop_reader()
        if self._exclusive is consumer:
            self._exclusive = None
        consumer.blocked = True

    def detach_consumers(self) -> list[Consumer]:
        consumers = list(self._cursors)
        for consumer in consumers:
            self.remove_consumer(consumer)
        return consumers

    def unblock(self, consumer: Consumer) -> None:
        """Credit was freed (or the consumer started): deliver to it what it may take now."""
        cursor = self._cursors.get(consumer)
        if cursor is not None:
            consumer.blocked = False
            self._pump(consumer, cursor)

    def dispatch(self) -> int:
        delivered = 0
        for consumer, cursor in list(self._cursors.items()):
            if not consumer.blocked:
                delivered += self._pump(consumer, cursor)
        return delivered

    def _pump(self, consumer: Consumer, cursor: StreamCursor) -> int:
        """Deliver from `cursor` while the consumer has credit and the stream has messages for it."""
        delivered = 0
        store = self.stream_store
        tail = self._tail
        make = self.delivery_properties
        # Constant during the loop: deliveries never publish, and retention runs only on appends/timer.
        end = store.next_offset
        first = store.first_offset
        if cursor.offset < first:
            cursor.offset = first
            cursor.drop_reader()
        while cursor.offset < end and consumer.has_credit():
            offset = cursor.offset
            batch = cursor.batch
            if 0 <= offset - cursor.batch_base < len(batch):
                stored = batch[offset - cursor.batch_base]
                if stored is None:
                    cursor.offset = offset + 1  # a record the batch does not hold (or cannot be read)
                    continue
            else:
                entry = tail.get(offset)
                if entry is not None:
                    cursor.drop_reader()
                else:
                    if cursor.reader is None:
                        cursor.reader = store.read_from(offset)
                    entry = next(cursor.reader, None)
                    if entry is None:
                        cursor.reader = None
                        break  # the reader met the end (only if the log lost records; retried next time)
                    if entry_end(entry) <= offset:
                        continue
                if type(entry) is StoredBatch:
                    cursor.batch_base, cursor.batch = entry.offset, self._batch_messages(entry)
                    if offset < entry.offset:
                        cursor.offset = entry.offset  # the log skipped offsets (damage recovery cut)
                    continue
                stored = entry
            cursor.offset = stored.offset + 1
            properties = make(bytes(stored.props_raw), stored.offset)
            message = Message(stored.exchange, stored.routing_key, properties, bytes(stored.body))
            consumer.channel.send_delivery(consumer, self, StreamEntry(stored.offset, message, cursor))
            delivered += 1
            if consumer not in self._cursors:
                break  # the delivery closed the channel or cancelled the consumer
        if not consumer.has_credit():
            consumer.blocked = True
        return delivered

    def _batch_messages(self, batch: StoredBatch) -> list[StoredMessage | None]:
        """The messages of a stored batch, by offset from its base (None where it holds none); the newest
        decoded batch is kept, so consumers reading together decode it once."""
        if self._decoded is not None and self._decoded[0] == batch.offset:
            return self._decoded[1]
        if self._read_batch is None:
            messages: list[StoredMessage | None] = [None] * batch.span  # no reader for it: nothing to deliver
        else:
            messages = self._read_batch(batch)
        self._decoded = (batch.offset, messages)
        return messages

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> int:
        """The stream is deleted: stop its timer, drop readers and remove its files; 0 messages reported."""
        self.deleted = True
        self._retention.cancel()
        for cursor in self._cursors.values():
            cursor.drop_reader()
        self._tail.clear()
        if self._delete_store is not None:
            self._delete_store()
        return 0

    def __repr__(self) -> str:
        return f"<StreamQueue {self.name!r} next={self.stream_store.next_offset} consumers={len(self._cursors)}>"
