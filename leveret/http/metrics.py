"""`GET /metrics`: queue, exchange and connection gauges in the Prometheus text format (version 0.0.4).

Written by hand rather than through prometheus-client: every value is read from the live model at
scrape time, so there is no registry to keep in step. Like RabbitMQ's rabbitmq_prometheus endpoint it
needs no credentials (scrapers rarely carry them); the listener binds to loopback unless told otherwise.
Authentication attempts are counted as rabbitmq_prometheus counts them (`rabbitmq_auth_attempts_total`,
`..._succeeded_total`, `..._failed_total`, labelled `protocol="amqp091"` or `"http"`). Node resources
appear twice: under rabbitmq_prometheus's names (`rabbitmq_alarms_memory_used_watermark`,
`rabbitmq_process_resident_memory_bytes`, ...) for RabbitMQ's dashboards and alert rules, and as leveret's
own `leveret_memory_*` gauges beside the other `leveret_` ones.
"""

from __future__ import annotations

from aiohttp import web

from leveret.broker.exchanges.delayed import DelayedMessageExchange
from leveret.http.nodes import output_paused, resources
from leveret.http.overview import memory_budget
from leveret.http.target import ManagementTarget, target_of

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    # The exposition format escapes exactly these three in label values.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Family:
    """One metric family: HELP and TYPE lines, then its samples."""

    def __init__(self, name: str, help_text: str, kind: str = "gauge") -> None:
        self.name = name
        self.lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]

    def sample(self, value: int, **labels: str) -> None:
        if labels:
            body = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            self.lines.append(f"{self.name}{{{body}}} {value}")
        else:
            self.lines.append(f"{self.name} {value}")


# rabbitmq_prometheus's authentication counters: (name, help, which outcomes each counts).
AUTH_COUNTERS = (
    ("rabbitmq_auth_attempts_total", "Total number of authorization attempts", (True, False)),
    ("rabbitmq_auth_attempts_succeeded_total", "Total number of successful authentication attempts", (True,)),
    ("rabbitmq_auth_attempts_failed_total", "Total number of failed authentication attempts", (False,)),
)
# Both protocols always appear, so a rate of failures is defined before the first one.
AUTH_PROTOCOLS = ("amqp091", "http")


def auth_families(attempts: dict[tuple[str, bool], int]) -> list[_Family]:
    """The authentication attempts (the access registry's counts) under rabbitmq_prometheus's names."""
    protocols = sorted(set(AUTH_PROTOCOLS).union(protocol for protocol, _ in attempts))
    families = []
    for name, help_text, outcomes in AUTH_COUNTERS:
        family = _Family(name, help_text, "counter")
        for protocol in protocols:
            family.sample(sum(attempts.get((protocol, ok), 0) for ok in outcomes), protocol=protocol)
        families.append(family)
    return families


def render_metrics(target: ManagementTarget) -> str:
    """Every gauge for `target`, as exposition text."""
    messages = _Family("leveret_queue_messages", "Messages in the queue, ready plus unacknowledged.")
    ready = _Family("leveret_queue_messages_ready", "Messages ready for delivery.")
    unacked = _Family("leveret_queue_messages_unacked", "Messages delivered and not yet acknowledged.")
    consumers = _Family("leveret_queue_consumers", "Consumers on the queue.")
    delayed = _Family("leveret_exchange_delayed_messages",
                      "Messages an x-delayed-message exchange holds for later routing.")
    connections = _Family("leveret_connections", "Open AMQP connections.")
    budget_used = _Family("leveret_memory_budget_used_bytes",
                          "Bytes of queued message bodies held in memory (transient backlogs spill past the limit).")
    budget_limit = _Family("leveret_memory_budget_limit_bytes", "The memory_budget setting.")
    # The node's resources under rabbitmq_prometheus's names, so RabbitMQ's alert rules apply as they are.
    node = resources(target)
    node_families = []
    for name, help_text, value in (
        ("rabbitmq_alarms_memory_used_watermark",
         "is set to 1 when the memory alarm is on (publishers blocked), 0 otherwise", int(node["mem_alarm"])),
        ("rabbitmq_alarms_free_disk_space_watermark",
         "is set to 1 when the disk alarm is on (publishers blocked), 0 otherwise", int(node["disk_free_alarm"])),
        ("rabbitmq_process_resident_memory_bytes", "Memory used in bytes (resident set size)", node["mem_used"]),
        ("rabbitmq_resident_memory_limit_bytes", "Memory high watermark in bytes", node["mem_limit"]),
        ("rabbitmq_disk_space_available_bytes", "Disk space available in bytes", node["disk_free"]),
        ("rabbitmq_disk_space_available_limit_bytes", "Free disk space low watermark in bytes",
         node["disk_free_limit"]),
        ("leveret_memory_alarm", "1 while the memory alarm blocks publishers, 0 otherwise.", int(node["mem_alarm"])),
        ("leveret_memory_resident_bytes", "The broker process's resident set size at the last memory check.",
         node["mem_used"]),
        ("leveret_memory_high_watermark_bytes", "The memory_high_watermark setting in bytes.", node["mem_limit"]),
        ("leveret_connections_output_paused",
         "Connections not being read because they owe their client more than max_output_buffer.",
         output_paused(target)),
    ):
        family = _Family(name, help_text)
        family.sample(value)
        node_families.append(family)
    output_pauses = _Family("leveret_output_pauses_total",
                            "Times a connection stopped being read because of its unsent output.", "counter")
    output_pauses.sample(getattr(target, "output_pauses", 0))
    node_families.append(output_pauses)
    node_families.extend(auth_families(target.users.auth_attempts))
    for vname in sorted(target.broker.vhosts):
        vhost = target.broker.vhosts[vname]
        for qname in sorted(vhost.queues):
            queue = vhost.queues[qname]
            n_ready, n_unacked = queue.message_count, queue.unacked_count
            messages.sample(n_ready + n_unacked, vhost=vname, queue=qname)
            ready.sample(n_ready, vhost=vname, queue=qname)
            unacked.sample(n_unacked, vhost=vname, queue=qname)
            consumers.sample(queue.consumer_count, vhost=vname, queue=qname)
        for xname in sorted(vhost.exchanges):
            exchange = vhost.exchanges[xname]
            if isinstance(exchange, DelayedMessageExchange):
                delayed.sample(exchange.pending_count, vhost=vname, exchange=xname)
    connections.sample(len(target.connections))
    budget = memory_budget(target)
    budget_used.sample(budget["used"])
    budget_limit.sample(budget["limit"])
    families = (messages, ready, unacked, consumers, delayed, connections, budget_used, budget_limit, *node_families)
    return "\n".join(line for family in families for line in family.lines) + "\n"


async def get_metrics(request: web.Request) -> web.Response:
    """GET /metrics."""
    return web.Response(text=render_metrics(target_of(request)), headers={"Content-Type": CONTENT_TYPE})
