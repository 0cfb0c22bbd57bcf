"""A vhost's routing: publish (direct reply-to, expiration check, the delayed exchange's hold), CC/BCC,
exchange-to-exchange bindings, alternate exchanges, dead-lettered copies and released delayed messages.

Every dead-lettered copy, released delayed message and publish goes through `_deliver`, but for the most
common publish: a message without headers, reply_to, expiration or user_id that its exchange routes by key to
exactly one queue, which `publish` enqueues itself. `_route` has a hot path for one routing key straight to
queues. The direct reply-to registry (address -> channel) lives here
because a reply is published on some other channel of some other connection.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Mapping, Protocol

from leveret.broker import deadletter
from leveret.broker.arguments import as_text, field_type_name
from leveret.broker.errors import AccessRefused, PreconditionFailed
from leveret.broker.exchanges import Exchange
from leveret.broker.exchanges.delayed import DelayedMessageExchange
from leveret.broker.message import Message
from leveret.broker.names import REPLY_TO_PREFIX, random_name
from leveret.broker.queue import Queue
from leveret.broker.queue_type import QueueType
from leveret.broker.registry import no_exchange
from leveret.broker.route_result import RouteResult
from leveret.clock import Clock


class ReplyChannel(Protocol):
    """What direct reply-to needs of a channel (broker/channel.py `Channel`, which imports this module)."""

    def rewrite_reply_to(self, message: Message) -> Message:
        """reply_to "amq.rabbitmq.reply-to" made this channel's address (refused without a reply consumer)."""

    def deliver_reply(self, message: Message) -> bool:
        """Deliver a reply addressed to this channel; False when nobody listens."""


def check_expiration(value: Any) -> None:
    """Refuse an unreadable `expiration` property with RabbitMQ's text (channel error 406)."""
    text = as_text(value)
    if not isinstance(text, str):
        raise PreconditionFailed(f"invalid expiration '{text!r}': no_integer")
    digits = text[1:] if text[:1] in ("-", "+") else text
    n = len(digits) - len(digits.lstrip("0123456789"))
    if n == 0:
        raise PreconditionFailed(f"invalid expiration '{text}': no_integer")
    if n < len(digits):
        raise PreconditionFailed(f'invalid expiration \'{text}\': {{leftover_string,"{digits[n:]}"}}')
    if text.startswith("-") and int(digits):
        raise PreconditionFailed(f"invalid expiration '{text}': {{value_negative,{int(text)}}}")


class Routing:
    """The publish path of one vhost (a part of `VHost`, which sets these attributes)."""

    name: str
    clock: Clock
    exchanges: dict[str, Exchange]
    _reply_channels: dict[str, ReplyChannel]
    dispatch_due: list[QueueType] | None

    def dispatch_deferred(self, stop: bool = False) -> None: ...

    def dead_letter(self, queue: Queue, message: Message, reason: str) -> None:
        """Publish the dead-lettered copy of `message` from `queue` to its dead-letter exchange.

        A missing dead-letter exchange drops the message, and so does a cycle (see deadletter.py),
        both silently, as RabbitMQ does.
        """
        name = queue.settings.dead_letter_exchange
        exchange = self.exchanges.get(name) if name is not None else None
        if exchange is None or name is None:
            return
        copy = deadletter.dead_lettered(
            message, queue.name, reason, name, queue.settings.dead_letter_routing_key, self.clock.time()
        )
        if type(exchange) is DelayedMessageExchange:
            # the plugin delays whatever its exchange routes, dead-lettered copies included: with a
            # DLX of this type an x-delay header turns dead-lettering into a delayed retry
            delay = exchange.delay_of(copy)
            if delay is not None:
                exchange.hold(copy, delay)
                return
        self._deliver(exchange, copy.routing_key, copy, reason=reason)

    def _release_delayed(self, exchange: DelayedMessageExchange, message: Message) -> None:
        """A delayed message is due: route it through its exchange's x-delayed-type now."""
        if self.exchanges.get(exchange.name) is exchange:
            self._deliver(exchange, message.routing_key, message, headers=exchange.released_headers(message))

    # -- direct reply-to --------------------------------------------------------------------
    def register_reply_channel(self, channel: ReplyChannel) -> str:
        """Make `channel` reachable by direct reply-to; returns the reply_to address for it."""
        address = random_name(REPLY_TO_PREFIX)
        self._reply_channels[address] = channel
        return address

    def unregister_reply_channel(self, address: str) -> None:
        self._reply_channels.pop(address, None)

    # -- publishing -------------------------------------------------------------------------
    def check_publish(self, exchange: str) -> Exchange:
        """The exchange a publish would start from, or the error it would raise (tx validates early)."""
        source = self.exchanges.get(exchange)
        if source is None:
            raise no_exchange(exchange, self.name)
        if source.internal:
            raise AccessRefused(f"cannot publish to internal exchange '{exchange}' in vhost '{self.name}'")
        return source

    def publish(
        self,
        exchange: str,
        routing_key: str,
        message: Message,
        *,
        mandatory: bool = False,
        channel: ReplyChannel | None = None,
    ) -> RouteResult:
        """Route `message` to queues and enqueue it; `mandatory` is for the caller's basic.return.

        `channel` is the publishing channel, needed for direct reply-to (reply_to "amq.rabbitmq.reply-to"
        is rewritten to that channel's address, or refused if it has no reply consumer).
        """
        source = self.exchanges.get(exchange)
        if source is None or source.internal:
            self.check_publish(exchange)  # raises: no such exchange, or an internal one
        source.stats.publish_in += 1
        # Most publishes carry none of reply_to, expiration, headers and user_id: one test skips their checks.
        plain = message.properties.routing_plain
        if not plain and channel is not None:
            message = channel.rewrite_reply_to(message)
        if exchange == "" and routing_key.startswith(REPLY_TO_PREFIX):
            if self.dispatch_due:
                self.dispatch_deferred()  # the deliveries of earlier publishes go first, as they would have
            channel = self._reply_channels.get(routing_key)
            delivered = channel is not None and channel.deliver_reply(message)
            return RouteResult(delivered, [])
        if plain:
            if not source.needs_message and type(source) is not DelayedMessageExchange:
                # The common publish (one routing key, no headers, an exchange routing by key alone) to
                # exactly one queue: enqueued here as _deliver and _route would, without their calls and lists.
                destinations = source.route(routing_key, None)
                if len(destinations) == 1:
                    (queue,) = destinations
                    if type(queue) is Queue:
                        if queue.enqueue(message) is None:
                            result = RouteResult(True, [], 1)  # x-overflow reject-publish refused it
                        else:
                            queue.stats.publish += 1
                            result = RouteResult(True, [queue])
                        source.stats.publish_out += 1
                        return result
        elif message.properties.expiration is not None:
            check_expiration(message.properties.expiration)
        if type(source) is DelayedMessageExchange:
            delay = source.delay_of(message)
            if delay is not None:
                source.hold(message, delay)
                return RouteResult(True, [], delayed=True)
        result = self._deliver(source, routing_key, message)
        if result.routed:
            source.stats.publish_out += 1
        return result

    def _deliver(
        self, source: Exchange, routing_key: str, message: Message, reason: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> RouteResult:
        """Route `message` from `source` (with CC/BCC) and enqueue it; `reason` marks a dead-lettered copy,
        `headers` (a released delayed message's) replace the message's own for routing only.

        Every publish, dead-lettered copy and released delayed message goes through here.
        """
        if headers is None:
            headers = message.properties.headers
        routing_keys = [routing_key]
        if headers and ("CC" in headers or "BCC" in headers):
            routing_keys += self._sender_selected_keys(headers, "CC")
            routing_keys += self._sender_selected_keys(headers, "BCC")
            if "BCC" in headers:
                # BCC recipients must stay invisible to every receiver
                message = message.with_properties(headers={k: v for k, v in headers.items() if k != "BCC"})
        queues = self._route(source, routing_keys, headers, message)
        if reason is not None:
            queues = deadletter.without_cycles(message, reason, queues)
        if len(queues) == 1:
            # hot path: one queue
            if queues[0].enqueue(message) is None:
                return RouteResult(True, [], 1)
            queues[0].stats.publish += 1
            return RouteResult(True, queues)
        accepted: list[QueueType] = []
        rejected = 0
        for queue in queues:
            if queue.enqueue(message) is None:
                rejected += 1
            else:
                queue.stats.publish += 1
                accepted.append(queue)
        return RouteResult(bool(queues), accepted, rejected)

    @staticmethod
    def _sender_selected_keys(headers: dict[str, Any], name: str) -> list[str]:
        value = headers.get(name)
        if name not in headers:
            return []
        if not isinstance(value, (list, tuple)):
            raise PreconditionFailed(
                f'invalid message: {{unacceptable_type_in_header,"{name}",{field_type_name(value)}}}'
            )
        return [key for key in map(as_text, value) if isinstance(key, str)]

    def _route(
        self, source: Exchange, routing_keys: list[str], headers: dict[str, Any] | None, message: Message
    ) -> list[QueueType]:
        """Breadth-first over exchange-to-exchange bindings; each exchange and queue at most once."""
        if len(routing_keys) == 1 and not source.needs_message:
            # hot path: one key straight to queues (no e2e hop, no alternate exchange involved)
            direct: list[QueueType] = []
            for destination in source.route(routing_keys[0], headers):
                if type(destination) is not Queue:
                    break
                direct.append(destination)
            else:
                if direct:
                    return direct
        queues: dict[QueueType, None] = {}
        seen: set[Exchange] = {source}
        work: deque[Exchange] = deque((source,))
        single = len(routing_keys) == 1
        while work:
            exchange = work.popleft()
            if exchange.needs_message:
                destinations: Any = exchange.route_message(routing_keys, message)
            elif single:
                destinations = exchange.route(routing_keys[0], headers)
            else:
                destinations = {}
                for key in routing_keys:
                    destinations.update(dict.fromkeys(exchange.route(key, headers)))
            empty = True
            for destination in destinations:
                empty = False
                if not isinstance(destination, Exchange):  # a queue of any type
                    queues[destination] = None
                elif destination not in seen:
                    seen.add(destination)
                    work.append(destination)
            if empty:
                ae_name = exchange.alternate_exchange
                if ae_name is not None:
                    alternate = self.exchanges.get(ae_name)
                    if alternate is not None and alternate not in seen:
                        seen.add(alternate)
                        work.append(alternate)
        return list(queues)
