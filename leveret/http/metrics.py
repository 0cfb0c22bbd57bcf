"""`GET /metrics`: queue, exchange and connection gauges in the Prometheus text format (version 0.0.4).

Written by hand rather than through prometheus-client: every value is read from the live model at
scrape time, so there is no registry to keep in step. Like RabbitMQ's rabbitmq_prometheus endpoint it
needs no credentials (scrapers rarely carry them); the listener binds to loopback unless told otherwise.
"""

from __future__ import annotations

from aiohttp import web

from leveret.broker.exchanges.delayed import DelayedMessageExchange
from leveret.http.overview import memory_budget
from leveret.http.target import ManagementTarget, target_of

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    # The exposition format escapes exactly these three in label values.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Family:
    """One metric family: HELP and TYPE lines, then its samples."""

    def __init__(self, name: str, help_text: str) -> None:
        self.name = name
        self.lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]

    def sample(self, value: int, **labels: str) -> None:
        if labels:
            body = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            self.lines.append(f"{self.name}{{{body}}} {value}")
        else:
            self.lines.append(f"{self.name} {value}")


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
    families = (messages, ready, unacked, consumers, delayed, connections, budget_used, budget_limit)
    return "\n".join(line for family in families for line in family.lines) + "\n"


async def get_metrics(request: web.Request) -> web.Response:
    """GET /metrics."""
    return web.Response(text=render_metrics(target_of(request)), headers={"Content-Type": CONTENT_TYPE})
