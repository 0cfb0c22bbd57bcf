"""Group commit on one worker thread, and publisher confirms that wait for it.

The store buffers appends and ack records; `begin_commit` (on the loop thread) writes those buffers and
hands back a ticket whose `run` fsyncs the files on the worker thread. Every publish whose confirm must
wait for stable storage registers (channel, sequence number) here before the next commit begins, so one
fsync covers every message that arrived while the previous one ran: confirm throughput is bounded by the
disk's fsync latency per *batch*, not per message.

Failures. If a commit's write or fsync fails, the store rolls back every record not yet durable (in every
queue) and the broker drops those messages; here, every publish of that commit *and* every publish already
waiting for the next one is nacked (their records were rolled back too), in order with the confirms around
them. Later publishes are confirmed only after a commit of their own succeeds, so once the disk accepts
writes again confirms resume without a restart. The store logs each failure (rate-limited); the broker
stays up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from leveret.server.histogram import Histogram

log = logging.getLogger("leveret.durability")

# Bucket bounds of the /metrics histograms (leveret_commit_seconds, leveret_commit_batch_publishes).
COMMIT_SECONDS_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


class Durability:
    """Runs the store's group commits and releases confirms when they complete."""

    def __init__(self, loop: asyncio.AbstractEventLoop, store: Any) -> None:
        self.loop = loop
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leveret-fsync")
        self._waiting: list[tuple[Any, int, bool]] = []
        self._in_flight = False
        self._scheduled = False
        self.commits = 0
        self.failed_commits = 0
        self.aborts = 0  # times the store rolled its open batch back (a publish compares before and after)
        # Per commit (never per message): its time from start to fsync done, and the confirms it released.
        self.commit_seconds = Histogram(COMMIT_SECONDS_BUCKETS)
        self.batch_publishes = Histogram(BATCH_BUCKETS)
        group = getattr(store, "group", None)
        if group is not None:
            group.on_abort.append(self._records_rolled_back)

    def _records_rolled_back(self) -> None:
        """The store dropped its open batch: publishes waiting for the next commit were in it."""
        self.aborts += 1
        self._waiting = [(channel, seq, False) for channel, seq, _ok in self._waiting]

    def wait_for_commit(self, channel: Any, seq: int, ok: bool = True) -> None:
        """Confirm publish `seq` on `channel` once the next commit is on stable storage (nack it if not `ok`:
        it waits anyway so that confirms leave in order)."""
        self._waiting.append((channel, seq, ok))
        self.kick()

    def kick(self) -> None:
        """Start a commit soon if there is anything to make durable (cheap to call often)."""
        if self._scheduled or self._in_flight:
            return
        if self._waiting or self.store.commit_pending:
            self._scheduled = True
            # call_soon: everything the current read produces joins this commit.
            self.loop.call_soon(self._begin)

    def _begin(self) -> None:
        self._scheduled = False
        if self._in_flight:
            return
        batch, self._waiting = self._waiting, []
        try:
            ticket = self.store.begin_commit()
        except OSError:
            # Logged and rolled back by the store; nothing was in flight, so these nacks keep their order.
            self.failed_commits += 1
            self._nack(batch)
            self.kick()
            return
        self._in_flight = True
        started = time.monotonic()
        future = self.loop.run_in_executor(self._executor, ticket.run)
        future.add_done_callback(lambda f: self._done(batch, ticket, f, started))

    def _done(self, batch: list[tuple[Any, int, bool]], ticket: Any, future: "asyncio.Future[int]",
              started: float) -> None:
        self._in_flight = False
        self.commits += 1
        self.commit_seconds.observe(time.monotonic() - started)
        self.batch_publishes.observe(len(batch))
        exc = future.exception()
        self.store.end_commit(ticket)  # a failed fsync rolls back here, on the loop thread
        if exc is not None:
            if not isinstance(exc, OSError):
                log.error("commit of the message store failed: %r", exc)
            self.failed_commits += 1
            self._nack(batch)
        else:
            for channel, seq, ok in batch:
                if ok:
                    channel.confirm_ready(seq)
                else:
                    channel.confirm_failed(seq)
        self.kick()

    @staticmethod
    def _nack(batch: list[tuple[Any, int, bool]]) -> None:
        for channel, seq, _ok in batch:
            channel.confirm_failed(seq)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait (bounded) until nothing is waiting or in flight; then a final synchronous sync."""
        deadline = self.loop.time() + timeout
        while (self._in_flight or self._scheduled or self._waiting) and self.loop.time() < deadline:
            await asyncio.sleep(0.005)
        try:
            self.store.sync()
        except OSError:
            pass  # logged and rolled back by the store; nothing it held was confirmed

    def close(self) -> None:
        self._executor.shutdown(wait=True)
