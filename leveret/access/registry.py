"""Users, virtual hosts, permissions and topic permissions: the access model, written through to a store.

Every change goes to the store first (which fsyncs it) and only then into memory, so a change the store
refused (a full disk: OSError) leaves the registry as the disk has it. Authentication and the rights of a
connection are read from memory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from leveret.access.grants import Grants
from leveret.access.internal import InternalIdentity
from leveret.access.passwords import SHA256, check_password, hash_password, valid_hash
from leveret.access.patterns import check_pattern
from leveret.store.api import DefinitionStore, Definitions, PermissionDef, TopicPermissionDef, UserDef, VHostDef


# The vhost limits and the user limits RabbitMQ 3.10 knows.
VHOST_LIMITS = ("max-connections", "max-queues")
USER_LIMITS = ("max-connections", "max-channels")


class AccessError(ValueError):
    """A change the registry refuses (unknown user or vhost, bad pattern or hash)."""


class AccessRegistry:
    """The users, vhosts and permissions of one broker."""

    def __init__(self, store: DefinitionStore, *, loopback_users: Iterable[str] = ("guest",)) -> None:
        """`store` is written before memory changes (store/memory.py's MemoryDefinitionStore keeps nothing
        on disk)."""
        self.store = store
        self.loopback_users = frozenset(loopback_users)
        self.users: dict[str, UserDef] = {}
        self.vhosts: dict[str, VHostDef] = {}
        self.permissions: dict[tuple[str, str], PermissionDef] = {}
        self.topic_permissions: dict[tuple[str, str, str], TopicPermissionDef] = {}
        # Told after a change: `on_change(user, vhost)` when permissions changed (None: every user, or
        # every vhost), `on_user_deleted(user)` when a user is gone (the server closes its connections).
        self.on_change: list[Callable[[str | None, str | None], None]] = []
        self.on_user_deleted: list[Callable[[str], None]] = []
        # Authentication attempts by (protocol, succeeded), as rabbitmq_prometheus counts them (/metrics).
        self.auth_attempts: dict[tuple[str, bool], int] = {}
        # The broker's own shovels log in as this (access/internal.py), whatever happens to the users.
        self.internal = InternalIdentity()

    def _changed(self, user: str | None, vhost: str | None) -> None:
        for watcher in self.on_change:
            watcher(user, vhost)

    def load(self, defs: Definitions) -> None:
        """Take the users, vhosts and permissions of stored definitions (nothing is written). The tables are
        refilled in place: open connections' `Grants` read them."""
        for table, stored in ((self.users, defs.users), (self.vhosts, defs.vhosts),
                              (self.permissions, defs.permissions), (self.topic_permissions, defs.topic_permissions)):
            table.clear()
            table.update(stored)

    # -- users ------------------------------------------------------------------------------------

    def add_user(self, name: str, password: str | None, tags: Iterable[str] = ()) -> UserDef:
        """Create or replace a user; password None: a user without a password."""
        stored = "" if password is None else hash_password(password)
        return self.put_user(UserDef(name, stored, SHA256, tuple(tags)))

    def put_user(self, user: UserDef) -> UserDef:
        """Create or replace a user given its stored hash (an import). A user given without limits keeps
        the ones it has, as RabbitMQ's user update does (limits are set on their own: `set_user_limit`)."""
        if not user.name:
            raise AccessError("a user needs a name")
        if not valid_hash(user.password_hash, user.hashing_algorithm):
            raise AccessError(f"bad password hash for user '{user.name}' ({user.hashing_algorithm})")
        existing = self.users.get(user.name)
        if existing is not None and existing.limits and not user.limits:
            user = dataclasses.replace(user, limits=dict(existing.limits))
        self.store.put_user(user)
        self.users[user.name] = user
        return user

    def change_password(self, name: str, password: str | None) -> UserDef:
        user = self._user(name)
        stored = "" if password is None else hash_password(password)
        return self.put_user(UserDef(user.name, stored, SHA256, user.tags))

    def set_tags(self, name: str, tags: Iterable[str]) -> UserDef:
        user = self._user(name)
        return self.put_user(UserDef(user.name, user.password_hash, user.hashing_algorithm, tuple(tags)))

    def set_user_limit(self, name: str, limit: str, value: int | None) -> UserDef:
        """Set (None: clear) one of a user's USER_LIMITS; the next connection.open or channel.open obeys it."""
        user = self._user(name)
        limits = {key: v for key, v in user.limits.items() if key != limit}
        if value is not None:
            limits[limit] = value
        changed = dataclasses.replace(user, limits=limits)
        self.store.put_user(changed)
        self.users[name] = changed
        return changed

    def user_limit(self, name: str, limit: str) -> int | None:
        """A user's limit in force: None when it is not set or negative (no limit), or the user is gone."""
        user = self.users.get(name)
        value = user.limits.get(limit) if user is not None else None
        return value if value is not None and value >= 0 else None

    def delete_user(self, name: str) -> None:
        self._user(name)
        self.store.delete_user(name)
        del self.users[name]
        self._drop(lambda key: key[0] == name)
        for watcher in self.on_user_deleted:
            watcher(name)

    def _user(self, name: str) -> UserDef:
        user = self.users.get(name)
        if user is None:
            raise AccessError(f"no such user '{name}'")
        return user

    # -- vhosts -----------------------------------------------------------------------------------

    def add_vhost(self, name: str, description: str = "", tags: Iterable[str] = ()) -> VHostDef:
        if not name:
            raise AccessError("a vhost needs a name")
        existing = self.vhosts.get(name)
        vhost = VHostDef(name, description, tuple(tags), dict(existing.limits) if existing else {})
        self.store.put_vhost(vhost)
        self.vhosts[name] = vhost
        return vhost

    def set_vhost_limit(self, name: str, limit: str, value: int | None) -> VHostDef:
        """Set (value None: clear) one of the vhost's `VHOST_LIMITS`; a negative value means no limit."""
        vhost = self._vhost(name)
        if limit not in VHOST_LIMITS:
            raise AccessError(f"unknown vhost limit '{limit}'")
        limits = {key: v for key, v in vhost.limits.items() if key != limit}
        if value is not None:
            limits[limit] = value
        changed = VHostDef(vhost.name, vhost.description, vhost.tags, limits)
        self.store.put_vhost(changed)
        self.vhosts[name] = changed
        return changed

    def delete_vhost(self, name: str) -> None:
        if name not in self.vhosts:
            raise AccessError(f"no such vhost '{name}'")
        self.store.delete_vhost(name)
        del self.vhosts[name]
        self._drop(lambda key: key[1] == name)
        self._changed(None, name)

    def _drop(self, doomed) -> None:
        """Forget the permissions a deleted user or vhost took with it (the store's cascade did the same)."""
        for table in (self.permissions, self.topic_permissions):
            for key in [key for key in table if doomed(key)]:
                del table[key]

    # -- permissions ------------------------------------------------------------------------------

    def set_permissions(self, user: str, vhost: str, configure: str, write: str, read: str) -> PermissionDef:
        self._user(user)
        self._vhost(vhost)
        self._patterns(configure, write, read)
        permission = PermissionDef(user, vhost, configure, write, read)
        self.store.put_permission(permission)
        self.permissions[(user, vhost)] = permission
        self._changed(user, vhost)
        return permission

    def clear_permissions(self, user: str, vhost: str) -> None:
        if (user, vhost) not in self.permissions:
            raise AccessError(f"no permissions for user '{user}' in vhost '{vhost}'")
        self.store.delete_permission(user, vhost)
        del self.permissions[(user, vhost)]
        self._changed(user, vhost)

    def set_topic_permissions(self, user: str, vhost: str, exchange: str, write: str, read: str) -> TopicPermissionDef:
        self._user(user)
        self._vhost(vhost)
        self._patterns(write, read)
        permission = TopicPermissionDef(user, vhost, exchange, write, read)
        self.store.put_topic_permission(permission)
        self.topic_permissions[(user, vhost, exchange)] = permission
        self._changed(user, vhost)
        return permission

    def clear_topic_permissions(self, user: str, vhost: str, exchange: str | None = None) -> None:
        """Clear one exchange's topic permissions, or (exchange None) all of the user's in the vhost."""
        keys = [k for k in self.topic_permissions if k[:2] == (user, vhost) and exchange in (None, k[2])]
        if not keys:
            raise AccessError(f"no topic permissions for user '{user}' in vhost '{vhost}'")
        for key in keys:
            self.store.delete_topic_permission(*key)
            del self.topic_permissions[key]
        self._changed(user, vhost)

    def _vhost(self, name: str) -> VHostDef:
        vhost = self.vhosts.get(name)
        if vhost is None:
            raise AccessError(f"no such vhost '{name}'")
        return vhost

    @staticmethod
    def _patterns(*patterns: str) -> None:
        for pattern in patterns:
            problem = check_pattern(pattern)
            if problem is not None:
                raise AccessError(problem)

    # -- what connections ask ---------------------------------------------------------------------

    def authenticate(self, name: str, password: str, *, from_loopback: bool,
                     protocol: str = "amqp091") -> UserDef | None:
        """The user if the password is right and the user may connect from where it does, else None; the
        attempt is counted under `protocol` (RabbitMQ's labels: amqp091, http). The internal identity
        (access/internal.py) is not an attempt: RabbitMQ's direct connections are not counted either."""
        if protocol == "amqp091" and from_loopback and self.is_internal(name) and self.internal.matches(name, password):
            return self.internal.user()
        user = self.users.get(name)
        if user is not None and not check_password(user.password_hash, user.hashing_algorithm, password):
            user = None
        if user is not None and name in self.loopback_users and not from_loopback:
            user = None
        self.count_attempt(protocol, user is not None)
        return user

    def count_attempt(self, protocol: str, succeeded: bool) -> None:
        """One authentication attempt (`authenticate` counts its own; a login refused before it, such as
        one without a password, is counted by the caller)."""
        key = (protocol, succeeded)
        self.auth_attempts[key] = self.auth_attempts.get(key, 0) + 1

    def authenticate_certificate(self, name: str, *, from_loopback: bool) -> UserDef | None:
        """The user a verified client certificate names (the EXTERNAL mechanism), if it exists and may
        connect from where it does, else None. No password is asked: users without one are for this, and
        RabbitMQ lets a user with a password in by certificate too."""
        user = self.users.get(name)
        if user is not None and name in self.loopback_users and not from_loopback:
            user = None
        self.count_attempt("amqp091", user is not None)
        return user

    def grants(self, user: str, vhost: str) -> Grants | None:
        """The user's rights in the vhost, read live from this registry at each check, or None when it may not
        enter it (no such vhost or no permission row: RabbitMQ refuses both at connection.open)."""
        if vhost not in self.vhosts:
            return None
        if self.is_internal(user):
            return Grants(user, vhost, {(user, vhost): self.internal.permission(vhost)}, {})
        if (user, vhost) not in self.permissions:
            return None
        return Grants(user, vhost, self.permissions, self.topic_permissions)

    def is_internal(self, name: str) -> bool:
        """Whether `name` is the internal identity (and not a real user who happens to have its name)."""
        return name == self.internal.name and name not in self.users
