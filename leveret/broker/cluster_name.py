"""The node's name and the cluster's name, as RabbitMQ reports them.

A node is named name@host; a leveret process is the one node on its host. The cluster's name is the global
parameter `cluster_name` (set over `PUT /api/cluster-name` or with the definitions), the node's name while it
is unset, as in RabbitMQ. Both the management API and connection.start's server-properties read it here, so a
client sees the same name either way; a connection reads it once, as it opens.
"""

from __future__ import annotations

import platform

from leveret.broker.parameters import Parameters

CLUSTER_NAME_PARAMETER = "cluster_name"


def node_name() -> str:
    """leveret@<host name> (platform.node() is the host name socket.gethostname() gives)."""
    return f"leveret@{platform.node()}"


def cluster_name(parameters: Parameters) -> str:
    """The current cluster name."""
    name = parameters.get_global(CLUSTER_NAME_PARAMETER)
    return name if isinstance(name, str) else node_name()
