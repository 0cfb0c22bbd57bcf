"""The routes a message can take through the broker, each with its topology, publisher and destinations.

plain    persistent messages to one durable queue through the default exchange
fanout   a durable fanout exchange into two durable queues (each must hold every confirmed id)
dlx      a queue with a short TTL dead-lettering into a DLQ (confirmed ids must reach the DLQ or stay in the source)
delayed  an x-delayed-message exchange (x-delay 20..300 ms) into a durable queue
stream   a stream queue (never consumed during load; read from "first" at the end)
tx       a transactional channel: ten publishes, tx.commit; commit-ok confirms all ten
"""

from __future__ import annotations

import asyncio
import random

from .amqp import ID, Channel, Closed, Connection, Delivery, publish_frames
from .ledger import ACK, DRAIN, DROP, REQUEUE, Ledger

PREFIX = "fr."
ALL_PATHS = ("plain", "fanout", "dlx", "delayed", "stream", "tx")
MAX_DELAY_MS = 300
DLX_TTL_MS = 50


class Path:
    name = ""
    exchange = ""
    routing_key = ""
    # Queues consumers read during load and the final drain empties; the ledger's destinations.
    dests: tuple[str, ...] = ()
    # Declared only (the DLX source); the drain waits for them to empty.
    extra_queues: tuple[str, ...] = ()

    async def declare(self, ch: Channel) -> None:
        raise NotImplementedError

    def headers(self, rng: random.Random) -> dict | None:
        return None


class Plain(Path):
    name = "plain"
    routing_key = PREFIX + "plain"
    dests = (PREFIX + "plain",)

    async def declare(self, ch: Channel) -> None:
        await ch.queue_declare(self.routing_key)


class Fanout(Path):
    name = "fanout"
    exchange = PREFIX + "fanout"
    dests = (PREFIX + "fanout.a", PREFIX + "fanout.b")

    async def declare(self, ch: Channel) -> None:
        await ch.exchange_declare(self.exchange, "fanout")
        for q in self.dests:
            await ch.queue_declare(q)
            await ch.queue_bind(q, self.exchange)


class DeadLetter(Path):
    name = "dlx"
    routing_key = PREFIX + "dlx.src"
    dests = (PREFIX + "dlx.dlq",)
    extra_queues = (PREFIX + "dlx.src",)

    async def declare(self, ch: Channel) -> None:
        await ch.queue_declare(self.dests[0])
        await ch.queue_declare(self.routing_key, arguments={
            "x-message-ttl": DLX_TTL_MS, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": self.dests[0]})


class Delayed(Path):
    name = "delayed"
    exchange = PREFIX + "delayed"
    routing_key = "k"
    dests = (PREFIX + "delayed.q",)

    async def declare(self, ch: Channel) -> None:
        await ch.exchange_declare(self.exchange, "x-delayed-message", {"x-delayed-type": "direct"})
        await ch.queue_declare(self.dests[0])
        await ch.queue_bind(self.dests[0], self.exchange, self.routing_key)

    def headers(self, rng: random.Random) -> dict | None:
        return {"x-delay": rng.randint(20, MAX_DELAY_MS)}


class Stream(Path):
    name = "stream"
    routing_key = PREFIX + "stream"
    dests = (PREFIX + "stream",)
    # Retention (x-max-length-bytes), for the disk cycles: a stream nobody settles would fill the small
    # disk for good. The ledger then counts ids older than the oldest one kept as retention, not loss.
    max_bytes = 0

    async def declare(self, ch: Channel) -> None:
        args: dict = {"x-queue-type": "stream"}
        if self.max_bytes:
            args["x-max-length-bytes"] = self.max_bytes
            args["x-stream-max-segment-size-bytes"] = max(65536, self.max_bytes // 8)
        await ch.queue_declare(self.routing_key, arguments=args)


class Tx(Path):
    name = "tx"
    routing_key = PREFIX + "tx"
    dests = (PREFIX + "tx",)

    async def declare(self, ch: Channel) -> None:
        await ch.queue_declare(self.routing_key)


PATHS: dict[str, type[Path]] = {cls.name: cls for cls in (Plain, Fanout, DeadLetter, Delayed, Stream, Tx)}


def make_paths(names: list[str]) -> list[Path]:
    unknown = [n for n in names if n not in PATHS]
    if unknown:
        raise ValueError(f"unknown paths {unknown}; choose from {', '.join(ALL_PATHS)}")
    return [PATHS[n]() for n in names]


def body_for(ident: int, size: int) -> bytes:
    return ID.pack(ident) + bytes(max(0, size - 8))


async def declare_all(url: str, paths: list[Path]) -> None:
    conn = await Connection.open(url, "faultrun-declare")
    try:
        ch = await conn.channel()
        for p in paths:
            await p.declare(ch)
    finally:
        await conn.close()


class Stats:
    """Per-phase counters the load keeps while it runs."""

    def __init__(self) -> None:
        self.connections: list[Connection] = []
        self.errors: list[str] = []

    @property
    def blocked_seen(self) -> int:
        """connection.blocked notifications received so far, all connections together."""
        return sum(c.blocked_seen for c in self.connections)


async def confirming_publisher(url: str, path: Path, ledger: Ledger, stop: asyncio.Event, stats: Stats,
                               body_size: int, window: int, seed: int) -> None:
    """Publish as fast as the window allows; every ack/nack lands in the ledger by delivery tag."""
    rng = random.Random(seed)
    conn = await Connection.open(url, f"faultrun-pub-{path.name}")
    stats.connections.append(conn)
    try:
        ch = await conn.channel()
        await ch.confirm_select()
        outstanding: dict[int, int] = {}  # delivery tag -> id, in tag order
        room = asyncio.Event()
        room.set()

        def on_confirm(tag: int, multiple: bool, ack: bool) -> None:
            settle = ledger.confirm if ack else ledger.nack
            if multiple:
                done = []
                for t, ident in outstanding.items():
                    if t > tag:
                        break
                    settle(ident)
                    done.append(t)
                for t in done:
                    del outstanding[t]
            else:
                ident = outstanding.pop(tag, None)
                if ident is not None:
                    settle(ident)
            if len(outstanding) < window:
                room.set()

        ch.on_confirm = on_confirm
        tag = 0
        while not stop.is_set() and conn.closed is None:
            if len(outstanding) >= window:
                room.clear()
                await _wait_either(room, stop, conn)
                continue
            ident = ledger.new_id(path.name)
            tag += 1
            outstanding[tag] = ident
            ch.send(publish_frames(ch.number, path.exchange, path.routing_key, body_for(ident, body_size),
                                   headers=path.headers(rng)))
            await conn.drain()
    except Closed:
        pass
    finally:
        conn.abort()


async def tx_publisher(url: str, path: Path, ledger: Ledger, stop: asyncio.Event, stats: Stats,
                       body_size: int, batch: int = 10) -> None:
    conn = await Connection.open(url, "faultrun-pub-tx")
    stats.connections.append(conn)
    try:
        ch = await conn.channel()
        await ch.tx_select()
        while not stop.is_set() and conn.closed is None:
            ids = [ledger.new_id(path.name) for _ in range(batch)]
            ch.send(b"".join(publish_frames(ch.number, path.exchange, path.routing_key, body_for(i, body_size))
                             for i in ids))
            await conn.drain()
            await ch.tx_commit()
            for i in ids:
                ledger.confirm(i)
    except Closed:
        pass
    finally:
        conn.abort()


async def consumer(url: str, dest: str, ledger: Ledger, stop: asyncio.Event, seed: int,
                   ack: float = 0.8, requeue: float = 0.12, prefetch: int = 100) -> None:
    """Consume `dest`, acking most deliveries, requeueing some and dropping (reject, no requeue) the rest."""
    rng = random.Random(seed)
    conn = await Connection.open(url, f"faultrun-consume-{dest}")
    try:
        ch = await conn.channel()
        await ch.qos(prefetch)

        def on_deliver(d: Delivery) -> None:
            roll = rng.random()
            action = ACK if roll < ack else REQUEUE if roll < ack + requeue else DROP
            ledger.delivered(dest, d.ident, d.redelivered, action)
            if action == ACK:
                ch.ack(d.tag)
            else:
                ch.reject(d.tag, requeue=action == REQUEUE)

        ch.on_deliver = on_deliver
        await ch.consume(dest)
        await _wait_either(None, stop, conn)
    except Closed:
        pass
    finally:
        conn.abort()


async def _wait_either(event: asyncio.Event | None, stop: asyncio.Event, conn: Connection) -> None:
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(conn.closed_event.wait())]
    if event is not None:
        waits.append(asyncio.ensure_future(event.wait()))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def drain(url: str, paths: list[Path], ledger: Ledger, idle: float = 0.6, timeout: float = 120.0) -> None:
    """Empty every destination into the ledger's `present` sets (streams are read from the first offset)."""
    conn = await Connection.open(url, "faultrun-drain")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        probe = await conn.channel()
        # DLX sources hand their messages on after the TTL; delayed messages are due within MAX_DELAY_MS of the
        # restart: wait for both before reading the destinations.
        for p in paths:
            for q in p.extra_queues:
                while (await probe.queue_declare(q, passive=True))[0] and loop.time() < deadline:
                    await asyncio.sleep(0.05)
        if any(p.name == "delayed" for p in paths):
            await asyncio.sleep(MAX_DELAY_MS / 1000 + 0.2)
        for p in paths:
            for dest in p.dests:
                rec = ledger.queues[dest]
                ch = await conn.channel()
                await ch.qos(1000)
                last = [loop.time()]

                def on_deliver(d: Delivery, dest=dest, rec=rec, ch=ch, last=last) -> None:
                    ledger.delivered(dest, d.ident, d.redelivered, DRAIN)
                    rec.present.add(d.ident)
                    ch.ack(d.tag)
                    last[0] = loop.time()

                ch.on_deliver = on_deliver
                is_stream = p.name == "stream"
                await ch.consume(dest, {"x-stream-offset": "first"} if is_stream else None)
                while loop.time() < deadline:
                    await asyncio.sleep(idle / 4)
                    if loop.time() - last[0] < idle:
                        continue
                    if is_stream or (await probe.queue_declare(dest, passive=True))[0] == 0:
                        break
    finally:
        await conn.close()
