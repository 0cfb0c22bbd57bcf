"""Permission checks on a connection's channel methods, as RabbitMQ 3.10 makes them.

The rules (each checked against the local RabbitMQ by tests/diff/test_access_ops_diff.py):

- passive declares and basic.cancel are never checked;
- queue.declare: configure on the queue (a server-named queue's drawn name), after the reserved-name rules;
  creating it with `x-dead-letter-exchange` also needs read on the queue and write on that exchange;
- exchange.declare: after the type and default-exchange checks, configure on the exchange; creating it
  with `alternate-exchange` also needs read on it and write on the alternate;
- queue.delete, exchange.delete: configure (exchange.delete after the default and system-exchange checks);
- queue.bind/unbind, exchange.bind/unbind: write on the destination, then (after the default-exchange
  check) read on the source, then the topic read permission of the routing key on a topic source;
- basic.publish: write on the exchange before it is looked up, then (for an existing, non-internal topic
  exchange) the topic write permission of the routing key;
- basic.consume, basic.get, queue.purge: read on the queue.

A refusal is `AccessRefused` with RabbitMQ's text: 403, the channel closed, nothing changed. A user whose
permissions are ".*" three times with no topic permissions can do all of it, so its connection gets the
handlers unwrapped and pays nothing; the others check through a per-channel `ChannelGuard` that remembers
what it allowed, so a publish to an exchange already checked costs a dict and a set lookup (to an
exchange with topic permissions, with a routing key already allowed: one more set lookup).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from leveret.access import CONFIGURE, EXCHANGE, QUEUE, READ, WRITE, AccessDenied, ChannelGuard, Grants
from leveret.amqp import spec
from leveret.broker.arguments import as_text
from leveret.broker.errors import AccessRefused
from leveret.broker.exchanges.registry import exchange_class

Handler = Callable[[Any, Any], None]
ALL = ".*"


def unrestricted(grants: Grants) -> bool:
    """Whether every check would pass: nothing to check at all."""
    p = grants.permission
    return p.configure == p.write == p.read == ALL and not grants.topics


class PermissionChecks:
    """One connection's checks: its user's `Grants` in its vhost, and a `ChannelGuard` per open channel."""

    def __init__(self, grants: Grants, vhost: Any) -> None:
        self.grants = grants
        self.vhost = vhost
        # By channel number, with the channel it was made for: a reopened number gets a fresh guard.
        self._guards: dict[int, tuple[Any, ChannelGuard]] = {}

    def guard(self, ch: Any) -> ChannelGuard:
        entry = self._guards.get(ch.number)
        if entry is None or entry[0] is not ch:
            entry = self._guards[ch.number] = (ch, ChannelGuard(self.grants))
        return entry[1]

    # -- wrapping the handlers ----------------------------------------------------------------------

    def wrap(self, table: dict[type, Handler], publish: Callable[..., None]) -> tuple[dict[type, Handler],
                                                                                     Callable[..., None]]:
        """The handler table and publish path with the checks in front (unchanged for an unrestricted user)."""
        if unrestricted(self.grants):
            return table, publish
        checks: dict[type, Callable[[ChannelGuard, Any], None]] = {
            spec.ExchangeDeclare: self._exchange_declare,
            spec.ExchangeDelete: self._exchange_delete,
            spec.ExchangeBind: self._exchange_bind,
            spec.ExchangeUnbind: self._exchange_bind,
            spec.QueueBind: self._queue_bind,
            spec.QueueUnbind: self._queue_bind,
            spec.QueuePurge: self._read_queue,
            spec.QueueDelete: self._queue_delete,
            spec.BasicConsume: self._read_queue,
            spec.BasicGet: self._read_queue,
        }
        wrapped = dict(table)
        for method, check in checks.items():
            wrapped[method] = partial(self._checked, check, table[method])
        guards = self._guards
        check_publish = self._check_publish

        def checked_publish(ch: Any, m: Any, properties: Any, body: bytes) -> None:
            # The hot path: a dict and a set lookup once the channel has published there (one more set
            # lookup for an exchange with topic permissions and a routing key already allowed).
            entry = guards.get(ch.number)
            if entry is None or entry[0] is not ch:
                check_publish(ch, m)
            else:
                publishable = entry[1].publishable
                if m.exchange not in publishable and (m.exchange, m.routing_key) not in publishable:
                    check_publish(ch, m)
            publish(ch, m, properties, body)

        return wrapped, checked_publish

    def _checked(self, check: Callable[[ChannelGuard, Any], None], handler: Handler, ch: Any, m: Any) -> None:
        try:
            check(self.guard(ch), m)
        except AccessDenied as denied:
            raise AccessRefused(denied.text) from None
        handler(ch, m)

    def _check_publish(self, ch: Any, m: Any) -> None:
        exchange = self.vhost.exchanges.get(m.exchange)
        # Topic permissions apply to an existing topic exchange; an internal one is refused first (the vhost).
        topic = exchange is not None and exchange.type_name == "topic" and not exchange.internal
        try:
            self.guard(ch).check_publish(m.exchange, m.routing_key, topic)
        except AccessDenied as denied:
            raise AccessRefused(denied.text) from None

    def queue_authorizer(self, ch: Any, m: Any) -> Callable[[str], None] | None:
        """What the vhost calls with a declared queue's final name (broker/registry.py `authorize`)."""
        if unrestricted(self.grants) or m.passive:
            return None
        return partial(self._queue_declare, self.guard(ch), m.arguments or {})

    # -- the rules --------------------------------------------------------------------------------

    def _queue_declare(self, guard: ChannelGuard, arguments: dict, name: str) -> None:
        try:
            guard.check(QUEUE, name, CONFIGURE)
            if name not in self.vhost.queues:
                dlx = as_text(arguments.get("x-dead-letter-exchange"))
                if isinstance(dlx, str):  # another type is the vhost's 406
                    guard.check(QUEUE, name, READ)
                    guard.check(EXCHANGE, dlx, WRITE)
        except AccessDenied as denied:
            raise AccessRefused(denied.text) from None

    def _exchange_declare(self, guard: ChannelGuard, m: Any) -> None:
        name = m.exchange
        if m.passive or name == "" or exchange_class(m.type) is None:
            return  # passive is never checked; the vhost refuses the rest first, as RabbitMQ does
        guard.check(EXCHANGE, name, CONFIGURE)
        if name not in self.vhost.exchanges:
            alternate = as_text((m.arguments or {}).get("alternate-exchange"))
            if isinstance(alternate, str):
                guard.check(EXCHANGE, name, READ)
                guard.check(EXCHANGE, alternate, WRITE)

    def _exchange_delete(self, guard: ChannelGuard, m: Any) -> None:
        if m.exchange == "" or m.exchange.startswith("amq."):
            return  # the default and system exchanges are refused before permissions (by the vhost)
        guard.check(EXCHANGE, m.exchange, CONFIGURE)

    def _queue_delete(self, guard: ChannelGuard, m: Any) -> None:
        guard.check(QUEUE, m.queue, CONFIGURE)

    def _read_queue(self, guard: ChannelGuard, m: Any) -> None:
        guard.check(QUEUE, m.queue, READ)

    def _bind(self, guard: ChannelGuard, kind: str, destination: str, source: str, routing_key: str) -> None:
        guard.check(kind, destination, WRITE)
        if source == "" or (kind == EXCHANGE and destination == ""):
            return  # the vhost refuses binding to or from the default exchange first
        guard.check(EXCHANGE, source, READ)
        exchange = self.vhost.exchanges.get(source)
        if exchange is not None and exchange.type_name == "topic":
            guard.check_topic(source, routing_key, READ)

    def _queue_bind(self, guard: ChannelGuard, m: Any) -> None:
        self._bind(guard, QUEUE, m.queue, m.exchange, m.routing_key)

    def _exchange_bind(self, guard: ChannelGuard, m: Any) -> None:
        self._bind(guard, EXCHANGE, m.destination, m.source, m.routing_key)
