"""A null broker: the least work that still looks like AMQP to the generator.

It exists to measure the load generator itself.  It speaks just enough of
0-9-1 (PLAIN handshake, channels, queue declare/bind/purge/delete, qos,
confirms, consume, ack) and, instead of storing messages, keeps only the
16-byte stamp at the start of each body.  Publishes are swallowed (a sink)
and confirmed with one ``multiple`` ack per read; a consumer is fed
pre-encoded deliveries rebuilt from the stamps (a source), honouring
prefetch.  Because the stamps round-trip, every honesty check of the
scenarios holds against it too, so a capacity figure measured here is the
generator's, with its checks on.

Threads, one per connection, in a process of its own: the generator under
measurement runs in other processes on the other core.
"""

from __future__ import annotations

import argparse
import select
import socket
import struct
import threading
import traceback

from . import wire
from .wire import FRAME_END, FRAME_HDR, U16, U32, U64, bits, method_frame, shortstr

STAMP = wire.STAMP_SIZE
DELIVERY_TAG = struct.Struct(">Q")


class NullQueue:
    """Stamps of the messages 'in' a queue, 16 bytes each, consumed from ``head``."""

    __slots__ = ("name", "stamps", "head", "body_size")

    def __init__(self, name: str) -> None:
        self.name = name
        self.stamps = bytearray()
        self.head = 0
        self.body_size = STAMP

    def __len__(self) -> int:
        return (len(self.stamps) - self.head) // STAMP

    def purge(self) -> int:
        n = len(self)
        self.stamps = bytearray()
        self.head = 0
        return n


class NullState:
    """Queues and fanout bindings shared by all connections (one lock)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queues: dict[str, NullQueue] = {}
        self.bindings: dict[str, list[str]] = {}
        self.counter = 0
        # Bumped whenever routing can change; sessions drop their route caches.
        self.version = 0


class DeliveryTemplate:
    """Pre-encoded deliveries for one consumer; tag and stamp patched per message."""

    def __init__(self, ch: int, ctag: str, queue: str, body_size: int, batch: int) -> None:
        method = method_frame(ch, wire.BASIC_DELIVER, shortstr(ctag) + U64.pack(0) + bits(False)
                              + shortstr("") + shortstr(queue))
        header = wire.content_header(ch, body_size, False)
        body = b"".join(wire.body_frames(ch, bytes(body_size), 131072))
        one = method + header + body
        tag_at = 7 + 4 + 1 + len(ctag.encode())
        stamp_at = len(method) + len(header) + 7
        self.size = len(one)
        self.body_size = body_size
        self.buf = bytearray(one * batch)
        self.view = memoryview(self.buf)
        self.tags = [i * len(one) + tag_at for i in range(batch)]
        self.stamps = [i * len(one) + stamp_at for i in range(batch)]


class NullSession(threading.Thread):
    """One client connection of the null broker."""

    def __init__(self, sock: socket.socket, state: NullState) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.state = state
        self.confirm = {}  # channel -> last publish sequence number
        self.prefetch = 0
        self.consumer = None  # (channel, tag, queue, template)
        self.next_tag = 0
        self.acked = 0

    def run(self) -> None:
        try:
            self.serve()
        except (OSError, ConnectionError, wire.ProtocolViolation):
            pass
        except Exception:  # a null-broker bug must be visible, not a silent hang-up
            traceback.print_exc()
        finally:
            self.sock.close()

    def reply(self, ch: int, pair, args: bytes = b"") -> None:
        self.sock.sendall(method_frame(ch, pair, args))

    def serve(self) -> None:
        sock = self.sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        header = b""
        while len(header) < 8:
            chunk = sock.recv(8 - len(header))
            if not chunk:
                return
            header += chunk
        if header != wire.PROTOCOL_HEADER:
            sock.sendall(wire.PROTOCOL_HEADER)
            return
        self.reply(0, wire.CONNECTION_START, b"\x00\x09" + wire.table({"product": "null-broker"})
                   + wire.longstr("PLAIN") + wire.longstr("en_US"))
        buf = b""
        # Content being received: target queues and how many body bytes remain.
        targets: tuple = ()
        remaining = 0
        first_body = False
        # Stamps for ``targets`` not yet appended to their queues: committed
        # once per read (one lock), and always before a confirm or any other
        # method is answered, so counts and confirms never run ahead.
        acc = bytearray()
        routes: dict = {}
        routes_version = -1
        state = self.state
        unpack_hdr = FRAME_HDR.unpack_from
        unpack_u64 = U64.unpack_from
        confirm = self.confirm
        while True:
            # A consumer also needs feeding when nothing arrives (publishes on
            # other connections fill its queue), so wait at most 2 ms; the
            # socket itself stays blocking so big sendalls never time out.
            if self.consumer and not select.select([sock], [], [], 0.002)[0]:
                data = None
            else:
                data = sock.recv(1 << 20)
            if data == b"":
                return
            if data:
                buf = buf + data if buf else data
            pos = 0
            n = len(buf)
            confirm_due = None
            while n - pos >= 8:
                ftype, ch, size = unpack_hdr(buf, pos)
                end = pos + 7 + size
                if end >= n:
                    break
                if buf[end] != FRAME_END:
                    raise wire.ProtocolViolation("bad frame end")
                p = pos + 7
                if ftype == 3:
                    if first_body:
                        acc += buf[p:p + STAMP]
                        first_body = False
                    remaining -= size
                    if remaining <= 0 and ch in confirm:
                        confirm[ch] += 1
                        confirm_due = ch
                elif ftype == 2:
                    remaining = unpack_u64(buf, p + 4)[0]
                    if targets and targets[0].body_size != remaining:
                        for q in targets:
                            q.body_size = remaining
                    first_body = bool(targets)
                    if remaining == 0 and ch in confirm:
                        confirm[ch] += 1
                        confirm_due = ch
                elif ftype == 1:
                    cls, meth = wire.METHOD_ID.unpack_from(buf, p)
                    if cls == 60 and meth == 40:
                        el = buf[p + 6]
                        rl = buf[p + 7 + el]
                        key = buf[p + 6:p + 8 + el + rl]
                        if routes_version != state.version:
                            routes = {}
                            routes_version = state.version
                        route = routes.get(key)
                        if route is None:
                            route = routes[key] = self.route(key[1:1 + el].decode(), key[2 + el:].decode())
                        if route is not targets:
                            self.commit(acc, targets)
                            targets = route
                    elif cls == 60 and meth == 80:
                        tag = unpack_u64(buf, p + 4)[0]
                        self.acked = max(self.acked, tag)
                    else:
                        self.commit(acc, targets)
                        if confirm_due is not None:
                            self.send_confirm(confirm_due)
                            confirm_due = None
                        if not self.method(ch, cls, meth, wire.ShortReader(buf[p:end], 4)):
                            return
                pos = end + 1
            buf = buf[pos:] if pos < n else b""
            self.commit(acc, targets)
            if confirm_due is not None:
                self.send_confirm(confirm_due)
            if self.consumer:
                self.feed_consumer()

    def route(self, exchange: str, routing_key: str) -> tuple:
        """Queues a publish reaches: the default exchange or a fanout binding."""
        state = self.state
        with state.lock:
            if exchange == "":
                q = state.queues.get(routing_key)
                return (q,) if q is not None else ()
            return tuple(state.queues[x] for x in state.bindings.get(exchange, ()) if x in state.queues)

    def commit(self, acc: bytearray, targets: tuple) -> None:
        """Append accumulated stamps to their queues (and empty ``acc``)."""
        if acc:
            with self.state.lock:
                for q in targets:
                    q.stamps += acc
            acc.clear()

    def send_confirm(self, ch: int) -> None:
        self.sock.sendall(method_frame(ch, wire.BASIC_ACK, U64.pack(self.confirm[ch]) + bits(True)))

    def feed_consumer(self) -> None:
        ch, ctag, qname, tpl = self.consumer
        credit = (self.prefetch or 1000) - (self.next_tag - self.acked)
        if credit <= 0:
            return
        with self.state.lock:
            q = self.state.queues.get(qname)
            if q is None or not len(q):
                return
            take = min(credit, len(q), len(tpl.tags))
            if q.body_size != tpl.body_size:
                tpl = DeliveryTemplate(ch, ctag, qname, q.body_size, len(tpl.tags))
                self.consumer = (ch, ctag, qname, tpl)
            stamps = q.stamps[q.head:q.head + take * STAMP]
            q.head += take * STAMP
            if q.head > (1 << 20) and q.head * 2 > len(q.stamps):
                del q.stamps[:q.head]
                q.head = 0
        buf = tpl.buf
        pack_tag = DELIVERY_TAG.pack_into
        tag = self.next_tag
        for i in range(take):
            tag += 1
            pack_tag(buf, tpl.tags[i], tag)
            s = tpl.stamps[i]
            buf[s:s + STAMP] = stamps[i * STAMP:(i + 1) * STAMP]
        self.next_tag = tag
        self.sock.sendall(tpl.view[:take * tpl.size])

    def method(self, ch: int, cls: int, meth: int, r: wire.ShortReader) -> bool:
        """Answer a cold-path method; False ends the connection."""
        pair = (cls, meth)
        state = self.state
        if pair == wire.CONNECTION_START_OK:
            self.reply(0, wire.CONNECTION_TUNE, U16.pack(2047) + U32.pack(131072) + U16.pack(0))
        elif pair == wire.CONNECTION_OPEN:
            self.reply(0, wire.CONNECTION_OPEN_OK, shortstr(""))
        elif pair == wire.CONNECTION_CLOSE:
            self.reply(0, wire.CONNECTION_CLOSE_OK)
            return False
        elif pair == wire.CHANNEL_OPEN:
            self.reply(ch, wire.CHANNEL_OPEN_OK, wire.longstr(""))
        elif pair == wire.CHANNEL_CLOSE:
            self.reply(ch, wire.CHANNEL_CLOSE_OK)
        elif pair == wire.QUEUE_DECLARE:
            r.u16()
            name = r.shortstr()
            passive = r.u8() & 1
            with state.lock:
                if not name:
                    state.counter += 1
                    name = f"null.gen-{state.counter}"
                q = state.queues.get(name)
                if q is None and passive:
                    self.reply(ch, wire.CHANNEL_CLOSE, U16.pack(404) + shortstr(f"NOT_FOUND - no queue '{name}'")
                               + U16.pack(cls) + U16.pack(meth))
                    return True
                if q is None:
                    q = state.queues[name] = NullQueue(name)
                    state.version += 1
                count = len(q)
            consumers = 1 if self.consumer and self.consumer[2] == name else 0
            self.reply(ch, wire.QUEUE_DECLARE_OK, shortstr(name) + U32.pack(count) + U32.pack(consumers))
        elif pair == wire.QUEUE_BIND:
            r.u16()
            queue, exchange = r.shortstr(), r.shortstr()
            with state.lock:
                state.bindings.setdefault(exchange, []).append(queue)
                state.version += 1
            self.reply(ch, wire.QUEUE_BIND_OK)
        elif pair == wire.QUEUE_PURGE:
            r.u16()
            with state.lock:
                q = state.queues.get(r.shortstr())
                n = q.purge() if q is not None else 0
            self.reply(ch, wire.QUEUE_PURGE_OK, U32.pack(n))
        elif pair == wire.QUEUE_DELETE:
            r.u16()
            with state.lock:
                q = state.queues.pop(r.shortstr(), None)
                state.version += 1
            self.reply(ch, wire.QUEUE_DELETE_OK, U32.pack(len(q) if q is not None else 0))
        elif pair == wire.EXCHANGE_DECLARE:
            self.reply(ch, wire.EXCHANGE_DECLARE_OK)
        elif pair == wire.EXCHANGE_DELETE:
            r.u16()
            with state.lock:
                state.bindings.pop(r.shortstr(), None)
                state.version += 1
            self.reply(ch, wire.EXCHANGE_DELETE_OK)
        elif pair == wire.BASIC_QOS:
            r.u32()
            self.prefetch = r.u16()
            self.reply(ch, wire.BASIC_QOS_OK)
        elif pair == wire.CONFIRM_SELECT:
            self.confirm[ch] = 0
            self.reply(ch, wire.CONFIRM_SELECT_OK)
        elif pair == wire.BASIC_CONSUME:
            r.u16()
            queue, ctag = r.shortstr(), r.shortstr()
            ctag = ctag or f"null.ctag-{id(self)}"
            self.reply(ch, wire.BASIC_CONSUME_OK, shortstr(ctag))
            self.consumer = (ch, ctag, queue, DeliveryTemplate(ch, ctag, queue, STAMP, 1000))
        elif pair == wire.BASIC_CANCEL:
            ctag = r.shortstr()
            self.consumer = None
            self.reply(ch, wire.BASIC_CANCEL_OK, shortstr(ctag))
        return True


def measure_send_path(size: int, count: int = 1_000_000, batch: int | None = None) -> dict:
    """The publish path alone: pre-encoded batches into a socket a discarding
    process drains.  No AMQP peer, no honesty checks: this is the ceiling of
    the generator's publisher (stamping + sendall + kernel copy), not a
    broker figure."""
    import multiprocessing as mp
    import os
    import time

    from .client import PublishTemplate, batch_for

    ours, theirs = socket.socketpair()

    def discard() -> None:
        ours.close()
        while theirs.recv(1 << 20):
            pass
        os._exit(0)

    proc = mp.get_context("fork").Process(target=discard, daemon=True)
    proc.start()
    theirs.close()
    probe = PublishTemplate(1, "", "q", size, False, 131072, 1)
    batch = batch or batch_for(probe.message_size, None)
    tpl = PublishTemplate(1, "", "q", size, False, 131072, batch)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    sent = 0
    while sent < count:
        n = min(batch, count - sent)
        ours.sendall(tpl.fill(sent, n, time.monotonic_ns()))
        sent += n
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    ours.close()
    proc.join(10)
    return {"size": size, "count": count, "msgs_per_s": round(count / elapsed),
            "mb_per_s": round(count * size / elapsed / 1e6, 1), "cpu_us_per_msg": round(cpu / count * 1e6, 3)}


def serve(host: str, port: int, ready=None) -> None:
    """Accept connections forever (until the process is stopped)."""
    state = NullState()
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((host, port))
    lsock.listen(1024)
    if ready is not None:
        ready.put(lsock.getsockname()[1])
    print(f"null broker listening on {host}:{lsock.getsockname()[1]}", flush=True)
    while True:
        conn, _ = lsock.accept()
        NullSession(conn, state).start()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    serve(a.host, a.port)


if __name__ == "__main__":
    main()
