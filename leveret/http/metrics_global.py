"""rabbitmq_prometheus's node-wide counters: `rabbitmq_global_*` messages, from the broker's own counts
(broker/stats.py), and connections, channels and queues opened and closed, confirms and unroutable
publishes (broker/lifecycle.py).

Each queue and exchange counts what passes through it; a vhost keeps the counts of those deleted. The
node's counters are their sums at scrape time (one pass over the queues and exchanges, nothing on the
message path). RabbitMQ labels the delivery counters by queue type: a live queue's counts are under its
type, a deleted queue's under rabbit_classic_queue (the vhost keeps them without their type), so deleting a
quorum queue or stream that had traffic moves its counts and its type's counter steps back once.
`received` counts messages published into exchanges (RabbitMQ's channel publishes), `routed` the copies
queues took.
"""

from __future__ import annotations

from leveret.broker.stats import MessageStats
from leveret.http.exposition import Family
from leveret.http.queues import queue_type
from leveret.http.target import ManagementTarget

QUEUE_TYPES = {"classic": "rabbit_classic_queue", "quorum": "rabbit_quorum_queue", "stream": "rabbit_stream_queue"}

# (name, help, the MessageStats fields it sums); labelled by protocol and queue type.
DELIVERY_COUNTERS = (
    ("rabbitmq_global_messages_acknowledged_total", "Total number of messages acknowledged by consumers",
     ("ack",)),
    ("rabbitmq_global_messages_delivered_consume_auto_ack_total",
     "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment",
     ("deliver_no_ack",)),
    ("rabbitmq_global_messages_delivered_consume_manual_ack_total",
     "Total number of messages delivered to consumers using basic.consume with manual acknowledgment",
     ("deliver",)),
    ("rabbitmq_global_messages_delivered_get_auto_ack_total",
     "Total number of messages delivered to consumers using basic.get with automatic acknowledgment",
     ("get_no_ack",)),
    ("rabbitmq_global_messages_delivered_get_manual_ack_total",
     "Total number of messages delivered to consumers using basic.get with manual acknowledgment", ("get",)),
    ("rabbitmq_global_messages_delivered_total", "Total number of messages delivered to consumers",
     ("deliver", "deliver_no_ack", "get", "get_no_ack")),
    ("rabbitmq_global_messages_get_empty_total", "Total number of times basic.get operations fetched no message",
     ("get_empty",)),
    ("rabbitmq_global_messages_redelivered_total", "Total number of messages redelivered to consumers",
     ("redeliver",)),
)


def message_counts(target: ManagementTarget) -> tuple[dict[str, MessageStats], MessageStats]:
    """The queues' counts per RabbitMQ queue type, and the exchanges' counts."""
    by_type = {name: MessageStats() for name in QUEUE_TYPES.values()}
    exchanges = MessageStats()
    for vhost in target.broker.vhosts.values():
        by_type["rabbit_classic_queue"].add(vhost.retired_stats)
        for queue in vhost.queues.values():
            by_type[QUEUE_TYPES.get(queue_type(queue), "rabbit_classic_queue")].add(queue.stats)
        for exchange in vhost.exchanges.values():
            exchanges.add(exchange.stats)
        exchanges.add(vhost.retired_stats)  # (its queue fields are not read from `exchanges`)
    return by_type, exchanges


# (name, help, Lifecycle attribute): the node's object counters, unlabelled.
OBJECT_COUNTERS = (
    ("rabbitmq_connections_opened_total", "Total number of connections opened", "connections_opened"),
    ("rabbitmq_connections_closed_total", "Total number of connections closed or terminated", "connections_closed"),
    ("rabbitmq_channels_opened_total", "Total number of channels opened", "channels_opened"),
    ("rabbitmq_channels_closed_total", "Total number of channels closed", "channels_closed"),
    ("rabbitmq_queues_declared_total", "Total number of queues declared", "queues_declared"),
    ("rabbitmq_queues_created_total", "Total number of queues created", "queues_created"),
    ("rabbitmq_queues_deleted_total", "Total number of queues deleted", "queues_deleted"),
)


def object_counter_families(target: ManagementTarget) -> list[Family]:
    """Connections, channels and queues opened, declared, closed and deleted (broker/lifecycle.py)."""
    lifecycle = target.broker.lifecycle
    return [Family(name, help_text, "counter").sample(getattr(lifecycle, attribute))
            for name, help_text, attribute in OBJECT_COUNTERS]


def _confirms(target: ManagementTarget) -> tuple[int, int]:
    """(publishes received in confirm mode, publishes confirmed): the closed channels' counted at their
    close, the open ones' read from their sequence numbers now."""
    lifecycle = target.broker.lifecycle
    received, confirmed = lifecycle.received_confirm, lifecycle.confirmed
    for conn in list(target.connections):
        for channel in list((getattr(getattr(conn, "session", None), "channels", None) or {}).values()):
            if not channel.broker_channel.closed:  # a closed one was counted at its close
                received += channel.publish_seq
                confirmed += channel.confirmed_upto
    return received, confirmed


def global_families(target: ManagementTarget) -> list[Family]:
    """The rabbitmq_global_* message counters."""
    by_type, exchanges = message_counts(target)
    families = []
    for name, help_text, fields in DELIVERY_COUNTERS:
        family = Family(name, help_text, "counter")
        for type_name in sorted(by_type):
            stats = by_type[type_name]
            family.sample(sum(getattr(stats, field) for field in fields), protocol="amqp091", queue_type=type_name)
        families.append(family)
    received = Family("rabbitmq_global_messages_received_total",
                      "Total number of messages received from publishers", "counter")
    received.sample(exchanges.publish_in, protocol="amqp091")
    routed = Family("rabbitmq_global_messages_routed_total",
                    "Total number of messages routed to queues or streams", "counter")
    routed.sample(sum(stats.publish for stats in by_type.values()), protocol="amqp091")
    lifecycle = target.broker.lifecycle
    received_confirm, confirmed = _confirms(target)
    per_protocol = [
        ("rabbitmq_global_messages_received_confirm_total",
         "Total number of messages received from publishers expecting confirmations", received_confirm),
        ("rabbitmq_global_messages_confirmed_total", "Total number of messages confirmed to publishers", confirmed),
        ("rabbitmq_global_messages_unroutable_dropped_total", "Total number of messages published as "
         "non-mandatory into an exchange and dropped as unroutable", lifecycle.unroutable_dropped),
        ("rabbitmq_global_messages_unroutable_returned_total", "Total number of messages published as mandatory "
         "into an exchange and returned to the publisher as unroutable", lifecycle.unroutable_returned),
    ]
    counted = [Family(name, help_text, "counter").sample(value, protocol="amqp091")
               for name, help_text, value in per_protocol]
    return [*families, received, routed, *counted]
