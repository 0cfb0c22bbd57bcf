"""A small asyncio AMQP 0-9-1 client for the fault run: many connections in one process, every message traced.

Encoding comes from bench/loadgen/wire.py (independent of leveret's own codec, so a codec bug cannot hide
itself). Only what the fault run needs: handshake, channels, declares, confirms, transactions, consume with
ack/reject, connection.blocked. A broker killed under a client surfaces as `Closed` from every pending call.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Callable
from urllib.parse import unquote, urlparse

from bench.loadgen import wire
from bench.loadgen.wire import U8, U16, U32, U64, bits, method_frame, shortstr, table

FRAME_HDR = struct.Struct(">BHI")
CONTENT_HDR = struct.Struct(">HHQH")
ID = struct.Struct(">Q")  # the first 8 bytes of every body: the message's unique id

TX_SELECT = (90, 10)
TX_SELECT_OK = (90, 11)
TX_COMMIT = (90, 20)
TX_COMMIT_OK = (90, 21)
BASIC_REJECT = (60, 90)
PROP_HEADERS = 0x2000
PROP_DELIVERY_MODE = 0x1000


class Closed(Exception):
    """The connection or channel is gone (broker killed, closed by the peer, or a close method)."""


def content_header(channel: int, body_size: int, persistent: bool, headers: dict | None) -> bytes:
    flags = 0
    props = b""
    if headers:
        flags |= PROP_HEADERS
        props += table(headers)
    if persistent:
        flags |= PROP_DELIVERY_MODE
        props += U8.pack(2)
    return wire.frame(wire.FRAME_HEADER, channel, CONTENT_HDR.pack(60, 0, body_size, flags) + props)


def publish_frames(channel: int, exchange: str, routing_key: str, body: bytes, *, persistent: bool = True,
                   headers: dict | None = None, mandatory: bool = False) -> bytes:
    """One publish as bytes (bodies in the fault run are smaller than a frame)."""
    return (method_frame(channel, wire.BASIC_PUBLISH, U16.pack(0) + shortstr(exchange) + shortstr(routing_key)
                         + bits(mandatory, False))
            + content_header(channel, len(body), persistent, headers)
            + wire.frame(wire.FRAME_BODY, channel, body))


class Delivery:
    __slots__ = ("tag", "redelivered", "exchange", "routing_key", "body")

    def __init__(self, tag: int, redelivered: bool, exchange: str, routing_key: str) -> None:
        self.tag = tag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routing_key = routing_key
        self.body = b""

    @property
    def ident(self) -> int:
        return ID.unpack_from(self.body, 0)[0] if len(self.body) >= 8 else -1


class Channel:
    """One channel; RPCs are serialised by the caller (one outstanding at a time per channel)."""

    def __init__(self, conn: "Connection", number: int) -> None:
        self.conn = conn
        self.number = number
        self._waiter: tuple[tuple[int, int], asyncio.Future] | None = None
        self.on_deliver: Callable[[Delivery], None] | None = None
        self.on_confirm: Callable[[int, bool, bool], None] | None = None  # tag, multiple, ack?
        self._content: Delivery | None = None
        self._remaining = 0
        self.closed: Exception | None = None

    async def rpc(self, pair: tuple[int, int], args: bytes, reply: tuple[int, int]) -> wire.ShortReader:
        if self.closed:
            raise Closed(str(self.closed))
        fut = asyncio.get_running_loop().create_future()
        self._waiter = (reply, fut)
        self.conn.write(method_frame(self.number, pair, args))
        return await fut

    def send(self, data: bytes) -> None:
        if self.closed:
            raise Closed(str(self.closed))
        self.conn.write(data)

    def _fail(self, exc: Exception) -> None:
        self.closed = exc
        if self._waiter and not self._waiter[1].done():
            self._waiter[1].set_exception(Closed(str(exc)))
        self._waiter = None

    # -- methods -----------------------------------------------------------------------------------------------
    async def queue_declare(self, queue: str, *, durable: bool = True, passive: bool = False,
                            arguments: dict | None = None) -> tuple[int, int]:
        r = await self.rpc(wire.QUEUE_DECLARE, U16.pack(0) + shortstr(queue)
                           + bits(passive, durable, False, False, False) + table(arguments), wire.QUEUE_DECLARE_OK)
        r.shortstr()
        return r.u32(), r.u32()

    async def exchange_declare(self, exchange: str, kind: str, arguments: dict | None = None) -> None:
        await self.rpc(wire.EXCHANGE_DECLARE, U16.pack(0) + shortstr(exchange) + shortstr(kind)
                       + bits(False, True, False, False, False) + table(arguments), wire.EXCHANGE_DECLARE_OK)

    async def queue_bind(self, queue: str, exchange: str, routing_key: str = "") -> None:
        await self.rpc(wire.QUEUE_BIND, U16.pack(0) + shortstr(queue) + shortstr(exchange) + shortstr(routing_key)
                       + bits(False) + table(None), wire.QUEUE_BIND_OK)

    async def qos(self, prefetch: int) -> None:
        await self.rpc(wire.BASIC_QOS, U32.pack(0) + U16.pack(prefetch) + bits(False), wire.BASIC_QOS_OK)

    async def confirm_select(self) -> None:
        await self.rpc(wire.CONFIRM_SELECT, bits(False), wire.CONFIRM_SELECT_OK)

    async def tx_select(self) -> None:
        await self.rpc(TX_SELECT, b"", TX_SELECT_OK)

    async def tx_commit(self) -> None:
        await self.rpc(TX_COMMIT, b"", TX_COMMIT_OK)

    async def consume(self, queue: str, arguments: dict | None = None) -> str:
        r = await self.rpc(wire.BASIC_CONSUME, U16.pack(0) + shortstr(queue) + shortstr("")
                           + bits(False, False, False, False) + table(arguments), wire.BASIC_CONSUME_OK)
        return r.shortstr()

    def ack(self, tag: int, multiple: bool = False) -> None:
        self.send(method_frame(self.number, wire.BASIC_ACK, U64.pack(tag) + bits(multiple)))

    def reject(self, tag: int, requeue: bool) -> None:
        self.send(method_frame(self.number, BASIC_REJECT, U64.pack(tag) + bits(requeue)))

    # -- inbound -----------------------------------------------------------------------------------------------
    def _method(self, pair: tuple[int, int], payload: bytes) -> None:
        r = wire.ShortReader(payload, 4)
        if pair == wire.BASIC_DELIVER:
            r.shortstr()
            tag = r.u64()
            redelivered = bool(r.u8() & 1)
            self._content = Delivery(tag, redelivered, r.shortstr(), r.shortstr())
            return
        if pair == wire.BASIC_RETURN:
            self._content = Delivery(0, False, "", "")  # a return's content is read and dropped
            return
        if pair in (wire.BASIC_ACK, wire.BASIC_NACK):
            tag = r.u64()
            multiple = bool(r.u8() & 1)
            if self.on_confirm:
                self.on_confirm(tag, multiple, pair == wire.BASIC_ACK)
            return
        if pair == wire.CHANNEL_CLOSE:
            code, text = r.u16(), r.shortstr()
            self.conn.write(method_frame(self.number, wire.CHANNEL_CLOSE_OK))
            self._fail(Closed(f"channel closed {code} {text}"))
            return
        if self._waiter and self._waiter[0] == pair:
            fut = self._waiter[1]
            self._waiter = None
            if not fut.done():
                fut.set_result(r)

    def _header(self, payload: bytes) -> None:
        size = U64.unpack_from(payload, 4)[0]
        self._remaining = size
        if size == 0:
            self._complete()

    def _body(self, payload: bytes) -> None:
        if self._content is None:
            return
        self._content.body += payload
        self._remaining -= len(payload)
        if self._remaining <= 0:
            self._complete()

    def _complete(self) -> None:
        content, self._content = self._content, None
        if content is not None and content.tag and self.on_deliver:
            self.on_deliver(content)


class Connection:
    """One AMQP connection; a reader task dispatches frames to channels."""

    def __init__(self) -> None:
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter
        self.channels: dict[int, Channel] = {}
        self._next_channel = 1
        self.blocked = False
        self.blocked_seen = 0
        self.unblocked_event = asyncio.Event()
        self.unblocked_event.set()
        self.closed: Exception | None = None
        self.closed_event = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._conn_waiter: tuple[tuple[int, int], asyncio.Future] | None = None

    @classmethod
    async def open(cls, url: str, name: str = "faultrun", timeout: float = 10.0) -> "Connection":
        self = cls()
        u = urlparse(url)
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(u.hostname, u.port, limit=1 << 20), timeout)
        self._task = asyncio.create_task(self._read_loop())
        try:
            await asyncio.wait_for(self._handshake(unquote(u.username or "guest"), unquote(u.password or "guest"),
                                                   unquote(u.path[1:]) if len(u.path) > 1 else "/", name), timeout)
        except BaseException:
            self.abort()
            raise
        return self

    def write(self, data: bytes) -> None:
        if self.closed is None and self.writer.transport.is_closing():
            self._fail(Closed("socket closed"))
        if self.closed:
            raise Closed(str(self.closed))
        self.writer.write(data)

    async def drain(self) -> None:
        """Wait until the socket takes our output (a broker that blocks us stops reading: this waits)."""
        if self.closed:
            raise Closed(str(self.closed))
        try:
            await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            self._fail(exc)
            raise Closed(str(exc)) from exc

    async def _conn_rpc(self, frame: bytes | None, reply: tuple[int, int]) -> wire.ShortReader:
        fut = asyncio.get_running_loop().create_future()
        self._conn_waiter = (reply, fut)
        if frame:
            self.write(frame)
        return await fut

    async def _handshake(self, user: str, password: str, vhost: str, name: str) -> None:
        fut = self._conn_rpc(None, wire.CONNECTION_START)
        self.write(wire.PROTOCOL_HEADER)
        await fut
        props = {"product": name, "capabilities": {"connection.blocked": True, "publisher_confirms": True,
                                                   "consumer_cancel_notify": True}}
        r = await self._conn_rpc(method_frame(0, wire.CONNECTION_START_OK, table(props) + shortstr("PLAIN")
                                              + wire.longstr(b"\0" + user.encode() + b"\0" + password.encode())
                                              + shortstr("en_US")), wire.CONNECTION_TUNE)
        channel_max, frame_max = r.u16(), r.u32()
        self.write(method_frame(0, wire.CONNECTION_TUNE_OK, U16.pack(channel_max or 2047)
                                + U32.pack(min(frame_max or 131072, 131072)) + U16.pack(0)))
        await self._conn_rpc(method_frame(0, wire.CONNECTION_OPEN, shortstr(vhost) + shortstr("") + bits(False)),
                             wire.CONNECTION_OPEN_OK)

    async def channel(self) -> Channel:
        number = self._next_channel
        self._next_channel += 1
        ch = Channel(self, number)
        self.channels[number] = ch
        await ch.rpc(wire.CHANNEL_OPEN, shortstr(""), wire.CHANNEL_OPEN_OK)
        return ch

    async def _read_loop(self) -> None:
        reader = self.reader
        try:
            while True:
                head = await reader.readexactly(7)
                ftype, number, size = FRAME_HDR.unpack(head)
                payload = await reader.readexactly(size + 1)
                if payload[-1] != wire.FRAME_END:
                    raise Closed("bad frame end")
                payload = payload[:-1]
                if number == 0:
                    if ftype == wire.FRAME_METHOD:
                        self._connection_method(payload)
                    continue
                ch = self.channels.get(number)
                if ch is None:
                    continue
                if ftype == wire.FRAME_METHOD:
                    ch._method(wire.METHOD_ID.unpack_from(payload, 0), payload)
                elif ftype == wire.FRAME_HEADER:
                    ch._header(payload)
                elif ftype == wire.FRAME_BODY:
                    ch._body(payload)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, Closed) as exc:
            self._fail(exc if not isinstance(exc, asyncio.IncompleteReadError) else Closed("socket closed"))
        except asyncio.CancelledError:
            self._fail(Closed("cancelled"))
            raise

    def _connection_method(self, payload: bytes) -> None:
        pair = wire.METHOD_ID.unpack_from(payload, 0)
        r = wire.ShortReader(payload, 4)
        if pair == wire.CONNECTION_BLOCKED:
            self.blocked = True
            self.blocked_seen += 1
            self.unblocked_event.clear()
        elif pair == wire.CONNECTION_UNBLOCKED:
            self.blocked = False
            self.unblocked_event.set()
        elif pair == wire.CONNECTION_CLOSE:
            code, text = r.u16(), r.shortstr()
            try:
                self.writer.write(method_frame(0, wire.CONNECTION_CLOSE_OK))
            except Exception:
                pass
            raise Closed(f"connection closed {code} {text}")
        elif self._conn_waiter and self._conn_waiter[0] == pair:
            fut = self._conn_waiter[1]
            self._conn_waiter = None
            if not fut.done():
                fut.set_result(r)

    def _fail(self, exc: Exception) -> None:
        if self.closed is None:
            self.closed = exc
        if self._conn_waiter and not self._conn_waiter[1].done():
            self._conn_waiter[1].set_exception(Closed(str(exc)))
        for ch in self.channels.values():
            ch._fail(exc)
        self.unblocked_event.set()  # wake anyone waiting on a blocked connection: it is gone
        self.closed_event.set()

    def abort(self) -> None:
        """Drop the socket at once (no close handshake)."""
        self._fail(Closed("aborted"))
        try:
            self.writer.transport.abort()
        except Exception:
            pass
        if self._task and not self._task.done():
            self._task.cancel()

    async def close(self) -> None:
        if self.closed is None:
            try:
                self.write(method_frame(0, wire.CONNECTION_CLOSE, U16.pack(200) + shortstr("bye") + U32.pack(0)))
                await asyncio.wait_for(self.closed_event.wait(), 2)
            except (Closed, asyncio.TimeoutError, OSError):
                pass
        self.abort()
