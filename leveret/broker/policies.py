"""Policies and operator policies: which one applies to each queue and exchange, and what that changes.

Each vhost holds its own (`VHost.policies`, a `PolicySet`); `Policies` (`broker.policies`) is the broker's
entry to them: put, delete, get and list, each change written through the `ParameterHooks` first (an
`OSError` changes nothing), and the stored ones restored at start before any queue is declared again.

RabbitMQ 3.10's rules, checked against it: of the policies whose pattern matches a name (an unanchored
regex search) and whose apply-to covers the object, the highest priority wins and nothing is merged
between policies (a tie goes to the lowest name; RabbitMQ's order among equal priorities is its table's);
a policy holding a key the queue's type does not support does not apply to that queue at all. Operator
policies are chosen the same way, and their values meet the policy's as the lower one (merge_operator).
The queue's own arguments then meet that effective definition (queue_arguments.with_policy).

A change recomputes every queue and exchange of its vhost at once, and a declared queue or exchange is
matched as it is created (the registry calls `PolicySet.attach`): a queue keeps its effective
`QueueSettings`, so nothing on the message path looks a policy up.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple, Protocol

from leveret.broker.errors import NotFound
from leveret.broker.exchanges.base import Exchange
from leveret.broker.policy_definitions import (
    APPLY_TO_TYPES,
    AppliedPolicy,
    applies_to_type,
    check_policy,
    merge_operator,
)
from leveret.broker.queue import Queue
from leveret.broker.queue_arguments import with_policy
from leveret.broker.storage import NO_HOOKS, ParameterHooks
from leveret.broker.stream import StreamQueue
from leveret.broker.stream_arguments import parse_interval
from leveret.store.api import OperatorPolicyDef, PolicyDef


class Policy(NamedTuple):
    """A stored policy and its compiled pattern."""

    stored: PolicyDef
    pattern: re.Pattern

    def covers(self, name: str, queue_type: str | None) -> bool:
        """Whether it applies to the exchange (`queue_type` None) or the queue of that type named `name`."""
        apply_to = self.stored.apply_to
        if queue_type is None:
            if apply_to not in ("exchanges", "all"):
                return False
        elif apply_to == "exchanges" or APPLY_TO_TYPES.get(apply_to, queue_type) != queue_type:
            return False
        elif not applies_to_type(self.stored.definition, queue_type):
            return False
        return self.pattern.search(name) is not None


class PolicyHost(Protocol):
    """A vhost as its policies see it (not VHost itself: the registry, part of it, imports this module)."""

    queues: dict[str, Any]
    exchanges: dict[str, Exchange]
    policies: "PolicySet"


class PolicySet:
    """One vhost's policies and operator policies, and applying them to its queues and exchanges."""

    def __init__(self) -> None:
        self.policies: dict[str, Policy] = {}
        self.operator_policies: dict[str, Policy] = {}

    def table(self, operator: bool) -> dict[str, Policy]:
        return self.operator_policies if operator else self.policies

    def best(self, name: str, queue_type: str | None, operator: bool = False) -> PolicyDef | None:
        """The applying (operator) policy of highest priority (the lowest name among equals), or None."""
        found: PolicyDef | None = None
        for policy in self.table(operator).values():
            stored = policy.stored
            if policy.covers(name, queue_type) and (
                    found is None or (-stored.priority, stored.name) < (-found.priority, found.name)):
                found = stored
        return found

    def attach(self, target: Any) -> None:
        """Apply the policies that match a queue or an exchange (a new one, or after a change)."""
        if isinstance(target, Exchange):
            policy = self.best(target.name, None)
            alternate = policy.definition.get("alternate-exchange") if policy is not None else None
            target.policy = policy.name if policy is not None else None
            target.policy_alternate = alternate if isinstance(alternate, str) else None
            return
        queue_type = "stream" if isinstance(target, StreamQueue) else target.settings.queue_type
        policy, operator = self.best(target.name, queue_type), self.best(target.name, queue_type, operator=True)
        definition = merge_operator(policy.definition if policy else None, operator.definition if operator else None)
        applied = AppliedPolicy(policy.name if policy else None, operator.name if operator else None, definition)
        if applied == target.applied_policy:
            return
        target.applied_policy = applied
        if isinstance(target, StreamQueue):
            _stream_retention(target, definition)
        elif isinstance(target, Queue):
            target.apply_settings(with_policy(target.argument_settings, target.arguments, definition))

    def reapply(self, vhost: PolicyHost) -> None:
        """Every queue and exchange of `vhost` (a policy changed)."""
        for queue in list(vhost.queues.values()):
            self.attach(queue)
        for exchange in list(vhost.exchanges.values()):
            self.attach(exchange)


def _stream_retention(stream: StreamQueue, definition: dict[str, Any]) -> None:
    """A stream keeps the lower of its x-max-age / x-max-length-bytes and the policy's (as RabbitMQ 3.10)."""
    def lower(own: int | None, policy: int | None) -> int | None:
        return policy if own is None else own if policy is None else min(own, policy)

    age = definition.get("max-age")
    size = definition.get("max-length-bytes")
    declared = stream.stream_settings
    stream.set_retention(lower(declared.max_age_ms, parse_interval(age) if isinstance(age, str) else None),
                         lower(declared.max_bytes, size if isinstance(size, int) else None))


class Policies:
    """The broker's policies and operator policies (`broker.policies`), per vhost, durable."""

    def __init__(self, vhosts: dict[str, PolicyHost], hooks: ParameterHooks = NO_HOOKS) -> None:
        self._vhosts = vhosts
        self._hooks = hooks

    def _set_of(self, vhost: str) -> tuple[PolicyHost, PolicySet]:
        model = self._vhosts.get(vhost)
        if model is None:
            raise NotFound(f"no vhost '{vhost}'")
        return model, model.policies

    def put(self, vhost: str, name: str, pattern: Any, definition: Any, apply_to: Any = "all", priority: Any = 0,
            *, operator: bool = False) -> bool:
        """Check (PolicyInvalid with RabbitMQ's text), store durably, apply; True when it is new."""
        model, policies = self._set_of(vhost)
        compiled = check_policy(pattern, definition, apply_to, priority, operator=operator)
        stored = (OperatorPolicyDef if operator else PolicyDef)(vhost, name, pattern, dict(definition), apply_to,
                                                                priority)
        self._hooks.policy_set(stored)
        table = policies.table(operator)
        created = name not in table
        table[name] = Policy(stored, compiled)
        policies.reapply(model)
        return created

    def delete(self, vhost: str, name: str, *, operator: bool = False) -> bool:
        """Delete durably and apply what remains; False when there is no such policy."""
        model = self._vhosts.get(vhost)
        if model is None or name not in model.policies.table(operator):
            return False
        self._hooks.policy_cleared(vhost, name, operator=operator)
        del model.policies.table(operator)[name]
        model.policies.reapply(model)
        return True

    def get(self, vhost: str, name: str, *, operator: bool = False) -> PolicyDef | None:
        model = self._vhosts.get(vhost)
        policy = model.policies.table(operator).get(name) if model is not None else None
        return policy.stored if policy is not None else None

    def list(self, vhost: str | None = None, *, operator: bool = False) -> list[PolicyDef]:
        """Every (operator) policy, or one vhost's, by vhost, priority and name (as RabbitMQ lists them)."""
        found = [policy.stored for name, model in self._vhosts.items() if vhost in (None, name)
                 for policy in model.policies.table(operator).values()]
        return sorted(found, key=lambda p: (p.vhost, p.priority, p.name))

    def restore(self, stored: PolicyDef) -> None:
        """A policy read back at start, before the vhost's queues and exchanges are declared again (each is
        matched as it comes back)."""
        model = self._vhosts.get(stored.vhost)
        if model is not None:
            model.policies.table(isinstance(stored, OperatorPolicyDef))[stored.name] = Policy(
                stored, re.compile(stored.pattern))
            model.policies.reapply(model)  # its system exchanges exist already
