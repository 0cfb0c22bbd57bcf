"""Users and SASL authentication (PLAIN and AMQPLAIN), as RabbitMQ's internal auth backend does it.

Passwords are kept as salted SHA-256 hashes, never in clear. The default user may be restricted to
loopback connections, like RabbitMQ's `loopback_users` (guest can only connect from localhost).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field


@dataclass
class User:
    """A user: name, salted password hash, and management tags."""

    name: str
    salt: bytes
    password_hash: bytes
    tags: tuple[str, ...] = ("administrator",)
    loopback_only: bool = False

    def check(self, password: str) -> bool:
        return hmac.compare_digest(_hash(self.salt, password), self.password_hash)


def _hash(salt: bytes, password: str) -> bytes:
    return hashlib.sha256(salt + password.encode("utf-8")).digest()


@dataclass
class UserStore:
    """All users known to the broker."""

    users: dict[str, User] = field(default_factory=dict)

    def add(self, name: str, password: str, *, tags: tuple[str, ...] = ("administrator",), loopback_only: bool = False) -> User:
        salt = os.urandom(4)
        user = User(name, salt, _hash(salt, password), tags, loopback_only)
        self.users[name] = user
        return user

    def authenticate(self, name: str, password: str, *, from_loopback: bool) -> User | None:
        """The user if the credentials are right and the user may connect from where it does, else None."""
        user = self.users.get(name)
        if user is None or not user.check(password):
            return None
        if user.loopback_only and not from_loopback:
            return None
        return user
