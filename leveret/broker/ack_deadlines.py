"""RabbitMQ's consumer timeout for one channel: a delivery unacked past its queue's timeout closes the channel.

Per timeout value (ms), (deadline, delivery tag) in delivery order, so each deque is sorted by deadline and
pruned from the left as deliveries settle; one `Slot` on the broker's `Timers` for all of them, armed for the
earliest. Deliveries from queues without a timeout cost nothing.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Container

from leveret.broker.timers import Slot

if TYPE_CHECKING:
    from leveret.broker.timers import Timers


class AckDeadlines:
    """The ack deadlines of one channel's timed deliveries."""

    __slots__ = ("pending", "_slot", "_now")

    def __init__(self, timers: "Timers | None", now: Callable[[], float], due: Callable[[], Any]) -> None:
        """`now` is the monotonic clock; `due` is called when the earliest deadline passed (it calls `expired`)."""
        # timeout (ms) -> (deadline, delivery tag), oldest first; read on every settle, so a plain dict
        self.pending: dict[int, deque[tuple[float, int]]] = {}
        self._slot = Slot(timers, due)
        self._now = now

    def __bool__(self) -> bool:
        return bool(self.pending)

    def start(self, tag: int, timeout: int, count: int = 1) -> None:
        """Delivery `tag` (and the `count - 1` after it, a run made at once) must be acked within `timeout` ms:
        one clock read and one arm for a whole run, since it is one loop step (nothing happens without timers)."""
        if self._slot.timers is None:
            return
        deadline = self._now() + timeout / 1000.0
        pending = self.pending.get(timeout)
        if pending is None:
            pending = self.pending[timeout] = deque()
        if count == 1:
            pending.append((deadline, tag))
        else:
            pending.extend([(deadline, run_tag) for run_tag in range(tag, tag + count)])
        self._slot.arm(deadline)

    def prune(self, unacked: Container[int]) -> None:
        """Drop settled deliveries from the front of each deque (acks mostly come oldest first)."""
        for timeout, pending in list(self.pending.items()):
            while pending and pending[0][1] not in unacked:
                pending.popleft()
            if not pending:
                del self.pending[timeout]

    def expired(self, unacked: Container[int]) -> int | None:
        """The timeout (ms) an unacked delivery has run past, if any; otherwise re-arm for the earliest."""
        self.prune(unacked)
        now = self._now()
        earliest: float | None = None
        for timeout, pending in self.pending.items():
            deadline = pending[0][0]
            if deadline <= now:
                return timeout
            if earliest is None or deadline < earliest:
                earliest = deadline
        if earliest is not None:
            self._slot.arm(earliest)
        return None

    def clear(self) -> None:
        self._slot.cancel()
        self.pending.clear()
