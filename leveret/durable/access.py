"""The access registry over the definition store: loaded at start, seeded once in a new data directory.

The first start of a data directory creates the default user (settings `default_user`, `default_pass`,
tagged administrator), the default vhost and the user's full permissions there, then writes the
`access-seeded` marker. A later start finds the marker and seeds nothing, so a deleted guest stays deleted
(RabbitMQ seeds only a fresh database too). A crash between the seeding and the marker seeds again at the
next start: the same user, vhost and permissions, written over themselves.
"""

from __future__ import annotations

import os

from leveret.access import AccessRegistry
from leveret.broker.vhost import Broker, VHost
from leveret.store.api import VHostDef
from leveret.store.fsio import FileIO

SEEDED_FILE = "access-seeded"
DEFAULT_USER_TAGS = ("administrator",)


def load_access(registry: AccessRegistry, broker: Broker) -> None:
    """Fill `registry` from its store and give the broker a model of every stored vhost."""
    registry.load(registry.store.load())
    for name, stored in registry.vhosts.items():
        apply_limits(stored, broker.add_vhost(name))


def apply_limits(stored: VHostDef, model: VHost) -> None:
    """The stored vhost's limits onto its model, which enforces them (negative or absent: no limit)."""
    def limit(key: str) -> int | None:
        value = stored.limits.get(key)
        return None if value is None or value < 0 else value

    model.max_queues = limit("max-queues")
    model.max_connections = limit("max-connections")


def seed_defaults(registry: AccessRegistry, broker: Broker, *, user: str, password: str, vhost: str) -> None:
    """The default vhost, user and permissions (what a first start creates)."""
    if vhost not in registry.vhosts:
        registry.add_vhost(vhost, "Default virtual host")
    if broker.vhost(vhost) is None:
        broker.add_vhost(vhost)
    registry.add_user(user, password, DEFAULT_USER_TAGS)
    registry.set_permissions(user, vhost, ".*", ".*", ".*")


def seed_once(registry: AccessRegistry, broker: Broker, data_dir: str, file_io: FileIO, *, user: str,
              password: str, vhost: str) -> bool:
    """`seed_defaults` unless this data directory was seeded before; True if it seeded now."""
    marker = os.path.join(data_dir, SEEDED_FILE)
    if os.path.exists(marker):
        return False
    seed_defaults(registry, broker, user=user, password=password, vhost=vhost)
    file_io.write_atomically(marker, b"the default user and vhost were created once; see durable/access.py\n")
    return True


def put_vhost(registry: AccessRegistry, broker: Broker, name: str, description: str = "",
              tags: tuple[str, ...] = ()) -> bool:
    """Create or update a vhost in the registry (durable first) and the model; True when it is new."""
    created = name not in registry.vhosts
    stored = registry.add_vhost(name, description, tags)
    apply_limits(stored, broker.add_vhost(name))
    return created


def set_vhost_limit(registry: AccessRegistry, broker: Broker, name: str, limit: str, value: int | None) -> None:
    """Set (None: clear) one vhost limit, durable first; the model enforces it from the next open or declare."""
    stored = registry.set_vhost_limit(name, limit, value)
    apply_limits(stored, broker.add_vhost(name))


def delete_vhost(registry: AccessRegistry, broker: Broker, name: str) -> bool:
    """Delete a vhost: its record and permissions, then its queues, exchanges and their messages, from disk
    too (False when there is no such vhost). Its connections are the server's to close."""
    if name not in registry.vhosts:
        return False
    registry.delete_vhost(name)
    broker.delete_vhost(name)
    return True
