"""The data plane of the Kafka listener, sans-IO: Produce, Fetch, ListOffsets, Metadata, CreateTopics and
DeleteTopics against one vhost's topics (topics.py).

Storage: a produced record batch is kept whole, as one stream entry spanning its records' offsets (its base
offset and leader epoch written into it on the way in; the CRC does not cover them), and a fetch sends the
stored bytes unchanged; AMQP consumers of the partition's stream get its records decoded out of it
(stored.py, mapped as mapping.py says). Messages published over AMQP are one entry each, and a fetch encodes
each run of them as one uncompressed batch. Reads come from the stream's in-memory tail while it holds them.
docs/kafka.md ("Storage") has the measurements behind this.

Waiting is the caller's: `produce` says whether anything was written (acks=all waits for the group commit
covering it), `fetch` how many bytes it found and which partitions to watch for a long poll.
"""

from __future__ import annotations

import struct
from typing import Any

from leveret.amqp.properties import BasicProperties
from leveret.broker.errors import BrokerError
from leveret.broker.message import Message
from leveret.broker.stream import StreamQueue
from leveret.kafka import apis, errors
from leveret.kafka.mapping import RecordView, properties_for
from leveret.kafka.producers import ProducerStates, SequenceError
from leveret.kafka.records import (
    CONTROL,
    TRANSACTIONAL,
    UnsupportedCompression,
    batch_records,
    encode_batch,
    encode_record,
    scan_batches,
)
from leveret.kafka.topics import TopicError, Topics
from leveret.kafka.wire import INT16, INT32, KafkaDecodeError, encode
from leveret.store.api import BATCH_FORMAT_KAFKA, StoredBatch, StoredMessage

LATEST, EARLIEST = -1, -2
# Written into a batch when it is appended: its base offset (first field) and partition leader epoch (0).
BASE_OFFSET = struct.Struct(">q")
LEADER_EPOCH = struct.Struct(">i")
LEADER_EPOCH_AT = 12
NODE_ID = 0
CLUSTER_ID = "leveret"


class DataPlane:
    """The data APIs of one vhost's topics (one per listener, shared by its connections)."""

    def __init__(self, topics: Topics, producers: ProducerStates) -> None:
        self.topics = topics
        self.producers = producers
        self.view = RecordView()

    # -- produce ---------------------------------------------------------------------------------------------
    def produce(self, request: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """(response, whether anything was appended)."""
        wrote = False
        topics_out = []
        for topic in request["topics"]:
            name = topic["name"]
            parts_out = []
            for part in topic["partitions"]:
                result = self._produce_partition(name, part["index"], part["records"])
                wrote = wrote or result.pop("wrote")
                parts_out.append(result)
            topics_out.append({"name": name, "partitions": parts_out})
        return {"topics": topics_out}, wrote

    def _produce_partition(self, topic: str, index: int, data: bytes | bytearray | memoryview | None) -> dict[str, Any]:
        result: dict[str, Any] = {"index": index, "error_code": errors.NONE, "base_offset": -1,
                                  "log_append_time_ms": -1, "log_start_offset": -1, "wrote": False}
        code, partitions = self.topics.find_or_create(topic, True)
        if code or index < 0 or index >= len(partitions):
            result["error_code"] = code or errors.UNKNOWN_TOPIC_OR_PARTITION
            return result
        queue = partitions[index]
        if data is None:
            data = bytearray()
        elif type(data) is not bytearray and (type(data) is not memoryview or data.readonly):
            data = bytearray(data)  # batches get their offsets written in place (wire.Reader.nbytes)
        try:
            batches = scan_batches(data)
        except KafkaDecodeError:
            result["error_code"] = errors.CORRUPT_MESSAGE
            return result
        except UnsupportedCompression:
            result["error_code"] = errors.UNSUPPORTED_COMPRESSION_TYPE
            return result
        base = -1
        view = memoryview(data)
        try:
            for batch in batches:
                if batch.producer_id >= 0:
                    duplicate = self.producers.check(queue, batch)
                    if duplicate is not None:
                        base = duplicate if base < 0 else base
                        continue
                if batch.count > 0 and batch.last_offset_delta == batch.count - 1 \
                        and not batch.attributes & (TRANSACTIONAL | CONTROL):
                    first = self._append_batch(topic, queue, data, batch.start, batch.end, batch.count)
                else:
                    # Offsets with gaps, or what a transactional producer sends: record by record.
                    first = self._append(topic, queue, batch_records(view[batch.start : batch.end]))
                if batch.producer_id >= 0:
                    self.producers.appended(queue, batch, first)
                if base < 0:
                    base = first
                result["wrote"] = True
        except KafkaDecodeError:
            result["error_code"] = errors.CORRUPT_MESSAGE
        except SequenceError as exc:
            result["error_code"] = exc.code
        except (BrokerError, OSError) as exc:
            result["error_code"] = errors.code_for(exc)
        result["base_offset"] = base
        result["log_start_offset"] = queue.stream_store.first_offset
        return result

    @staticmethod
    def _append_batch(topic: str, queue: StreamQueue, data: bytearray | memoryview, start: int, end: int, count: int) -> int:
        """Keep the batch at data[start:end] whole as one stream entry (a view of the request's buffer: no copy),
        its base offset and leader epoch written in first as a fetch must serve them (the CRC covers neither),
        so fetches send the stored bytes unchanged."""
        base = queue.stream_store.next_offset
        BASE_OFFSET.pack_into(data, start, base)
        LEADER_EPOCH.pack_into(data, start + LEADER_EPOCH_AT, 0)
        first = queue.enqueue_batch(topic, count, BATCH_FORMAT_KAFKA, [memoryview(data)[start:end]])
        assert first == base, "a stream's next offset moved between reading and appending it"
        return first

    @staticmethod
    def _append(topic: str, queue: StreamQueue, records: list) -> int:
        first = -1
        from_raw = BasicProperties.from_raw
        enqueue = queue.enqueue
        for record in records:
            routing_key, raw = properties_for(record)
            value = record.value
            entry = enqueue(Message(topic, routing_key, from_raw(raw), value if value is not None else b""))
            if first < 0:
                first = entry.seq
        return first

    # -- fetch -----------------------------------------------------------------------------------------------
    def fetch(self, request: dict[str, Any], version: int) -> tuple[list[bytes], int, list[StreamQueue]]:
        """(response body parts, record bytes found, the partitions read): the caller waits on the partitions
        while fewer than min_bytes were found."""
        out: list[bytes] = []
        encode(apis.FETCH_RESPONSE_HEAD, version, {"session_id": 0}, out)
        budget = max(request.get("max_bytes", 0x7FFFFFFF), 1)
        found = 0
        watched: list[StreamQueue] = []
        topics = request["topics"]
        out.append(INT32.pack(len(topics)))
        for topic in topics:
            name = topic["topic"]
            raw = name.encode()
            out.append(INT16.pack(len(raw)) + raw)
            out.append(INT32.pack(len(topic["partitions"])))
            for part in topic["partitions"]:
                queue = self.topics.partition(name, part["partition"])
                head: dict[str, Any] = {"partition_index": part["partition"], "error_code": errors.NONE,
                                        "high_watermark": -1, "last_stable_offset": -1, "log_start_offset": -1,
                                        "preferred_read_replica": -1}
                records: list[bytes] = []
                size = 0
                if queue is None:
                    head["error_code"] = errors.UNKNOWN_TOPIC_OR_PARTITION
                else:
                    watched.append(queue)
                    store = queue.stream_store
                    end, first = store.next_offset, store.first_offset
                    head["high_watermark"] = head["last_stable_offset"] = end
                    head["log_start_offset"] = first
                    offset = part["fetch_offset"]
                    if offset < first or offset > end:
                        head["error_code"] = errors.OFFSET_OUT_OF_RANGE
                    elif offset < end and (budget > 0 or found == 0):
                        # At least one record even past the limits, so a large record is never stuck.
                        limit = min(part["partition_max_bytes"], budget) if found else part["partition_max_bytes"]
                        records, size = self._read_batches(queue, offset, max(limit, 1))
                        found += size
                        budget -= size
                encode(apis.FETCH_PARTITION_HEAD, version, head, out)
                out.append(INT32.pack(size))
                out += records
        return out, found, watched

    def _read_batches(self, queue: StreamQueue, offset: int, limit: int) -> tuple[list[bytes], int]:
        """Record batches from `offset` up to about `limit` bytes (at least one): stored Kafka batches as they
        are (one that begins below `offset` too: clients skip the records before the offset they asked for,
        as they do with Kafka), and runs of messages published over AMQP encoded as one batch each."""
        out: list[bytes] = []
        size = 0
        run: list[StoredMessage] = []
        run_bytes = 0  # about what the run's records will take: settled by _encode_run
        for entry in queue.read_from(offset):
            if type(entry) is StoredBatch:
                if run:
                    size += self._encode_run(run, out)
                    run, run_bytes = [], 0
                if size and size + len(entry.data) > limit:
                    break  # only the first batch may pass the limit
                if entry.batch_format == BATCH_FORMAT_KAFKA:
                    out.append(entry.data)
                    size += len(entry.data)
            else:
                run.append(entry)
                run_bytes += len(entry.body) + 32
                if size + run_bytes < limit:
                    continue
                size += self._encode_run(run, out)
                run, run_bytes = [], 0
            if size >= limit:
                break
        if run:
            size += self._encode_run(run, out)
        return out, size

    def _encode_run(self, run: list[StoredMessage], out: list[bytes]) -> int:
        """One uncompressed batch of these consecutive messages, appended to `out`; its size."""
        body = bytearray()
        read = self.view.read
        base = run[0].offset
        base_ts = max_ts = 0
        for i, stored in enumerate(run):
            key, timestamp, headers = read(bytes(stored.props_raw))
            if key is None and stored.routing_key:
                key = stored.routing_key.encode()
            if timestamp is None:
                timestamp = stored.timestamp
            if i == 0:
                base_ts = max_ts = timestamp
            elif timestamp > max_ts:
                max_ts = timestamp
            encode_record(body, stored.offset - base, timestamp - base_ts, key, stored.body, headers)
        batch = encode_batch(base, base_ts, max_ts, len(run), run[-1].offset - base, body)
        out.append(batch)
        return len(batch)

    # -- offsets and metadata -------------------------------------------------------------------------------
    def list_offsets(self, request: dict[str, Any]) -> dict[str, Any]:
        topics_out = []
        for topic in request["topics"]:
            parts_out = []
            for part in topic["partitions"]:
                queue = self.topics.partition(topic["name"], part["partition_index"])
                answer = {"partition_index": part["partition_index"], "error_code": errors.NONE,
                          "timestamp": -1, "offset": -1, "leader_epoch": 0}
                if queue is None:
                    answer["error_code"] = errors.UNKNOWN_TOPIC_OR_PARTITION
                else:
                    store = queue.stream_store
                    wanted = part["timestamp"]
                    if wanted == LATEST:
                        answer["offset"] = store.next_offset
                    elif wanted == EARLIEST:
                        answer["offset"] = store.first_offset
                    else:
                        offset = store.seek_time(wanted)
                        if offset < store.next_offset:
                            answer["offset"] = offset
                            answer["timestamp"] = wanted
                parts_out.append(answer)
            topics_out.append({"name": topic["name"], "partitions": parts_out})
        return {"topics": topics_out}

    def metadata(self, request: dict[str, Any], version: int, host: str, port: int) -> dict[str, Any]:
        wanted = request.get("topics")
        allow = request.get("allow_auto_topic_creation", True)
        if wanted is None or (version == 0 and not wanted):
            names = [(name, errors.NONE, self.topics.partitions(name) or []) for name in self.topics.names()]
        else:
            names = [(t["name"], *self.topics.find_or_create(t["name"], allow)) for t in wanted]
        topics_out = []
        for name, code, partitions in names:
            topics_out.append({
                "error_code": code, "name": name, "is_internal": False,
                "topic_authorized_operations": -2147483648,
                "partitions": [
                    {"error_code": errors.NONE, "partition_index": i, "leader_id": NODE_ID, "leader_epoch": 0,
                     "replica_nodes": [NODE_ID], "isr_nodes": [NODE_ID], "offline_replicas": []}
                    for i in range(len(partitions))
                ],
            })
        return {"brokers": [{"node_id": NODE_ID, "host": host, "port": port, "rack": None}],
                "cluster_id": CLUSTER_ID, "controller_id": NODE_ID, "topics": topics_out,
                "cluster_authorized_operations": -2147483648}

    # -- topics ---------------------------------------------------------------------------------------------
    def create_topics(self, request: dict[str, Any]) -> dict[str, Any]:
        out = []
        for topic in request["topics"]:
            answer = {"name": topic["name"], "error_code": errors.NONE, "error_message": None}
            try:
                if topic["assignments"]:
                    raise TopicError(errors.INVALID_REQUEST, "Manual partition assignment is not supported")
                configs = {c["name"]: c["value"] for c in topic["configs"]}
                self.topics.create(topic["name"], topic["num_partitions"], configs,
                                   validate_only=request.get("validate_only", False))
            except TopicError as exc:
                answer["error_code"], answer["error_message"] = exc.code, exc.message
            out.append(answer)
        return {"topics": out}

    def delete_topics(self, request: dict[str, Any]) -> dict[str, Any]:
        out = []
        for name in request["topic_names"]:
            answer = {"name": name, "error_code": errors.NONE}
            try:
                for queue in self.topics.partitions(name) or []:
                    self.producers.forget_partition(queue)
                self.topics.delete(name)
            except TopicError as exc:
                answer["error_code"] = exc.code
            out.append(answer)
        return {"responses": out}
