"""What the server tells a client about itself in connection.start: its identity and its capabilities.

The cluster name is read as each connection opens (a dict lookup per connection, nothing per frame), so a new
name applies to the connections opened after it is set, as in RabbitMQ (whose reader asks for the cluster name
as it sends connection.start)."""

from __future__ import annotations

import platform

from leveret import __version__
from leveret.broker.cluster_name import cluster_name
from leveret.broker.parameters import Parameters

# What we announce in connection.start; clients switch features on from these (pika checks several).
CAPABILITIES = {
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "basic.nack": True,
    "consumer_cancel_notify": True,
    "connection.blocked": True,
    "consumer_priorities": True,
    "authentication_failure_close": True,
    "per_consumer_qos": True,
    "direct_reply_to": True,
}


def server_properties(parameters: Parameters) -> dict:
    """connection.start's server-properties, with the cluster name `parameters` hold now."""
    return {
        "product": "leveret",
        "version": __version__,
        "platform": f"Python {platform.python_version()}",
        "copyright": "the leveret authors",
        "information": "Licensed under the Apache License 2.0",
        "cluster_name": cluster_name(parameters),
        "capabilities": dict(CAPABILITIES),
    }
