"""`GET /metrics`, `/metrics/per-object` and `/metrics/detailed`: Prometheus text under rabbitmq_prometheus's
names, labels and types, on the management port (RabbitMQ serves them on 15692).

As in RabbitMQ 3.10, `/metrics` sums the queue, channel and connection figures over the node (one
unlabelled sample each: its cost does not grow with the labels a scraper stores), `/metrics/per-object`
labels them per queue (`vhost`, `queue`), per channel and per connection (`channel`, RabbitMQ's label for
both; leveret's value is the management API's connection or channel name), and `/metrics/detailed` gives
the families asked for with `family=` (queue_coarse_metrics, queue_consumer_count), optionally for some
vhosts (`vhost=`), under `rabbitmq_detailed_` names. Node figures are in metrics_node.py.

Like RabbitMQ's Prometheus endpoint these need no credentials (scrapers rarely carry them); the listener
binds to loopback unless told otherwise. Every value is read from the live model at scrape time, in one
pass over the queues: a thousand queues cost a few milliseconds of the loop (docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any, Iterable

from aiohttp import web

from leveret.broker.exchanges.delayed import DelayedMessageExchange
from leveret.http.exposition import CONTENT_TYPE, Family, gauge, label_set, render
from leveret.http.metrics_global import global_families, object_counter_families
from leveret.http.metrics_node import info_families, node_families
from leveret.http.target import ManagementTarget, target_of

# Served without credentials, as rabbitmq_prometheus serves them.
METRICS_PATHS = frozenset({"/metrics", "/metrics/per-object", "/metrics/detailed"})
# The queue figures: (family name, help), each read from (ready, unacked, consumers) of a queue.
QUEUE_FIGURES = (
    ("rabbitmq_queue_messages_ready", "Messages ready to be delivered to consumers"),
    ("rabbitmq_queue_messages_unacked", "Messages delivered to consumers but not yet acknowledged"),
    ("rabbitmq_queue_messages", "Sum of ready and unacknowledged messages - total queue depth"),
    ("rabbitmq_queue_consumers", "Consumers on a queue"),
)


def queue_figures(queue: Any) -> tuple[int, int, int, int]:
    """A queue's values in QUEUE_FIGURES order; each count is read once (a paged queue's is a sum)."""
    ready, unacked = queue.message_count, queue.unacked_count
    return ready, unacked, ready + unacked, queue.consumer_count


# The channel figures, read from the broker's side of each channel (broker/channel.py).
CHANNEL_FIGURES = (
    ("rabbitmq_channel_consumers", "Consumers on a channel", lambda c: len(c.consumers)),
    ("rabbitmq_channel_messages_unacked", "Delivered but not yet acknowledged messages", lambda c: c.unacked_count),
    ("rabbitmq_consumer_prefetch", "Limit of unacknowledged messages for each consumer", lambda c: c.prefetch_count),
)
# /metrics/detailed's families: family parameter -> the queue figures it selects.
DETAILED_QUEUE_FAMILIES = {
    "queue_coarse_metrics": ("rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked",
                             "rabbitmq_queue_messages"),
    "queue_consumer_count": ("rabbitmq_queue_consumers",),
}


def connection_name(conn: Any) -> str:
    """"peer:port -> host:port", as RabbitMQ's management API names a connection."""
    peer = getattr(conn, "peer", None) or ("?", 0)
    transport = getattr(conn, "transport", None)
    local = (transport.get_extra_info("sockname") if transport is not None else None) or ("?", 0)
    return f"{peer[0]}:{peer[1]} -> {local[0]}:{local[1]}"


def open_channels(target: ManagementTarget) -> Iterable[tuple[str, Any, dict]]:
    """(connection name, connection, its channels by number) for every AMQP connection."""
    for conn in list(target.connections):
        session = getattr(conn, "session", None)
        yield connection_name(conn), conn, getattr(session, "channels", None) or {}


def _queues(target: ManagementTarget, vhosts: Iterable[str] | None = None) -> Iterable[tuple[str, str, Any]]:
    """(vhost name, queue name, queue), sorted as RabbitMQ lists them."""
    broker_vhosts = target.broker.vhosts
    for vname in sorted(broker_vhosts if vhosts is None else (v for v in vhosts if v in broker_vhosts)):
        queues = broker_vhosts[vname].queues
        for qname in sorted(queues):
            yield vname, qname, queues[qname]


def _queue_families(target: ManagementTarget, per_object: bool) -> tuple[list[Family], int, int]:
    """The queue families, and the number of queues and of their consumers."""
    families = [Family(name, help_text) for name, help_text in QUEUE_FIGURES]
    count = consumers = 0
    if per_object:
        for vname, qname, queue in _queues(target):
            figures = queue_figures(queue)
            labels = label_set(vhost=vname, queue=qname)
            for family, figure in zip(families, figures):
                family.labelled(figure, labels)
            count += 1
            consumers += figures[3]
        return families, count, consumers
    ready = unacked = 0
    for vhost in target.broker.vhosts.values():  # unsorted: only the sums are written
        for queue in vhost.queues.values():
            count += 1
            ready += queue.message_count
            unacked += queue.unacked_count
            consumers += queue.consumer_count
    for family, total in zip(families, (ready, unacked, ready + unacked, consumers)):
        family.sample(total)
    return families, count, consumers


def object_families(target: ManagementTarget, per_object: bool) -> list[Family]:
    """Queue, channel and connection figures: summed over the node, or one labelled sample per object."""
    queue_families, queue_count, consumer_count = _queue_families(target, per_object)
    families = list(queue_families)
    channel_families = [Family(name, help_text) for name, help_text, _ in CHANNEL_FIGURES]
    channel_totals = [0] * len(CHANNEL_FIGURES)
    per_connection = Family("rabbitmq_connection_channels", "Channels on a connection")
    connection_count = channel_count = 0
    for conn_name, _conn, channels in open_channels(target):
        connection_count += 1
        channel_count += len(channels)
        if per_object:
            per_connection.sample(len(channels), channel=conn_name)
        for number in sorted(channels):
            broker_channel = getattr(channels[number], "broker_channel", None)
            if broker_channel is None:
                continue
            for i, (_, _, read) in enumerate(CHANNEL_FIGURES):
                value = read(broker_channel)
                channel_totals[i] += value
                if per_object:
                    channel_families[i].sample(value, channel=f"{conn_name} ({number})")
    if not per_object:
        for family, total in zip(channel_families, channel_totals):
            family.sample(total)
        per_connection.sample(channel_count)
    families.extend(channel_families)
    families.append(per_connection)

    families.extend((
        gauge("rabbitmq_connections", "Connections currently open", connection_count),
        gauge("rabbitmq_channels", "Channels currently open", channel_count),
        gauge("rabbitmq_consumers", "Consumers currently connected", consumer_count),
        gauge("rabbitmq_queues", "Queues available", queue_count),
        Family("rabbitmq_global_consumers", "Current number of consumers").sample(consumer_count,
                                                                                  protocol="amqp091"),
    ))
    families.append(delayed_family(target))
    return families


def delayed_family(target: ManagementTarget) -> Family:
    """Each x-delayed-message exchange's held messages (a leveret figure; few exchanges have the type)."""
    family = Family("leveret_exchange_delayed_messages",
                    "Messages an x-delayed-message exchange holds for later routing.")
    for vname in sorted(target.broker.vhosts):
        exchanges = target.broker.vhosts[vname].exchanges
        for xname in sorted(exchanges):
            exchange = exchanges[xname]
            if isinstance(exchange, DelayedMessageExchange):
                family.sample(exchange.pending_count, vhost=vname, exchange=xname)
    return family


def render_metrics(target: ManagementTarget, per_object: bool = False) -> str:
    """The text of /metrics (or /metrics/per-object) for `target`."""
    return render([*object_families(target, per_object), *object_counter_families(target),
                   *global_families(target), *node_families(target, per_object)])


def render_detailed(target: ManagementTarget, families: list[str], vhosts: list[str]) -> str:
    """The text of /metrics/detailed: the queue families asked for, per queue, with the info families."""
    wanted = {name for family in families for name in DETAILED_QUEUE_FAMILIES.get(family, ())}
    chosen = [i for i, (name, _) in enumerate(QUEUE_FIGURES) if name in wanted]
    out = [Family(QUEUE_FIGURES[i][0].replace("rabbitmq_", "rabbitmq_detailed_", 1), QUEUE_FIGURES[i][1])
           for i in chosen]
    for vname, qname, queue in _queues(target, vhosts or None):
        figures = queue_figures(queue)
        for family, i in zip(out, chosen):
            family.sample(figures[i], vhost=vname, queue=qname)
    return render([*out, *info_families(target)])


def _text(body: str) -> web.Response:
    return web.Response(text=body, headers={"Content-Type": CONTENT_TYPE})


async def get_metrics(request: web.Request) -> web.Response:
    """GET /metrics: node-wide sums."""
    return _text(render_metrics(target_of(request)))


async def get_metrics_per_object(request: web.Request) -> web.Response:
    """GET /metrics/per-object: one sample per queue, channel and connection."""
    return _text(render_metrics(target_of(request), per_object=True))


async def get_metrics_detailed(request: web.Request) -> web.Response:
    """GET /metrics/detailed?family=...&vhost=...: the families asked for, per queue."""
    query = request.query
    return _text(render_detailed(target_of(request), query.getall("family", []), query.getall("vhost", [])))
