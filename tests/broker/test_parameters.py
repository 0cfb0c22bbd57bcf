"""broker/parameters.py: components plug in, values are validated, written through the hooks first, and the
component is told after; stored values reach a component registered later."""

from __future__ import annotations

from typing import Any

import pytest

from leveret.broker.errors import PreconditionFailed
from leveret.broker.parameters import Parameters, UnknownComponent
from leveret.broker.vhost import Broker
from leveret.durable.hooks import StoreHooks
from leveret.store.memory import MemoryDefinitionStore


class Recording:
    """A component that refuses values without "ok" and records what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def validate(self, vhost: str, name: str, value: Any) -> None:
        if not isinstance(value, dict) or "ok" not in value:
            raise PreconditionFailed(f"{name} needs ok")

    def applied(self, vhost: str, name: str, value: Any) -> None:
        self.events.append(("applied", vhost, name, value))

    def cleared(self, vhost: str, name: str) -> None:
        self.events.append(("cleared", vhost, name))


class FullDisk:
    """Parameter hooks whose every write fails as a full disk does."""

    def parameter_set(self, *args: Any) -> None:
        raise OSError(28, "No space left on device")

    parameter_cleared = global_parameter_set = global_parameter_cleared = parameter_set


def test_set_validates_writes_then_tells_the_component() -> None:
    store = MemoryDefinitionStore()
    parameters = Parameters(StoreHooks(store, None, None, None))  # type: ignore[arg-type]
    component = Recording()
    parameters.register("shovel", component)
    with pytest.raises(UnknownComponent) as unknown:
        parameters.set("/", "federation", "x", {"ok": 1})
    assert unknown.value.text == "component federation not found"
    with pytest.raises(PreconditionFailed) as refused:
        parameters.set("/", "shovel", "s", {"bad": 1})
    assert refused.value.text == "s needs ok"
    assert parameters.list() == [] and store.load().parameters == {} and component.events == []
    assert parameters.set("/", "shovel", "s", {"ok": 1}) is True
    assert parameters.set("/", "shovel", "s", {"ok": 2}) is False
    assert component.events == [("applied", "/", "s", {"ok": 1}), ("applied", "/", "s", {"ok": 2})]
    assert parameters.get("/", "shovel", "s") == {"ok": 2}
    assert [(p.vhost, p.component, p.name, p.value) for p in store.load().parameters.values()] == [
        ("/", "shovel", "s", {"ok": 2})]
    assert parameters.clear("/", "shovel", "s") is True
    assert parameters.clear("/", "shovel", "s") is False
    assert component.events[-1] == ("cleared", "/", "s")
    assert store.load().parameters == {} and parameters.get("/", "shovel", "s") is None


def test_a_failed_write_changes_nothing() -> None:
    parameters = Parameters(FullDisk())  # type: ignore[arg-type]
    component = Recording()
    parameters.register("shovel", component)
    with pytest.raises(OSError):
        parameters.set("/", "shovel", "s", {"ok": 1})
    with pytest.raises(OSError):
        parameters.set_global("g", 1)
    assert parameters.list() == [] and parameters.list_global() == [] and component.events == []


def test_restored_values_reach_a_component_registered_later() -> None:
    parameters = Parameters()
    parameters.restore("v", "shovel", "s", {"ok": 1})
    parameters.restore("v", "other", "o", {"ok": 1})
    component = Recording()
    parameters.register("shovel", component)
    assert component.events == [("applied", "v", "s", {"ok": 1})]
    assert parameters.list(component="other") == [("v", "other", "o", {"ok": 1})]
    assert parameters.list(vhost="w") == []


def test_deleting_a_vhost_clears_its_parameters() -> None:
    broker = Broker()
    broker.add_vhost("doomed")
    component = Recording()
    broker.parameters.register("shovel", component)
    broker.parameters.set("doomed", "shovel", "a", {"ok": 1})
    broker.parameters.set("/", "shovel", "b", {"ok": 1})
    broker.delete_vhost("doomed")
    assert component.events[-1] == ("cleared", "doomed", "a")
    assert broker.parameters.list() == [("/", "shovel", "b", {"ok": 1})]


def test_global_parameters() -> None:
    parameters = Parameters()
    assert parameters.set_global("cluster_tag", {"a": 1}) is True
    assert parameters.set_global("cluster_tag", "b") is False
    assert parameters.list_global() == [("cluster_tag", "b")] and parameters.get_global("cluster_tag") == "b"
    assert parameters.clear_global("cluster_tag") is True and parameters.clear_global("cluster_tag") is False
