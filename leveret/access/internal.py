"""The broker's own trusted identity: how its shovels reach it without depending on any user.

RabbitMQ's shovels open a direct (in-VM) connection to the local broker for a URI without a host, as an
internal user with every right, so deleting guest or changing its password does not break them. Leveret's
shovels connect over loopback (leveret/shovel/endpoints.py), so the equivalent is a credential only this
process knows: a random password made at start, never stored or shown, accepted only over AMQP from a
loopback address, and only while no real user has the internal name (a real user of that name is a user
like any other, and the internal path steps aside rather than lend it every right).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

from leveret.store.api import PermissionDef, UserDef

INTERNAL_USER = "leveret-internal"


@dataclass(frozen=True)
class InternalIdentity:
    """The internal user's name and this process's password for it."""

    name: str = INTERNAL_USER
    password: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    def matches(self, name: str, password: str) -> bool:
        return name == self.name and hmac.compare_digest(password.encode(), self.password.encode())

    def user(self) -> UserDef:
        return UserDef(self.name)

    def permission(self, vhost: str) -> PermissionDef:
        """Every right in `vhost`: configure, write and read on every resource."""
        return PermissionDef(self.name, vhost, ".*", ".*", ".*")
