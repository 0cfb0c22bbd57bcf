"""What the management API needs of the running broker process, and where the app keeps it.

The HTTP package must not import the server (see tests/test_architecture.py), so it names the few
attributes it reads as a Protocol; `leveret.server.app.Server` satisfies it.
"""

from __future__ import annotations

from typing import Any, Collection, Protocol

from aiohttp import web

from leveret.broker.vhost import Broker
from leveret.config import Settings


class ManagementTarget(Protocol):
    """The running broker as the management API sees it."""

    settings: Settings
    broker: Broker
    users: Any  # leveret.access.AccessRegistry: authenticate(name, password, from_loopback=...)
    connections: Collection[Any]  # open AMQP connections; each has .session.channels
    port: int  # the bound AMQP port
    http_port: int | None  # the bound HTTP port (None: not listening)
    memory_alarm: Any  # .used, .limit, .active (server/memory_alarm.py); None before start
    disk_alarm: Any  # .free, .limit, .active (server/flow.py); None before start
    output_pauses: int  # times a connection stopped being read for its unsent output
    memory_budget: Any  # .limit, .used: the paged queues' shared budget (broker/paging.py MemoryBudget)


TARGET = web.AppKey("target", ManagementTarget)


def target_of(request: web.Request) -> ManagementTarget:
    """The broker serving this request."""
    return request.app[TARGET]
