"""The exchange types declarable by name: filled by the package's __init__, read by the vhost and by the
delayed-message exchange (which routes as any registered type)."""

from __future__ import annotations

from leveret.broker.exchanges.base import Exchange

EXCHANGE_TYPES: dict[str, type[Exchange]] = {}


def register_exchange_type(cls: type[Exchange]) -> None:
    """Make `cls` declarable under its `type_name`."""
    EXCHANGE_TYPES[cls.type_name] = cls


def exchange_class(type_name: str) -> type[Exchange] | None:
    """The class for a declared type name, or None when the type is unknown."""
    return EXCHANGE_TYPES.get(type_name)
