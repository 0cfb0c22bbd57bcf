"""Kafka record batches a stream keeps whole, read as AMQP messages.

A produced batch is stored as one stream entry spanning its records' offsets (store/format.py, KIND_BATCH):
Kafka fetches serve its bytes as they are, and a stream's AMQP consumers (broker/stream.py) get its records
through `messages_of`, decoded when a consumer first reaches the batch, each mapped as mapping.py maps a
produced record, so a record is the same message over both protocols at the same offset.
"""

from __future__ import annotations

import logging

from leveret.kafka.mapping import properties_for
from leveret.kafka.records import batch_records
from leveret.store.api import StoredBatch, StoredMessage

log = logging.getLogger(__name__)


def messages_of(batch: StoredBatch) -> list[StoredMessage | None]:
    """The batch's messages by offset from its base; None where the batch holds no record (and everywhere
    when its records cannot be decoded: they were not checked record by record when produced)."""
    found: list[StoredMessage | None] = [None] * batch.span
    try:
        records = batch_records(batch.data)
    except Exception as exc:  # any codec's failure (zlib.error, lz4's RuntimeError, ...) alike
        log.warning("stream batch at offset %d: its records cannot be read (%s); AMQP consumers skip them",
                    batch.offset, exc)
        return found
    base, timestamp, exchange = batch.offset, batch.timestamp, batch.exchange
    for record in records:
        delta = record.offset_delta
        if 0 <= delta < batch.span:
            routing_key, raw = properties_for(record)
            value = record.value
            found[delta] = StoredMessage(base + delta, timestamp, 0, exchange, routing_key, raw,
                                         value if value is not None else b"")
    return found
