"""The store as the broker sees it: interfaces, the values they return, nothing about files.

The broker imports this module only. The server builds a concrete store (filestore.FileMessageStore
and definitions.FileDefinitionStore, or memory.MemoryMessageStore / MemoryDefinitionStore in
tests) and hands it in.

Durability contract
-------------------
* Only persistent messages (delivery-mode 2) routed to durable queues are appended. Transient
  messages never reach the store, so they are never written or fsynced.
* ``QueueStore.append`` returns at once; the record is durable once a commit that *began after*
  the append has completed (``MessageStore.sync()`` returns, or ``begin_commit().run()`` returns
  on the fsync thread). A publisher confirm for the message is sent only then.
* ``QueueStore.ack`` is durable after the next commit too; an ack lost in a crash re-delivers the
  message after restart (at-least-once), it never loses one.
* Definition changes (``DefinitionStore.put_*`` / ``delete_*``) are durable when the call returns.
* Offsets are per queue, increase monotonically, and are never reused while the queue has any
  segment on disk.
* A write or fsync that fails (a full disk, an I/O error) raises OSError from ``append`` or from the
  commit; the store then rolls back every record no commit has made durable yet, in every queue, and
  tells each queue's ``on_lost`` the offsets it dropped (their publishes are nacked, never confirmed).
  Ack records go with their batch: ``on_unacked`` names the offsets whose acks were rolled back (a
  consumer's ack, or a dead-lettering or delayed release whose new copy was dropped), which the owner
  must hold again, or the message would be on disk but nowhere in the running broker until a restart.
  ``MessageStore.end_commit(handle)`` must follow every ``run()`` of a commit handle.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from leveret.store.values import copy_value, deeper_than, flatten

# Arguments nested deeper than this are keyed and stored as flat token lists (store/values.py):
# Python's json recurses, and a client may nest tables thousands of levels deep.
JSON_DEPTH = 64


class StoredMessage(NamedTuple):
    """One message as stored in a queue: routing facts, raw AMQP properties and body.

    A NamedTuple rather than a frozen dataclass: recovery builds one per stored message and a
    frozen dataclass's __init__ costs about 1 us more each (a million messages: a second).
    """

    offset: int
    timestamp: int  # milliseconds since the epoch, as given to append
    flags: int
    exchange: str
    routing_key: str
    props_raw: bytes
    body: bytes


# The batch formats a stream entry may hold (store/format.py, KIND_BATCH): a Kafka record batch, magic 2.
BATCH_FORMAT_KAFKA = 1


class StoredBatch(NamedTuple):
    """Messages a stream stores as one entry (a Kafka record batch, kept as it came): they take the offsets
    `offset` .. `offset + span - 1`; `data` is in `batch_format`'s encoding (store/format.py), and only the
    producer's protocol reads it (AMQP consumers get the messages decoded out of it)."""

    offset: int
    timestamp: int  # milliseconds since the epoch, the append time
    flags: int
    exchange: str
    span: int
    batch_format: int
    data: bytes


def entry_end(entry: StoredMessage | StoredBatch) -> int:
    """The offset after a stream entry: a batch takes `span` offsets, a message one."""
    return entry.offset + (entry.span if type(entry) is StoredBatch else 1)


class CommitHandle(Protocol):
    """A prepared group commit; ``run()`` may be called on another thread (the fsync worker)."""

    seq: int

    def run(self) -> int:
        """Make everything appended before the commit began durable; return its sequence number."""


class QueueStore(Protocol):
    """The durable messages of one durable queue."""

    # Set by the owner: called with the offsets of records a failed write or fsync rolled back.
    on_lost: Callable[[list[int]], None] | None
    # Set by the owner: called with the offsets whose ack records such a rollback took (their records stay):
    # on disk these messages are unacked again, so the owner holds them again (at the tail, redelivered).
    on_unacked: Callable[[list[int]], None] | None

    def append(
        self, exchange: str, routing_key: str, props_raw: bytes, body: bytes, timestamp: int, flags: int = 0
    ) -> int:
        """Store a message; return its offset (durable after the next commit)."""

    def ack(self, offset: int) -> bool:
        """Remove a message for good; False if the offset is unknown or already acked."""

    def read(self, offset: int) -> StoredMessage:
        """The unacked message at `offset`; KeyError otherwise."""

    def recover(self) -> Iterator[tuple[int, StoredMessage]]:
        """Every unacked message, in offset order, as (offset, message)."""

    def recover_index(self) -> Iterator[tuple[int, int, int]]:
        """(offset, body size, timestamp) of every unacked message, in offset order, bodies unread.

        Cheap: from the clean-shutdown index when the last stop was clean, else from record headers.
        Recovery uses it for the backlog that stays on disk and reads bodies (read_batch) only for
        what goes to memory."""

    def read_batch(self, start: int, limit: int) -> list[StoredMessage]:
        """Up to `limit` unacked messages with offsets from `start` on, in order, read sequentially.

        This is how a queue pages a deep backlog back in: one pass over the file, not a seek per message."""

    def __len__(self) -> int:
        """How many messages are stored and unacked."""

    @property
    def next_offset(self) -> int:
        """The offset the next append will get."""

    def delete(self) -> None:
        """Remove the queue's messages and files; the store is unusable afterwards."""


class StreamStore(Protocol):
    """The log of one stream queue: append-only, offset-addressed, shrunk only by retention.

    Appends are durable after the next commit, exactly as ``QueueStore.append``. Reading never
    loads the stream into memory: ``read_from`` streams records from disk in bounded chunks.
    Consumers' tracked offsets (leveret's opt-in server-side offset tracking) are durable after
    the next commit too.
    """

    # What retention keeps (None: no limit), from the stream's arguments; a policy may change them.
    max_age_ms: int | None
    max_bytes: int | None

    def append(self, exchange: str, routing_key: str, props_raw: bytes, body: bytes, timestamp: int) -> int:
        """Store a message; return its offset."""

    def append_batch(self, exchange: str, span: int, batch_format: int, data: list[bytes], timestamp: int) -> int:
        """Store the concatenation of `data` as one batch of `span` messages; return its first offset (the
        caller may write that offset into the batch beforehand: it is `next_offset`)."""

    @property
    def first_offset(self) -> int:
        """The lowest offset still kept (== next_offset when the stream is empty)."""

    @property
    def next_offset(self) -> int:
        """The offset the next append will get."""

    @property
    def last_chunk_offset(self) -> int:
        """First offset of the newest chunk (the records one commit made durable): "last" starts here."""

    def recent_offset(self, segments: int) -> int:
        """The first offset of the newest `segments` segments (where reading the end of the log starts)."""

    def read_from(self, offset: int) -> Iterator[StoredMessage | StoredBatch]:
        """Entries from `offset` (or the first kept one after it) to the current end, in order; a batch
        that spans `offset` comes whole."""

    def seek_time(self, timestamp: int) -> int:
        """Offset of the first message stamped at or after `timestamp` (ms); next_offset if none."""

    def apply_retention(self, now_ms: int) -> list[int]:
        """Drop whole head segments that x-max-age / x-max-length-bytes no longer keep; their bases."""

    @property
    def size_bytes(self) -> int:
        """Bytes on disk (what x-max-length-bytes bounds)."""

    @property
    def segment_count(self) -> int:
        """How many segments hold the stream."""

    def tracked_offset(self, consumer: str) -> int | None:
        """The last offset `consumer` acknowledged with offset tracking on, if any."""

    def tracked_metadata(self, consumer: str) -> str:
        """The metadata string `consumer` stored with its tracked offset (a Kafka commit's); "" when none."""

    def track_offset(self, consumer: str, offset: int, metadata: str = "") -> None:
        """Remember that `consumer` acknowledged up to `offset`, with `metadata` (durable after the next commit)."""

    def forget_offset(self, consumer: str) -> None:
        """Drop `consumer`'s tracked offset (durable after the next commit)."""

    def tracked_names(self) -> list[str]:
        """The consumers with a tracked offset."""

    def delete(self) -> None:
        """Remove the stream's files; the store is unusable afterwards."""


class StreamStores(Protocol):
    """What a MessageStore that supports streams adds (the file store and its memory twin do)."""

    def open_stream(
        self,
        vhost: str,
        name: str,
        *,
        segment_size: int | None = None,
        max_age_ms: int | None = None,
        max_bytes: int | None = None,
    ) -> StreamStore:
        """The stream's store, created if absent, recovered on first open; its appends join the group commit."""

    def delete_stream(self, vhost: str, name: str) -> None:
        """Delete a stream's files (no error if it has none)."""

    def streams(self) -> list[tuple[str, str]]:
        """(vhost, name) of every stream with files (recovery can drop those without a definition)."""


# A spilled message: (exchange, routing key, raw properties, body).
SpilledMessage = tuple[str, str, bytes, bytes]


class Spill(Protocol):
    """Batches of messages that need not survive a restart, taken back oldest first (store/spill.py)."""

    def __len__(self) -> int:
        """How many batches it holds."""

    def push(self, batch: list[SpilledMessage]) -> None:
        """Append a batch; raises OSError (and records nothing) when the disk refuses it."""

    def pop(self) -> list[SpilledMessage | None]:
        """Remove and return the oldest batch; IndexError when empty. An unreadable batch is all None."""

    def peek(self, index: int) -> list[SpilledMessage | None]:
        """The batch `index` places behind the oldest, left where it is (as `pop` would read it)."""

    def delete(self) -> None:
        """Drop every batch and whatever held them."""


class MessageStore(Protocol):
    """All durable queues' messages, and the group commit that makes them durable."""

    def open_queue(self, vhost: str, name: str) -> QueueStore:
        """The store of a queue, created if absent, recovered on first open."""

    def delete_queue(self, vhost: str, name: str) -> None:
        """Delete a queue's store (no error if it has none)."""

    def open_spill(self) -> Spill:
        """A FIFO of batches of transient messages paged out of memory: never synced, gone after a restart."""

    def queues(self) -> list[tuple[str, str]]:
        """(vhost, name) of every queue with a store, open or not."""

    @property
    def commit_pending(self) -> bool:
        """True if something was appended or acked since the last commit began."""

    def begin_commit(self) -> CommitHandle:
        """Start a group commit covering every append and ack made so far (appending thread)."""

    def end_commit(self, handle: CommitHandle) -> None:
        """After `handle.run()` returned or raised, on the appending thread: settle the commit."""

    def sync(self) -> int:
        """begin_commit().run() in one go; returns the commit's sequence number."""

    def close(self) -> None:
        """Flush and close everything (call sync() first to make it durable)."""


# -- definitions -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VHostDef:
    """A virtual host."""

    name: str
    description: str = ""
    tags: tuple[str, ...] = ()
    # RabbitMQ's vhost limits ("max-connections", "max-queues"); a negative value means no limit.
    limits: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class UserDef:
    """A user and its password hash (never the password)."""

    name: str
    password_hash: str = ""
    hashing_algorithm: str = "rabbit_password_hashing_sha256"
    tags: tuple[str, ...] = ()
    # RabbitMQ's user limits ("max-connections", "max-channels"); a negative value means no limit.
    limits: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PermissionDef:
    """A user's configure / write / read regular expressions in one vhost."""

    user: str
    vhost: str
    configure: str = ".*"
    write: str = ".*"
    read: str = ".*"


@dataclass(frozen=True)
class TopicPermissionDef:
    """A user's write / read regular expressions on the routing keys of one topic exchange in one vhost."""

    user: str
    vhost: str
    exchange: str
    write: str = ".*"
    read: str = ".*"


@dataclass(frozen=True)
class ExchangeDef:
    """A durable exchange."""

    vhost: str
    name: str
    type: str
    durable: bool = True
    auto_delete: bool = False
    internal: bool = False
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueDef:
    """A durable queue (arguments include x-queue-type, x-message-ttl, ...)."""

    vhost: str
    name: str
    durable: bool = True
    auto_delete: bool = False
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BindingDef:
    """A binding from an exchange to a queue or to another exchange."""

    vhost: str
    source: str
    destination: str
    destination_type: str  # "queue" or "exchange", as RabbitMQ names it
    routing_key: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)

    def key(self) -> tuple[str, str, str, str, str, str]:
        """Identity of the binding: arguments take part, as in RabbitMQ."""
        if deeper_than(self.arguments, JSON_DEPTH):
            args = "$flat:" + json.dumps(flatten(self.arguments, sort_keys=True), default=repr)
        else:
            args = json.dumps(self.arguments, sort_keys=True, default=repr)
        return (self.vhost, self.source, self.destination_type, self.destination, self.routing_key, args)


@dataclass(frozen=True)
class PolicyDef:
    """A policy: a pattern, what it applies to, and its definition."""

    vhost: str
    name: str
    pattern: str
    definition: dict[str, Any] = field(default_factory=dict)
    apply_to: str = "all"
    priority: int | float = 0


@dataclass(frozen=True)
class OperatorPolicyDef(PolicyDef):
    """An operator policy: as a policy, in a namespace of its own (a policy may share its name)."""


@dataclass(frozen=True)
class ParameterDef:
    """A runtime parameter: one named JSON value of a component (shovel, federation-upstream...) in a vhost."""

    vhost: str
    component: str
    name: str
    value: Any = None


@dataclass(frozen=True)
class GlobalParameterDef:
    """A global runtime parameter: a named JSON value of the node, in no vhost."""

    name: str
    value: Any = None


@dataclass
class Definitions:
    """Every durable definition, keyed for lookup; `apply_*` keep the cascades in one place."""

    vhosts: dict[str, VHostDef] = field(default_factory=dict)
    users: dict[str, UserDef] = field(default_factory=dict)
    permissions: dict[tuple[str, str], PermissionDef] = field(default_factory=dict)
    topic_permissions: dict[tuple[str, str, str], TopicPermissionDef] = field(default_factory=dict)
    exchanges: dict[tuple[str, str], ExchangeDef] = field(default_factory=dict)
    queues: dict[tuple[str, str], QueueDef] = field(default_factory=dict)
    bindings: dict[tuple[str, ...], BindingDef] = field(default_factory=dict)
    policies: dict[tuple[str, str], PolicyDef] = field(default_factory=dict)
    operator_policies: dict[tuple[str, str], OperatorPolicyDef] = field(default_factory=dict)
    parameters: dict[tuple[str, str, str], ParameterDef] = field(default_factory=dict)
    global_parameters: dict[str, GlobalParameterDef] = field(default_factory=dict)

    def copy(self) -> "Definitions":
        """A copy sharing nothing mutable: every definition's tables and arrays are copied, without recursion."""
        def copied(value: Any) -> Any:
            changes = {f.name: copy_value(getattr(value, f.name)) for f in dataclasses.fields(value)
                       if isinstance(getattr(value, f.name), (dict, list))}
            return dataclasses.replace(value, **changes) if changes else value

        return Definitions(**{f.name: {key: copied(value) for key, value in getattr(self, f.name).items()}
                              for f in dataclasses.fields(self)})

    def apply_put(self, value: Any) -> None:
        """Add or replace one definition."""
        if isinstance(value, VHostDef):
            self.vhosts[value.name] = value
        elif isinstance(value, UserDef):
            self.users[value.name] = value
        elif isinstance(value, PermissionDef):
            self.permissions[(value.user, value.vhost)] = value
        elif isinstance(value, TopicPermissionDef):
            self.topic_permissions[(value.user, value.vhost, value.exchange)] = value
        elif isinstance(value, ExchangeDef):
            self.exchanges[(value.vhost, value.name)] = value
        elif isinstance(value, QueueDef):
            self.queues[(value.vhost, value.name)] = value
        elif isinstance(value, BindingDef):
            self.bindings[value.key()] = value
        elif isinstance(value, OperatorPolicyDef):  # before PolicyDef: it is one
            self.operator_policies[(value.vhost, value.name)] = value
        elif isinstance(value, PolicyDef):
            self.policies[(value.vhost, value.name)] = value
        elif isinstance(value, ParameterDef):
            self.parameters[(value.vhost, value.component, value.name)] = value
        elif isinstance(value, GlobalParameterDef):
            self.global_parameters[value.name] = value
        else:
            raise TypeError(f"not a definition: {value!r}")

    def apply_delete(self, kind: str, key: tuple) -> None:
        """Remove one definition and whatever cannot outlive it (bindings of a queue, a vhost's all)."""
        if kind == "vhost":
            (name,) = key
            self.vhosts.pop(name, None)
            for table in (self.exchanges, self.queues, self.policies, self.operator_policies, self.parameters):
                for k in [k for k in table if k[0] == name]:
                    del table[k]
            for k in [k for k in self.permissions if k[1] == name]:
                del self.permissions[k]
            for k in [k for k in self.topic_permissions if k[1] == name]:
                del self.topic_permissions[k]
            for k in [k for k in self.bindings if k[0] == name]:
                del self.bindings[k]
        elif kind == "user":
            (name,) = key
            self.users.pop(name, None)
            for k in [k for k in self.permissions if k[0] == name]:
                del self.permissions[k]
            for k in [k for k in self.topic_permissions if k[0] == name]:
                del self.topic_permissions[k]
        elif kind == "permission":
            self.permissions.pop(key, None)  # type: ignore[arg-type]
        elif kind == "topic_permission":
            self.topic_permissions.pop(key, None)  # type: ignore[arg-type]
        elif kind == "exchange":
            vhost, name = key
            self.exchanges.pop((vhost, name), None)
            for k in [
                k for k in self.bindings if k[0] == vhost and (k[1] == name or (k[2] == "exchange" and k[3] == name))
            ]:
                del self.bindings[k]
        elif kind == "queue":
            vhost, name = key
            self.queues.pop((vhost, name), None)
            for k in [k for k in self.bindings if k[0] == vhost and k[2] == "queue" and k[3] == name]:
                del self.bindings[k]
        elif kind == "binding":
            self.bindings.pop(key, None)
        elif kind == "policy":
            self.policies.pop(key, None)  # type: ignore[arg-type]
        elif kind == "operator_policy":
            self.operator_policies.pop(key, None)  # type: ignore[arg-type]
        elif kind == "parameter":
            self.parameters.pop(key, None)  # type: ignore[arg-type]
        elif kind == "global_parameter":
            (name,) = key
            self.global_parameters.pop(name, None)
        else:
            raise ValueError(f"unknown definition kind {kind!r}")


class DefinitionStore(Protocol):
    """Durable vhosts, users, permissions, exchanges, queues, bindings, policies and runtime parameters."""

    def load(self) -> Definitions:
        """Everything stored (a copy the caller may keep)."""

    def put_vhost(self, vhost: VHostDef) -> None: ...
    def delete_vhost(self, name: str) -> None: ...
    def put_user(self, user: UserDef) -> None: ...
    def delete_user(self, name: str) -> None: ...
    def put_permission(self, permission: PermissionDef) -> None: ...
    def delete_permission(self, user: str, vhost: str) -> None: ...
    def put_topic_permission(self, permission: TopicPermissionDef) -> None: ...
    def delete_topic_permission(self, user: str, vhost: str, exchange: str) -> None: ...
    def put_exchange(self, exchange: ExchangeDef) -> None: ...
    def delete_exchange(self, vhost: str, name: str) -> None: ...
    def put_queue(self, queue: QueueDef) -> None: ...
    def delete_queue(self, vhost: str, name: str) -> None: ...
    def put_binding(self, binding: BindingDef) -> None: ...
    def delete_binding(self, binding: BindingDef) -> None: ...
    def put_policy(self, policy: PolicyDef) -> None: ...
    def delete_policy(self, vhost: str, name: str) -> None: ...
    def put_operator_policy(self, policy: OperatorPolicyDef) -> None: ...
    def delete_operator_policy(self, vhost: str, name: str) -> None: ...
    def put_parameter(self, parameter: ParameterDef) -> None: ...
    def delete_parameter(self, vhost: str, component: str, name: str) -> None: ...
    def put_global_parameter(self, parameter: GlobalParameterDef) -> None: ...
    def delete_global_parameter(self, name: str) -> None: ...
    def close(self) -> None: ...
