"""The broker model: vhosts, exchanges, queues, consumers and channels, with no asyncio and no file IO of its own.

Durable queues and exchanges append, ack and page through the `leveret.store.api` interfaces they are given;
tests/test_architecture.py checks that nothing here imports os, pathlib, threading, asyncio or the server.

The server drives it through `Broker`, `VHost` and `Channel`; the broker reaches the server only through
`DeliveryTarget`. Errors are the protocol-neutral classes in `leveret.broker.errors`.
"""

from leveret.broker.channel import Channel, DeliveryTarget
from leveret.broker.errors import (
    AccessRefused,
    BrokerError,
    CommandInvalid,
    InternalError,
    NotAllowed,
    NotFound,
    NotImplementedByBroker,
    PreconditionFailed,
    ResourceLocked,
)
from leveret.broker.message import Message, Properties
from leveret.broker.queue import Queue
from leveret.broker.route_result import RouteResult
from leveret.broker.vhost import Broker, VHost

__all__ = [
    "AccessRefused",
    "Broker",
    "BrokerError",
    "Channel",
    "CommandInvalid",
    "DeliveryTarget",
    "InternalError",
    "Message",
    "NotAllowed",
    "NotFound",
    "NotImplementedByBroker",
    "PreconditionFailed",
    "Properties",
    "Queue",
    "ResourceLocked",
    "RouteResult",
    "VHost",
]
