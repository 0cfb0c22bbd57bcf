"""Blocking raw-socket AMQP client with pre-encoded hot paths.

``Connection`` does the handshake and the synchronous methods (declare, bind,
purge, qos, ...) one frame at a time; those paths are cold.  ``Publisher`` and
``Consumer`` are the hot paths: a publisher writes batches of pre-encoded
publish frames into which only the 16-byte body stamp (sequence number and
timestamp) is packed; a consumer parses every frame of each ``recv`` in one
loop of ``unpack_from`` calls and acks with ``multiple``.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from . import wire
from .ledger import Ledger
from .wire import (
    BODY_STAMP,
    FRAME_END,
    FRAME_HDR,
    FRAME_METHOD,
    KEY_ACK,
    KEY_DELIVER,
    KEY_NACK,
    U16,
    U64,
    AMQPClosed,
    ShortReader,
    bits,
    method_frame,
    shortstr,
    table,
)

RECV_SIZE = 1 << 20
ACK_FRAME = struct.Struct(">BHIHHQBB")  # a complete basic.ack frame
METHOD_KEY = struct.Struct(">I")


@dataclass
class BrokerAddress:
    """Where and as whom to connect, parsed from an amqp:// URL."""

    host: str = "127.0.0.1"
    port: int = 5672
    user: str = "guest"
    password: str = "guest"
    vhost: str = "/"

    @classmethod
    def parse(cls, url: str) -> "BrokerAddress":
        u = urlparse(url)
        if u.scheme != "amqp":
            raise ValueError(f"only amqp:// URLs are supported, got {url!r}")
        vhost = unquote(u.path[1:]) if len(u.path) > 1 else "/"
        return cls(u.hostname or "127.0.0.1", u.port or 5672,
                   unquote(u.username or "guest"), unquote(u.password or "guest"), vhost)


class Connection:
    """One AMQP connection over a blocking socket, channel methods as RPCs."""

    def __init__(self, url: str, timeout: float = 30.0, name: str = "leveret-loadgen", heartbeat: int = 0) -> None:
        self.address = BrokerAddress.parse(url)
        self.sock = socket.create_connection((self.address.host, self.address.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.splitter = wire.FrameSplitter()
        self.frame_max = 131072
        # Deliveries seen while waiting for an RPC reply: after a consumer has
        # what it expected, any of these means the broker sent extra messages.
        self.stray_deliveries = 0
        self.blocked = False
        self._handshake(name, heartbeat)

    # -- framing -----------------------------------------------------------
    def send(self, data) -> None:
        """Write bytes (or a buffer) completely."""
        self.sock.sendall(data)

    def _recv_into_splitter(self) -> None:
        data = self.sock.recv(RECV_SIZE)
        if not data:
            raise ConnectionError("broker closed the socket")
        self.splitter.feed(data)

    def wait_method(self, channel: int, *expected: tuple[int, int]) -> tuple[tuple[int, int], ShortReader]:
        """Read frames until a method in ``expected`` arrives on ``channel``.

        Closes are answered and raised; heartbeats and stray content are
        skipped (stray deliveries are counted, see ``stray_deliveries``).
        """
        while True:
            fr = self.splitter.next_frame()
            if fr is None:
                self._recv_into_splitter()
                continue
            ftype, ch, payload = fr
            if ftype != FRAME_METHOD:
                continue
            pair = self.handle_control(ch, payload)
            if pair is not None and ch == channel and pair in expected:
                return pair, ShortReader(payload, 4)

    def handle_control(self, ch: int, payload: bytes) -> tuple[int, int] | None:
        """Act on a method frame outside any RPC: answer and raise closes,
        note blocked/unblocked, count stray deliveries.  Returns the method's
        (class, method) pair, or None if it was fully handled here."""
        pair = wire.METHOD_ID.unpack_from(payload, 0)
        reader = ShortReader(payload, 4)
        if pair == wire.CONNECTION_CLOSE:
            code, text = reader.u16(), reader.shortstr()
            cls_id, meth_id = reader.u16(), reader.u16()
            self._safe_send(method_frame(0, wire.CONNECTION_CLOSE_OK))
            raise AMQPClosed("connection", code, text, cls_id, meth_id)
        if pair == wire.CHANNEL_CLOSE:
            code, text = reader.u16(), reader.shortstr()
            cls_id, meth_id = reader.u16(), reader.u16()
            self._safe_send(method_frame(ch, wire.CHANNEL_CLOSE_OK))
            raise AMQPClosed(f"channel {ch}", code, text, cls_id, meth_id)
        if pair == wire.CONNECTION_BLOCKED:
            self.blocked = True
            return None
        if pair == wire.CONNECTION_UNBLOCKED:
            self.blocked = False
            return None
        if pair == wire.BASIC_DELIVER:
            self.stray_deliveries += 1
            return None
        return pair

    def _safe_send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            pass

    # -- handshake ---------------------------------------------------------
    def _handshake(self, name: str, heartbeat: int = 0) -> None:
        a = self.address
        self.send(wire.PROTOCOL_HEADER)
        _, r = self.wait_method(0, wire.CONNECTION_START)
        r.u8(), r.u8()
        r.skip_table()
        mechanisms = r.longstr().split()
        if b"PLAIN" not in mechanisms:
            raise ConnectionError(f"broker offers no PLAIN mechanism: {mechanisms}")
        props = {"product": name, "capabilities": {"connection.blocked": True,
                                                   "publisher_confirms": True,
                                                   "consumer_cancel_notify": True}}
        response = b"\0" + a.user.encode() + b"\0" + a.password.encode()
        self.send(method_frame(0, wire.CONNECTION_START_OK,
                               table(props) + shortstr("PLAIN") + wire.longstr(response) + shortstr("en_US")))
        _, r = self.wait_method(0, wire.CONNECTION_TUNE)
        channel_max, frame_max = r.u16(), r.u32()  # the proposed heartbeat is ignored: see below
        self.frame_max = min(frame_max or 131072, 131072)
        # Heartbeats off by default: runs are bounded in time and a blocked generator
        # must not be disconnected in the middle of a measurement.
        self.send(method_frame(0, wire.CONNECTION_TUNE_OK,
                               U16.pack(channel_max or 2047) + wire.U32.pack(self.frame_max) + U16.pack(heartbeat)))
        self.send(method_frame(0, wire.CONNECTION_OPEN, shortstr(a.vhost) + shortstr("") + bits(False)))
        self.wait_method(0, wire.CONNECTION_OPEN_OK)

    def close(self) -> None:
        """Close politely, then the socket; never raises."""
        try:
            self.send(method_frame(0, wire.CONNECTION_CLOSE, U16.pack(200) + shortstr("bye") + U16.pack(0) + U16.pack(0)))
            self.sock.settimeout(5)
            self.wait_method(0, wire.CONNECTION_CLOSE_OK)
        except (OSError, AMQPClosed, wire.ProtocolViolation):
            pass
        finally:
            self.sock.close()

    # -- channel methods -----------------------------------------------------
    def channel_open(self, ch: int = 1) -> int:
        self.send(method_frame(ch, wire.CHANNEL_OPEN, shortstr("")))
        self.wait_method(ch, wire.CHANNEL_OPEN_OK)
        return ch

    def queue_declare(self, ch: int, queue: str, *, passive: bool = False, durable: bool = False,
                      exclusive: bool = False, auto_delete: bool = False,
                      arguments: dict | None = None) -> tuple[str, int, int]:
        """Declare (or with passive=True, inspect) a queue: (name, messages, consumers)."""
        self.send(method_frame(ch, wire.QUEUE_DECLARE, U16.pack(0) + shortstr(queue)
                               + bits(passive, durable, exclusive, auto_delete, False) + table(arguments)))
        _, r = self.wait_method(ch, wire.QUEUE_DECLARE_OK)
        return r.shortstr(), r.u32(), r.u32()

    def queue_bind(self, ch: int, queue: str, exchange: str, routing_key: str = "") -> None:
        self.send(method_frame(ch, wire.QUEUE_BIND, U16.pack(0) + shortstr(queue) + shortstr(exchange)
                               + shortstr(routing_key) + bits(False) + table(None)))
        self.wait_method(ch, wire.QUEUE_BIND_OK)

    def queue_purge(self, ch: int, queue: str) -> int:
        self.send(method_frame(ch, wire.QUEUE_PURGE, U16.pack(0) + shortstr(queue) + bits(False)))
        _, r = self.wait_method(ch, wire.QUEUE_PURGE_OK)
        return r.u32()

    def queue_delete(self, ch: int, queue: str) -> int:
        self.send(method_frame(ch, wire.QUEUE_DELETE, U16.pack(0) + shortstr(queue) + bits(False, False, False)))
        _, r = self.wait_method(ch, wire.QUEUE_DELETE_OK)
        return r.u32()

    def exchange_declare(self, ch: int, exchange: str, kind: str, durable: bool = False) -> None:
        self.send(method_frame(ch, wire.EXCHANGE_DECLARE, U16.pack(0) + shortstr(exchange) + shortstr(kind)
                               + bits(False, durable, False, False, False) + table(None)))
        self.wait_method(ch, wire.EXCHANGE_DECLARE_OK)

    def exchange_delete(self, ch: int, exchange: str) -> None:
        self.send(method_frame(ch, wire.EXCHANGE_DELETE, U16.pack(0) + shortstr(exchange) + bits(False, False)))
        self.wait_method(ch, wire.EXCHANGE_DELETE_OK)

    def basic_qos(self, ch: int, prefetch: int) -> None:
        self.send(method_frame(ch, wire.BASIC_QOS, wire.U32.pack(0) + U16.pack(prefetch) + bits(False)))
        self.wait_method(ch, wire.BASIC_QOS_OK)

    def confirm_select(self, ch: int) -> None:
        self.send(method_frame(ch, wire.CONFIRM_SELECT, bits(False)))
        self.wait_method(ch, wire.CONFIRM_SELECT_OK)

    def basic_consume(self, ch: int, queue: str, tag: str = "", no_ack: bool = False) -> str:
        self.send(method_frame(ch, wire.BASIC_CONSUME, U16.pack(0) + shortstr(queue) + shortstr(tag)
                               + bits(False, no_ack, False, False) + table(None)))
        _, r = self.wait_method(ch, wire.BASIC_CONSUME_OK)
        return r.shortstr()

    def basic_cancel(self, ch: int, tag: str) -> None:
        self.send(method_frame(ch, wire.BASIC_CANCEL, shortstr(tag) + bits(False)))
        self.wait_method(ch, wire.BASIC_CANCEL_OK)

    def message_count(self, ch: int, queue: str) -> int:
        """Messages ready in a queue, read with a passive declare."""
        return self.queue_declare(ch, queue, passive=True)[1]


class PublishTemplate:
    """A run of ``batch`` pre-encoded publishes; only body stamps change.

    The method, header and body frames of one publish are encoded once and
    repeated; ``fill`` packs (sequence, timestamp) into each copy's body and
    returns a view of the first ``count`` messages for one ``sendall``.
    """

    def __init__(self, ch: int, exchange: str, routing_key: str, body_size: int,
                 persistent: bool, frame_max: int, batch: int) -> None:
        if body_size < wire.STAMP_SIZE:
            raise ValueError(f"bodies must be at least {wire.STAMP_SIZE} bytes (sequence + timestamp)")
        method = method_frame(ch, wire.BASIC_PUBLISH, U16.pack(0) + shortstr(exchange)
                              + shortstr(routing_key) + bits(False, False))
        header = wire.content_header(ch, body_size, persistent)
        body = b"".join(wire.body_frames(ch, bytes(body_size), frame_max))
        one = method + header + body
        stamp_at = len(method) + len(header) + 7  # past the first body frame's header
        self.message_size = len(one)
        self.batch = batch
        self.buf = bytearray(one * batch)
        self.view = memoryview(self.buf)
        self.offsets = [i * len(one) + stamp_at for i in range(batch)]

    def fill(self, first_seq: int, count: int, ts_ns: int) -> memoryview:
        pack = BODY_STAMP.pack_into
        buf = self.buf
        offsets = self.offsets
        for i in range(count):
            pack(buf, offsets[i], first_seq + i, ts_ns)
        return self.view[:count * self.message_size]


def batch_for(message_size: int, window: int | None) -> int:
    """Messages per sendall: about 128 KiB of frames, never more than a window."""
    n = max(1, min(500, (128 * 1024) // message_size))
    if window:
        n = max(1, min(n, window // 2 or 1))
    return n


@dataclass
class PublishResult:
    """What a publisher did and saw."""

    sent: int = 0
    confirmed: int = 0
    nacked: int = 0
    elapsed: float = 0.0
    send_elapsed: float = 0.0
    timed_out: bool = False
    confirm_latencies_us: list = field(default_factory=list)
    error: str = ""


# A closed-loop publisher polls the consumer's counter while its window is full: from 0.2 ms, doubling to
# 2 ms while nothing moves. A fixed 0.2 ms made 8 waiting publishers (scenario m) wake 40,000 times a second
# and take CPU from the broker on a 2-core machine, the more the slower the broker (docs/benchmarks.md, m).
# 2 ms stays far below the time the consumer needs to take half a window (the batch size), so no starving.
POLL_MIN_S = 0.0002
POLL_MAX_S = 0.002


class Publisher:
    """Publishes stamped messages on one channel of a connection.

    Modes: fire-and-forget (window None, no confirms); publisher confirms with
    a window of unconfirmed messages; closed loop on consumption (``consumed``
    is a shared counter the consumer process advances); open loop at a fixed
    ``rate`` with each message stamped with its *scheduled* time, so a broker
    that stalls the publisher is charged for the stall (no coordinated
    omission).
    """

    def __init__(self, conn: Connection, ch: int, exchange: str, routing_key: str, body_size: int,
                 *, persistent: bool = False, confirms: bool = False, publisher_id: int = 0) -> None:
        self.conn = conn
        self.ch = ch
        self.exchange = exchange
        self.routing_key = routing_key
        self.body_size = body_size
        self.persistent = persistent
        self.confirms = confirms
        self.first_seq = publisher_id << wire.PUBLISHER_SHIFT
        if confirms:
            conn.confirm_select(ch)

    def run(self, count: int, *, window: int | None = None, rate: float | None = None,
            consumed=None, deadline: float | None = None, record_latency: bool = True) -> PublishResult:
        conn = self.conn
        sock = conn.sock
        res = PublishResult()
        deadline = deadline or (time.monotonic() + 3600)
        msg_probe = PublishTemplate(self.ch, self.exchange, self.routing_key, self.body_size,
                                    self.persistent, conn.frame_max, 1)
        batch = 1 if rate else batch_for(msg_probe.message_size, window)
        tpl = PublishTemplate(self.ch, self.exchange, self.routing_key, self.body_size,
                              self.persistent, conn.frame_max, batch)
        confirms = self.confirms
        lat = res.confirm_latencies_us
        # Send time per message, indexed by delivery tag - 1, for confirm latency.
        sent_at = [0] * count if (confirms and record_latency) else None
        self._rest = b""
        self._confirmed_upto = 0
        self._sparse: set = set()
        sock.settimeout(None)
        t0 = time.monotonic_ns()
        interval_ns = int(1e9 / rate) if rate else 0
        sent = 0
        pause = POLL_MIN_S
        monotonic_ns = time.monotonic_ns
        try:
            while sent < count:
                n = min(batch, count - sent)
                if window is not None:
                    limit = window
                    if consumed is not None:
                        inflight = sent - consumed.value
                    else:
                        inflight = sent - res.confirmed - res.nacked
                    if inflight + n > limit:
                        if time.monotonic() > deadline:
                            res.timed_out = True
                            break
                        if consumed is not None and not confirms:
                            time.sleep(pause)
                            pause = min(pause * 2, POLL_MAX_S)
                        else:
                            self._read_confirms(res, sent_at, lat, block=True)
                        continue
                if interval_ns:
                    due = t0 + sent * interval_ns
                    now = monotonic_ns()
                    if due > now:
                        time.sleep((due - now) / 1e9)
                    ts = due
                else:
                    ts = monotonic_ns()
                sock.sendall(tpl.fill(self.first_seq + sent, n, ts))
                pause = POLL_MIN_S
                if sent_at is not None:
                    for i in range(sent, sent + n):
                        sent_at[i] = ts
                sent += n
                res.sent = sent
                if confirms and window is not None and consumed is None:
                    self._read_confirms(res, sent_at, lat, block=False)
                if (sent & 0x3FFF) < n and time.monotonic() > deadline:
                    res.timed_out = True
                    break
            res.send_elapsed = (monotonic_ns() - t0) / 1e9
            while confirms and res.confirmed + res.nacked < res.sent:
                if time.monotonic() > deadline:
                    res.timed_out = True
                    break
                self._read_confirms(res, sent_at, lat, block=True, timeout=max(0.01, deadline - time.monotonic()))
        except (OSError, AMQPClosed, wire.ProtocolViolation) as exc:
            res.error = f"{type(exc).__name__}: {exc}"
        res.elapsed = (monotonic_ns() - t0) / 1e9
        # Hand any unparsed bytes back to the cold path.
        if self._rest:
            conn.splitter.feed(self._rest)
            self._rest = b""
        return res

    def _read_confirms(self, res: PublishResult, sent_at, lat, block: bool, timeout: float | None = None) -> None:
        sock = self.conn.sock
        try:
            if block:
                sock.settimeout(timeout if timeout is not None else 30)
                data = sock.recv(RECV_SIZE)
            else:
                data = sock.recv(RECV_SIZE, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except socket.timeout:
            return
        finally:
            if block:
                sock.settimeout(None)
        if not data:
            raise ConnectionError("broker closed the socket")
        now = time.monotonic_ns()
        buf = self._rest + data if self._rest else data
        pos = 0
        n = len(buf)
        unpack_hdr = FRAME_HDR.unpack_from
        unpack_key = METHOD_KEY.unpack_from
        while n - pos >= 8:
            ftype, ch, size = unpack_hdr(buf, pos)
            end = pos + 7 + size
            if end >= n:
                break
            if buf[end] != FRAME_END:
                raise wire.ProtocolViolation("bad frame end in confirm stream")
            if ftype == FRAME_METHOD:
                key = unpack_key(buf, pos + 7)[0]
                if key == KEY_ACK or key == KEY_NACK:
                    tag = U64.unpack_from(buf, pos + 11)[0]
                    upto = self._confirmed_upto
                    if tag > upto:
                        sparse = self._sparse
                        if buf[pos + 19] & 1:
                            # multiple: every tag up to ``tag`` not confirmed yet
                            tags = [t for t in range(upto + 1, tag + 1) if t not in sparse] if sparse \
                                else range(upto + 1, tag + 1)
                            if sparse:
                                sparse.difference_update(range(upto + 1, tag + 1))
                            upto = tag
                        elif tag in sparse:
                            tags = ()
                        else:
                            # a single confirm, possibly out of order
                            tags = (tag,)
                            if tag == upto + 1:
                                upto = tag
                            else:
                                sparse.add(tag)
                        while sparse and upto + 1 in sparse:
                            upto += 1
                            sparse.discard(upto)
                        self._confirmed_upto = upto
                        if key == KEY_NACK:
                            res.nacked += len(tags)
                        else:
                            res.confirmed += len(tags)
                        if sent_at is not None:
                            for t in tags:
                                lat.append((now - sent_at[t - 1]) // 1000)
                else:
                    self.conn.handle_control(ch, bytes(buf[pos + 7:end]))
            pos = end + 1
        self._rest = bytes(buf[pos:]) if pos < n else b""


@dataclass
class ConsumeResult:
    """What a consumer received, with its honesty ledger summary."""

    received: int = 0
    redelivered: int = 0
    elapsed: float = 0.0
    first_delivery_delay: float = 0.0
    timed_out: bool = False
    latencies_us: list = field(default_factory=list)
    ledger: dict = field(default_factory=dict)
    stray_after: int = 0
    error: str = ""


class Consumer:
    """Consumes a known number of stamped messages from one queue."""

    def __init__(self, conn: Connection, ch: int, queue: str, *, prefetch: int = 1000, ack_every: int = 500) -> None:
        self.conn = conn
        self.ch = ch
        self.queue = queue
        self.prefetch = prefetch
        self.ack_every = ack_every
        conn.basic_qos(ch, prefetch)

    def run(self, expected: int, ledger: Ledger, *, deadline: float | None = None,
            record_latency: bool = False, progress=None, ready=None, go=None) -> ConsumeResult:
        """Receive ``expected`` messages, checking each stamp against ``ledger``.

        ``progress`` (a shared counter) is advanced for closed-loop publishers;
        ``ready``/``go`` (events) line the start up with other processes.
        """
        conn = self.conn
        sock = conn.sock
        res = ConsumeResult()
        deadline = deadline or (time.monotonic() + 3600)
        tag = conn.basic_consume(self.ch, self.queue)
        if ready is not None:
            ready.set()
        if go is not None:
            go.wait()
        buf = conn.splitter.take()
        t0 = time.monotonic_ns()
        first_at = 0
        received = 0
        redelivered = 0
        unacked = 0
        last_tag = 0
        ack_every = self.ack_every
        ch = self.ch
        lat = res.latencies_us
        seen = ledger.seen
        mask = wire.SEQ_MASK
        shift = wire.PUBLISHER_SHIFT
        dups = 0
        unknown = 0
        unpack_hdr = FRAME_HDR.unpack_from
        unpack_key = METHOD_KEY.unpack_from
        unpack_u64 = U64.unpack_from
        unpack_stamp = BODY_STAMP.unpack_from
        pack_ack = ACK_FRAME.pack
        monotonic_ns = time.monotonic_ns
        expect_stamp = False
        sock.settimeout(0.5)
        try:
            while True:
                n = len(buf)
                pos = 0
                now = 0
                acks = []
                while n - pos >= 8:
                    ftype, fch, size = unpack_hdr(buf, pos)
                    end = pos + 7 + size
                    if end >= n:
                        break
                    if buf[end] != FRAME_END:
                        raise wire.ProtocolViolation("bad frame end in delivery stream")
                    if ftype == 3:
                        if expect_stamp:
                            expect_stamp = False
                            s, ts = unpack_stamp(buf, pos + 7)
                            p = s >> shift
                            k = s & mask
                            if p < len(seen) and k < len(seen[p]):
                                if seen[p][k]:
                                    dups += 1
                                else:
                                    seen[p][k] = 1
                            else:
                                unknown += 1
                            if record_latency:
                                if not now:
                                    now = monotonic_ns()
                                lat.append((now - ts) // 1000)
                    elif ftype == 1:
                        key = unpack_key(buf, pos + 7)[0]
                        if key == KEY_DELIVER:
                            p2 = pos + 12 + buf[pos + 11]
                            last_tag = unpack_u64(buf, p2)[0]
                            if buf[p2 + 8] & 1:
                                redelivered += 1
                            expect_stamp = True
                            received += 1
                            unacked += 1
                            if unacked >= ack_every:
                                acks.append(pack_ack(1, ch, 13, 60, 80, last_tag, 1, FRAME_END))
                                unacked = 0
                        else:
                            conn.handle_control(fch, bytes(buf[pos + 7:end]))
                    pos = end + 1
                if acks:
                    sock.sendall(b"".join(acks))
                if progress is not None:
                    progress.value = received
                if pos:
                    buf = buf[pos:]
                if received >= expected and not expect_stamp:
                    break
                if received and not first_at:
                    first_at = monotonic_ns()
                try:
                    data = sock.recv(RECV_SIZE)
                except socket.timeout:
                    if time.monotonic() > deadline:
                        res.timed_out = True
                        break
                    continue
                if not data:
                    raise ConnectionError("broker closed the socket")
                buf = buf + data if buf else data
                if time.monotonic() > deadline:
                    res.timed_out = True
                    break
            if unacked:
                sock.sendall(pack_ack(1, ch, 13, 60, 80, last_tag, 1, FRAME_END))
            res.elapsed = (monotonic_ns() - t0) / 1e9
            res.first_delivery_delay = ((first_at or monotonic_ns()) - t0) / 1e9
            conn.splitter.feed(buf)
            sock.settimeout(30)
            before = conn.stray_deliveries
            conn.basic_cancel(self.ch, tag)
            res.stray_after = conn.stray_deliveries - before
        except (OSError, AMQPClosed, wire.ProtocolViolation) as exc:
            res.error = f"{type(exc).__name__}: {exc}"
            res.elapsed = (monotonic_ns() - t0) / 1e9
        res.received = received
        res.redelivered = redelivered
        ledger.duplicates += dups
        ledger.unknown += unknown
        res.ledger = ledger.summary()
        return res
