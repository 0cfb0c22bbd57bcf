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

A refusal is `AccessRefused` with RabbitMQ's text: 403, the channel closed, nothing changed. Permissions
are read live (access/grants.py) and each channel remembers what it was allowed (`ChannelGuard`), as
RabbitMQ does: a change applies to the next decision not already made. A user with ".*" three times and
no topic permission gets its connection's handlers unwrapped (nothing to check) until its permissions
change. Otherwise the publish path's fast case is a dict lookup (the channel's guard), the exchange's
(which routing does anyway) and a set lookup: an exchange object found writable and not a topic exchange,
or (exchange, routing key) allowed on a topic exchange. Every other check goes through the guard.
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
    """Whether every check would pass now: ".*" three times and no topic permission in the vhost."""
    row = grants.permissions.get((grants.user, grants.vhost))
    if row is None or not row.configure == row.write == row.read == ALL:
        return False
    return not any(key[0] == grants.user and key[1] == grants.vhost for key in grants.topic_permissions)


class PermissionChecks:
    """One connection's checks: its user's `Grants` in its vhost, and a `ChannelGuard` per open channel.

    While the user is unrestricted (`unrestricted`), `handlers` gives the connection its handlers as they
    are, so the common case pays nothing; the registry tells the server of each change, which asks again
    (server/session.py `permissions_changed`)."""

    def __init__(self, grants: Grants, vhost: Any, table: dict[type, Handler], publish: Callable[..., None]) -> None:
        self.grants = grants
        self.vhost = vhost
        self.table = table
        self.publish = publish
        self.unrestricted = True
        self._wrapped: tuple[dict[type, Handler], Callable[..., None]] | None = None
        # By channel number, with the channel it was made for: a reopened number gets a fresh guard.
        self._guards: dict[int, tuple[Any, ChannelGuard]] = {}

    def handlers(self) -> tuple[dict[type, Handler], Callable[..., None]]:
        """The handler table and publish path for the permissions as they are now."""
        self.unrestricted = unrestricted(self.grants)
        if self.unrestricted:
            return self.table, self.publish
        if self._wrapped is None:
            self._wrapped = self._wrap(self.table, self.publish)
        return self._wrapped

    def guard(self, ch: Any) -> ChannelGuard:
        entry = self._guards.get(ch.number)
        if entry is None or entry[0] is not ch:
            entry = self._guards[ch.number] = (ch, ChannelGuard(self.grants))
        return entry[1]

    # -- wrapping the handlers ----------------------------------------------------------------------

    def _wrap(self, table: dict[type, Handler], publish: Callable[..., None]) -> tuple[dict[type, Handler],
                                                                                      Callable[..., None]]:
        """The handler table and publish path with the checks in front."""
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
        exchanges = self.vhost.exchanges
        check_publish = self._check_publish

        def checked_publish(ch: Any, m: Any, properties: Any, body: bytes) -> None:
            entry = guards.get(ch.number)
            exchange = exchanges.get(m.exchange)
            if entry is None or entry[0] is not ch or (exchange not in entry[1].publishable
                                                       and (exchange, m.routing_key) not in entry[1].publishable):
                check_publish(ch, m, exchange)
            publish(ch, m, properties, body)

        return wrapped, checked_publish

    def _checked(self, check: Callable[[ChannelGuard, Any], None], handler: Handler, ch: Any, m: Any) -> None:
        try:
            check(self.guard(ch), m)
        except AccessDenied as denied:
            raise AccessRefused(denied.text) from None
        handler(ch, m)

    def _check_publish(self, ch: Any, m: Any, exchange: Any) -> None:
        guard = self.guard(ch)
        try:
            guard.check(EXCHANGE, m.exchange, WRITE)
            if exchange is None or exchange.internal:
                return  # the vhost refuses these next (404, or an internal exchange): nothing to remember
            if exchange.type_name == "topic":
                guard.check_topic(m.exchange, m.routing_key, WRITE)
                # Allowed now, remembered as RabbitMQ's channel does (a topic permission set later applies
                # to keys not yet used).
                guard.remember_publishable((exchange, m.routing_key))
            else:
                # An exchange's type never changes (a redeclared one is a new object): write is all it needs.
                guard.remember_publishable(exchange)
        except AccessDenied as denied:
            raise AccessRefused(denied.text) from None

    def queue_authorizer(self, ch: Any, m: Any) -> Callable[[str], None] | None:
        """What the vhost calls with a declared queue's final name (broker/registry.py `authorize`)."""
        if m.passive or self.unrestricted:
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
