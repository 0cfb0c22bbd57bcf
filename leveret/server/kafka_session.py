"""One Kafka connection's requests: decoded, dispatched to kafka/'s handlers, answered in request order.

Kafka clients match responses to requests by correlation id but expect them in the order they sent the
requests, so every request that gets a response takes a slot in a queue when it arrives, and responses leave
only from the head: a long-polling Fetch, an acks=all Produce waiting for its group commit or a JoinGroup
waiting for the rebalance holds back the responses after it, as in Kafka. A Produce with acks=0 takes no
slot and gets no response.

A request this listener cannot read (unknown API key or version, malformed body) closes the connection, as
Kafka does, and touches nothing else.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Protocol

from leveret.kafka import apis, errors, frames
from leveret.kafka.data import DataPlane
from leveret.kafka.groups import GroupCoordinator
from leveret.kafka.sasl import SaslState
from leveret.kafka.wire import KafkaDecodeError, decode, encode
from leveret.server.errorlog import ErrorLog

if TYPE_CHECKING:
    from leveret.broker.stream import StreamQueue


class SessionHost(Protocol):
    """What a session needs of its listener (server/kafka_listener.py's `KafkaListener`)."""

    loop: asyncio.AbstractEventLoop
    data: DataPlane
    groups: GroupCoordinator | None
    errorlog: ErrorLog
    sasl_required: bool

    def check_user(self, user: str, password: str, peer: Any) -> bool: ...

    def kick_durability(self) -> None: ...

    def wait_for_commit(self, waiter: Any) -> None: ...


class Connection(Protocol):
    """What a session needs of its connection (`KafkaProtocol`)."""

    peer: Any
    local_address: tuple[str, int]

    def write(self, parts: list[bytes]) -> None: ...

    def close(self) -> None: ...


class _Slot:
    """A response owed, in request order; `frame` is set when it is ready."""

    __slots__ = ("frame",)

    def __init__(self) -> None:
        self.frame: list[bytes] | None = None


class _CommitWait:
    """Waits for the group commit covering a request's writes (the `channel` of server/durability.py)."""

    __slots__ = ("done",)

    def __init__(self, done: Callable[[bool], None]) -> None:
        self.done = done

    def confirm_ready(self, _seq: int) -> None:
        self.done(True)

    def confirm_failed(self, _seq: int) -> None:
        self.done(False)


class _FetchWait:
    """A Fetch that found less than min_bytes: answered when its partitions grow or max_wait_ms passes."""

    def __init__(self, session: "KafkaSession", slot: _Slot, header: frames.RequestHeader, request: dict[str, Any],
                 watched: "list[StreamQueue]") -> None:
        self.session = session
        self.slot = slot
        self.header = header
        self.request = request
        self.watched = watched
        self.scheduled = False
        loop = session.listener.loop
        self.timer = loop.call_later(request["max_wait_ms"] / 1000, self.finish)
        for queue in watched:
            queue.append_watchers.append(self.wake)

    def wake(self) -> None:
        # Called inside the append: look again once the producer's whole request is in.
        if not self.scheduled:
            self.scheduled = True
            self.session.listener.loop.call_soon(self.retry)

    def retry(self) -> None:
        self.scheduled = False
        if self.session.fetch_waits.get(id(self)) is not self:
            return
        parts, found, _watched = self.session.listener.data.fetch(self.request, self.header.api_version)
        if found >= self.request["min_bytes"]:
            self._answer(parts)

    def finish(self) -> None:
        parts, _found, _watched = self.session.listener.data.fetch(self.request, self.header.api_version)
        self._answer(parts)

    def _answer(self, parts: list[bytes]) -> None:
        self.cancel()
        self.session.reply(self.slot, frames.response(self.header.correlation_id, parts))

    def cancel(self) -> None:
        self.session.fetch_waits.pop(id(self), None)
        self.timer.cancel()
        for queue in self.watched:
            try:
                queue.append_watchers.remove(self.wake)
            except ValueError:
                pass


def _fail_partitions(body: dict[str, Any]) -> None:
    """The group commit failed: every partition that had succeeded reports a storage error instead."""
    for topic in body["topics"]:
        for part in topic["partitions"]:
            if part["error_code"] == errors.NONE:
                part["error_code"] = errors.KAFKA_STORAGE_ERROR
                if "base_offset" in part:
                    part["base_offset"] = -1


SASL_KEYS = frozenset((apis.SASL_HANDSHAKE, apis.SASL_AUTHENTICATE))


class KafkaSession:
    """The requests of one connection (its transport is `protocol`)."""

    def __init__(self, listener: SessionHost, protocol: Connection) -> None:
        self.listener = listener
        self.protocol = protocol
        self.reader = frames.FrameReader()
        self.slots: deque[_Slot] = deque()
        self.fetch_waits: dict[int, _FetchWait] = {}
        self.closed = False
        self.member_ids: set[tuple[str, str]] = set()  # (group, member) joined over this connection
        self.handlers: dict[int, Callable[[frames.RequestHeader, dict[str, Any], _Slot | None], Any]] = {
            apis.PRODUCE: self._produce,
            apis.FETCH: self._fetch,
            apis.LIST_OFFSETS: lambda h, r, s: self._answer(h, s, listener.data.list_offsets(r)),
            apis.METADATA: self._metadata,
            apis.CREATE_TOPICS: lambda h, r, s: self._answer(h, s, listener.data.create_topics(r)),
            apis.DELETE_TOPICS: lambda h, r, s: self._answer(h, s, listener.data.delete_topics(r)),
            apis.INIT_PRODUCER_ID: self._init_producer_id,
        }
        groups = listener.groups
        if groups is not None:
            self.handlers.update(groups.handlers(self))
        self.sasl = SaslState(listener.sasl_required, lambda user, password: listener.check_user(
            user, password, protocol.peer))
        self.handlers[apis.SASL_HANDSHAKE] = lambda h, r, s: self._answer(h, s, self.sasl.handshake(r))
        self.handlers[apis.SASL_AUTHENTICATE] = self._sasl_authenticate

    # -- input ---------------------------------------------------------------------------------------------
    def get_buffer(self) -> memoryview:
        """Where the transport reads the next bytes into (the frame reader's buffer)."""
        return self.reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        """`nbytes` were read into the buffer `get_buffer` gave: handle every request now whole."""
        try:
            payloads = self.reader.filled(nbytes)
            for payload in payloads:
                if self.closed:
                    return
                self._request(payload)
        except KafkaDecodeError as exc:
            self.listener.errorlog.connection_error(self.protocol.peer, "", 0, "malformed Kafka request", str(exc))
            self.protocol.close()
        self.listener.kick_durability()

    def _request(self, payload: bytes) -> None:
        header, reader = frames.read_header(payload)
        if header.api_key == apis.API_VERSIONS:
            slot = self._take_slot()
            self.reply(slot, frames.api_versions(header))
            return
        if not frames.check_version(header):
            self._refuse(header, "unsupported Kafka API", f"key {header.api_key} version {header.api_version}",
                         errors.UNSUPPORTED_VERSION)
            return
        if not self.sasl.allows(header.api_key, SASL_KEYS):
            # Kafka drops a connection that sends anything but the handshake before authenticating.
            self._refuse(header, "Kafka request before SASL authentication", f"key {header.api_key}")
            return
        request = decode(apis.SCHEMAS[header.api_key][0], header.api_version, reader)
        slot = None
        if not (header.api_key == apis.PRODUCE and request["acks"] == 0):
            slot = self._take_slot()
        self.handlers[header.api_key](header, request, slot)

    def _refuse(self, header: frames.RequestHeader, what: str, detail: str, code: int = 0) -> None:
        """Log one line and close the connection (what Kafka does with a request it will not read)."""
        self.listener.errorlog.connection_error(self.protocol.peer, header.client_id or "", code, what, detail)
        self.protocol.close()
        self.closed = True

    def _sasl_authenticate(self, header: frames.RequestHeader, request: dict[str, Any], slot: _Slot | None) -> None:
        body, keep = self.sasl.authenticate(request)
        self._answer(header, slot, body)
        if not keep:  # answered first, then closed, as Kafka does
            self._refuse(header, "Kafka SASL authentication failed", body["error_message"] or "", body["error_code"])

    def _take_slot(self) -> _Slot:
        slot = _Slot()
        self.slots.append(slot)
        return slot

    # -- output --------------------------------------------------------------------------------------------
    def reply(self, slot: _Slot | None, frame: list[bytes]) -> None:
        """`slot`'s response is ready; send every ready one from the head of the queue."""
        if slot is None or self.closed:
            return
        slot.frame = frame
        slots = self.slots
        while slots and slots[0].frame is not None:
            self.protocol.write(slots.popleft().frame)  # type: ignore[arg-type]

    def _answer(self, header: frames.RequestHeader, slot: _Slot | None, body: dict[str, Any]) -> None:
        out: list[bytes] = []
        encode(apis.SCHEMAS[header.api_key][1], header.api_version, body, out)  # type: ignore[arg-type]
        self.reply(slot, frames.response(header.correlation_id, out))

    def answer(self, header: frames.RequestHeader, slot: _Slot | None, body: dict[str, Any]) -> None:
        """Encode `body` as the response to `header` (for the group coordinator's late answers)."""
        if not self.closed:
            self._answer(header, slot, body)

    def answer_after_commit(self, header: frames.RequestHeader, slot: _Slot | None, body: dict[str, Any]) -> None:
        """Answer once the group commit covering what this request wrote is durable (storage error if it failed)."""

        def committed(ok: bool) -> None:
            if not ok:
                _fail_partitions(body)
            self.answer(header, slot, body)

        self.listener.wait_for_commit(_CommitWait(committed))

    def connection_lost(self) -> None:
        self.closed = True
        for wait in list(self.fetch_waits.values()):
            wait.cancel()
        if self.listener.groups is not None:
            self.listener.groups.connection_lost(self)

    # -- the data APIs -------------------------------------------------------------------------------------
    def _produce(self, header: frames.RequestHeader, request: dict[str, Any], slot: _Slot | None) -> None:
        acks = request["acks"]
        if acks not in (0, 1, -1):
            body = {"topics": [{"name": t["name"], "partitions": [
                {"index": p["index"], "error_code": errors.INVALID_REQUIRED_ACKS, "base_offset": -1,
                 "log_append_time_ms": -1, "log_start_offset": -1} for p in t["partitions"]]}
                for t in request["topics"]]}
            self._answer(header, slot, body)
            return
        body, wrote = self.listener.data.produce(request)
        if acks != -1 or not wrote:
            self._answer(header, slot, body)
            return

        self.answer_after_commit(header, slot, body)

    def _fetch(self, header: frames.RequestHeader, request: dict[str, Any], slot: _Slot | None) -> None:
        parts, found, watched = self.listener.data.fetch(request, header.api_version)
        if found >= request["min_bytes"] or request["max_wait_ms"] <= 0 or not watched:
            self.reply(slot, frames.response(header.correlation_id, parts))
            return
        assert slot is not None
        wait = _FetchWait(self, slot, header, request, watched)
        self.fetch_waits[id(wait)] = wait

    def _metadata(self, header: frames.RequestHeader, request: dict[str, Any], slot: _Slot | None) -> None:
        host, port = self.protocol.local_address
        self._answer(header, slot, self.listener.data.metadata(request, header.api_version, host, port))

    def _init_producer_id(self, header: frames.RequestHeader, request: dict[str, Any], slot: _Slot | None) -> None:
        if request["transactional_id"] is not None:
            # Transactions are not offered: Kafka's answer to a transactional id it may not use.
            body = {"error_code": errors.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "producer_id": -1, "producer_epoch": -1}
        else:
            body = {"error_code": errors.NONE, "producer_id": self.listener.data.producers.new_producer_id(),
                    "producer_epoch": 0}
        self._answer(header, slot, body)
