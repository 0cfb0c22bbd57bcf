"""What one user may do in one vhost, and RabbitMQ's texts for what it may not.

`Grants` is fixed when a connection opens (RabbitMQ's semantics: a later change of permissions applies to
new connections, the channels already open keep theirs); `ChannelGuard` is one channel's cache of the
decisions already made, so that a publish to an exchange checked once costs one set lookup.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Permission:
    """The configure / write / read patterns of one (user, vhost) permission row."""

    configure: str = ".*"
    write: str = ".*"
    read: str = ".*"

    def pattern(self, permission: str) -> str:
        return getattr(self, permission)


@dataclass(frozen=True)
class TopicPermission:
    """The write / read patterns on routing keys of one topic exchange."""

    write: str = ".*"
    read: str = ".*"


@dataclass
class Grants:
    """One user's rights in one vhost: its permission row and its topic permissions there."""

    user: str
    vhost: str
    permission: Permission
    topics: dict[str, TopicPermission] = field(default_factory=dict)
    # The values of {username}, {vhost}, ... in topic patterns.
    variables: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.variables = {"username": self.user, "vhost": self.vhost, **self.variables}

    def allows(self, kind: str, name: str, permission: str) -> bool:
        target = resource_name(kind, name).encode("utf-8")
        return compiled(self.permission.pattern(permission)).search(target) is not None

    def check(self, kind: str, name: str, permission: str) -> None:
        if not self.allows(kind, name, permission):
            raise AccessDenied(resource_refusal(kind, name, self.vhost, self.user))

    def has_topic_rules(self, exchange: str) -> bool:
        return exchange in self.topics

    def allows_topic(self, exchange: str, routing_key: str, permission: str) -> bool:
        """Whether `routing_key` may be written to (or bound from) topic exchange `exchange`; no topic
        permission for that exchange allows everything."""
        rules = self.topics.get(exchange)
        if rules is None:
            return True
        pattern = expand(rules.write if permission == WRITE else rules.read, self.variables)
        return compiled(pattern).search(routing_key.encode("utf-8")) is not None

    def check_topic(self, exchange: str, routing_key: str, permission: str) -> None:
        if not self.allows_topic(exchange, routing_key, permission):
            raise AccessDenied(topic_refusal(routing_key, exchange, self.vhost, self.user))


class ChannelGuard:
    """One channel's permission checks, each decision that allowed remembered (refusals close the channel,
    so there is nothing to remember of them)."""

    __slots__ = ("grants", "_allowed", "publishable")

    def __init__(self, grants: Grants) -> None:
        self.grants = grants
        self._allowed: set[tuple[str, str, str]] = set()
        # What this channel may publish to without asking again, the publish path's lookups: exchange names
        # (write allowed, and no topic permission for them, so their type does not matter) and, for an
        # exchange with topic permissions, (exchange, routing key) pairs found allowed while it was a topic
        # exchange (allowed as a topic key, allowed whatever the exchange becomes).
        self.publishable: set[str | tuple[str, str]] = set()

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
        """The topic permission check of a topic exchange (the caller knows the exchange is one)."""
        if exchange not in self.grants.topics:
            return
        key = ("topic:" + permission, exchange, routing_key)
        if key not in self._allowed:
            self.grants.check_topic(exchange, routing_key, permission)
            self._remember(key)

    def check_publish(self, exchange: str, routing_key: str, topic: bool) -> None:
        """Write on `exchange`, then (`topic`: it is an existing topic exchange) the routing key's topic
        permission; remembers an exchange that needs no per-key check in `publishable`."""
        self.check(EXCHANGE, exchange, WRITE)
        if exchange not in self.grants.topics:
            self._publishable(exchange)
        elif topic:
            self.check_topic(exchange, routing_key, WRITE)
            self._publishable((exchange, routing_key))

    def _publishable(self, what: str | tuple[str, str]) -> None:
        if len(self.publishable) >= GUARD_CACHE_LIMIT:
            self.publishable.clear()
        self.publishable.add(what)
