"""Every shovel of one broker: the `shovel` runtime-parameter component, and the listing GET /api/shovels shows.

`Shovels` is what the runtime parameters call (`validate` before a value is stored, `applied` once it is
durable and again at recovery, `cleared` when it is deleted). A shovel applied before the event loop runs
(recovery) starts with `start()`. A shovel that finished its `src-delete-after` count deletes its own
parameter through `forget`, as RabbitMQ's does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from leveret.shovel.definition import parse
from leveret.shovel.endpoints import LocalBroker, without_password
from leveret.shovel.tls import ClientTLS
from leveret.shovel.worker import TERMINATED, Shovel

log = logging.getLogger("leveret.shovel")


class Shovels:
    """The dynamic shovels of one broker, keyed by (vhost, name)."""

    def __init__(self, node: str, local: Callable[[], LocalBroker | None],
                 forget: Callable[[str, str], Any] | None = None, tls: ClientTLS = ClientTLS()) -> None:
        """`local`: how to reach this broker once it listens; `forget(vhost, name)`: delete a finished
        shovel's parameter (the runtime parameters' clear); `tls`: what amqps ends trust (tls.py)."""
        self.node = node
        self.tls = tls
        self.local = local
        self.forget = forget
        self.shovels: dict[tuple[str, str], Shovel] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stopping: set[asyncio.Task] = set()
        # Totals that outlive the shovels themselves (/metrics counters must not go down).
        self.finished_moved = 0
        self.finished_reconnects = 0

    # --- the parameter component -------------------------------------------------------------------------

    def validate(self, vhost: str, name: str, value: Any) -> None:
        parse(name, value)

    def applied(self, vhost: str, name: str, value: Any) -> None:
        definition = parse(name, value)
        self._discard((vhost, name))
        shovel = Shovel(vhost, name, definition, None, self.node, self._finished, self.tls)
        self.shovels[(vhost, name)] = shovel
        if self.loop is not None:
            self._start(shovel)

    def cleared(self, vhost: str, name: str) -> None:
        self._discard((vhost, name))

    # --- running --------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every shovel applied so far (the broker now listens, so `amqp://` can be reached)."""
        self.loop = asyncio.get_running_loop()
        for shovel in self.shovels.values():
            self._start(shovel)

    def restart(self, vhost: str, name: str) -> bool:
        """Stop and start one shovel afresh (DELETE /api/shovels/vhost/{vhost}/{name}/restart); False when
        there is no such shovel."""
        shovel = self.shovels.get((vhost, name))
        if shovel is None:
            return False
        self.applied(vhost, name, shovel.definition.value)
        return True

    async def stop(self) -> None:
        """Stop every shovel (the broker is stopping): their unacknowledged messages return to the sources."""
        shovels, self.shovels = list(self.shovels.values()), {}
        self.loop = None
        await asyncio.gather(*(shovel.stop() for shovel in shovels), *self._stopping, return_exceptions=True)

    def _start(self, shovel: Shovel) -> None:
        shovel.local = self.local()
        shovel.start()

    def _discard(self, key: tuple[str, str]) -> None:
        shovel = self.shovels.pop(key, None)
        if shovel is None:
            return
        self._count_out(shovel)
        if self.loop is not None:
            task = self.loop.create_task(shovel.stop())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    def _count_out(self, shovel: Shovel) -> None:
        self.finished_moved += shovel.moved
        self.finished_reconnects += shovel.reconnects

    def _finished(self, shovel: Shovel) -> None:
        key = (shovel.vhost, shovel.name)
        if self.shovels.get(key) is not shovel:
            return
        log.info("shovel %s in vhost %s moved %d messages and deletes itself", shovel.name, shovel.vhost,
                 shovel.moved)
        if self.forget is not None:
            self.forget(shovel.vhost, shovel.name)  # the parameters call cleared(), which discards it
        if self.shovels.get(key) is shovel:  # no stored parameter (or it could not be deleted): gone all the same
            del self.shovels[key]
            self._count_out(shovel)

    # --- what the management API and /metrics show ------------------------------------------------------------

    def status(self, vhost: str | None = None) -> list[dict[str, Any]]:
        """GET /api/shovels[/{vhost}] in rabbitmq_shovel_management 3.10's shape."""
        rows = []
        for (shovel_vhost, name), shovel in sorted(self.shovels.items()):
            if vhost is not None and shovel_vhost != vhost:
                continue
            # `forwarded`: messages this shovel moved (a count RabbitMQ 3.10's listing does not have; the
            # dashboard shows it).
            row: dict[str, Any] = {"node": self.node, "timestamp": _timestamp(shovel.since), "name": name,
                                   "vhost": shovel_vhost, "type": "dynamic", "state": shovel.state,
                                   "forwarded": shovel.moved}
            if shovel.state == TERMINATED and shovel.reason is not None:
                row["reason"] = shovel.reason
            elif shovel.state != "starting":
                row.update(_endpoints(shovel))
            rows.append(row)
        return rows

    def totals(self) -> dict[str, int]:
        """Messages moved and reconnects, over every shovel this broker ran since it started."""
        live = list(self.shovels.values())
        return {"moved": self.finished_moved + sum(s.moved for s in live),
                "reconnects": self.finished_reconnects + sum(s.reconnects for s in live)}


def _endpoints(shovel: Shovel) -> dict[str, Any]:
    d = shovel.definition
    row: dict[str, Any] = {"src_uri": without_password(d.src_uris[0]), "src_protocol": "amqp091",
                           "dest_protocol": "amqp091", "dest_uri": without_password(d.dest_uris[0])}
    row.update(d.ends("_"))
    return row


def _timestamp(seconds: float) -> str:
    """RabbitMQ's listing time: local 'YYYY-MM-DD H:MM:SS' with the hour not zero-padded."""
    t = time.localtime(seconds)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d} {t.tm_hour}:{t.tm_min:02d}:{t.tm_sec:02d}"
