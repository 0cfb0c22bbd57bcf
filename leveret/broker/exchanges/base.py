"""What every exchange type shares: identity, flags, and binding bookkeeping.

A binding is (destination, routing key, arguments); two bindings differing only in arguments are
distinct, as in RabbitMQ. The base class keeps the authoritative set of bindings and a per-destination
index (so deleting a queue drops its bindings without scanning), and delegates the routing structure to
each type through `_add`, `_remove` and `route`. New types (consistent-hash, delayed) are new
subclasses registered in `exchanges/__init__.py`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Hashable, Iterable, Mapping

from leveret.broker.arguments import typed_key
from leveret.broker.stats import MessageStats

Arguments = Mapping[str, Any]


class _Marker:
    """Opens a table or an array in a frozen value; equal only to itself."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_TABLE = _Marker("<table>")
_ARRAY = _Marker("<array>")


def _key_of(item: tuple) -> Any:
    return item[0]


def freeze(value: Any) -> Hashable:
    """A hashable, order-independent image of a field-table value (binding identity).

    Flat: a preorder walk where each table is (_TABLE, size, key, value, ...) with keys sorted and each
    array (_ARRAY, size, value, ...). The sizes make it unambiguous, and a flat tuple hashes and compares
    without recursion, however deep the client nested its binding arguments.
    """
    if not isinstance(value, (Mapping, list, tuple)):
        return typed_key(value)
    out: list = []
    append = out.append
    todo: list = [value]
    pop, push = todo.pop, todo.append
    while todo:
        item = pop()
        if isinstance(item, Mapping):
            append(_TABLE)
            append(len(item))
            for key, child in sorted(item.items(), key=_key_of, reverse=True):
                push(child)
                push(_Key(key))
        elif isinstance(item, (list, tuple)):
            append(_ARRAY)
            append(len(item))
            for index in range(len(item) - 1, -1, -1):
                push(item[index])
        elif type(item) is _Key:
            append(item.key)
        else:
            append(typed_key(item))  # RabbitMQ tells I 1 from l 1 and t true: bindings differing so are two
    return tuple(out)


class _Key:
    """A table key waiting on freeze's stack (told apart from values that happen to be strings)."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key


class Exchange:
    """An exchange: routes (routing key, headers) to destinations (queues or exchanges)."""

    type_name: ClassVar[str] = ""
    # True for types that route on more than (routing key, headers): `route_message` is called instead
    needs_message: ClassVar[bool] = False

    def __init__(
        self,
        name: str,
        vhost_name: str = "/",
        *,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: Arguments | None = None,
    ) -> None:
        self.name = name
        self.vhost_name = vhost_name
        self.durable = durable
        self.auto_delete = auto_delete
        self.internal = internal
        self.arguments: dict[str, Any] = dict(arguments or {})
        # (destination, routing_key, frozen args) -> args, in bind order
        self._bindings: dict[tuple[Any, str, Hashable], Arguments] = {}
        self._by_destination: dict[Any, list[tuple[Any, str, Hashable]]] = {}
        # exchanges holding a binding to this one (only meaningful when this exchange is a destination)
        self.sources: set[Exchange] = set()
        self.stats = MessageStats()  # the management API's message_stats (broker/stats.py)
        # The policy applied to it (broker/policies.py), and that policy's alternate-exchange.
        self.policy: str | None = None
        self.policy_alternate: str | None = None

    # -- identity helpers -------------------------------------------------------------------
    @property
    def alternate_exchange(self) -> str | None:
        """The alternate-exchange argument, else the policy's (the argument wins, as in RabbitMQ)."""
        ae = self.arguments.get("alternate-exchange")
        if isinstance(ae, (bytes, bytearray)):
            ae = bytes(ae).decode("utf-8", "replace")
        return ae if isinstance(ae, str) else self.policy_alternate

    def describe(self) -> str:
        return f"exchange '{self.name}' in vhost '{self.vhost_name}'"

    @property
    def has_bindings(self) -> bool:
        return bool(self._bindings)

    @property
    def binding_count(self) -> int:
        return len(self._bindings)

    def bindings(self) -> list[tuple[Any, str, Arguments]]:
        """Every binding with this exchange as source: (destination, routing key, arguments)."""
        return [(d, k, a) for (d, k, _), a in self._bindings.items()]

    def destinations(self) -> list[Any]:
        return list(self._by_destination)

    @classmethod
    def validate_arguments(cls, arguments: Arguments) -> None:
        """Raise a BrokerError when this type cannot be declared with `arguments` (default: anything goes)."""

    def close(self) -> None:
        """The exchange is deleted (types holding messages or timers drop them here)."""

    # -- binding management -----------------------------------------------------------------
    def validate_binding(self, routing_key: str, arguments: Arguments) -> None:
        """Raise a BrokerError when this type cannot accept the binding (default: anything goes)."""

    def bind(self, destination: Any, routing_key: str, arguments: Arguments | None = None) -> bool:
        """Add a binding; False when the identical binding already existed."""
        args = dict(arguments or {})
        key = (destination, routing_key, freeze(args))
        if key in self._bindings:
            return False
        self.validate_binding(routing_key, args)
        self._bindings[key] = args
        self._by_destination.setdefault(destination, []).append(key)
        self._add(destination, routing_key, args)
        return True

    def unbind(self, destination: Any, routing_key: str, arguments: Arguments | None = None) -> bool:
        """Remove a binding; False when it did not exist (RabbitMQ answers unbind-ok anyway)."""
        args = dict(arguments or {})
        key = (destination, routing_key, freeze(args))
        stored = self._bindings.pop(key, None)
        if stored is None:
            return False
        keys = self._by_destination[destination]
        keys.remove(key)
        if not keys:
            del self._by_destination[destination]
        self._remove(destination, routing_key, stored)
        return True

    def has_binding(self, destination: Any, routing_key: str, arguments: Arguments | None = None) -> bool:
        return (destination, routing_key, freeze(dict(arguments or {}))) in self._bindings

    def is_bound_to(self, destination: Any) -> bool:
        return destination in self._by_destination

    def remove_destination(self, destination: Any) -> int:
        """Drop every binding to `destination` (it is being deleted); returns how many."""
        keys = self._by_destination.pop(destination, [])
        for key in keys:
            args = self._bindings.pop(key)
            self._remove(destination, key[1], args)
        return len(keys)

    # -- per type ---------------------------------------------------------------------------
    def _add(self, destination: Any, routing_key: str, arguments: Arguments) -> None:
        raise NotImplementedError

    def _remove(self, destination: Any, routing_key: str, arguments: Arguments) -> None:
        raise NotImplementedError

    def route(self, routing_key: str, headers: Mapping[str, Any] | None) -> Iterable[Any]:
        """Destinations for one routing key; may contain duplicates (the caller de-duplicates)."""
        raise NotImplementedError

    def route_message(self, routing_keys: list[str], message: Any) -> Iterable[Any]:
        """Destinations for a whole message and all its routing keys (CC and BCC ones included); types with
        `needs_message` override this."""
        headers = message.properties.headers
        return {destination: None for key in routing_keys for destination in self.route(key, headers)}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class CountedDestinations:
    """A multiset of destinations kept in first-bound order: a destination stays while any binding holds it."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[Any, int] = {}

    def add(self, destination: Any) -> None:
        self.counts[destination] = self.counts.get(destination, 0) + 1

    def remove(self, destination: Any) -> None:
        n = self.counts.get(destination, 0) - 1
        if n > 0:
            self.counts[destination] = n
        else:
            self.counts.pop(destination, None)

    def __bool__(self) -> bool:
        return bool(self.counts)
