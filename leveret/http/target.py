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
    users: Any  # leveret.access.AccessRegistry: authenticate(...), users, vhosts, permissions and their changes
    connections: Collection[Any]  # open AMQP connections; each has .session.channels
    port: int  # the bound AMQP port
    http_port: int | None  # the bound HTTP port (None: not listening)
    memory_alarm: Any  # .used, .limit, .active (server/memory_alarm.py); None before start
    disk_alarm: Any  # .free, .limit, .active (server/flow.py); None before start
    errorlog: Any  # .warning(message, *args): one rate-limited line (server/errorlog.py)
    output_pauses: int  # times a connection stopped being read for its unsent output
    memory_budget: Any  # .limit, .used: the paged queues' shared budget (broker/paging.py MemoryBudget)
    durability: Any  # group commits (server/durability.py): .kick(), .wait_for_commit(waiter, seq); None before start
    ssl_port: int | None  # the bound amqps port (None: not listening)
    shovels: Any  # leveret.shovel.manager.Shovels: status(vhost), restart(vhost, name), totals()
    move_tasks: Any  # server/move_tasks.py MoveTasks: start(...), get(id), list()
    kafka: Any  # server/kafka_listener.py's KafkaListener: topics_status(), groups_status(); None when it is off

    def put_vhost(self, name: str, description: str = "", tags: tuple[str, ...] = ()) -> bool:
        """Create (True) or update (False) a vhost, in the access registry and the broker."""

    def set_vhost_limit(self, name: str, limit: str, value: int | None) -> None:
        """Set (None: clear) a vhost's max-connections or max-queues."""

    def delete_vhost(self, name: str) -> bool:
        """Delete a vhost, close its connections, delete everything in it; False when it does not exist."""


TARGET = web.AppKey("target", ManagementTarget)


def target_of(request: web.Request) -> ManagementTarget:
    """The broker serving this request."""
    return request.app[TARGET]
