"""Scenarios (a)-(d) through pika and aio-pika: the broker as users see it.

The client libraries cost far more per message than the raw generator, so
these runs use smaller counts and mostly measure client + broker together;
their value is in the leveret/RabbitMQ ratio, not in absolute figures.
Bodies carry the same 16-byte stamp and the same honesty checks apply
(set-up and verification drains use the raw generator).
"""

from __future__ import annotations

import asyncio
import time

from . import wire
from .client import Connection
from .ledger import Ledger, Verdict
from .scenarios import (BrokerProbe, _check_publisher, _drain_verify, _fill, _finish_queue, _name, _result,
                        _wait_count, percentiles)
from .workers import CTX, Team

STAMP = wire.BODY_STAMP


def _body(seq: int, size: int, ts: int | None = None) -> bytes:
    return STAMP.pack(seq, ts if ts is not None else time.monotonic_ns()) + bytes(size - wire.STAMP_SIZE)


class _Checker:
    """Ledger bookkeeping for callback-style consumers."""

    def __init__(self, expected: int) -> None:
        self.ledger = Ledger([expected])
        self.received = 0
        self.redelivered = 0
        self.latencies_us: list = []

    def see(self, body: bytes, redelivered: bool) -> None:
        seq, ts = STAMP.unpack_from(body, 0)
        self.latencies_us.append((time.monotonic_ns() - ts) // 1000)
        k = seq & wire.SEQ_MASK
        seen = self.ledger.seen[0]
        if k < len(seen) and seq >> wire.PUBLISHER_SHIFT == 0:
            if seen[k]:
                self.ledger.duplicates += 1
            seen[k] = 1
        else:
            self.ledger.unknown += 1
        self.received += 1
        self.redelivered += bool(redelivered)

    def result(self, t0: float, error: str = "") -> dict:
        return {"received": self.received, "redelivered": self.redelivered, "elapsed": time.monotonic() - t0,
                "latencies_us": self.latencies_us, "ledger": self.ledger.summary(), "error": error}


# ---------------------------------------------------------------- pika
def _pika_params(url: str):
    import pika
    params = pika.URLParameters(url)
    params.heartbeat = 0  # runs are bounded; a busy client must not be dropped
    return params


def pika_publish(url: str, queue: str, count: int, size: int, *, persistent: bool = False,
                 confirms: bool = False, consumed=None, window: int = 1000, deadline: float,
                 ready=None, go=None) -> dict:
    """Publish with pika's BlockingConnection (with confirms: one at a time, as pika does)."""
    import pika
    conn = pika.BlockingConnection(_pika_params(url))
    try:
        ch = conn.channel()
        if confirms:
            ch.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=2 if persistent else 1)
        if ready is not None:
            ready.set()
        if go is not None:
            go.wait()
        lat = []
        t0 = time.monotonic()
        sent = confirmed = 0
        for i in range(count):
            while consumed is not None and i - consumed.value >= window:
                conn.process_data_events(0)
                time.sleep(0.0002)
            t = time.monotonic_ns()
            ch.basic_publish("", queue, _body(i, size, t), props)
            sent += 1
            if confirms:
                confirmed += 1  # basic_publish returned: the broker acked it
                lat.append((time.monotonic_ns() - t) // 1000)
            if (i & 1023) == 0 and time.monotonic() > deadline:
                return {"sent": sent, "confirmed": confirmed, "nacked": 0, "timed_out": True,
                        "elapsed": time.monotonic() - t0, "confirm_latencies_us": lat}
        return {"sent": sent, "confirmed": confirmed, "nacked": 0, "timed_out": False,
                "elapsed": time.monotonic() - t0, "confirm_latencies_us": lat}
    finally:
        conn.close()


def pika_consume(url: str, queue: str, expected: int, *, prefetch: int = 1000, ack_every: int = 500,
                 progress=None, deadline: float, ready=None, go=None) -> dict:
    """Consume with pika's BlockingConnection callbacks, multiple-ack every ``ack_every``."""
    import pika
    conn = pika.BlockingConnection(_pika_params(url))
    chk = _Checker(expected)
    try:
        ch = conn.channel()
        ch.basic_qos(prefetch_count=prefetch)
        state = {"unacked": 0}

        def on_message(channel, method, _props, body) -> None:
            chk.see(body, method.redelivered)
            state["unacked"] += 1
            if state["unacked"] >= ack_every or chk.received >= expected:
                channel.basic_ack(method.delivery_tag, multiple=True)
                state["unacked"] = 0
            if progress is not None:
                progress.value = chk.received
            if chk.received >= expected:
                channel.stop_consuming()

        ch.basic_consume(queue, on_message)
        if ready is not None:
            ready.set()
        if go is not None:
            go.wait()
        t0 = time.monotonic()
        while chk.received < expected and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.2)
        return chk.result(t0, "" if chk.received >= expected else "timed out")
    finally:
        conn.close()


# ------------------------------------------------------------- aio-pika
def aiopika_publish(url: str, queue: str, count: int, size: int, *, persistent: bool = False,
                    confirms: bool = False, consumed=None, window: int = 1000, deadline: float,
                    ready=None, go=None) -> dict:
    """Publish with aio-pika; with confirms, up to ``window`` publishes awaited together."""
    import aio_pika

    async def run() -> dict:
        conn = await aio_pika.connect(url)
        try:
            ch = await conn.channel(publisher_confirms=confirms)
            ex = ch.default_exchange
            mode = aio_pika.DeliveryMode.PERSISTENT if persistent else aio_pika.DeliveryMode.NOT_PERSISTENT
            if ready is not None:
                ready.set()
            if go is not None:
                await asyncio.get_running_loop().run_in_executor(None, go.wait)
            lat: list = []

            async def one(i: int) -> None:
                t = time.monotonic_ns()
                await ex.publish(aio_pika.Message(_body(i, size, t), delivery_mode=mode), routing_key=queue)
                if confirms:
                    lat.append((time.monotonic_ns() - t) // 1000)

            t0 = time.monotonic()
            sent = 0
            step = window if confirms else 1
            while sent < count and time.monotonic() < deadline:
                if consumed is not None:
                    while sent - consumed.value >= window:
                        await asyncio.sleep(0.0002)
                    await one(sent)
                    sent += 1
                elif confirms:
                    n = min(step, count - sent)
                    await asyncio.gather(*(one(sent + i) for i in range(n)))
                    sent += n
                else:
                    await one(sent)
                    sent += 1
            return {"sent": sent, "confirmed": sent if confirms else 0, "nacked": 0,
                    "timed_out": sent < count, "elapsed": time.monotonic() - t0, "confirm_latencies_us": lat}
        finally:
            await conn.close()

    return asyncio.run(run())


def aiopika_consume(url: str, queue: str, expected: int, *, prefetch: int = 1000, ack_every: int = 500,
                    progress=None, deadline: float, ready=None, go=None) -> dict:
    """Consume with aio-pika's queue iterator, multiple-ack every ``ack_every``."""
    import aio_pika

    async def run() -> dict:
        conn = await aio_pika.connect(url)
        chk = _Checker(expected)
        try:
            ch = await conn.channel()
            await ch.set_qos(prefetch_count=prefetch)
            q = await ch.get_queue(queue, ensure=True)
            unacked = 0
            async with q.iterator() as it:
                if ready is not None:
                    ready.set()
                if go is not None:
                    await asyncio.get_running_loop().run_in_executor(None, go.wait)
                t0 = time.monotonic()
                try:
                    async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                        async for msg in it:
                            chk.see(msg.body, msg.redelivered)
                            unacked += 1
                            if unacked >= ack_every or chk.received >= expected:
                                await msg.ack(multiple=True)
                                unacked = 0
                            if progress is not None:
                                progress.value = chk.received
                            if chk.received >= expected:
                                break
                except TimeoutError:
                    return chk.result(t0, "timed out")
            return chk.result(t0)
        finally:
            await conn.close()

    return asyncio.run(run())


LIBRARIES = {"pika": (pika_publish, pika_consume), "aiopika": (aiopika_publish, aiopika_consume)}


# ------------------------------------------------------------ scenarios
def library_scenario(url: str, *, library: str, kind: str, size: int = 1024, count: int = 10_000,
                     timeout: float = 60.0, pid: int | None = None) -> dict:
    """Run (a) publish, (b) confirms, (c) consume or (d) e2e through a client library."""
    publish, consume = LIBRARIES[library]
    deadline = time.monotonic() + timeout
    probe = BrokerProbe(url, pid)
    verdict = Verdict()
    queue = _name(f"{library}-{kind}")
    ctl = Connection(url)
    ctl.channel_open(1)
    ctl.queue_declare(1, queue, durable=(kind == "b"))
    metrics: dict = {}
    team = Team()
    if kind in ("a", "b"):
        team.add(publish, url=url, queue=queue, count=count, size=size, persistent=(kind == "b"),
                 confirms=(kind == "b"), deadline=deadline)
        team.start()
        t0 = time.monotonic()
        team.go()
        if kind == "a":
            held, _ = _wait_count(ctl, queue, count, deadline)
            elapsed = time.monotonic() - t0
            verdict.expect("queue_count_after_publish", held, count)
        (pub,) = team.collect(timeout=timeout + 10)
        if kind == "b":
            elapsed = pub.get("elapsed") or 0
            verdict.expect("queue_count_after_publish", ctl.message_count(1, queue), count)
            metrics["confirm_latency"] = percentiles(pub.get("confirm_latencies_us") or [])
        _check_publisher(verdict, "publisher", pub, count, confirms=(kind == "b"))
        metrics["msgs_per_s"] = round(count / elapsed) if elapsed else 0
        _drain_verify(url, queue, count, [count], verdict, "verify", time.monotonic() + timeout)
    elif kind == "c":
        _fill(url, queue, count, size, verdict, deadline)
        verdict.expect("queue_count_after_fill", ctl.message_count(1, queue), count)
        team.add(consume, url=url, queue=queue, expected=count, deadline=deadline)
        team.start()
        team.go()
        (cons,) = team.collect(timeout=timeout + 10)
        if cons.get("error"):
            verdict.fail(f"consumer: {cons['error']}")
        if "ledger" in cons:
            verdict.ledger("consumer", cons["ledger"])
        metrics["msgs_per_s"] = round(cons.get("received", 0) / cons["elapsed"]) if cons.get("elapsed") else 0
    else:
        progress = CTX.RawValue("q", 0)
        team.add(consume, url=url, queue=queue, expected=count, progress=progress, deadline=deadline)
        team.add(publish, url=url, queue=queue, count=count, size=size, consumed=progress, deadline=deadline)
        team.start()
        team.go()
        cons, pub = team.collect(timeout=timeout + 10)
        _check_publisher(verdict, "publisher", pub, count, confirms=False)
        if cons.get("error"):
            verdict.fail(f"consumer: {cons['error']}")
        if "ledger" in cons:
            verdict.ledger("consumer", cons["ledger"])
        metrics["msgs_per_s"] = round(cons.get("received", 0) / cons["elapsed"]) if cons.get("elapsed") else 0
        metrics["e2e_latency"] = percentiles(cons.get("latencies_us") or [])
    probe.mark("after")
    _finish_queue(ctl, queue, verdict)
    ctl.close()
    return _result(f"{library}-{kind}", {"size": size, "count": count}, metrics, verdict, probe)
