"""The running broker: listeners, the broker model, users, startup and orderly shutdown."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import ssl
import sys
from functools import partial

from leveret.amqp import errors as codes
from leveret.amqp.properties import BasicProperties
from leveret.amqp.stream_offset import delivery_properties
from leveret.broker.message import PropertiesCodec
from leveret.clock import Clock, SystemClock
from leveret.config import Settings
from leveret.durable import DurableBroker
from leveret.durable.move_task_records import MoveTaskRecords
from leveret.kafka.stored import messages_of
from leveret.server import process
from leveret.server.alarms import DISK, MEMORY, ResourceAlarms
from leveret.server.durability import Durability
from leveret.server.errorlog import ErrorLog
from leveret.server.flow import DiskAlarm
from leveret.server.listeners import AMQPListener, Listener
from leveret.server.memory_alarm import MemoryAlarm, total_memory, watermark_bytes
from leveret.server.move_tasks import MoveTasks
from leveret.server.protocol import AMQPProtocol, TLSProtocol
from leveret.server.tls import server_context
from leveret.shovel.endpoints import LocalBroker
from leveret.shovel.tls import ClientTLS
from leveret.shovel.manager import Shovels
from leveret.store.definitions import FileDefinitionStore
from leveret.store.filestore import FileMessageStore
from leveret.store.fsio import REAL, FileIO, failures

log = logging.getLogger("leveret")

SHUTDOWN_TEXT = "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"


class TimerDriver:
    """Drives every broker deadline (TTLs, delays, expiries, consumer timeouts) with ONE event-loop timer.

    The broker keeps its deadlines on one heap; this arms a loop timer for the earliest, re-arms it when
    the broker reports an earlier one, and runs what is due when it fires.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timers, clock: Clock) -> None:
        self.loop = loop
        self.timers = timers
        self.clock = clock
        self._handle: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None

    def start(self) -> None:
        self.timers.on_earlier_deadline = self._earlier
        self._arm(self.timers.next_deadline())

    def stop(self) -> None:
        self.timers.on_earlier_deadline = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _earlier(self, deadline: float) -> None:
        if self._armed_for is None or deadline < self._armed_for:
            self._arm(deadline)

    def _arm(self, deadline: float | None) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._armed_for = deadline
        if deadline is not None:
            delay = max(0.0, deadline - self.clock.monotonic())
            self._handle = self.loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed_for = None
        try:
            self.timers.run_due()
        except OSError as exc:
            # A timer's work needed the store (a dead-lettered copy on expiry) and the disk refused: the
            # store rolled it back and the message stays where it was on disk; one line, no traceback.
            failures.note("write to the message store (broker timers)", exc)
        except Exception:
            log.exception("error while running broker timers")
        self._arm(self.timers.next_deadline())


class ListenError(Exception):
    """The broker could not listen where it was told to (port taken, address unknown)."""


def _listen_failure(host: str, port: int, exc: OSError) -> ListenError:
    reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
    return ListenError(f"cannot listen on {host}:{port}: {reason}")


class Server:
    """One broker process: accepts AMQP connections and serves them from one broker model."""

    def __init__(self, settings: Settings, clock: Clock | None = None, file_io: FileIO | None = None) -> None:
        """`file_io` does every file write of the stores (tests pass one that fails on demand; store/fsio.py)."""
        self.settings = settings
        self.clock = clock or SystemClock()
        # Parsed first: a malformed watermark fails the start before anything is opened.
        self.memory_limit = watermark_bytes(settings.memory_high_watermark, total_memory())
        # The amqps listener's context, built here so a missing or wrong certificate fails the start before
        # anything is opened (server/tls.py).
        self.tls_context: ssl.SSLContext | None = None
        if settings.ssl_port >= 0 or settings.http_ssl or settings.kafka_ssl:
            self.tls_context = server_context(settings)
        # Client errors are logged one line each, rate-limited across all connections.
        self.errorlog = ErrorLog(self.clock.monotonic)
        self.data_dir = os.path.abspath(settings.data_dir)
        os.makedirs(self.data_dir, exist_ok=True)
        self.file_io = file_io or REAL
        # The file stores under data_dir and the broker over them (leveret/durable/), its durable model rebuilt
        # before anyone connects.
        self.node = DurableBroker.open(
            self.data_dir, PropertiesCodec(BasicProperties.from_raw, delivery_properties, messages_of), file_io=self.file_io,
            clock=self.clock, consumer_timeout=settings.consumer_timeout, memory_budget=settings.memory_budget,
            loopback_users=tuple(settings.loopback_users),
        )
        self.message_store: FileMessageStore = self.node.messages  # type: ignore[assignment]
        self.definition_store: FileDefinitionStore = self.node.definitions  # type: ignore[assignment]
        self.broker = self.node.broker
        self.memory_budget = self.node.memory_budget
        self.recovery = self.node.recover_at_start()
        self.node.seed_access(user=settings.default_user, password=settings.default_pass, vhost=settings.default_vhost)
        # Users, vhosts and permissions (leveret/access/, durable with the definitions).
        self.users = self.node.access
        self._access_watchers: tuple = ()  # what start() registers with the registry, stop() removes
        self._log_recovery()
        self.durability: Durability | None = None
        self.move_tasks: MoveTasks | None = None  # messages moved between queues (server/move_tasks.py)
        self.disk_alarm: DiskAlarm | None = None
        self.memory_alarm: MemoryAlarm | None = None
        # glibc's tuned allocator when `leveret serve` set one up (the memory alarm trims it).
        self.allocator: process.Allocator | None = None
        self.timer_driver: TimerDriver | None = None
        self.connections: set[AMQPProtocol] = set()
        self.alarms = ResourceAlarms(self.connections)
        # Output bounding (server/protocol.py): times a connection stopped being read because it owed its
        # client more than max_output_buffer, and the most unsent output any connection held.
        self.output_pauses = 0
        self.peak_output = 0
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        # What listens, in start order (server/listeners.py): AMQP unless settings.port < 0, amqps when
        # settings.ssl_port >= 0, then the management HTTP API unless settings.http_port < 0. Stopped in the
        # same order.
        self.listeners: list[Listener] = []
        self.amqp_listener: AMQPListener | None = None
        self.port = 0
        self.ssl_port: int | None = None  # None until the amqps listener listens (or when it is off)
        self.http_port: int | None = None  # None until the HTTP API listens (or when it is off)
        self.kafka_port: int | None = None  # None until the Kafka listener listens (or when it is off)
        self.kafka = None  # the KafkaListener (server/kafka_listener.py) once it listens: the API lists its topics
        # Dynamic shovels (leveret/shovel/): outgoing AMQP clients on this loop, started once we listen.
        self.shovels = Shovels(f"leveret@{socket.gethostname()}", self._local_broker, self._forget_shovel,
                               ClientTLS(settings.ssl_cacertfile, settings.ssl_min_version))
        self.broker.parameters.register("shovel", self.shovels)  # the stored ones are applied here
        if settings.load_definitions:
            from leveret.http.definitions_import import load_definitions_file  # the API's importer

            try:
                load_definitions_file(self, settings.load_definitions)
            except BaseException:
                self.node.close()  # no stop() follows a failed start: release the stores
                raise

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        # Changes to users and permissions reach the open connections on the loop (the registry may be
        # changed from another thread, as the embedded broker's tests do).
        self._access_watchers = (
            lambda user, vhost: self.loop.call_soon_threadsafe(self._permissions_changed, user, vhost),
            lambda user: self.loop.call_soon_threadsafe(self._user_deleted, user),
        )
        self.users.on_change.append(self._access_watchers[0])
        self.users.on_user_deleted.append(self._access_watchers[1])
        self.durability = Durability(self.loop, self.message_store)
        self.move_tasks = MoveTasks(self.durability, MoveTaskRecords(self.data_dir, self.file_io))
        self.move_tasks.resume(self.broker)  # the tasks a stop or a crash interrupted
        self.timer_driver = TimerDriver(self.loop, self.broker.timers, self.clock)
        self.timer_driver.start()
        self.disk_alarm = DiskAlarm(self.loop, self.data_dir, self.settings.disk_free_limit,
                                    partial(self.alarms.set, DISK), self.settings.disk_check_interval)
        self.disk_alarm.start()
        allocator = self.allocator or process.glibc_allocator()
        self.memory_alarm = MemoryAlarm(
            self.loop, self.memory_limit, self.settings.memory_monitor_interval / 1000, partial(self.alarms.set, MEMORY),
            budget=self.memory_budget,
            trim=allocator.trim if allocator is not None else None,
        )
        self.memory_alarm.start()
        if self.settings.port >= 0:
            self.amqp_listener = AMQPListener(self.loop, lambda: AMQPProtocol(self))
            self.port = await self._listen(self.amqp_listener, self.settings.host, self.settings.port)
        if self.tls_context is not None and self.settings.ssl_port >= 0:
            tls_listener = AMQPListener(self.loop, lambda: TLSProtocol(self), tls=self.tls_context,
                                        handshake_timeout=self.settings.handshake_timeout)
            self.ssl_port = await self._listen(tls_listener, self.settings.host, self.settings.ssl_port)
        kafka_port = self.settings.kafka_port
        if self.settings.port == 0 and kafka_port == Settings.kafka_port:
            kafka_port = 0  # an ephemeral AMQP port (tests, benchmarks) never fights over Kafka's fixed one either
        if kafka_port >= 0:
            from leveret.server.kafka_listener import KafkaListener  # loaded only by brokers that speak Kafka

            kafka = KafkaListener(self)
            self.kafka_port = await self._listen(kafka, self.settings.host, kafka_port)
            self.kafka = kafka
        if self.settings.http_port >= 0:
            # Imported here so aiohttp is only loaded by brokers that serve HTTP.
            from leveret.http.app import ManagementListener

            host = self.settings.http_host
            tls = self.tls_context if self.settings.http_ssl else None
            self.http_port = await self._listen(ManagementListener(self, tls), host, self.settings.http_port)
            log.info("management API at %s://%s:%d", "https" if tls else "http", host, self.http_port)
        self.shovels.start()
        # Logged once everything listens, so a failed start prints only its one-line error.
        if self.amqp_listener is not None:
            log.info("leveret listening on %s:%d", self.settings.host, self.port)
        if self.ssl_port is not None:
            log.info("leveret listening for amqps on %s:%d", self.settings.host, self.ssl_port)
        if self.kafka_port is not None:
            log.info("leveret listening for Kafka clients on %s:%d", self.settings.host, self.kafka_port)

    async def _listen(self, listener: Listener, host: str, port: int) -> int:
        """Start one listener; if it cannot listen, undo the whole start (nothing stays listening) and say why."""
        try:
            bound = await listener.start(host, port)
        except OSError as exc:
            await self.stop()
            raise _listen_failure(host, port, exc) from None
        self.listeners.append(listener)
        return bound

    def _local_broker(self) -> LocalBroker | None:
        """How a shovel reaches this broker (`amqp://` without a host): the plain listener over loopback, as
        the internal identity (access/internal.py), so that no user's existence or password matters."""
        if self.amqp_listener is None:
            return None
        host = self.settings.host
        if host in ("", "0.0.0.0", "::", "localhost"):
            host = "127.0.0.1"
        return LocalBroker(host, self.port, self.users.internal.name, self.users.internal.password)

    def _forget_shovel(self, vhost: str, name: str) -> None:
        """A shovel that finished its src-delete-after count deletes its parameter, as RabbitMQ's does."""
        try:
            self.broker.parameters.clear(vhost, "shovel", name)
        except OSError as exc:  # the disk refused: it stays defined, and runs again (and finds less) at restart
            failures.note("delete a finished shovel's parameter", exc)

    def _permissions_changed(self, user: str | None, vhost: str | None) -> None:
        for conn in list(self.connections):
            conn.session.permissions_changed(user, vhost)

    def _user_deleted(self, user: str) -> None:
        """RabbitMQ closes a deleted user's connections."""
        for conn in list(self.connections):
            if conn.session.username == user:
                conn.force_close(codes.CONNECTION_FORCED, f"CONNECTION_FORCED - user '{user}' is deleted")

    def put_vhost(self, name: str, description: str = "", tags: tuple[str, ...] = ()) -> bool:
        """Create or update a vhost (the management API's PUT); True when it is new."""
        return self.node.put_vhost(name, description, tags)

    def set_vhost_limit(self, name: str, limit: str, value: int | None) -> None:
        """Set (None: clear) a vhost limit (the management API's vhost-limits)."""
        self.node.set_vhost_limit(name, limit, value)

    def delete_vhost(self, name: str) -> bool:
        """Delete a vhost and everything in it; its connections are closed as RabbitMQ 3.10 closes them.
        False when there is no such vhost."""
        if not self.node.delete_vhost(name):
            return False
        for conn in list(self.connections):
            vhost = conn.session.vhost
            if vhost is not None and vhost.name == name:
                conn.force_close(codes.CONNECTION_FORCED, f"CONNECTION_FORCED - vhost '{name}' is down")
        return True

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection with 320 CONNECTION_FORCED, wait (bounded) until they are gone."""
        listeners, self.listeners = self.listeners, []
        # Shovels first: their own connections close in order, and what they had not acknowledged returns
        # to the source queues before those are closed for the shutdown.
        await self.shovels.stop()
        if self._access_watchers:  # the loop is about to go: changes after the stop reach no connection
            self.users.on_change.remove(self._access_watchers[0])
            self.users.on_user_deleted.remove(self._access_watchers[1])
            self._access_watchers = ()
        for listener in listeners:
            await listener.stop()
        if self.disk_alarm is not None:
            self.disk_alarm.stop()
        if self.memory_alarm is not None:
            self.memory_alarm.stop()
        if self.timer_driver is not None:
            self.timer_driver.stop()
        if self.move_tasks is not None:
            await self.move_tasks.stop()  # each finishes its batch: copies committed, sources acked
        for conn in list(self.connections):
            conn.force_close(codes.CONNECTION_FORCED, SHUTDOWN_TEXT)
        deadline = self.loop.time() + timeout
        while self.connections and self.loop.time() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        await asyncio.sleep(0)
        if self.durability is not None:
            await self.durability.drain()
            self.durability.close()
        self.node.close()  # the clean-shutdown marker, then the stores

    def _log_recovery(self) -> None:
        r = self.recovery
        if r.queues or r.exchanges or r.messages:
            log.info("recovered %d exchanges, %d queues, %d bindings, %d messages",
                     r.exchanges, r.queues, r.bindings, r.messages)
        for report in (self.message_store.report, self.definition_store.report):
            if not report.clean:
                log.warning("storage recovery repaired damage (%s)", report.summary())


async def serve(settings: Settings, allocator: process.Allocator | None = None) -> None:
    """Run until SIGINT or SIGTERM, then shut down cleanly."""
    server = Server(settings)
    server.allocator = allocator
    await server.start()
    trimmer = None
    if allocator is not None:
        trimmer = process.MemoryTrimmer(asyncio.get_running_loop(), allocator)
        trimmer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    if trimmer is not None:
        trimmer.stop()
    await server.stop()


def run(settings: Settings) -> int:
    """Entry point for `leveret serve`: returns the process exit code."""
    try:
        import uvloop  # optional: a faster event loop where available
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    process.tune_gc()
    allocator = process.tune_malloc()
    try:
        runner(serve(settings, allocator))
    except ListenError as exc:
        print(f"leveret: {exc}", file=sys.stderr)
        return 1
    return 0
