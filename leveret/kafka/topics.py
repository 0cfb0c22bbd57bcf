"""Kafka topics as RabbitMQ lays out a super stream: a topic with N partitions is a durable direct exchange
named after the topic (argument `x-super-stream: true`) bound to the stream queues `topic-0` ...
`topic-(N-1)` with routing keys "0" ... "N-1" (binding argument `x-stream-partition-order`), so AMQP
clients publish to a partition through the exchange and read any partition as a stream queue.

A stream queue declared over AMQP that is not a partition of such an exchange is a one-partition topic of
its own name, so Kafka clients read and write streams created over AMQP.

Topic configs map onto the streams' arguments: `retention.ms` -> `x-max-age` (whole seconds, rounded up),
`retention.bytes` -> `x-max-length-bytes`, `segment.bytes` -> `x-stream-max-segment-size-bytes`.
"""

from __future__ import annotations

import re
from typing import Any

from leveret.broker.errors import BrokerError
from leveret.broker.stream import StreamQueue
from leveret.broker.vhost import VHost
from leveret.kafka import errors

SUPER_STREAM_ARGUMENT = "x-super-stream"
PARTITION_ORDER_ARGUMENT = "x-stream-partition-order"
_LEGAL_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")
CONFIG_ARGUMENTS = {
    "retention.bytes": "x-max-length-bytes",
    "segment.bytes": "x-stream-max-segment-size-bytes",
}


class TopicError(Exception):
    """A topic could not be created or deleted: its Kafka error code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def stream_arguments(configs: dict[str, str | None]) -> dict[str, Any]:
    """The stream queue arguments for a topic's configs; TopicError(INVALID_CONFIG) for a value that is not one."""
    arguments: dict[str, Any] = {"x-queue-type": "stream"}
    for name, value in configs.items():
        if value is None:
            continue
        try:
            number = int(value)
        except ValueError:
            raise TopicError(errors.INVALID_CONFIG, f"Invalid value {value} for configuration {name}") from None
        if name == "retention.ms":
            if number > 0:
                arguments["x-max-age"] = f"{-(-number // 1000)}s"
        elif name in CONFIG_ARGUMENTS:
            if number >= 0:
                arguments[CONFIG_ARGUMENTS[name]] = number
    return arguments


class Topics:
    """The topics of one vhost, read from its exchanges and stream queues on every call (no second registry
    that could disagree with AMQP's declarations)."""

    def __init__(self, vhost: VHost, *, auto_create: bool = True, default_partitions: int = 1) -> None:
        self.vhost = vhost
        self.auto_create = auto_create
        self.default_partitions = default_partitions

    def partitions(self, topic: str) -> list[StreamQueue] | None:
        """The topic's partitions in order (partition i is element i), or None when there is no such topic."""
        queues = self.vhost.queues
        if topic in self.vhost.exchanges and isinstance(queues.get(f"{topic}-0"), StreamQueue):
            found = []
            while True:
                queue = queues.get(f"{topic}-{len(found)}")
                if not isinstance(queue, StreamQueue):
                    return found
                found.append(queue)
        queue = queues.get(topic)
        if isinstance(queue, StreamQueue):
            return [queue]
        return None

    def partition(self, topic: str, index: int) -> StreamQueue | None:
        """One partition (the produce and fetch path: two dict lookups)."""
        queue = self.vhost.queues.get(f"{topic}-{index}")
        if isinstance(queue, StreamQueue) and topic in self.vhost.exchanges:
            return queue
        if index == 0:
            queue = self.vhost.queues.get(topic)
            if isinstance(queue, StreamQueue):
                return queue
        return None

    def names(self) -> list[str]:
        """Every topic: super streams, and the streams that are no super stream's partition."""
        names = []
        partitions: set[str] = set()
        for name in self.vhost.exchanges:
            if name and not name.startswith("amq.") and isinstance(self.vhost.queues.get(f"{name}-0"), StreamQueue):
                names.append(name)
                partitions.update(queue.name for queue in self.partitions(name) or ())
        for name, queue in self.vhost.queues.items():
            if isinstance(queue, StreamQueue) and name not in partitions and name not in names:
                names.append(name)
        return sorted(names)

    def find_or_create(self, topic: str, allow_create: bool) -> tuple[int, list[StreamQueue]]:
        """(error code, partitions) for a topic a client names: created with the default partition count when
        auto-creation is on and the client allows it."""
        found = self.partitions(topic)
        if found is not None:
            return errors.NONE, found
        if not _LEGAL_NAME.fullmatch(topic) or topic in (".", ".."):
            return errors.INVALID_TOPIC_EXCEPTION, []
        if not (self.auto_create and allow_create):
            return errors.UNKNOWN_TOPIC_OR_PARTITION, []
        try:
            return errors.NONE, self.create(topic, self.default_partitions, {})
        except TopicError as exc:
            return exc.code, []

    def create(self, topic: str, count: int, configs: dict[str, str | None], *,
               validate_only: bool = False) -> list[StreamQueue]:
        """Declare the super stream: its partitions first, then the exchange and bindings (so a topic is
        never visible without its partitions)."""
        if not _LEGAL_NAME.fullmatch(topic) or topic in (".", ".."):
            raise TopicError(errors.INVALID_TOPIC_EXCEPTION, f"Topic name '{topic}' is illegal")
        if self.partitions(topic) is not None or topic in self.vhost.exchanges:
            raise TopicError(errors.TOPIC_ALREADY_EXISTS, f"Topic '{topic}' already exists.")
        if count == -1:
            count = self.default_partitions
        if count < 1:
            raise TopicError(errors.INVALID_PARTITIONS, "Number of partitions must be larger than 0.")
        arguments = stream_arguments(configs)
        if validate_only:
            return []
        vhost = self.vhost
        try:
            for index in range(count):
                vhost.declare_queue(f"{topic}-{index}", durable=True, arguments=dict(arguments))
            vhost.declare_exchange(topic, "direct", durable=True, arguments={SUPER_STREAM_ARGUMENT: True})
            for index in range(count):
                vhost.bind_queue(f"{topic}-{index}", topic, str(index), {PARTITION_ORDER_ARGUMENT: index})
        except (BrokerError, OSError) as exc:
            raise TopicError(errors.code_for(exc), str(exc)) from None
        found = self.partitions(topic)
        assert found is not None
        return found

    def delete(self, topic: str) -> None:
        """Delete the topic's streams (and its exchange, for a super stream)."""
        found = self.partitions(topic)
        if found is None:
            raise TopicError(errors.UNKNOWN_TOPIC_OR_PARTITION, f"Topic '{topic}' does not exist")
        try:
            for queue in found:
                self.vhost.delete_queue(queue.name)
            if topic in self.vhost.exchanges:
                self.vhost.delete_exchange(topic)
        except (BrokerError, OSError) as exc:
            raise TopicError(errors.code_for(exc), str(exc)) from None
