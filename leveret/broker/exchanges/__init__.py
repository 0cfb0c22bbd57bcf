"""Exchange types, one module each, and the registry that maps a type name to its class.

Adding a type (x-consistent-hash, x-delayed-message) is a new module with an `Exchange` subclass plus
one `register_exchange_type` call here.
"""

from __future__ import annotations

from leveret.broker.exchanges.base import Exchange
from leveret.broker.exchanges.consistent_hash import ConsistentHashExchange
from leveret.broker.exchanges.delayed import DelayedMessageExchange
from leveret.broker.exchanges.direct import DefaultExchange, DirectExchange
from leveret.broker.exchanges.fanout import FanoutExchange
from leveret.broker.exchanges.headers import HeadersExchange
from leveret.broker.exchanges.topic import TopicExchange

EXCHANGE_TYPES: dict[str, type[Exchange]] = {}


def register_exchange_type(cls: type[Exchange]) -> None:
    """Make `cls` declarable under its `type_name`."""
    EXCHANGE_TYPES[cls.type_name] = cls


def exchange_class(type_name: str) -> type[Exchange] | None:
    """The class for a declared type name, or None when the type is unknown."""
    return EXCHANGE_TYPES.get(type_name)


for _cls in (
    DirectExchange,
    FanoutExchange,
    TopicExchange,
    HeadersExchange,
    ConsistentHashExchange,
    DelayedMessageExchange,
):
    register_exchange_type(_cls)

__all__ = [
    "EXCHANGE_TYPES",
    "ConsistentHashExchange",
    "DelayedMessageExchange",
    "DefaultExchange",
    "DirectExchange",
    "Exchange",
    "FanoutExchange",
    "HeadersExchange",
    "TopicExchange",
    "exchange_class",
    "register_exchange_type",
]
