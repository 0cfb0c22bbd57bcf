"""Importing a definitions document (RabbitMQ's JSON, as definitions.py exports it) into the running broker:
the management API's POST /api/definitions[/{vhost}] and the `load_definitions` setting at start.

Sections are imported in RabbitMQ's order (users, vhosts, permissions, topic permissions, parameters,
global parameters, policies, queues, exchanges, bindings), each object through the same calls the API's
own endpoints make, so each is durable as it is imported and refused with the same texts. The first
refused object stops the import with RabbitMQ's reason (checked against 3.10: a queue's broker error as
"precondition_failed: <text>", an unknown vhost as ["no_such_vhost", name], a policy's validation text
followed by " (vhost/name)"); what was imported before it stays. A binding whose source or destination
does not exist is skipped, as RabbitMQ skips it. Users keep their password hash (never re-hashed).

Into one vhost (`vhost` given) only parameters, policies, queues, exchanges and bindings are imported, all
into that vhost whatever their own `vhost` key says.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Iterator

from leveret.access.passwords import SHA256
from leveret.access.registry import AccessError
from leveret.broker.errors import BrokerError, NotFound
from leveret.config import SettingsError
from leveret.http.parameters import OPERATOR_POLICY_COMPONENT, set_parameter
from leveret.http.policies import put_policy_body
from leveret.http.responses import BadRequest, tag_list
from leveret.http.target import ManagementTarget
from leveret.store.api import UserDef

SECTIONS = ("users", "vhosts", "permissions", "topic_permissions", "parameters", "global_parameters", "policies",
            "queues", "exchanges", "bindings")
VHOST_SECTIONS = ("parameters", "policies", "queues", "exchanges", "bindings")


class ImportFailed(Exception):
    """An object the import refused; `reason` is RabbitMQ's (a string or a list)."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


def import_steps(target: ManagementTarget, document: dict[str, Any], vhost: str | None = None) -> Iterator[int]:
    """Import `document` (into `vhost` only, when given) object by object, yielding how many are in after
    each, so the API's handler lets the broker's other work run between them (each is fsynced).
    ImportFailed at the first object refused."""
    imported = 0
    for section in VHOST_SECTIONS if vhost is not None else SECTIONS:
        items = document.get(section) or []
        if not isinstance(items, list):
            raise ImportFailed(f"{section} must be a list")
        for item in items:
            if not isinstance(item, dict):
                raise ImportFailed(f"{section} must be a list of objects")
            try:
                _IMPORTERS[section](target, item, vhost)
            except KeyError as missing:
                raise ImportFailed(f"[{{key_missing,{missing.args[0]}}}]") from None
            except (AccessError, BadRequest) as refused:
                raise ImportFailed(getattr(refused, "reason", str(refused))) from None
            imported += 1
            yield imported


def import_definitions(target: ManagementTarget, document: dict[str, Any], vhost: str | None = None) -> int:
    """`import_steps` in one go (at start, before anything else runs); how many objects were imported."""
    imported = 0
    for imported in import_steps(target, document, vhost):
        pass
    return imported


def load_definitions_file(target: ManagementTarget, path: str) -> int:
    """Import the file of the `load_definitions` setting; SettingsError (one line) when it cannot be read,
    is not a JSON object, or an object in it is refused."""
    try:
        with open(path, "rb") as f:
            document = json.loads(f.read())
    except (OSError, ValueError) as exc:
        raise SettingsError("load_definitions", path, f"cannot read a definitions file: {exc}") from None
    if not isinstance(document, dict):
        raise SettingsError("load_definitions", path, "not a definitions file (a JSON object)")
    try:
        return import_definitions(target, document)
    except ImportFailed as failed:
        raise SettingsError("load_definitions", path, " ".join(str(failed.reason).split())) from None


def _error_name(error: BrokerError) -> str:
    """RabbitMQ's name of an error kind: PreconditionFailed -> precondition_failed."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


def _vhost_of(target: ManagementTarget, item: dict[str, Any], vhost: str | None) -> str:
    name = vhost if vhost is not None else item["vhost"]
    if name not in target.users.vhosts or name not in target.broker.vhosts:
        raise ImportFailed(["no_such_vhost", name])
    return name


def _user(target: ManagementTarget, item: dict[str, Any], _vhost: str | None) -> None:
    registry = target.users
    name, tags = item["name"], tag_list(item.get("tags", []))
    if "password_hash" in item:
        registry.put_user(UserDef(name, item["password_hash"], item.get("hashing_algorithm") or SHA256, tags))
    else:
        registry.add_user(name, item.get("password"), tags)
    for limit, value in (item.get("limits") or {}).items():
        registry.set_user_limit(name, limit, value)


def _vhost(target: ManagementTarget, item: dict[str, Any], _vhost: str | None) -> None:
    metadata = item.get("metadata") or {}
    description = item.get("description", metadata.get("description", ""))
    tags = tag_list(item.get("tags", metadata.get("tags", [])))
    target.put_vhost(item["name"], description or "", tags)


def _permission(target: ManagementTarget, item: dict[str, Any], _vhost: str | None) -> None:
    target.users.set_permissions(item["user"], item["vhost"], item["configure"], item["write"], item["read"])


def _topic_permission(target: ManagementTarget, item: dict[str, Any], _vhost: str | None) -> None:
    target.users.set_topic_permissions(item["user"], item["vhost"], item["exchange"], item["write"], item["read"])


# Runtime parameters RabbitMQ keeps for its own bookkeeping while an operation is under way (an exchange being
# deleted marks itself so), which a definitions export can catch: state of that broker, not a definition, so an
# import skips them (seen in the local RabbitMQ's export while vhosts were being deleted).
RABBITMQ_TRANSIENT_COMPONENTS = frozenset({"exchange-delete-in-progress"})


def _parameter(target: ManagementTarget, item: dict[str, Any], vhost: str | None) -> None:
    name, component, value = item["name"], item["component"], item["value"]
    where = _vhost_of(target, item, vhost)
    if component == OPERATOR_POLICY_COMPONENT:  # RabbitMQ exports operator policies as parameters
        _policy_body(target, where, name, value, operator=True)
        return
    if component in RABBITMQ_TRANSIENT_COMPONENTS:
        return
    try:
        set_parameter(target, where, component, name, value)
    except BadRequest as refused:
        raise ImportFailed(f"{refused.reason} ({where}/{component}/{name})") from None


def _global_parameter(target: ManagementTarget, item: dict[str, Any], _vhost: str | None) -> None:
    target.broker.parameters.set_global(item["name"], item["value"])


def _policy_body(target: ManagementTarget, vhost: str, name: str, body: Any, *, operator: bool) -> None:
    if not isinstance(body, dict):
        raise ImportFailed(f"policy {name} must be an object")
    try:
        put_policy_body(target, vhost, name, body, operator=operator)
    except BadRequest as refused:
        raise ImportFailed(f"{refused.reason} ({vhost}/{name})") from None


def _policy(target: ManagementTarget, item: dict[str, Any], vhost: str | None) -> None:
    _policy_body(target, _vhost_of(target, item, vhost), item["name"], item, operator=False)


def _queue(target: ManagementTarget, item: dict[str, Any], vhost: str | None) -> None:
    model = target.broker.vhosts[_vhost_of(target, item, vhost)]
    try:
        model.declare_queue(item["name"], durable=bool(item.get("durable", True)),
                            auto_delete=bool(item.get("auto_delete", False)), arguments=item.get("arguments") or {})
    except BrokerError as error:
        raise ImportFailed(f"{_error_name(error)}: {error.text}") from None


def _exchange(target: ManagementTarget, item: dict[str, Any], vhost: str | None) -> None:
    model = target.broker.vhosts[_vhost_of(target, item, vhost)]
    try:
        model.declare_exchange(item["name"], item["type"], durable=bool(item.get("durable", True)),
                               auto_delete=bool(item.get("auto_delete", False)),
                               internal=bool(item.get("internal", False)), arguments=item.get("arguments") or {})
    except BrokerError as error:
        raise ImportFailed(f"{_error_name(error)}: {error.text}") from None


def _binding(target: ManagementTarget, item: dict[str, Any], vhost: str | None) -> None:
    model = target.broker.vhosts[_vhost_of(target, item, vhost)]
    bind = model.bind_exchange if item.get("destination_type") == "exchange" else model.bind_queue
    try:
        bind(item["destination"], item["source"], item.get("routing_key", ""), item.get("arguments") or {})
    except NotFound:
        pass  # an end that does not exist: skipped, as RabbitMQ skips it
    except BrokerError as error:
        raise ImportFailed(f"{_error_name(error)}: {error.text}") from None


_IMPORTERS: dict[str, Callable[[ManagementTarget, dict[str, Any], str | None], None]] = {
    "users": _user,
    "vhosts": _vhost,
    "permissions": _permission,
    "topic_permissions": _topic_permission,
    "parameters": _parameter,
    "global_parameters": _global_parameter,
    "policies": _policy,
    "queues": _queue,
    "exchanges": _exchange,
    "bindings": _binding,
}
