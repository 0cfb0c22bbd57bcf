"""Exchange types, one module each, and the registry that maps a type name to its class.

Adding a type (x-consistent-hash, x-delayed-message) is a new module with an `Exchange` subclass plus
one `register_exchange_type` call here. The registry itself is registry.py, which the delayed-message
exchange reads to route as its x-delayed-type.
"""

from __future__ import annotations

from leveret.broker.exchanges.base import Exchange
from leveret.broker.exchanges.consistent_hash import ConsistentHashExchange
from leveret.broker.exchanges.delayed import DelayedMessageExchange
from leveret.broker.exchanges.direct import DefaultExchange, DirectExchange
from leveret.broker.exchanges.fanout import FanoutExchange
from leveret.broker.exchanges.headers import HeadersExchange
from leveret.broker.exchanges.registry import EXCHANGE_TYPES, exchange_class, register_exchange_type
from leveret.broker.exchanges.topic import TopicExchange


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
