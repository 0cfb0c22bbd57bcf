"""Users, virtual hosts and permissions, sans-IO: RabbitMQ's internal access control.

`passwords.py` hashes as RabbitMQ stores them; `patterns.py` permission regexes as RabbitMQ matches them;
`grants.py` one user's rights in one vhost (read live), each channel's cache of allowed decisions and
RabbitMQ's refusal texts;
`registry.py` the users, vhosts and permissions, written through to a definition store.
"""

from leveret.access.grants import (
    CONFIGURE,
    EXCHANGE,
    QUEUE,
    READ,
    WRITE,
    AccessDenied,
    ChannelGuard,
    Grants,
)
from leveret.access.registry import AccessError, AccessRegistry

__all__ = [
    "CONFIGURE", "EXCHANGE", "QUEUE", "READ", "WRITE", "AccessDenied", "AccessError", "AccessRegistry",
    "ChannelGuard", "Grants",
]
