"""Which consumer of a queue gets the next message: consumer priorities, round robin within a priority,
an exclusive consumer, and single active consumer.

Consumers with credit wait in per-priority round-robin deques, highest priority first; a consumer without
credit leaves its deque (it is `blocked`) and comes back through `admit`, so choosing one costs O(1)
amortised. With x-single-active-consumer only the active consumer (the first registered) is ever admitted;
when it goes, the next one in registration order takes over.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Protocol

from leveret.broker.errors import AccessRefused


class Consumer(Protocol):
    """What the rotation reads of a consumer (broker/consumer.py `Consumer`, which names the queue: a
    Protocol here keeps this module out of the channel <-> consumer <-> queue circle)."""

    priority: int
    exclusive: bool
    blocked: bool  # out of the rotation (no credit, not admitted yet, or removed)

    def has_credit(self) -> bool:
        """Whether it may take one more message now."""


class ConsumerRotation:
    """The consumers of one queue and the order they take messages in."""

    __slots__ = ("consumers", "priorities", "_levels", "_exclusive", "active", "_single_active", "_dispatch")

    def __init__(self, single_active: bool, dispatch: Callable[[], Any]) -> None:
        """`dispatch` is the queue's: called when a consumer is admitted (so a queue can bind `admit` as its
        `unblock`, one call per credit refill)."""
        # registration order (single active consumer hands over in it)
        self.consumers: dict[Consumer, None] = {}
        # priorities with a deque, descending; changed in place only, so a queue may hold on to the list
        self.priorities: list[int] = []
        self._levels: dict[int, deque[Consumer]] = {}
        self._exclusive: Consumer | None = None
        self.active: Consumer | None = None  # with single active consumer, the one receiving messages
        self._single_active = single_active
        self._dispatch = dispatch

    def add(self, consumer: Consumer, where: str) -> None:
        """Register a consumer, blocked until admitted; AccessRefused if `where` (the queue) is in exclusive use."""
        if self._exclusive is not None or (consumer.exclusive and self.consumers):
            raise AccessRefused(f"{where} in exclusive use")
        self.consumers[consumer] = None
        if consumer.exclusive:
            self._exclusive = consumer
        if self._single_active and self.active is None:
            self.active = consumer
        consumer.blocked = True

    def remove(self, consumer: Consumer) -> Consumer | None:
        """Take a registered consumer out; returns the consumer that became active in its place, if any."""
        del self.consumers[consumer]
        if self._exclusive is consumer:
            self._exclusive = None
        level = self._levels.get(consumer.priority)
        if level is not None and not consumer.blocked:
            level.remove(consumer)
        consumer.blocked = True
        if not any(c.priority == consumer.priority for c in self.consumers):
            self._levels.pop(consumer.priority, None)
            self.priorities[:] = sorted(self._levels, reverse=True)
        if self.active is consumer:
            # the next consumer in registration order takes over
            self.active = next(iter(self.consumers), None)
            return self.active
        return None

    def admit(self, consumer: Consumer) -> None:
        """Put a blocked consumer with credit (back) into rotation and dispatch to it; nothing if it may not
        take messages now."""
        if not consumer.blocked or consumer not in self.consumers or not consumer.has_credit():
            return
        if self.active is not None and consumer is not self.active:
            return  # single active consumer: the others wait their turn
        consumer.blocked = False
        level = self._levels.get(consumer.priority)
        if level is None:
            level = self._levels[consumer.priority] = deque()
            self.priorities[:] = sorted(self._levels, reverse=True)
        level.append(consumer)
        self._dispatch()

    def alone(self) -> bool:
        """Whether exactly one consumer is in rotation (others, if any, are blocked)."""
        priorities = self.priorities
        return len(priorities) == 1 and len(self._levels[priorities[0]]) == 1

    def next(self) -> Consumer | None:
        """The consumer to deliver to now (it moves to the back of its level); None if nobody has credit.
        Consumers met without credit leave the rotation, blocked."""
        for priority in self.priorities:
            level = self._levels[priority]
            while level:
                consumer = level[0]
                if consumer.has_credit():
                    level.rotate(-1)
                    return consumer
                level.popleft()
                consumer.blocked = True
        return None

    def clear(self) -> list[Consumer]:
        """Remove and return every consumer, blocked (the queue is being deleted)."""
        consumers = list(self.consumers)
        for consumer in consumers:
            consumer.blocked = True
        self.consumers.clear()
        self._levels.clear()
        self.priorities.clear()
        self._exclusive = None
        self.active = None
        return consumers
