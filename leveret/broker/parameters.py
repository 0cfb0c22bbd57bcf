"""Runtime parameters: RabbitMQ's named JSON values per component and vhost, and the node's global ones.

A component (shovel, federation-upstream, ...) is code that plugs in with `Parameters.register`: it
checks a value before it is stored (`validate`) and is told after each change is durable (`applied`,
`cleared`). RabbitMQ refuses a value for a component nobody registered ("component foo not found"), so
a parameter exists only for a registered component, except those read back at start before their
component registered: they are kept and handed to it when it does (`applied` for each), so the order of
recovery and registration does not matter.

No IO here: every change goes through `ParameterHooks` (storage.py) first, so an `OSError` (a full disk)
leaves the parameters as they were. Deleting a vhost clears its parameters (`vhost_deleted`); the
definition store removes their records with the vhost's, so nothing is written for them.
"""

from __future__ import annotations

from typing import Any, Protocol

from leveret.broker.errors import PreconditionFailed
from leveret.broker.storage import NO_HOOKS, ParameterHooks

# (vhost, component, name)
Key = tuple[str, str, str]


class ParameterComponent(Protocol):
    """What a component plugs in; `Parameters` calls it on the event loop, never during another call of it."""

    def validate(self, vhost: str, name: str, value: Any) -> None:
        """Raise `PreconditionFailed(text)` for a value RabbitMQ would refuse; the management API answers
        400 with RabbitMQ's "Validation failed" reason around `text`."""

    def applied(self, vhost: str, name: str, value: Any) -> None:
        """The value is durable (also called for each stored one at start, or at registration)."""

    def cleared(self, vhost: str, name: str) -> None:
        """The parameter is gone, durably (also when its vhost was deleted)."""


class UnknownComponent(PreconditionFailed):
    """A value for a component nobody registered (RabbitMQ's "component foo not found")."""

    def __init__(self, component: str) -> None:
        super().__init__(f"component {component} not found")
        self.component = component


class Parameters:
    """The runtime parameters of one broker (`broker.parameters`), and the components they belong to."""

    def __init__(self, hooks: ParameterHooks = NO_HOOKS) -> None:
        self._hooks = hooks
        self._components: dict[str, ParameterComponent] = {}
        self._values: dict[Key, Any] = {}
        self._globals: dict[str, Any] = {}

    # -- components -------------------------------------------------------------------------------
    def register(self, component: str, handler: ParameterComponent) -> None:
        """Plug `handler` in for `component`; it is told of each parameter of that component stored already."""
        self._components[component] = handler
        for (vhost, owner, name), value in list(self._values.items()):
            if owner == component:
                handler.applied(vhost, name, value)

    def components(self) -> list[str]:
        """The registered component names."""
        return sorted(self._components)

    # -- vhost parameters -------------------------------------------------------------------------
    def set(self, vhost: str, component: str, name: str, value: Any) -> bool:
        """Validate, store durably, then tell the component; True when the parameter is new.
        `PreconditionFailed` (UnknownComponent among them) when refused, `OSError` when not stored."""
        handler = self._components.get(component)
        if handler is None:
            raise UnknownComponent(component)
        handler.validate(vhost, name, value)
        self._hooks.parameter_set(vhost, component, name, value)
        key = (vhost, component, name)
        created = key not in self._values
        self._values[key] = value
        handler.applied(vhost, name, value)
        return created

    def clear(self, vhost: str, component: str, name: str) -> bool:
        """Delete durably, then tell the component; False when there is no such parameter."""
        key = (vhost, component, name)
        if key not in self._values:
            return False
        self._hooks.parameter_cleared(vhost, component, name)
        del self._values[key]
        handler = self._components.get(component)
        if handler is not None:
            handler.cleared(vhost, name)
        return True

    def get(self, vhost: str, component: str, name: str) -> Any | None:
        return self._values.get((vhost, component, name))

    def list(self, vhost: str | None = None, component: str | None = None) -> list[tuple[str, str, str, Any]]:
        """(vhost, component, name, value) of every parameter, or of one vhost's and/or one component's."""
        return [(v, c, n, value) for (v, c, n), value in self._values.items()
                if vhost in (None, v) and component in (None, c)]

    def restore(self, vhost: str, component: str, name: str, value: Any) -> None:
        """A parameter read back from the store at start: kept without writing or validating it again."""
        self._values[(vhost, component, name)] = value
        handler = self._components.get(component)
        if handler is not None:
            handler.applied(vhost, name, value)

    def vhost_deleted(self, vhost: str) -> None:
        """Forget a deleted vhost's parameters (the store dropped them with it) and tell their components."""
        for key in [key for key in self._values if key[0] == vhost]:
            del self._values[key]
            handler = self._components.get(key[1])
            if handler is not None:
                handler.cleared(vhost, key[2])

    # -- global parameters ------------------------------------------------------------------------
    def set_global(self, name: str, value: Any) -> bool:
        """Store a global parameter durably (any JSON value, as RabbitMQ takes it); True when new."""
        self._hooks.global_parameter_set(name, value)
        created = name not in self._globals
        self._globals[name] = value
        return created

    def clear_global(self, name: str) -> bool:
        """Delete a global parameter durably; False when there is none of that name."""
        if name not in self._globals:
            return False
        self._hooks.global_parameter_cleared(name)
        del self._globals[name]
        return True

    def get_global(self, name: str) -> Any | None:
        return self._globals.get(name)

    def list_global(self) -> list[tuple[str, Any]]:
        """(name, value) of every global parameter, by name."""
        return sorted(self._globals.items())

    def restore_global(self, name: str, value: Any) -> None:
        """A global parameter read back from the store at start."""
        self._globals[name] = value
