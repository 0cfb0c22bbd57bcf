"""What the server tells a client about itself in connection.start: its identity and its capabilities."""

from __future__ import annotations

import platform

from leveret import __version__

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


def server_properties() -> dict:
    """connection.start's server-properties."""
    return {
        "product": "leveret",
        "version": __version__,
        "platform": f"Python {platform.python_version()}",
        "copyright": "the leveret authors",
        "information": "Licensed under the Apache License 2.0",
        "cluster_name": "leveret@localhost",
        "capabilities": dict(CAPABILITIES),
    }
