"""One running shovel: consume from the source, publish to the destination, acknowledge as `ack-mode` says.

A shovel is one asyncio task. Each attempt opens both ends (endpoints.py), declares what RabbitMQ's shovel
declares, consumes with `src-prefetch-count` and moves messages until an end goes away, then reports
`terminated` with the reason and tries again after `reconnect-delay`, doubling the wait on each failure up
to `BACKOFF_FACTOR` times it and at most `MAX_BACKOFF` (a successful start resets it). Safety rests on the ack mode: with `on-confirm` a source
message is acknowledged only after the destination confirmed it, so whatever fails, an acknowledged message
is at the destination (duplicates only as at-least-once allows); unacknowledged ones return to the source
queue when the source connection goes. Source acks go out in order, a confirm batch at a time with
`multiple` (acks.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial

import aiormq
from pamqp import commands as spec

from leveret.shovel.acks import SourceAcks
from leveret.shovel.definition import ShovelDefinition
from leveret.shovel.endpoints import LocalBroker, connect, declare_queue, without_password
from leveret.shovel.tls import ClientTLS

log = logging.getLogger("leveret.shovel")

STARTING, RUNNING, TERMINATED = "starting", "running", "terminated"
MAX_BACKOFF = 60.0  # seconds; never less than the shovel's own reconnect-delay
BACKOFF_FACTOR = 8  # a far end back after a long outage is found within 8 reconnect-delays


class Finished(Exception):
    """The shovel moved as many messages as `src-delete-after` asked: it deletes itself."""


class Shovel:
    """One dynamic shovel of one vhost, and its state as GET /api/shovels shows it."""

    def __init__(self, vhost: str, name: str, definition: ShovelDefinition, local: LocalBroker | None,
                 node: str, on_finished: Callable[[Shovel], None] | None = None, tls: ClientTLS = ClientTLS()) -> None:
        self.vhost = vhost
        self.tls = tls  # what amqps ends trust (leveret's TLS settings)
        self.name = name
        self.definition = definition
        self.local = local
        self.node = node
        self.on_finished = on_finished
        self.state = STARTING
        self.reason: str | None = None
        self.since = time.time()  # when the state last changed (the listing's timestamp)
        self.moved = 0  # messages published to the destination (and, on-confirm, confirmed)
        self.reconnects = 0  # attempts after the first
        self._task: asyncio.Task | None = None
        self._connections: list[aiormq.abc.AbstractConnection] = []
        self._failed: asyncio.Future | None = None
        self._remaining: int | None = None  # messages still to move before deleting itself (None: never)
        self._ran = False  # the current attempt got as far as running
        self._in_flight = 0  # deliveries taken and not yet settled (an earlier attempt's included, until cancelled)
        self._acks: SourceAcks | None = None  # the current attempt's source acknowledgements (None: no-ack)
        self._consumer_tag = ""  # the current attempt's consumer on the source

    # --- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"shovel {self.vhost}/{self.name}")

    async def stop(self) -> None:
        """Cancel the task and close both ends; messages consumed but not acknowledged go back to the source."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        await self._close()

    async def _run(self) -> None:
        base = self.definition.reconnect_delay
        delay = base
        while True:
            self._set(STARTING)
            self._ran = False
            try:
                await self._attempt()
            except Finished:
                await self._close()
                self._set(TERMINATED, "completed")
                if self.on_finished is not None:
                    self.on_finished(self)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of either end: report it, and try again later
                if self._ran:  # it had been running: the back-off starts again
                    delay = base
                self._set(TERMINATED, _reason(exc))
                log.warning("shovel %s in vhost %s: %s; reconnecting in %.1f s",
                            self.name, self.vhost, self.reason, delay)
            await self._close()
            await asyncio.sleep(delay)
            delay = max(base, min(delay * 2, base * BACKOFF_FACTOR, MAX_BACKOFF), 0.1)
            self.reconnects += 1

    def _set(self, state: str, reason: str | None = None) -> None:
        self.state, self.reason, self.since = state, reason, time.time()

    async def _close(self) -> None:
        connections, self._connections = self._connections, []
        for connection in connections:
            try:
                async with asyncio.timeout(5):
                    await connection.close()
            except Exception:  # closing a connection that already broke: nothing more to do
                pass

    # --- one attempt ---------------------------------------------------------------------------------------

    async def _attempt(self) -> None:
        d = self.definition
        loop = asyncio.get_running_loop()
        self._failed = failed = loop.create_future()
        source = await connect(d.src_uris, self.local, self.tls)
        self._connections.append(source)
        destination = await connect(d.dest_uris, self.local, self.tls)
        self._connections.append(destination)
        for connection in (source, destination):
            connection.closing.add_done_callback(partial(_connection_lost, failed))

        setup = await destination.channel()
        if d.dest_queue is not None:
            setup, _ = await declare_queue(destination, setup, d.dest_queue)
        publisher = await destination.channel(publisher_confirms=d.ack_mode == "on-confirm")
        consumer, queue, length = await self._source_queue(source, await source.channel(publisher_confirms=False))
        self._remaining = {"never": None, "queue-length": length}.get(d.src_delete_after, d.src_delete_after)  # type: ignore[arg-type]
        if self._remaining == 0:
            raise Finished
        prefetch = d.src_prefetch_count
        if self._remaining is not None:
            prefetch = min(prefetch or self._remaining, self._remaining)
        await consumer.basic_qos(prefetch_count=prefetch)
        self._publisher, self._consumer = publisher, consumer
        self._acks = None if d.ack_mode == "no-ack" else SourceAcks(consumer)
        self._consumer_tag = (await consumer.basic_consume(queue, self._on_delivery,
                                                           no_ack=d.ack_mode == "no-ack")).consumer_tag
        self._set(RUNNING)
        self._ran = True
        await failed

    async def _source_queue(self, source, channel) -> tuple[aiormq.abc.AbstractChannel, str, int]:
        """The channel to consume on, the queue to consume from and its length at the start."""
        d = self.definition
        if d.src_queue is not None:
            channel, length = await declare_queue(source, channel, d.src_queue)
            return channel, d.src_queue, length
        # An exchange source: a server-named exclusive queue bound with src-exchange-key, as RabbitMQ does.
        ok = await channel.queue_declare("", exclusive=True, auto_delete=True)
        await channel.queue_bind(ok.queue, d.src_exchange, routing_key=d.src_exchange_key)
        return channel, ok.queue, 0

    def _fail(self, exc: BaseException) -> None:
        failed = self._failed
        if failed is not None and not failed.done():
            failed.set_exception(exc)

    # --- moving one message --------------------------------------------------------------------------------

    async def _on_delivery(self, message: aiormq.abc.DeliveredMessage) -> None:
        self._in_flight += 1
        try:
            await self._move(message)
        except Exception as exc:  # an end went away mid-message: the source redelivers what was not acked
            self._fail(exc)
        finally:
            self._in_flight -= 1
        # Finished only once every message taken is settled: confirms may complete out of task order.
        if self._remaining == 0 and self._in_flight == 0:
            self._fail(Finished())

    async def _move(self, message: aiormq.abc.DeliveredMessage) -> None:
        tag = message.delivery.delivery_tag
        acks = self._acks  # this attempt's (a delivery task of an earlier one settles on its own channel)
        if acks is not None:
            acks.delivered(tag)  # before any await: deliveries are registered in their order
        if self._remaining is not None:
            if self._remaining <= 0:
                # Past the count (prefetched before the last one was taken): back to the source, untouched.
                if acks is not None:
                    await acks.give_back(tag, nack=False)
                return
            self._remaining -= 1
            if self._remaining == 0:
                # The last one to move: take no more. Without the cancel, each ack frees a prefetch slot for
                # a delivery past the count, rejected and redelivered at once, over and over (a livelock that
                # kept the shovel from ever being idle enough to finish). Deliveries already on their way are
                # given back below, or (those after the cancel-ok) when the connection closes.
                await self._consumer.basic_cancel(self._consumer_tag)
        exchange, routing_key = self._destination_of(message)
        # wait=False: aiormq would otherwise hold its channel lock until each frame is written, one publish
        # per loop turn; the confirm (on-confirm) is still awaited.
        confirmation = await self._publisher.basic_publish(
            message.body, exchange=exchange, routing_key=routing_key, properties=self._properties(message),
            wait=False)
        if isinstance(confirmation, spec.Basic.Nack):
            # Refused by the destination: back to the source (basic.nack's requeue default, as RabbitMQ).
            if acks is not None:
                await acks.give_back(tag, nack=True)
            return
        self.moved += 1
        if acks is not None:
            await acks.ack(tag)  # with the others of its confirm batch, in one `multiple` ack (acks.py)

    def _destination_of(self, message: aiormq.abc.DeliveredMessage) -> tuple[str, str]:
        d = self.definition
        if d.dest_queue is not None:
            return "", d.dest_queue
        if d.dest_exchange is not None:
            return d.dest_exchange, d.dest_exchange_key if d.dest_exchange_key is not None else message.routing_key
        return message.exchange or "", message.routing_key or ""

    def _properties(self, message: aiormq.abc.DeliveredMessage) -> spec.Basic.Properties:
        properties = message.header.properties
        d = self.definition
        if not (d.add_forward_headers or d.add_timestamp_header):
            return properties
        headers = dict(properties.headers or {})
        if d.add_forward_headers:
            headers["x-shovelled"] = list(headers.get("x-shovelled") or []) + [self._forward_record()]
        if d.add_timestamp_header:
            headers["x-shovelled-timestamp"] = int(time.time())
        properties.headers = headers
        return properties

    def _forward_record(self) -> dict:
        """RabbitMQ 3.10's x-shovelled entry: who moved the message, from where, to where."""
        d = self.definition
        record = {"shovel-type": "dynamic", "shovel-name": self.name, "shovel-vhost": self.vhost,
                  "shovelled-by": self.node, "src-uri": without_password(d.src_uris[0]),
                  "dest-uri": without_password(d.dest_uris[0])}
        record.update(d.ends("-"))
        return record


def _connection_lost(failed: asyncio.Future, closing: asyncio.Future) -> None:
    """An end's connection closed: the attempt it belongs to (and only that one) fails with its reason."""
    if not failed.done():
        exc = closing.exception() if not closing.cancelled() else None
        failed.set_exception(exc or ConnectionError("connection closed"))


def _reason(exc: BaseException) -> str:
    """A one-line reason for the listing: the error's own words, or its type when it has none."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
