"""The design's import rules, kept true by walking every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "leveret"


def _leveret_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("leveret"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("leveret"):
            found.add(node.module)
    return found


def _modules(subpackage: str) -> list[Path]:
    return sorted((PACKAGE / subpackage).rglob("*.py"))


@pytest.mark.parametrize("subpackage", ["amqp", "store"])
def test_codec_and_store_import_nothing_else_of_leveret(subpackage: str) -> None:
    for path in _modules(subpackage):
        for name in _leveret_imports(path):
            assert name.startswith(f"leveret.{subpackage}"), f"{path} imports {name}"


def test_broker_imports_only_store_api_and_clock() -> None:
    for path in _modules("broker"):
        for name in _leveret_imports(path):
            assert name.startswith("leveret.broker") or name in ("leveret.store.api", "leveret.clock"), (
                f"{path} imports {name}"
            )


def test_only_entry_points_import_the_server() -> None:
    allowed = {"cli.py", "embedded.py", "__main__.py"}
    for path in PACKAGE.rglob("*.py"):
        if "server" in path.relative_to(PACKAGE).parts or path.name in allowed:
            continue
        for name in _leveret_imports(path):
            assert not name.startswith("leveret.server"), f"{path} imports {name}"


def test_no_asyncio_outside_the_server() -> None:
    for sub in ("amqp", "broker", "store"):
        for path in _modules(sub):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                assert not any(n.split(".")[0] in ("asyncio", "socket") for n in names), f"{path} imports {names}"
