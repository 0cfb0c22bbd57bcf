"""Virtual hosts and the Broker holding them.

A `VHost` is its registry (registry.py: declare, delete, bind, with RabbitMQ's equivalence rules) and its
routing (routing.py: publish, CC/BCC, alternate exchanges, exchange-to-exchange, dead-lettering, delayed
messages) over one set of exchanges and queues. The `Broker` holds every vhost of a node, sharing one
clock and one heap of timers, the durable storage it was built with (broker/storage.py), and the runtime
parameters (parameters.py).
"""

from __future__ import annotations

from collections.abc import Hashable

from leveret.broker.exchanges import DefaultExchange, Exchange, exchange_class
from leveret.broker.message import PropertiesCodec
from leveret.broker.parameters import Parameters
from leveret.broker.policies import Policies, PolicySet
from leveret.broker.queue_type import QueueType
from leveret.broker.registry import Registry
from leveret.broker.routing import ReplyChannel, Routing
from leveret.broker.lifecycle import Lifecycle
from leveret.broker.stats import MessageStats
from leveret.broker.storage import NO_HOOKS, DurabilityHooks, ParameterHooks
from leveret.broker.timers import Timers
from leveret.clock import Clock, SystemClock
from leveret.store.api import StreamStores

# Pre-declared exchanges of every vhost (name, type); all durable, none deletable.
SYSTEM_EXCHANGES = (
    ("amq.direct", "direct"),
    ("amq.fanout", "fanout"),
    ("amq.topic", "topic"),
    ("amq.headers", "headers"),
    ("amq.match", "headers"),
)


class VHost(Registry, Routing):
    """Exchanges, queues and bindings of one virtual host, and the publish path through them."""

    def __init__(
        self,
        name: str,
        clock: Clock,
        timers: Timers,
        *,
        hooks: DurabilityHooks = NO_HOOKS,
        streams: StreamStores | None = None,
        codec: PropertiesCodec | None = None,
        consumer_timeout: int | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        """`hooks` record durable changes and give new queues their storage (broker/storage.py); `streams`
        holds stream queues' logs (None: streams are refused); `codec` turns stored property bytes back
        into properties (needed with `streams`)."""
        self.name = name
        self.clock = clock
        self.timers = timers
        # broker-wide consumer timeout in ms (None: off); a queue's x-consumer-timeout overrides it
        self.consumer_timeout = consumer_timeout
        self.hooks = hooks
        self.streams = streams
        self.codec = codec
        self.queues: dict[str, QueueType] = {}
        self.default_exchange = DefaultExchange(self.queues, name)
        self.exchanges: dict[str, Exchange] = {"": self.default_exchange}
        for xname, xtype in SYSTEM_EXCHANGES:
            cls = exchange_class(xtype)
            assert cls is not None
            self.exchanges[xname] = cls(xname, name, durable=True)
        self._reply_channels: dict[str, ReplyChannel] = {}
        # The counts of its deleted queues and exchanges (broker/stats.py), so its totals never go back.
        self.retired_stats = MessageStats()
        # Objects opened and closed, confirms, unroutable publishes: the Broker's, shared by its vhosts.
        self.lifecycle = lifecycle if lifecycle is not None else Lifecycle()
        # RabbitMQ's vhost limits (None: none), set from the access registry's vhost (durable/access.py).
        self.max_queues: int | None = None
        self.max_connections: int | None = None
        # The open connections (their owners, as in declare_queue) that max_connections counts.
        self.connections: set[Hashable] = set()
        # Its policies and operator policies (policies.py), matched as queues and exchanges are declared.
        self.policies = PolicySet()
        # While a server session handles publishes, the queues they reached wait here to dispatch (a list;
        # None: a queue dispatches as a message arrives). See `dispatch_deferred`.
        self.dispatch_due: list[QueueType] | None = None

    def dispatch_deferred(self, stop: bool = False) -> None:
        """Dispatch the queues that waited in `dispatch_due`, in the order publishes reached them; with `stop`,
        queues dispatch at once again from now on.

        A session reading a run of publishes sets `dispatch_due` so that each queue they reach dispatches
        once, a run of deliveries per consumer (Queue.dispatch), instead of one delivery per publish. It
        calls this before anything that could see the difference: any other method or event, an error, a
        basic.return or a nack, and at the end of the read (server/session.py)."""
        due = self.dispatch_due
        if stop:
            self.dispatch_due = None
        if due:
            queues = list(due)
            due.clear()
            for queue in queues:
                queue.dispatch_pending = False
            for queue in queues:
                if not queue.deleted:
                    queue.dispatch()

    def __repr__(self) -> str:
        return f"<VHost {self.name!r} exchanges={len(self.exchanges)} queues={len(self.queues)}>"


class Broker:
    """All virtual hosts of one node, sharing one clock and one heap of timers; "/" exists from the start.

    Built bare (`Broker(clock)`) it keeps everything in memory; leveret/durable/ builds it with the hooks,
    stream stores and codec of durable storage (see broker/storage.py).
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        hooks: DurabilityHooks = NO_HOOKS,
        streams: StreamStores | None = None,
        codec: PropertiesCodec | None = None,
        consumer_timeout: int | None = None,
        parameter_hooks: ParameterHooks = NO_HOOKS,
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        # every deadline of every vhost: the server drives them all with ONE event-loop timer
        self.timers = Timers(self.clock)
        # RabbitMQ's consumer_timeout in ms (None or 0: off)
        self.consumer_timeout: int | None = consumer_timeout or None
        self.hooks = hooks
        self.streams = streams
        self.codec = codec
        self.vhosts: dict[str, VHost] = {}
        # Runtime parameters (parameters.py), written through `parameter_hooks`.
        self.parameters = Parameters(parameter_hooks)
        # Node-wide counts (lifecycle.py), kept here so a deleted vhost's stay counted.
        self.lifecycle = Lifecycle()
        # Policies and operator policies (policies.py), also written through `parameter_hooks`.
        self.policies = Policies(self.vhosts, parameter_hooks)
        self.add_vhost("/")

    def vhost(self, name: str) -> VHost | None:
        return self.vhosts.get(name)

    def add_vhost(self, name: str) -> VHost:
        """Create (or return the existing) vhost `name`."""
        vhost = self.vhosts.get(name)
        if vhost is None:
            vhost = self.vhosts[name] = VHost(
                name, self.clock, self.timers, hooks=self.hooks, streams=self.streams, codec=self.codec,
                consumer_timeout=self.consumer_timeout, lifecycle=self.lifecycle,
            )
        return vhost

    def delete_vhost(self, name: str) -> bool:
        """Delete vhost `name` with its queues, exchanges and messages (`Registry.remove_all`); False when
        there is no such vhost. The caller closes the vhost's connections."""
        vhost = self.vhosts.pop(name, None)
        if vhost is None:
            return False
        vhost.remove_all()
        self.parameters.vhost_deleted(name)
        return True
