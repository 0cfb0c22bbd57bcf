"""The package surface: the Broker entry point (in vhost.py, re-exported) and the import rules."""

import ast
import pathlib

import leveret.broker
from leveret.broker import Broker
from leveret.clock import ManualClock


def test_broker_starts_with_default_vhost_and_adds_more():
    clock = ManualClock()
    b = Broker(clock)
    assert set(b.vhosts) == {"/"}
    vh = b.add_vhost("other")
    assert b.vhost("other") is vh and b.add_vhost("other") is vh
    assert b.vhost("missing") is None
    assert vh.clock is clock


def test_vhosts_are_isolated():
    b = Broker()
    b.vhost("/").declare_queue("q")
    assert "q" not in b.add_vhost("v2").queues


def test_broker_package_imports_only_stdlib_clock_and_store_api():
    root = pathlib.Path(leveret.broker.__file__).parent
    allowed = ("leveret.broker", "leveret.clock", "leveret.store.api")
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith("leveret") or name.startswith(allowed), (path, name)
                assert name.split(".")[0] not in {"asyncio", "socket"}, (path, name)
