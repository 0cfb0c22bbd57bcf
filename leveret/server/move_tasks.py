"""Move tasks: messages moved from one queue to another, server-side (as SQS's StartMessageMoveTask).

A task takes up to `count` of the source queue's ready messages (all of those ready when it starts when no
count is given: a task never chases messages that arrive later, which a replay rejected straight back into
its dead-letter queue would be) and puts a copy of each where it is told: its original queue, a named queue,
or through a named exchange (server/move_placement.py says where and how).

Confirm-then-ack: a batch of copies is made durable (the group commit of server/durability.py, waited for
as a publisher confirm waits) before the source messages are acked, so a kill -9 loses nothing; it may
leave a message both moved and still in the source (killed between the two commits), and moving it again
then makes a second copy. Every message recovered after a crash is flagged redelivered, and so is its copy
when it goes straight into a queue, so the consumer of the destination sees such a duplicate flagged. A
rate limit paces the batches (`max_rate` messages per second).

A message that cannot be placed (its original queue is gone or unknown, the destination refused it at its
length limit, the exchange is gone) stays at the head of the source, unflagged, and the task fails with the
reason. The task runs on the server's event loop, beside connections, and costs nothing on anyone else's
message path.

Durable tasks: each running task has a record on disk (durable/move_task_records.py), written before its
first copy and removed when it ends, so a task running when the broker stops or dies resumes, under the same
id, when it starts again (a clean stop pauses the tasks rather than cancelling them). What the resumed task
moves is what is still in the source of the messages the task was given: those stored before it started
(store offsets below the source's `boundary`, the store's next offset at the start), never a message that
arrived later, up to `count` less the progress recorded. Progress is saved at most once a second, and only
moves whose source acks were already durable count in it, so a resumed task never stops short of its own
messages, and its `moved` counts on from up to a second before the kill (it may finish below `total`). It
may move again a message whose copy was made before the kill but whose ack was not yet durable
(at-least-once: that source comes back from recovery flagged redelivered, and so does its new copy). A
source message not stored (a transient one, or in a non-durable queue) does not survive the restart and is
not waited for.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from typing import Any

from leveret.broker.entry import QueueEntry
from leveret.broker.queue import Queue
from leveret.broker.vhost import VHost
from leveret.server.move_placement import Destination, Unplaced, place_copy

log = logging.getLogger("leveret.move_tasks")

BATCH = 500  # messages a loop turn takes and copies at most
PIPELINE = 4  # batches whose commits are awaited at once
KEPT = 100  # finished tasks remembered for listing
SAVE_INTERVAL = 1.0  # seconds between two saves of a running task's progress (each costs two fsyncs)
RUNNING, FINISHED, CANCELLED, FAILED = "running", "finished", "cancelled", "failed"


class _CommitWaiter:
    """What server/durability.py confirms, for one batch: resolves a future with whether it is durable."""

    def __init__(self, future: "asyncio.Future[bool]") -> None:
        self.future = future

    def confirm_ready(self, seq: int) -> None:
        if not self.future.done():
            self.future.set_result(True)

    def confirm_failed(self, seq: int) -> None:
        if not self.future.done():
            self.future.set_result(False)


class MoveTask:
    """One move from `source` to `destination` and its progress."""

    def __init__(self, vhost: VHost, source: Queue, destination: Destination, count: int | None,
                 max_rate: float | None, replay_count: bool, records: Any = None,
                 record: dict[str, Any] | None = None) -> None:
        """A new task, or with `record` one resumed from its saved record; `records` (durable/
        move_task_records.py MoveTaskRecords) keeps the record while the task runs, None: in memory only."""
        self.id = record["id"] if record else uuid.uuid4().hex[:16]
        self.vhost = vhost
        self.source = source
        self.destination = destination
        self.count = count
        self.max_rate = max_rate
        self.replay_count = replay_count
        if record is None:
            ready = len(source.ready)
            self.total = ready if count is None else min(count, ready)
            self.moved = 0
            self.started_at = time.time()
            # Messages stored in the source before now have lower offsets: the ones a resumed task may take.
            self.boundary = source.store.next_offset if source.store is not None else None
            self.resumes = 0
        else:
            self.total, self.moved, self.started_at = record["total"], record["moved"], record["started_at"]
            self.boundary, self.resumes = record["boundary"], record["resumes"] + 1
        self.state = RUNNING
        self.reason: str | None = None
        self.finished_at: float | None = None
        self._cancelled = False
        self._paused = False  # the server is stopping: end the run, keep the record for the next start
        self._woken = asyncio.Event()
        self.runner: asyncio.Task | None = None
        self.records = records if self.boundary is not None else None  # nothing of a memory-only queue survives
        self._saved_at = 0.0  # loop time of the last progress save requested
        self._saved_moved = self.moved

    def record(self) -> dict[str, Any]:
        """What a restart needs to resume the task, as saved (moved: the durable progress)."""
        destination = self.destination
        return {"id": self.id, "vhost": self.vhost.name, "source": self.source.name, "queue": destination.queue,
                "exchange": destination.exchange, "routing_key": destination.routing_key, "count": self.count,
                "max_rate": self.max_rate, "replay_count": self.replay_count, "total": self.total,
                "moved": self._saved_moved, "started_at": self.started_at, "boundary": self.boundary,
                "resumes": self.resumes}

    def describe(self) -> dict[str, Any]:
        """The task as the management API shows it."""
        elapsed = (self.finished_at or time.time()) - self.started_at
        return {
            "id": self.id,
            "vhost": self.vhost.name,
            "source": self.source.name,
            "destination": self.destination.describe(),
            "count": self.count,
            "max_rate": self.max_rate,
            "replay_count": self.replay_count,
            "total": self.total,
            "moved": self.moved,
            # A resumed task counts from its last saved progress (see the module's docstring): when it finishes,
            # nothing of its own is left, whatever its count says.
            "remaining": 0 if self.state == FINISHED else max(0, self.total - self.moved),
            "rate": round(self.moved / elapsed, 1) if elapsed > 0 else 0.0,
            "state": self.state,
            "reason": self.reason,
            "durable": self.records is not None,
            "resumed": self.resumes,
            "started_at": int(self.started_at * 1000),
            "finished_at": None if self.finished_at is None else int(self.finished_at * 1000),
        }

    def cancel(self) -> bool:
        """Stop after the batch in hand (its copies are committed and its sources acked); False if not running."""
        if self.state != RUNNING:
            return False
        self._cancelled = True
        self._woken.set()
        return True

    def pause(self) -> None:
        """Stop after the batch in hand and keep the record: the next start resumes the task."""
        self._paused = True
        self._woken.set()

    def _end(self, state: str, reason: str | None = None) -> None:
        self.state, self.reason, self.finished_at = state, reason, time.time()
        if self.records is not None:
            self.records.remove(self.id)
        log.info("move task %s from %s %s: %d of %d moved%s", self.id, self.source.describe(), state,
                 self.moved, self.total, f" ({reason})" if reason else "")

    async def run(self, durability: Any) -> None:
        """Move batch after batch; up to PIPELINE batches wait for their commits at once (one fsync per batch
        would otherwise bound the rate), each batch's sources acked when its own commit is done."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        in_flight: deque[tuple[asyncio.Future[bool] | None, list[QueueEntry]]] = deque()
        taken_total = base = self.moved  # moved, or copied and waiting for their commit
        error: Unplaced | None = None
        while taken_total < self.total and not self._cancelled and not self._paused and error is None:
            if self.source.deleted:
                error = Unplaced(f"{self.source.describe()} was deleted")
                break
            allowed = self.total - taken_total
            if self.max_rate is not None:
                due = int((loop.time() - start) * self.max_rate) + 1 - (taken_total - base)
                if due <= 0:  # pacing: the next message is not due yet (a cancel wakes it at once)
                    wait = (taken_total - base - (loop.time() - start) * self.max_rate) / self.max_rate
                    try:
                        await asyncio.wait_for(self._woken.wait(), max(wait, 0.001))
                    except asyncio.TimeoutError:
                        pass
                    continue
                allowed = min(allowed, due)
            taken, error = self._move_batch(min(allowed, BATCH))
            if taken:
                in_flight.append((self._commit(durability), taken))
                taken_total += len(taken)
            elif error is None:
                break  # the source has fewer ready messages than at the start (consumed meanwhile)
            while len(in_flight) >= PIPELINE:
                error = await self._acked(in_flight.popleft(), durability) or error
            await asyncio.sleep(0)  # let connections run between batches
        while in_flight:
            error = await self._acked(in_flight.popleft(), durability) or error
        if self._paused and error is None and not self._cancelled and self.moved < self.total:
            await self._save_progress(durability, self.moved)  # the record stays: resumed at the next start
            return
        if error is not None:
            self._end(FAILED, str(error))
        else:
            self._end(CANCELLED if self._cancelled else FINISHED)

    def _move_batch(self, limit: int) -> tuple[list[QueueEntry], Unplaced | None]:
        """Take up to `limit` source messages and place their copies; stop at the first that cannot be placed
        (put back unflagged: nobody saw it)."""
        taken: list[QueueEntry] = []
        source = self.source
        for _ in range(limit):
            entry = source.fetch(no_ack=False)
            if entry is None:
                break
            if self.resumes and not 0 <= entry.offset < self.boundary:  # type: ignore[operator]
                source.unfetch(entry)  # arrived after the task started (or since the restart): not its own
                break
            try:
                place_copy(self.vhost, self.destination, entry, self.replay_count)
            except Unplaced as exc:
                source.unfetch(entry)
                return taken, exc
            except OSError as exc:  # the store refused the copy (a full disk): nothing of it was kept
                source.unfetch(entry)
                return taken, Unplaced(f"the message store refused a copy: {exc}")
            taken.append(entry)
        return taken, None

    @staticmethod
    def _commit(durability: Any) -> "asyncio.Future[bool] | None":
        """A future of the next group commit (True once durable), or None when nothing waits to be written."""
        if durability is None or not durability.store.commit_pending:
            return None
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        durability.wait_for_commit(_CommitWaiter(future), 0)
        return future

    async def _acked(self, batch: tuple["asyncio.Future[bool] | None", list[QueueEntry]],
                     durability: Any) -> Unplaced | None:
        """Once a batch's copies are durable, ack its sources; a failed commit puts them back instead."""
        future, taken = batch
        if future is not None and not await future:
            # The store rolled the copies back (and nacked them); the sources go back, flagged: a consumer
            # of the destination may have had a copy before the rollback.
            self.source.requeue(taken)
            return Unplaced("the message store could not make the copies durable (see the broker log)")
        self.source.settle(taken)
        self.moved += len(taken)
        if durability is not None:
            durability.kick()  # the acks, with the next commit
        if self.records is not None and asyncio.get_running_loop().time() - self._saved_at >= SAVE_INTERVAL:
            self._saved_at = asyncio.get_running_loop().time()
            asyncio.get_running_loop().create_task(self._save_progress(durability, self.moved))
        return None

    async def _save_progress(self, durability: Any, moved: int) -> None:
        """Record `moved` once the acks of those moves are durable (the next commit), so that the record never
        claims a move a crash could undo; a task that ended meanwhile has no record to write."""
        future = self._commit(durability)
        if future is not None and not await future:
            return  # the commit failed: the acks may be rolled back, keep the older progress
        if self.state == RUNNING and self.records is not None and moved > self._saved_moved:
            self._saved_moved = moved
            self.records.save(self.record())


class MoveTasks:
    """The broker's move tasks: started, listed, cancelled (the server owns one)."""

    def __init__(self, durability: Any, records: Any = None) -> None:
        self.durability = durability
        self.records = records  # durable/move_task_records.py MoveTaskRecords; None: tasks are not resumed
        self.tasks: dict[str, MoveTask] = {}

    def start(self, vhost: VHost, source: Queue, *, queue: str | None = None, exchange: str | None = None,
              routing_key: str | None = None, count: int | None = None, max_rate: float | None = None,
              replay_count: bool = True) -> MoveTask:
        """Start moving `source`'s messages: to `queue`, through `exchange` (`routing_key`, None: each
        message's own), or, with neither, to each message's original queue (see the module's docstring)."""
        destination = Destination(queue=queue, exchange=exchange, routing_key=routing_key)
        task = MoveTask(vhost, source, destination, count, max_rate, replay_count, self.records)
        self._launch(task)
        return task

    def _launch(self, task: MoveTask) -> None:
        # Saved before the task is announced or moves anything (a resumed one: with its resume counted).
        if task.records is not None and not task.records.save(task.record()):
            task.records = None
        self.tasks[task.id] = task
        task.runner = asyncio.get_running_loop().create_task(self._run(task))
        self._forget_old()

    def resume(self, broker: Any) -> list[MoveTask]:
        """Start again every task whose record a stop or crash left (after recovery rebuilt the queues); one
        whose vhost or source queue is gone is dropped, with a warning."""
        if self.records is None:
            return []
        resumed = []
        for record in self.records.load():
            vhost = broker.vhosts.get(record.get("vhost"))
            source = vhost.queues.get(record.get("source")) if vhost is not None else None
            if not isinstance(source, Queue) or source.store is None:
                log.warning("move task %s not resumed: no durable queue '%s' in vhost '%s'", record["id"],
                            record.get("source"), record.get("vhost"))
                self.records.remove(record["id"])
                continue
            try:
                destination = Destination(queue=record["queue"], exchange=record["exchange"],
                                          routing_key=record["routing_key"])
                task = MoveTask(vhost, source, destination, record["count"], record["max_rate"],
                                record["replay_count"], self.records, record)
            except (KeyError, TypeError) as exc:  # a record this version cannot read: the start goes on
                log.warning("move task %s not resumed: its record lacks %s", record["id"], exc)
                self.records.remove(record["id"])
                continue
            log.info("move task %s from %s resumed: %d of %d moved before the restart", task.id,
                     source.describe(), task.moved, task.total)
            self._launch(task)
            resumed.append(task)
        return resumed

    async def _run(self, task: MoveTask) -> None:
        try:
            await task.run(self.durability)
        except Exception as exc:  # a bug: the task fails loudly, the broker goes on
            log.exception("internal error in move task %s", task.id)
            task._end(FAILED, f"internal error: {exc!r}")

    def _forget_old(self) -> None:
        done = [t for t in self.tasks.values() if t.state != RUNNING]
        for task in sorted(done, key=lambda t: t.finished_at or 0)[: max(0, len(done) - KEPT)]:
            del self.tasks[task.id]

    def get(self, ident: str) -> MoveTask | None:
        return self.tasks.get(ident)

    def list(self) -> list[MoveTask]:
        return sorted(self.tasks.values(), key=lambda t: t.started_at)

    async def stop(self) -> None:
        """Pause every running task and wait for it to finish its batch (the server is stopping): a durable one
        resumes at the next start, one in memory only is cancelled."""
        running = [t for t in self.tasks.values() if t.runner is not None and not t.runner.done()]
        for task in running:
            if task.records is not None:
                task.pause()
            else:
                task.cancel()
        if running:
            await asyncio.wait([t.runner for t in running], timeout=10)  # type: ignore[misc]
