"""Consumer groups with Kafka's classic rebalance protocol, sans-IO (time from the broker's clock and timers).

A group moves Empty -> PreparingRebalance (members (re)join; JoinGroup responses wait) -> CompletingRebalance
(the new generation is known; SyncGroup waits for the leader's assignment) -> Stable. A join, a leave, a
member whose session timed out or whose connection closed starts a new rebalance; members learn of it from
Heartbeat's REBALANCE_IN_PROGRESS (27). The rebalance completes when every member has rejoined, or when the
longest rebalance timeout passes (those that did not rejoin are dropped). The protocol is chosen by vote
among those every member supports; the leader's assignments are passed through opaquely. A first join into
an empty group waits `initial_delay` seconds for the others (Kafka's group.initial.rebalance.delay.ms).
Static membership (`group.instance.id`) is accepted and ignored: such a member is an ordinary dynamic one.

Committed offsets live in the partition streams' offset tracking (the store's durable offsets file, the one
AMQP consumers' server-side tracking uses) under the name `kafka:<group>`; OffsetCommit is answered after
the group commit that makes them durable, with their metadata strings (in the same records, so the same
fsync covers both). A metadata string longer than Kafka's offset.metadata.max.bytes default is refused with
OFFSET_METADATA_TOO_LARGE, as Kafka refuses it.

Expiry (Kafka's offsets.retention.minutes, 7 days by default): a group with no members whose last commit and
last departure are older than the retention is removed with its committed offsets; checked once a minute on
the broker's timers. A group with committed offsets that nobody has used since a restart counts from the
start.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Protocol

from leveret.broker.timers import Slot, Timers
from leveret.clock import Clock
from leveret.kafka import apis, errors
from leveret.kafka.topics import Topics

EMPTY, PREPARING, COMPLETING, STABLE = "Empty", "PreparingRebalance", "CompletingRebalance", "Stable"
MIN_SESSION_MS, MAX_SESSION_MS = 1000, 1800000
TRACKING_PREFIX = "kafka:"
# Kafka's offset.metadata.max.bytes default (Kafka compares the string's length, as here).
MAX_METADATA = 4096
# Kafka's offsets.retention.minutes default (7 days), in seconds; how often expiry looks (seconds).
DEFAULT_RETENTION = 7 * 24 * 3600.0
SWEEP_INTERVAL = 60.0


class Responder(Protocol):
    """What the coordinator needs of a connection: to answer a request now or after the next group commit."""

    def answer(self, header: Any, slot: Any, body: dict[str, Any]) -> None: ...

    def answer_after_commit(self, header: Any, slot: Any, body: dict[str, Any]) -> None: ...


class Member:
    def __init__(self, member_id: str, responder: Responder, request: dict[str, Any], client_id: str) -> None:
        self.member_id = member_id
        self.responder = responder
        self.client_id = client_id
        self.instance_id = request.get("group_instance_id")
        self.session_ms = request["session_timeout_ms"]
        self.rebalance_ms = request.get("rebalance_timeout_ms", self.session_ms)
        self.protocols: list[tuple[str, bytes]] = [(p["name"], p["metadata"]) for p in request["protocols"]]
        self.assignment = b""
        self.join: tuple[Any, Any] | None = None  # (header, slot) of a JoinGroup waiting for the rebalance
        self.sync: tuple[Any, Any] | None = None
        self.expires = 0.0
        self.expiry: Slot | None = None


class Group:
    def __init__(self, name: str, now: float) -> None:
        self.name = name
        self.state = EMPTY
        self.idle_since = now  # wall-clock seconds: when it last became empty or had offsets committed
        self.generation = 0
        self.protocol_type = ""
        self.protocol: str | None = None
        self.leader: str | None = None
        self.members: dict[str, Member] = {}
        self.rebalance: Slot | None = None


class GroupCoordinator:
    """Every consumer group of the listener's vhost."""

    def __init__(self, topics: Topics, timers: Timers, clock: Clock, initial_delay: float = 0.2,
                 retention: float = DEFAULT_RETENTION) -> None:
        self.topics = topics
        self.timers = timers
        self.clock = clock
        self.initial_delay = initial_delay
        self.retention = retention
        self.groups: dict[str, Group] = {}
        self._started = clock.time()
        self._adopted = False
        self._sweeper = Slot(timers, self._sweep)
        self._sweeper.arm(clock.monotonic() + SWEEP_INTERVAL)

    def _group(self, name: str) -> Group:
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = Group(name, self.clock.time())
        return group

    # -- expiry --------------------------------------------------------------------------------------------
    def _sweep(self) -> None:
        self.expire_groups()
        self._sweeper.arm(self.clock.monotonic() + SWEEP_INTERVAL)

    def expire_groups(self) -> list[str]:
        """Drop the groups that have been empty, with no offset committed, for `retention` seconds, and their
        committed offsets (Kafka's offsets.retention.minutes); their names. Groups with committed offsets but
        not seen since the start count as idle from the start."""
        tracked: dict[str, list[Any]] = {}
        for topic in self.topics.names():
            for queue in self.topics.partitions(topic) or []:
                for consumer in queue.stream_store.tracked_names():
                    if consumer.startswith(TRACKING_PREFIX):
                        tracked.setdefault(consumer[len(TRACKING_PREFIX):], []).append(queue)
        if not self._adopted:
            self._adopted = True
            for name in tracked:
                if name not in self.groups:
                    self.groups[name] = Group(name, self._started)
        oldest = self.clock.time() - self.retention
        expired = [name for name, group in self.groups.items()
                   if group.state == EMPTY and not group.members and group.idle_since <= oldest]
        for name in expired:
            group = self.groups.pop(name)
            if group.rebalance is not None:
                group.rebalance.cancel()
            for queue in tracked.get(name, ()):
                queue.stream_store.forget_offset(TRACKING_PREFIX + name)
        return expired

    def handlers(self, responder: Any) -> dict[int, Callable[[Any, dict[str, Any], Any], None]]:
        def bind(method: Callable[..., dict[str, Any] | None]) -> Callable[[Any, dict[str, Any], Any], None]:
            def handle(header: Any, request: dict[str, Any], slot: Any) -> None:
                body = method(responder, header, request, slot)
                if body is not None:
                    responder.answer(header, slot, body)
            return handle

        return {
            apis.FIND_COORDINATOR: bind(self.find_coordinator),
            apis.JOIN_GROUP: bind(self.join),
            apis.SYNC_GROUP: bind(self.sync),
            apis.HEARTBEAT: bind(self.heartbeat),
            apis.LEAVE_GROUP: bind(self.leave),
            apis.OFFSET_COMMIT: bind(self.offset_commit),
            apis.OFFSET_FETCH: bind(self.offset_fetch),
            apis.LIST_GROUPS: bind(self.list_groups),
            apis.DESCRIBE_GROUPS: bind(self.describe_groups),
        }

    # -- membership ----------------------------------------------------------------------------------------
    def find_coordinator(self, responder: Any, header: Any, request: dict[str, Any], slot: Any) -> dict[str, Any]:
        host, port = responder.protocol.local_address
        return {"error_code": errors.NONE, "error_message": None, "node_id": 0, "host": host, "port": port}

    def join(self, responder: Any, header: Any, request: dict[str, Any], slot: Any) -> dict[str, Any] | None:
        def refuse(code: int) -> dict[str, Any]:
            return {"error_code": code, "generation_id": -1, "protocol_name": "", "leader": "",
                    "member_id": request["member_id"], "members": []}

        name = request["group_id"]
        if not name:
            return refuse(errors.INVALID_GROUP_ID)
        if not MIN_SESSION_MS <= request["session_timeout_ms"] <= MAX_SESSION_MS:
            return refuse(errors.INVALID_SESSION_TIMEOUT)
        group = self._group(name)
        offered = {p["name"] for p in request["protocols"]}
        if group.members and (request["protocol_type"] != group.protocol_type or not offered & self._common(group)):
            return refuse(errors.INCONSISTENT_GROUP_PROTOCOL)
        member_id = request["member_id"]
        if member_id and member_id not in group.members:
            return refuse(errors.UNKNOWN_MEMBER_ID)
        if not member_id:
            member_id = f"{header.client_id or 'consumer'}-{uuid.uuid4()}"
        member = Member(member_id, responder, request, header.client_id or "")
        old = group.members.get(member_id)
        if old is not None:
            member.assignment = old.assignment
            if old.expiry is not None:
                old.expiry.cancel()
        group.members[member_id] = member
        group.protocol_type = request["protocol_type"]
        member.join = (header, slot)
        responder.member_ids.add((name, member_id))
        self._touch(group, member)
        if group.state != PREPARING:
            self._prepare(group, initial=not group.generation or group.state == EMPTY)
        elif all(m.join is not None for m in group.members.values()) and group.generation:
            self._complete(group)
        return None

    def _common(self, group: Group) -> set[str]:
        common: set[str] | None = None
        for member in group.members.values():
            names = {name for name, _ in member.protocols}
            common = names if common is None else common & names
        return common or set()

    def _prepare(self, group: Group, initial: bool = False) -> None:
        """Start a rebalance: members rejoin until all have or the longest rebalance timeout passes."""
        if group.state == COMPLETING:
            for member in group.members.values():
                self._answer_sync(group, member, errors.REBALANCE_IN_PROGRESS)
        group.state = PREPARING
        if group.rebalance is None:
            group.rebalance = Slot(self.timers, lambda: self._complete(group))
        longest = max((m.rebalance_ms for m in group.members.values()), default=0) / 1000
        delay = self.initial_delay if initial else longest
        group.rebalance.cancel()
        group.rebalance.arm(self.clock.monotonic() + delay)

    def _complete(self, group: Group) -> None:
        if group.state != PREPARING:
            return
        if group.rebalance is not None:
            group.rebalance.cancel()
        for member in [m for m in group.members.values() if m.join is None]:
            self._remove(group, member)
        group.generation += 1
        if not group.members:
            group.state, group.protocol, group.leader = EMPTY, None, None
            group.idle_since = self.clock.time()
            return
        group.protocol = self._vote(group)
        if group.leader not in group.members:
            group.leader = next(iter(group.members))
        group.state = COMPLETING
        protocol = group.protocol
        for member in group.members.values():
            assert member.join is not None
            header, slot = member.join
            member.join = None
            body = {"error_code": errors.NONE, "generation_id": group.generation, "protocol_name": protocol,
                    "leader": group.leader, "member_id": member.member_id, "members": []}
            if member.member_id == group.leader:
                body["members"] = [{"member_id": m.member_id, "group_instance_id": m.instance_id,
                                    "metadata": dict(m.protocols)[protocol]} for m in group.members.values()]
            self._touch(group, member)
            member.responder.answer(header, slot, body)

    def _vote(self, group: Group) -> str:
        common = self._common(group)
        votes: dict[str, int] = {}
        for member in group.members.values():
            choice = next(name for name, _ in member.protocols if name in common)
            votes[choice] = votes.get(choice, 0) + 1
        return max(votes, key=lambda name: votes[name])

    def sync(self, responder: Any, header: Any, request: dict[str, Any], slot: Any) -> dict[str, Any] | None:
        group, member, code = self._member(request)
        if code:
            return {"error_code": code, "assignment": b""}
        assert group is not None and member is not None
        if group.state == PREPARING:
            return {"error_code": errors.REBALANCE_IN_PROGRESS, "assignment": b""}
        self._touch(group, member)
        if group.state == STABLE:
            return {"error_code": errors.NONE, "assignment": member.assignment}
        member.sync = (header, slot)
        if member.member_id == group.leader:
            assignments = {a["member_id"]: a["assignment"] for a in request["assignments"]}
            for each in group.members.values():
                each.assignment = assignments.get(each.member_id, b"")
            group.state = STABLE
            for each in group.members.values():
                self._answer_sync(group, each, errors.NONE)
        return None

    def _answer_sync(self, group: Group, member: Member, code: int) -> None:
        if member.sync is not None:
            header, slot = member.sync
            member.sync = None
            member.responder.answer(header, slot, {"error_code": code,
                                                   "assignment": member.assignment if not code else b""})

    def heartbeat(self, responder: Any, header: Any, request: dict[str, Any], slot: Any) -> dict[str, Any]:
        group, member, code = self._member(request)
        if not code and group is not None and member is not None:
            self._touch(group, member)
            if group.state == PREPARING:
                code = errors.REBALANCE_IN_PROGRESS
        return {"error_code": code}

    def leave(self, responder: Any, header: Any, request: dict[str, Any], slot: Any) -> dict[str, Any]:
        group = self.groups.get(request["group_id"])
        leaving = request.get("members") or [{"member_id": request.get("member_id", ""), "group_instance_id": None}]
        out = []
        for each in leaving:
            member = group.members.get(each["member_id"]) if group is not None else None
            out.append({"member_id": each["member_id"], "group_instance_id": each.get("group_instance_id"),
                        "error_code": errors.NONE if member is not None else errors.UNKNOWN_MEMBER_ID})
            if group is not None and member is not None:
                self._remove(group, member)
                self._after_departure(group)
        code = errors.NONE if header.api_version >= 3 else out[0]["error_code"]
        return {"error_code": code, "members": out}

    def _member(self, request: dict[str, Any]) -> tuple[Group | None, Member | None, int]:
        group = self.groups.get(request["group_id"])
        member = group.members.get(request["member_id"]) if group is not None else None
        if group is None or member is None:
            return group, None, errors.UNKNOWN_MEMBER_ID
        if request["generation_id"] != group.generation:
            return group, member, errors.ILLEGAL_GENERATION
        return group, member, errors.NONE

    def _touch(self, group: Group, member: Member) -> None:
        """The member is alive: its session expires session_timeout_ms from now."""
        member.expires = self.clock.monotonic() + member.session_ms / 1000
        if member.expiry is None:
            member.expiry = Slot(self.timers, lambda: self._check_expiry(group, member))
        member.expiry.arm(member.expires)

    def _check_expiry(self, group: Group, member: Member) -> None:
        if group.members.get(member.member_id) is not member:
            return
        if member.join is not None:  # waiting for a rebalance is not silence
            member.expiry.arm(self.clock.monotonic() + member.session_ms / 1000)  # type: ignore[union-attr]
            return
        if self.clock.monotonic() >= member.expires:
            self._remove(group, member)
            self._after_departure(group)
        else:
            member.expiry.arm(member.expires)  # type: ignore[union-attr]

    def _remove(self, group: Group, member: Member) -> None:
        if group.members.get(member.member_id) is member:
            del group.members[member.member_id]
        if member.expiry is not None:
            member.expiry.cancel()
        member.responder.member_ids.discard((group.name, member.member_id))
        if member.join is not None:
            header, slot = member.join
            member.join = None
            member.responder.answer(header, slot, {"error_code": errors.UNKNOWN_MEMBER_ID, "generation_id": -1,
                                                   "protocol_name": "", "leader": "", "member_id": member.member_id,
                                                   "members": []})
        self._answer_sync(group, member, errors.UNKNOWN_MEMBER_ID)

    def _after_departure(self, group: Group) -> None:
        if not group.members:
            if group.rebalance is not None:
                group.rebalance.cancel()
            group.state, group.protocol, group.leader = EMPTY, None, None
            group.idle_since = self.clock.time()
            group.generation += 1
        elif group.state == PREPARING:
            if all(m.join is not None for m in group.members.values()):
                self._complete(group)
        else:
            self._prepare(group)

    def connection_lost(self, responder: Any) -> None:
        """A closed connection's members leave their groups (their JoinGroup or SyncGroup can never be answered)."""
        for name, member_id in list(responder.member_ids):
            group = self.groups.get(name)
            member = group.members.get(member_id) if group is not None else None
            if group is not None and member is not None and member.responder is responder:
                member.join = member.sync = None
                self._remove(group, member)
                self._after_departure(group)

    def stop(self) -> None:
        self._sweeper.cancel()
        for group in self.groups.values():
            if group.rebalance is not None:
                group.rebalance.cancel()
            for member in group.members.values():
                if member.expiry is not None:
                    member.expiry.cancel()

    # -- offsets -------------------------------------------------------------------------------------------
    def offset_commit(self, responder: Any, header: Any, request: dict[str, Any], slot: Any) -> dict[str, Any] | None:
        name = request["group_id"]
        code = errors.NONE
        if request.get("generation_id", -1) >= 0 or request.get("member_id"):
            group, _member, code = self._member(request)
            if not code and group is not None and group.state == PREPARING:
                code = errors.REBALANCE_IN_PROGRESS
        group = self._group(name)
        topics_out = []
        wrote = False
        for topic in request["topics"]:
            parts = []
            for part in topic["partitions"]:
                answer = code
                queue = self.topics.partition(topic["name"], part["partition_index"])
                metadata = part["committed_metadata"] or ""  # null is stored as "", as Kafka stores it
                if not answer and queue is None:
                    answer = errors.UNKNOWN_TOPIC_OR_PARTITION
                if not answer and len(metadata) > MAX_METADATA:
                    answer = errors.OFFSET_METADATA_TOO_LARGE
                if not answer and queue is not None and part["committed_offset"] >= 0:
                    queue.stream_store.track_offset(TRACKING_PREFIX + name, part["committed_offset"], metadata)
                    group.idle_since = self.clock.time()
                    wrote = True
                parts.append({"partition_index": part["partition_index"], "error_code": answer})
            topics_out.append({"name": topic["name"], "partitions": parts})
        body = {"topics": topics_out}
        if wrote:
            responder.answer_after_commit(header, slot, body)
            return None
        return body

    def offset_fetch(self, responder: Any, header: Any, request: dict[str, Any], slot: Any) -> dict[str, Any]:
        tracking = TRACKING_PREFIX + request["group_id"]
        wanted = request["topics"]
        if wanted is None:
            wanted = []
            for topic in self.topics.names():
                indexes = [i for i, q in enumerate(self.topics.partitions(topic) or [])
                           if q.stream_store.tracked_offset(tracking) is not None]
                if indexes:
                    wanted.append({"name": topic, "partition_indexes": indexes})
        topics_out = []
        for topic in wanted:
            parts = []
            for index in topic["partition_indexes"]:
                queue = self.topics.partition(topic["name"], index)
                offset = queue.stream_store.tracked_offset(tracking) if queue is not None else None
                metadata = queue.stream_store.tracked_metadata(tracking) if queue is not None else ""
                parts.append({"partition_index": index, "committed_offset": -1 if offset is None else offset,
                              "committed_leader_epoch": -1, "metadata": metadata,
                              "error_code": errors.NONE})
            topics_out.append({"name": topic["name"], "partitions": parts})
        return {"topics": topics_out, "error_code": errors.NONE}

    # -- listing -------------------------------------------------------------------------------------------
    def list_groups(self, responder: Any, header: Any, request: dict[str, Any], slot: Any) -> dict[str, Any]:
        return {"error_code": errors.NONE, "groups": [{"group_id": g.name, "protocol_type": g.protocol_type}
                                                      for g in self.groups.values()]}

    def describe_groups(self, responder: Any, header: Any, request: dict[str, Any], slot: Any) -> dict[str, Any]:
        out = []
        for name in request["groups"]:
            group = self.groups.get(name)
            if group is None:
                out.append({"error_code": errors.NONE, "group_id": name, "group_state": "Dead", "protocol_type": "",
                            "protocol_data": "", "members": [], "authorized_operations": -2147483648})
                continue
            protocol = group.protocol or ""
            out.append({
                "error_code": errors.NONE, "group_id": name, "group_state": group.state,
                "protocol_type": group.protocol_type, "protocol_data": protocol,
                "authorized_operations": -2147483648,
                "members": [{"member_id": m.member_id, "group_instance_id": m.instance_id, "client_id": m.client_id,
                             "client_host": "", "member_metadata": dict(m.protocols).get(protocol, b""),
                             "member_assignment": m.assignment} for m in group.members.values()],
            })
        return {"groups": out}
