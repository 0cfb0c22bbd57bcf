"""Process workers: one publisher or consumer per process, started together.

The machine has two cores and CPython runs one thread at a time, so a
publisher and a consumer in one process would share one core and measure the
generator instead of the broker.  Each worker connects and sets up first,
reports ready, waits for the common start signal, runs, and returns a plain
dict over a queue.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import traceback
from dataclasses import asdict

from .client import Connection, Consumer, Publisher
from .ledger import Ledger

CTX = mp.get_context("fork")


def publisher_worker(url: str, exchange: str, routing_key: str, body_size: int, count: int, *,
                     publisher_id: int = 0, persistent: bool = False, confirms: bool = False,
                     window: int | None = None, rate: float | None = None, consumed=None,
                     deadline: float, ready=None, go=None) -> dict:
    """Connect, publish ``count`` stamped messages, report what happened."""
    conn = Connection(url)
    try:
        ch = conn.channel_open(1)
        pub = Publisher(conn, ch, exchange, routing_key, body_size, persistent=persistent,
                        confirms=confirms, publisher_id=publisher_id)
        if ready is not None:
            ready.set()
        if go is not None:
            go.wait()
        res = pub.run(count, window=window, rate=rate, consumed=consumed, deadline=deadline)
        return {"role": "publisher", **asdict(res)}
    finally:
        conn.close()


def consumer_worker(url: str, queue: str, expected: int, per_publisher: list[int], *,
                    prefetch: int = 1000, ack_every: int = 500, record_latency: bool = False,
                    progress=None, deadline: float, ready=None, go=None) -> dict:
    """Connect, consume ``expected`` messages from ``queue`` with a ledger."""
    conn = Connection(url)
    try:
        ch = conn.channel_open(1)
        cons = Consumer(conn, ch, queue, prefetch=prefetch, ack_every=ack_every)
        res = cons.run(expected, Ledger(per_publisher), deadline=deadline,
                       record_latency=record_latency, progress=progress, ready=ready, go=go)
        return {"role": "consumer", **asdict(res)}
    finally:
        conn.close()


def _child(fn, kwargs, results, index) -> None:
    try:
        results.put((index, fn(**kwargs)))
    except BaseException as exc:  # report, never hang the parent
        results.put((index, {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}))


class Team:
    """A set of worker processes that start on one signal.

    ``add`` registers a worker; ``start`` forks them and waits until each has
    set up (connected, declared, consuming); ``go`` releases them; ``collect``
    gathers results, terminating any worker still alive after the timeout.
    """

    def __init__(self) -> None:
        self.go_event = CTX.Event()
        self.results = CTX.Queue()
        self.procs: list = []
        self.readies: list = []

    def add(self, fn, **kwargs) -> int:
        ready = CTX.Event()
        kwargs = dict(kwargs, ready=ready, go=self.go_event)
        index = len(self.procs)
        self.procs.append(CTX.Process(target=_child, args=(fn, kwargs, self.results, index), daemon=True))
        self.readies.append(ready)
        return index

    def start(self, timeout: float = 30.0) -> None:
        for p in self.procs:
            p.start()
        limit = time.monotonic() + timeout
        for ready, p in zip(self.readies, self.procs):
            while not ready.wait(0.1):
                if not p.is_alive() or time.monotonic() > limit:
                    break

    def go(self) -> None:
        self.go_event.set()

    def collect(self, timeout: float) -> list[dict]:
        out: list = [None] * len(self.procs)
        limit = time.monotonic() + timeout
        got = 0
        while got < len(self.procs) and time.monotonic() < limit:
            try:
                index, value = self.results.get(timeout=0.2)
            except Exception:
                if not any(p.is_alive() for p in self.procs) and self.results.empty():
                    break
                continue
            out[index] = value
            got += 1
        for p in self.procs:
            p.join(timeout=2)
            if p.is_alive():
                p.terminate()
                p.join(timeout=2)
        return [r if r is not None else {"error": "worker produced no result (timeout or crash)"} for r in out]
