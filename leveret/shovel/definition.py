"""A shovel's definition: the value of a `shovel` runtime parameter, checked as RabbitMQ 3.10 checks it.

RabbitMQ's dynamic shovels are runtime parameters (component `shovel`) whose value is a JSON object with
hyphenated keys (`src-uri`, `src-queue`, `dest-uri`, `ack-mode`, ...). `parse` turns one into a frozen
`ShovelDefinition` or raises `PreconditionFailed` with RabbitMQ's validation text (the parameters layer adds
its "Validation failed" heading). No IO here: the engine (worker.py) runs what this describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from leveret.broker.errors import PreconditionFailed

ACK_MODES = ("no-ack", "on-publish", "on-confirm")
DEFAULT_PREFETCH = 1000
DEFAULT_RECONNECT_DELAY = 5.0  # seconds, RabbitMQ's default
URI_SCHEMES = ("amqp", "amqps")


@dataclass(frozen=True)
class ShovelDefinition:
    """One shovel: where messages come from, where they go, and how they are acknowledged."""

    src_uris: tuple[str, ...]
    dest_uris: tuple[str, ...]
    src_queue: str | None = None
    src_exchange: str | None = None
    src_exchange_key: str = "#"
    src_prefetch_count: int = DEFAULT_PREFETCH
    # "never", "queue-length" or a count of messages after which the shovel deletes itself.
    src_delete_after: str | int = "never"
    dest_queue: str | None = None
    dest_exchange: str | None = None
    dest_exchange_key: str | None = None
    add_forward_headers: bool = False
    add_timestamp_header: bool = False
    ack_mode: str = "on-confirm"
    reconnect_delay: float = DEFAULT_RECONNECT_DELAY
    # The value as given, for listings (GET /api/parameters/shovel returns it unchanged).
    value: Any = None

    @property
    def deletes_itself(self) -> bool:
        return self.src_delete_after != "never"

    def ends(self, separator: str) -> dict[str, str]:
        """The queues, exchanges and keys it names, keyed `src-queue` (forward headers: separator "-") or
        `src_queue` (the listing: "_"), the ones it does not name left out, as RabbitMQ leaves them out."""
        named = {}
        for key, value in (("src-queue", self.src_queue), ("src-exchange", self.src_exchange),
                           ("src-exchange-key", self.src_exchange_key if self.src_exchange is not None else None),
                           ("dest-queue", self.dest_queue), ("dest-exchange", self.dest_exchange),
                           ("dest-exchange-key", self.dest_exchange_key if self.dest_exchange is not None else None)):
            if value is not None:
                named[key.replace("-", separator)] = value
        return named


def _missing(key: str, name: str) -> PreconditionFailed:
    return PreconditionFailed(f'Key "{key}" not found in {name}')


def _erlang_binary(value: Any) -> str:
    """How RabbitMQ's validation texts print a value: a string as an Erlang binary."""
    if isinstance(value, str):
        return f'<<"{value}">>'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _uris(value: dict, key: str, name: str) -> tuple[str, ...]:
    if key not in value:
        raise _missing(key, name)
    given = value[key]
    uris = [given] if isinstance(given, str) else given
    if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
        raise PreconditionFailed(f"{key} should be a URI or a non-empty list of URIs, actually was "
                                 f"{_erlang_binary(given)}")
    for uri in uris:
        scheme = urlsplit(uri).scheme
        if scheme not in URI_SCHEMES:
            raise PreconditionFailed(f'"{uri}" not a valid URI: {{{{unexpected_uri_scheme,"{scheme}"}},"{uri}"}}')
    return tuple(uris)


def _string(value: dict, key: str) -> str | None:
    given = value.get(key)
    if given is not None and not isinstance(given, str):
        raise PreconditionFailed(f"{key} should be a binary, actually was {_erlang_binary(given)}")
    return given


def _boolean(value: dict, key: str) -> bool:
    given = value.get(key, False)
    if not isinstance(given, bool):
        raise PreconditionFailed(f"{key} should be boolean, actually was {_erlang_binary(given)}")
    return given


def _number(value: dict, key: str, default: float, *, integer: bool) -> Any:
    given = value.get(key, default)
    kinds = (int,) if integer else (int, float)
    if isinstance(given, bool) or not isinstance(given, kinds) or given < 0:
        what = "integer" if integer else "number"
        raise PreconditionFailed(f"{key} should be a non-negative {what}, actually was {_erlang_binary(given)}")
    return given


def _protocol(value: dict, key: str) -> None:
    given = value.get(key, "amqp091")
    if given != "amqp091":
        # RabbitMQ also has amqp10; leveret speaks AMQP 0-9-1 only (docs/compatibility.md).
        raise PreconditionFailed(f"{key} should be one of [<<\"amqp091\">>], actually was {_erlang_binary(given)}")


def _delete_after(value: dict) -> str | int:
    given = value.get("src-delete-after", "never")
    if given in ("never", "queue-length"):
        return given
    if isinstance(given, int) and not isinstance(given, bool) and given >= 0:
        return given
    raise PreconditionFailed('src-delete-after should be a number greater than or equal to 0, "never" or '
                             f'"queue-length", actually was {_erlang_binary(given)}')


def parse(name: str, value: Any) -> ShovelDefinition:
    """The shovel `name` defined by a parameter `value`, or PreconditionFailed with RabbitMQ's text."""
    if not isinstance(value, dict):
        raise PreconditionFailed(f"shovel {name} should be a JSON object")
    _protocol(value, "src-protocol")
    _protocol(value, "dest-protocol")
    src_uris = _uris(value, "src-uri", name)
    src_queue, src_exchange = _string(value, "src-queue"), _string(value, "src-exchange")
    if src_queue is not None and src_exchange is not None:
        raise PreconditionFailed("Cannot specify 'src-exchange' and 'src-queue'")
    if src_queue is None and src_exchange is None:
        raise PreconditionFailed("Must specify 'src-exchange' or 'src-queue'")
    dest_uris = _uris(value, "dest-uri", name)
    dest_queue, dest_exchange = _string(value, "dest-queue"), _string(value, "dest-exchange")
    if dest_queue is not None and dest_exchange is not None:
        raise PreconditionFailed("Cannot specify 'dest-exchange' and 'dest-queue'")
    ack_mode = value.get("ack-mode", "on-confirm")
    if ack_mode not in ACK_MODES:
        raise PreconditionFailed('ack-mode should be one of [<<"no-ack">>,<<"on-publish">>,<<"on-confirm">>], '
                                 f"actually was {_erlang_binary(ack_mode)}")
    delete_after = _delete_after(value)
    if src_exchange is not None and delete_after == "queue-length":
        raise PreconditionFailed("Cannot specify 'src-delete-after: queue-length' with 'src-exchange'")
    return ShovelDefinition(
        src_uris=src_uris,
        dest_uris=dest_uris,
        src_queue=src_queue,
        src_exchange=src_exchange,
        src_exchange_key=_string(value, "src-exchange-key") or "#",
        src_prefetch_count=_number(value, "src-prefetch-count", DEFAULT_PREFETCH, integer=True),
        src_delete_after=delete_after,
        dest_queue=dest_queue,
        dest_exchange=dest_exchange,
        dest_exchange_key=_string(value, "dest-exchange-key"),
        add_forward_headers=_boolean(value, "dest-add-forward-headers"),
        add_timestamp_header=_boolean(value, "dest-add-timestamp-header"),
        ack_mode=ack_mode,
        reconnect_delay=float(_number(value, "reconnect-delay", DEFAULT_RECONNECT_DELAY, integer=False)),
        value=value,
    )
