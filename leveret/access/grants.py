"""What one user may do in one vhost, and RabbitMQ's texts for what it may not.

`Grants` reads the registry's permission tables at each check, as RabbitMQ reads its own: a changed
permission applies to the next operation that is not already decided. `ChannelGuard` is one channel's
cache of the decisions that allowed (RabbitMQ's semantics: an open channel keeps what it was allowed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leveret.access.patterns import compiled, expand

CONFIGURE = "configure"
WRITE = "write"
READ = "read"
QUEUE = "queue"
EXCHANGE = "exchange"
# RabbitMQ checks (and names, in refusals) the default exchange as "amq.default".
DEFAULT_EXCHANGE_NAME = "amq.default"
# Decisions remembered per channel before the cache starts over (a client cycling through routing keys
# must not grow a channel without bound; RabbitMQ keeps the last 12).
GUARD_CACHE_LIMIT = 1024


class AccessDenied(Exception):
    """An operation the user's permissions do not allow; `text` is RabbitMQ's wording (403 ACCESS_REFUSED)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def resource_name(kind: str, name: str) -> str:
    return DEFAULT_EXCHANGE_NAME if kind == EXCHANGE and name == "" else name


def resource_refusal(kind: str, name: str, vhost: str, user: str) -> str:
    return f"access to {kind} '{resource_name(kind, name)}' in vhost '{vhost}' refused for user '{user}'"


def topic_refusal(routing_key: str, exchange: str, vhost: str, user: str) -> str:
    return (f"access to topic '{routing_key}' in exchange '{exchange}' in vhost '{vhost}' "
            f"refused for user '{user}'")


class Grants:
    """One user's rights in one vhost: its permission row and topic permissions, looked up live in the
    registry's tables (rows with `configure`/`write`/`read`, store/api.py's PermissionDef and
    TopicPermissionDef)."""

    def __init__(self, user: str, vhost: str, permissions: Mapping[tuple[str, str], Any],
                 topic_permissions: Mapping[tuple[str, str, str], Any], variables: Mapping[str, str] | None = None) -> None:
        self.user = user
        self.vhost = vhost
        self._key = (user, vhost)
        self.permissions = permissions
        self.topic_permissions = topic_permissions
        # The values of {username}, {vhost}, ... in topic patterns.
        self.variables = {"username": user, "vhost": vhost, **(variables or {})}

    def allows(self, kind: str, name: str, permission: str) -> bool:
        row = self.permissions.get(self._key)
        if row is None:  # the row was cleared since the connection opened: nothing is allowed
            return False
        target = resource_name(kind, name).encode("utf-8")
        return compiled(getattr(row, permission)).search(target) is not None

    def check(self, kind: str, name: str, permission: str) -> None:
        if not self.allows(kind, name, permission):
            raise AccessDenied(resource_refusal(kind, name, self.vhost, self.user))

    def topic_rule(self, exchange: str) -> Any:
        """The topic permission row for `exchange`, or None (then every routing key is allowed)."""
        return self.topic_permissions.get((self.user, self.vhost, exchange))

    def allows_topic(self, exchange: str, routing_key: str, permission: str) -> bool:
        """Whether `routing_key` may be written to (or bound from) topic exchange `exchange`."""
        rule = self.topic_rule(exchange)
        if rule is None:
            return True
        pattern = expand(rule.write if permission == WRITE else rule.read, self.variables)
        return compiled(pattern).search(routing_key.encode("utf-8")) is not None

    def check_topic(self, exchange: str, routing_key: str, permission: str) -> None:
        if not self.allows_topic(exchange, routing_key, permission):
            raise AccessDenied(topic_refusal(routing_key, exchange, self.vhost, self.user))


class ChannelGuard:
    """One channel's permission checks, each decision that allowed remembered (refusals close the channel,
    so there is nothing to remember of them). `publishable` is the server's publish fast path: opaque keys
    it found allowed, cleared with the rest when the cache is full."""

    __slots__ = ("grants", "_allowed", "publishable")

    def __init__(self, grants: Grants) -> None:
        self.grants = grants
        self._allowed: set[tuple[str, str, str]] = set()
        self.publishable: set[Any] = set()

    def _remember(self, key: tuple[str, str, str]) -> None:
        if len(self._allowed) >= GUARD_CACHE_LIMIT:
            self._allowed.clear()
        self._allowed.add(key)

    def check(self, kind: str, name: str, permission: str) -> None:
        key = (kind, name, permission)
        if key not in self._allowed:
            self.grants.check(kind, name, permission)
            self._remember(key)

    def check_topic(self, exchange: str, routing_key: str, permission: str) -> None:
        """The topic permission check of a routing key on a topic exchange (the caller knows it is one).
        Without a topic permission for the exchange every key is allowed, and nothing is remembered: a
        topic permission set later applies to the next key."""
        key = ("topic:" + permission, exchange, routing_key)
        if key in self._allowed:
            return
        if self.grants.topic_rule(exchange) is None:
            return
        self.grants.check_topic(exchange, routing_key, permission)
        self._remember(key)

    def remember_publishable(self, key: Any) -> None:
        if len(self.publishable) >= GUARD_CACHE_LIMIT:
            self.publishable.clear()
        self.publishable.add(key)
