"""Fanout exchanges: every bound destination gets every message; the routing key is ignored."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from leveret.broker.exchanges.base import Arguments, CountedDestinations, Exchange


class FanoutExchange(Exchange):
    """Routes to all destinations, each once however many bindings it has."""

    type_name = "fanout"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._all = CountedDestinations()

    def _add(self, destination: Any, routing_key: str, arguments: Arguments) -> None:
        self._all.add(destination)

    def _remove(self, destination: Any, routing_key: str, arguments: Arguments) -> None:
        self._all.remove(destination)

    def route(self, routing_key: str, headers: Mapping[str, Any] | None) -> Iterable[Any]:
        return self._all.counts.keys()
