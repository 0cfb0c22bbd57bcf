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


def parse_sasl_response(mechanism: str, response: bytes, decode_table) -> tuple[str, str] | None:
    """(username, password) from a connection.start-ok response, or None when it is malformed.

    PLAIN is "authzid NUL authcid NUL password"; AMQPLAIN is a field table without its length prefix holding
    LOGIN and PASSWORD. `decode_table` is the codec's table decoder, passed in to keep this module codec-free.
    """
    if mechanism == "PLAIN":
        parts = bytes(response).split(b"\x00")
        if len(parts) != 3:
            return None
        return parts[1].decode("utf-8", "replace"), parts[2].decode("utf-8", "replace")
    if mechanism == "AMQPLAIN":
        raw = bytes(response)
        try:
            table, _ = decode_table(len(raw).to_bytes(4, "big") + raw, 0)
        except Exception:
            return None
        login, password = table.get("LOGIN"), table.get("PASSWORD")
        if login is None or password is None:
            return None
        as_str = lambda v: v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else str(v)  # noqa: E731
        return as_str(login), as_str(password)
    return None
