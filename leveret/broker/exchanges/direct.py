"""Direct exchanges: a dict from routing key to destinations, one lookup per publish.

Also the default exchange (""), a direct exchange with no stored bindings: every queue is implicitly
bound under its own name, so routing is a lookup in the vhost's queue table.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from leveret.broker.exchanges.base import Arguments, CountedDestinations, Exchange


class DirectExchange(Exchange):
    """Routes to destinations bound with exactly the message's routing key."""

    type_name = "direct"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._table: dict[str, CountedDestinations] = {}

    def _add(self, destination: Any, routing_key: str, arguments: Arguments) -> None:
        entry = self._table.get(routing_key)
        if entry is None:
            entry = self._table[routing_key] = CountedDestinations()
        entry.add(destination)

    def _remove(self, destination: Any, routing_key: str, arguments: Arguments) -> None:
        entry = self._table.get(routing_key)
        if entry is not None:
            entry.remove(destination)
            if not entry:
                del self._table[routing_key]

    def route(self, routing_key: str, headers: Mapping[str, Any] | None) -> Iterable[Any]:
        entry = self._table.get(routing_key)
        return entry.counts.keys() if entry is not None else ()


class DefaultExchange(DirectExchange):
    """The nameless exchange: routing key = queue name. It cannot be bound, unbound or deleted."""

    def __init__(self, queues: Mapping[str, Any], vhost_name: str = "/") -> None:
        super().__init__("", vhost_name, durable=True)
        self._queues = queues

    def route(self, routing_key: str, headers: Mapping[str, Any] | None) -> Iterable[Any]:
        queue = self._queues.get(routing_key)
        return (queue,) if queue is not None else ()
