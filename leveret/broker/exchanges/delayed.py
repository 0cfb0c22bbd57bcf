"""Delayed-message exchanges (`x-delayed-message`, as the community plugin describes itself).

Declared with the argument `x-delayed-type` naming an existing exchange type (required; otherwise 406
"Invalid argument, 'x-delayed-type' must be an existing exchange type", the plugin's text), it binds
and routes exactly like that type. A message published to it with an `x-delay` header of D ms,
0 < D <= 2^32-1, is held and routed D ms later; messages come out in due-time order, publish order
among equal due times, never early. Anything else routes at once: no header, D <= 0, a value that is
not a number, and D above 2^32-1 (the plugin documents exactly this range check, `Delay > 0, Delay
=< ?ERL_MAX_T`; we follow it rather than clamp, so a client sees the plugin's behaviour).

Only a message published directly to the exchange is delayed; one arriving through an
exchange-to-exchange binding is routed at once. The mandatory flag is not supported (as the plugin's
README says): a held message counts as routed.

Pending messages sit in one heap per exchange, (due, sequence, message): one index entry each and
ONE timer on the broker's `Timers` for the earliest, never a timer per message. `pending_count` is
O(1). Where messages enter and leave the index: `hold` and `_release_due` (and `close`, which drops
them with the exchange).

Durability: the plugin keeps held messages in a Mnesia table (a disc copy on the node, the whole table
also held in RAM). Here a durable exchange is built with a store of its own (see
durable/hooks.py): a persistent message it holds is appended there with its due time (wall clock,
ms) as the record's timestamp, the publisher's confirm waits for the fsync like any durable queue's,
and the heap keeps only (due, sequence, offset); the body stays on disk until it is due.
A million pending delayed messages are a million small heap entries, not a million bodies in memory.
The store record is acked only after the message was routed, so a crash in between delivers it twice
rather than never (at-least-once), and the publisher's confirm waits for the fsync as for any queue.
"""

from __future__ import annotations

import heapq
import math
import re
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from leveret.broker.arguments import as_text, field_type_name
from leveret.broker.errors import PreconditionFailed
from leveret.broker.exchanges.base import Arguments, Exchange
from leveret.broker.exchanges.registry import exchange_class
from leveret.broker.storage import HeldMessages
from leveret.broker.timers import Slot

from leveret.store.api import QueueStore, StoredMessage

if TYPE_CHECKING:
    from leveret.broker.message import Message
    from leveret.broker.timers import Timers
    from leveret.clock import Clock

MAX_DELAY_MS = 2**32 - 1
# The plugin's reading of x-delay (rabbit_delayed_message_utils.erl, get_delay_header, at the commit cited in
# the module docstring): these types as they are, a longstr holding an integer (binary_to_integer's syntax),
# a float or double truncated towards zero.
INTEGER_TYPES = ("byte", "short", "signedint", "long", "unsignedbyte", "unsignedshort", "unsignedint")
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
INVALID_TYPE = "Invalid argument, 'x-delayed-type' must be an existing exchange type"


def _inner_class(arguments: Arguments) -> type[Exchange] | None:
    name = as_text(arguments.get("x-delayed-type"))
    if not isinstance(name, str) or name == DelayedMessageExchange.type_name:
        return None
    return exchange_class(name)


def plugin_delay(value: Any) -> int | None:
    """The delay the plugin reads from an x-delay header value, None for a value it does not delay on.

    Where the plugin itself fails (a longstr that is not an integer, a decimal: its binary_to_integer and
    trunc raise, and the channel errors), the message is routed at once (docs/compatibility.md).
    """
    kind = field_type_name(value)
    if kind in INTEGER_TYPES:
        return int(value)
    if kind in ("float", "double"):
        return math.trunc(value) if math.isfinite(value) else None
    if kind == "longstr":
        text = as_text(value)
        return int(text) if _INTEGER_TEXT.fullmatch(text) else None
    return None


# After a release the store refused, the next attempt (seconds).
RELEASE_RETRY_S = 1.0


class DelayedMessageExchange(Exchange):
    """Holds messages for their x-delay, then routes them as its x-delayed-type would."""

    type_name = "x-delayed-message"

    def __init__(
        self,
        name: str,
        vhost_name: str = "/",
        *,
        timers: "Timers | None",
        clock: "Clock | None",
        release: Callable[["DelayedMessageExchange", "Message"], None] | None,
        held: HeldMessages | None = None,
        **kwargs: Any,
    ) -> None:
        """`timers` and `clock` are the vhost's, `release` routes a due message, `held` is the store of a
        durable exchange's persistent held messages (see broker/storage.py)."""
        super().__init__(name, vhost_name, **kwargs)
        cls = _inner_class(self.arguments)
        if cls is None:
            raise PreconditionFailed(INVALID_TYPE)
        # bindings live in the base class; routing structure is the inner type's
        self.inner = cls(self.name, self.vhost_name)
        self.needs_message = cls.needs_message  # type: ignore[misc]
        # (due, seq, message) or, for a stored message, (due, seq, store offset)
        self._pending: list[tuple[float, int, Any]] = []
        self.store: QueueStore | None = held.store if held is not None else None
        self.make_message: Callable[[StoredMessage], Message] | None = held.revive if held is not None else None
        if held is not None:
            held.store.on_unacked = self.release_again  # releases a failed commit undid
        self._seq = 0
        self._clock = clock
        self._slot = Slot(timers, self._release_due)
        self._release = release

    @classmethod
    def validate_arguments(cls, arguments: Arguments) -> None:
        inner = _inner_class(arguments)
        if inner is None:
            raise PreconditionFailed(INVALID_TYPE)
        inner.validate_arguments(arguments)

    @property
    def pending_count(self) -> int:
        """Messages held for later routing."""
        return len(self._pending)

    # -- delaying ---------------------------------------------------------------------------
    @staticmethod
    def delay_of(message: "Message") -> int | None:
        """The delay in ms if this message must be held, None to route it now."""
        headers = message.properties.headers
        if not headers or "x-delay" not in headers:
            return None
        delay = plugin_delay(headers["x-delay"])
        if delay is None or delay <= 0 or delay > MAX_DELAY_MS:
            return None
        return delay

    @staticmethod
    def released_headers(message: "Message") -> Mapping[str, Any] | None:
        """The headers a due message is routed with: x-delay turned into -Delay, so that nothing downstream
        delays it again (the plugin's swap_delay_header, rabbit_delayed_message_utils.erl, which
        rabbit_delayed_message.erl's route/3 calls before rabbit_exchange:route).

        Only routing sees them. The plugin sets the new headers in the decoded properties and leaves the
        encoded ones it forwards untouched, so a consumer receives the header bytes as published, x-delay
        positive and of its published type (the plugin's issue #64: "X-delay header doesn't negate the
        value"); this message's properties are therefore not changed.
        """
        headers = message.properties.headers
        delay = plugin_delay(headers["x-delay"]) if headers and "x-delay" in headers else None
        if delay is None:
            return headers
        return {**headers, "x-delay": -delay}

    def hold(self, message: "Message", delay_ms: float) -> None:
        """Keep `message` until `delay_ms` from now; a persistent one goes to the store, not the heap."""
        clock = self._clock
        now = clock.monotonic() if clock is not None else 0.0
        due = now + delay_ms / 1000.0
        self._seq += 1
        item: Any = message
        store = self.store
        if store is not None and message.persistent and clock is not None:
            # Rounded up: restored from whole milliseconds after a restart, it must not come out early.
            due_ms = math.ceil(clock.time() * 1000 + delay_ms)
            item = store.append(message.exchange, message.routing_key, message.properties.raw, message.body, due_ms)
        heapq.heappush(self._pending, (due, self._seq, item))
        self._slot.arm(due)

    def restore(self, offset: int, due_ms: int) -> None:
        """Recovery: hold again a stored message due at wall-clock `due_ms` (already due: at once)."""
        clock = self._clock
        now = clock.monotonic() if clock is not None else 0.0
        wall = clock.time() if clock is not None else 0.0
        # Not clamped: messages that fell due while the broker was down keep their relative order.
        due = now + (due_ms / 1000.0 - wall)
        self._seq += 1
        heapq.heappush(self._pending, (due, self._seq, offset))
        self._slot.arm(self._pending[0][0])

    def release_again(self, offsets: list[int]) -> None:
        """Stored messages whose release a failed commit undid (their routed copies and the acks here were
        rolled back, see store/api.py `on_unacked`): released again a second from now, as a refused release
        is (not at once: on a disk that stays full the retries would spin)."""
        clock = self._clock
        due = (clock.monotonic() if clock is not None else 0.0) + RELEASE_RETRY_S
        for offset in offsets:
            self._seq += 1
            heapq.heappush(self._pending, (due, self._seq, offset))
        if self._pending:
            self._slot.arm(self._pending[0][0])

    def _release_due(self) -> None:
        """Route every message whose time has come, earliest first (index entries out)."""
        now = self._clock.monotonic() if self._clock is not None else 0.0
        pending = self._pending
        try:
            while pending and pending[0][0] <= now:
                due, seq, item = heapq.heappop(pending)
                try:
                    if type(item) is int:
                        self._release_stored(item)
                    elif self._release is not None:
                        self._release(self, item)
                except OSError:
                    # The store refused the routed copy (a full disk; it rolled the copy back and logged
                    # it): keep the message and try again shortly, the rest of the due ones with it.
                    heapq.heappush(pending, (now + RELEASE_RETRY_S, seq, item))
                    break
        finally:
            if pending:
                self._slot.arm(pending[0][0])

    def _release_stored(self, offset: int) -> None:
        store = self.store
        if store is None or self.make_message is None:
            return
        try:
            stored = store.read(offset)
        except KeyError:
            return  # lost to damage found at recovery: reported there
        if self._release is not None:
            self._release(self, self.make_message(stored))
        store.ack(offset)  # after routing: a crash in between means twice, never zero times

    def close(self) -> None:
        """The exchange is deleted: nothing more is released, and its store is deleted next."""
        self._slot.cancel()
        self._pending.clear()
        self.store = None

    # -- routing as the inner type -------------------------------------------------------------
    def validate_binding(self, routing_key: str, arguments: Arguments) -> None:
        self.inner.validate_binding(routing_key, arguments)

    def _add(self, destination: Any, routing_key: str, arguments: Arguments) -> None:
        self.inner.bind(destination, routing_key, arguments)

    def _remove(self, destination: Any, routing_key: str, arguments: Arguments) -> None:
        self.inner.unbind(destination, routing_key, arguments)

    def route(self, routing_key: str, headers: Mapping[str, Any] | None) -> Iterable[Any]:
        return self.inner.route(routing_key, headers)

    def route_message(self, routing_keys: list[str], message: Any) -> Iterable[Any]:
        return self.inner.route_message(routing_keys, message)
