"""The layering rules of docs/architecture.md, checked by reading every module's syntax tree.

Every import is resolved to an absolute module name first: `from .parser import X` inside leveret/amqp/ is
`leveret.amqp.parser`, `from .. import store` inside leveret/broker/ is `leveret.store`, and
`from leveret import config` is `leveret.config` (a name imported from a package counts as the submodule when
one exists). Imports inside functions and under TYPE_CHECKING count too: a rule about what a layer may know
does not bend for annotations.

The rules are data (RULES, NO_EVENT_LOOP, NO_FILE_IO); `check_tree` applies them to any directory holding a
`leveret` package, so the tests at the bottom can prove each rule reports a violation planted in a
synthetic tree. There is no allowlist: code that breaks a rule is fixed, not excused.

Import circles inside broker/ and server/ (NO_CYCLES) are found by `check_cycles`; the few natural domain
ones are listed, each with its reason, in ACCEPTED_CYCLES. A circle that is not one of those (or grows
beyond one) fails.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "leveret"


@dataclass(frozen=True)
class Layer:
    """What the modules under one prefix may import from leveret (prefixes; the layer itself is implied)."""

    prefix: str
    may_import: tuple[str, ...]
    why: str


# Which leveret modules each layer may import. A layer not listed here (server, cli, embedded) may import any
# layer, subject to SERVER_IMPORTERS below.
RULES: tuple[Layer, ...] = (
    Layer("leveret.amqp", (), "the codec is sans-IO and knows nothing of the broker, store or server"),
    Layer("leveret.store", (), "storage is plain file IO under the broker and knows no model or protocol"),
    Layer("leveret.broker", ("leveret.store.api", "leveret.clock"),
          "the model sees storage only through store/api.py and time only through the clock"),
    Layer("leveret.durable", ("leveret.broker", "leveret.store", "leveret.clock", "leveret.config", "leveret.access"),
          "the durable composition builds the model over the store; it knows no codec, server or HTTP"),
    Layer("leveret.access", ("leveret.store.api",),
          "users, vhosts and permissions are sans-IO; they see the store only through store/api.py's values"),
    Layer("leveret.kafka", ("leveret.broker", "leveret.amqp", "leveret.clock", "leveret.store.api"),
          "the Kafka protocol is sans-IO: it drives the model and writes AMQP properties, never the server or files"),
    Layer("leveret.clock", (), "the clock is a leaf"),
    Layer("leveret.config", (), "settings are a leaf"),
    Layer("leveret.http", ("leveret", "leveret.broker", "leveret.config", "leveret.clock", "leveret.amqp",
                           "leveret.access", "leveret.store.api"),
          "the management API reads the model; it reaches the server only through http/target.py's Protocol"),
    Layer("leveret.shovel", ("leveret.broker.errors",),
          "shovels are AMQP clients on the loop; they reach the broker they run in only over the wire"),
)

# The only modules outside leveret/server/ that may import it: the entry points that start a server.
SERVER_IMPORTERS = ("leveret.cli", "leveret.embedded", "leveret.__main__", "leveret.pytest_plugin")

# Standard modules that mean sockets or an event loop: only the server, http/ and the entry points use them.
EVENT_LOOP_MODULES = frozenset({"asyncio", "socket", "selectors", "ssl", "uvloop", "aiohttp"})
NO_EVENT_LOOP = ("leveret.amqp", "leveret.kafka", "leveret.access", "leveret.broker", "leveret.store", "leveret.clock", "leveret.config")

# Standard modules that touch files or the process, and the calls that do. The broker keeps no file IO of its
# own (storage goes through the store/api.py interfaces it is given); the codec has none at all.
# Threads count here too: the model and the codec run on the loop thread only (the store is called from the
# fsync worker as well, so it may hold a lock).
FILE_IO_MODULES = frozenset({"os", "io", "pathlib", "mmap", "shutil", "tempfile", "fcntl", "glob", "subprocess",
                             "sqlite3", "dbm", "shelve", "importlib", "threading", "multiprocessing", "concurrent"})
FILE_IO_CALLS = frozenset({"open", "__import__", "exec", "eval", "compile"})
# Method names only file objects and paths have (not `touch` or `truncate`: queues touch and truncate too).
FILE_IO_METHODS = frozenset({"read_text", "write_text", "read_bytes", "write_bytes", "fsync", "fdatasync",
                             "ftruncate", "unlink", "mkdir", "rmdir"})
NO_FILE_IO = ("leveret.amqp", "leveret.kafka", "leveret.access", "leveret.broker")


def module_name(path: Path, root: Path) -> str:
    """leveret/amqp/parser.py -> leveret.amqp.parser; leveret/amqp/__init__.py -> leveret.amqp."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def resolve_from(module: str, package_file: bool, level: int, target: str | None) -> str:
    """The absolute module a `from <dots><target> import ...` statement names, as Python resolves it."""
    if level == 0:
        return target or ""
    # The package a relative import starts from: the module's own package, or the package itself for __init__.
    base = module.split(".") if package_file else module.split(".")[:-1]
    if level - 1 > len(base) - 1:
        raise ValueError(f"relative import beyond the top-level package in {module}")
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


@dataclass(frozen=True)
class Import:
    module: str  # absolute, dotted
    line: int


def imports_of(path: Path, root: Path, known: frozenset[str]) -> list[Import]:
    """Every module `path` imports, absolute; `from pkg import name` is pkg.name when that module exists."""
    tree = ast.parse(path.read_text(), filename=str(path))
    me = module_name(path, root)
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = resolve_from(me, is_package(path), node.level, node.module)
            for alias in node.names:
                candidate = f"{base}.{alias.name}" if base else alias.name
                found.append(Import(candidate if candidate in known else base, node.lineno))
    return found


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def file_io_uses(path: Path) -> list[tuple[int, str]]:
    """Calls that do file IO without importing anything: open(), exec(), path.write_text(), fd fsync, ..."""
    tree = ast.parse(path.read_text(), filename=str(path))
    uses: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in FILE_IO_CALLS:
            uses.append((node.lineno, f"{func.id}()"))
        elif isinstance(func, ast.Attribute) and func.attr in FILE_IO_METHODS:
            uses.append((node.lineno, f".{func.attr}()"))
    return uses


def check_tree(root: Path) -> list[str]:
    """Every rule violation in the `leveret` package under `root`, one line each (empty when the rules hold)."""
    files = sorted((root / PACKAGE).rglob("*.py"))
    known = frozenset(module_name(f, root) for f in files)
    problems: list[str] = []
    for path in files:
        me = module_name(path, root)
        where = path.relative_to(root)
        for imp in imports_of(path, root, known):
            top = imp.module.split(".")[0]
            if top == PACKAGE:
                for layer in RULES:
                    if within(me, layer.prefix) and not within(imp.module, layer.prefix):
                        if not any(within(imp.module, allowed) if allowed != PACKAGE else imp.module == PACKAGE
                                   for allowed in layer.may_import):
                            problems.append(f"{where}:{imp.line}: imports {imp.module} ({layer.why})")
                if (within(imp.module, "leveret.server") and not within(me, "leveret.server")
                        and me not in SERVER_IMPORTERS):
                    problems.append(f"{where}:{imp.line}: imports {imp.module} (only entry points import the server)")
            elif any(within(me, p) for p in NO_EVENT_LOOP) and top in EVENT_LOOP_MODULES:
                problems.append(f"{where}:{imp.line}: imports {imp.module} (no event loop or sockets here)")
            elif any(within(me, p) for p in NO_FILE_IO) and top in FILE_IO_MODULES:
                problems.append(f"{where}:{imp.line}: imports {imp.module} (no file IO or threads here)")
        if any(within(me, p) for p in NO_FILE_IO):
            for line, call in file_io_uses(path):
                problems.append(f"{where}:{line}: calls {call} (no file IO here)")
    return problems


@dataclass(frozen=True)
class Cycle:
    """An import circle accepted inside one package, and why it is natural there."""

    modules: frozenset[str]
    why: str


# The packages checked for import circles (edges between modules of the same package, TYPE_CHECKING included).
NO_CYCLES = ("leveret.broker", "leveret.server")
ACCEPTED_CYCLES: tuple[Cycle, ...] = (
    Cycle(frozenset({"leveret.broker.channel", "leveret.broker.consumer", "leveret.broker.queue_type"}),
          "the domain: a consumer belongs to both a channel and a queue (of any type: the QueueType Protocol), "
          "and each of the three names the others"),
    Cycle(frozenset({"leveret.server.session", "leveret.server.channel_session", "leveret.server.handlers"}),
          "a connection's Session owns its ChannelSessions, which name it back (an annotation only); the method "
          "handlers, which the Session calls, work on ChannelSessions"),
    Cycle(frozenset({"leveret.server.app", "leveret.server.protocol"}),
          "each connection's AMQPProtocol is handed the Server (an annotation only) and reads its settings, "
          "counters and connection set"),
)


def import_cycles(root: Path) -> list[frozenset[str]]:
    """Every set of modules of one NO_CYCLES package that import each other in a circle (Tarjan's strongly
    connected components, iteratively: a component of two or more modules, or a module importing itself)."""
    files = sorted((root / PACKAGE).rglob("*.py"))
    known = frozenset(module_name(f, root) for f in files)
    graph: dict[str, set[str]] = {}
    for path in files:
        me = module_name(path, root)
        package = next((p for p in NO_CYCLES if within(me, p)), None)
        if package is None:
            continue
        graph[me] = {imp.module for imp in imports_of(path, root, known)
                     if imp.module in known and within(imp.module, package)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.append(frozenset(component))
    return found


def check_cycles(root: Path, accepted: tuple[Cycle, ...] = ACCEPTED_CYCLES) -> list[str]:
    """One line per import circle that is not (inside) an accepted one."""
    return [f"import circle: {' <-> '.join(sorted(cycle))}" for cycle in import_cycles(root)
            if not any(cycle <= ok.modules for ok in accepted)]


def test_the_code_keeps_every_rule() -> None:
    problems = check_tree(ROOT)
    assert problems == [], "\n".join(problems)


def test_no_import_circles_but_the_accepted_ones() -> None:
    problems = check_cycles(ROOT)
    assert problems == [], "\n".join(problems)


# --- the checker checked: each rule reports a violation planted in a synthetic tree ---------------------------

CLEAN_TREE = {
    "leveret/__init__.py": "__version__ = '0'\n",
    "leveret/clock.py": "import time\n",
    "leveret/config.py": "import os\nimport tomllib\n",
    "leveret/cli.py": "from leveret.server import app\n",
    "leveret/amqp/__init__.py": "from .parser import FrameParser\n",
    "leveret/amqp/parser.py": "import struct\nfrom . import wire\nfrom .wire import FRAME\n",
    "leveret/amqp/wire.py": "FRAME = 1\n",
    "leveret/broker/__init__.py": "",
    "leveret/broker/vhost.py": (
        "from typing import TYPE_CHECKING\nfrom .queue import Queue\nfrom ..store.api import QueueStore\n"
        "from leveret import clock\nif TYPE_CHECKING:\n    from leveret.broker.channel import Channel\n"
        "def f(store):\n    store.append(b'x')\n"
    ),
    "leveret/broker/queue.py": "from . import channel\n",
    "leveret/broker/channel.py": "",
    "leveret/store/__init__.py": "",
    "leveret/store/api.py": "import json\nimport threading\n",
    "leveret/store/log.py": "import os\nfrom .api import QueueStore\ndef f(p):\n    return open(p).read()\n",
    "leveret/durable/__init__.py": "from leveret.broker.vhost import VHost\nfrom leveret.store import log\n",
    "leveret/server/__init__.py": "",
    "leveret/server/app.py": "import asyncio\nfrom leveret.broker.vhost import VHost\nfrom ..store import log\n",
    "leveret/http/__init__.py": "",
    "leveret/http/app.py": "import aiohttp\nfrom leveret import __version__\nfrom ..broker import vhost\n",
}


def plant(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_a_tree_that_keeps_the_rules_reports_nothing(tmp_path: Path) -> None:
    assert check_tree(plant(tmp_path, CLEAN_TREE)) == []


@pytest.mark.parametrize(
    ("where", "code", "reported"),
    [
        # relative imports resolve, one and two levels up, and `from package import module` names the module
        ("leveret/amqp/parser.py", "from ..broker import vhost\n", "imports leveret.broker.vhost"),
        ("leveret/amqp/parser.py", "from ..store.api import QueueStore\n", "imports leveret.store.api"),
        ("leveret/amqp/__init__.py", "from ..server import app\n", "imports leveret.server.app"),
        ("leveret/amqp/parser.py", "def f():\n    from leveret import broker\n", "imports leveret.broker"),
        ("leveret/amqp/parser.py", "import asyncio\n", "imports asyncio"),
        ("leveret/amqp/parser.py", "import socket\n", "imports socket"),
        ("leveret/amqp/parser.py", "import os\n", "imports os (no file IO"),
        ("leveret/store/log.py", "from ..broker.vhost import VHost\n", "imports leveret.broker.vhost"),
        ("leveret/store/log.py", "from leveret import server\n", "imports leveret.server"),
        ("leveret/store/log.py", "import asyncio\n", "imports asyncio"),
        ("leveret/broker/vhost.py", "from ..server.app import Server\n", "imports leveret.server.app"),
        ("leveret/broker/vhost.py", "from leveret import http\n", "imports leveret.http"),
        ("leveret/broker/vhost.py", "from ..amqp.wire import FRAME\n", "imports leveret.amqp.wire"),
        ("leveret/broker/vhost.py", "from ..store import log\n", "imports leveret.store.log"),
        ("leveret/broker/vhost.py", "from leveret.durable import hooks\n", "imports leveret.durable"),
        ("leveret/durable/__init__.py", "from leveret.amqp import wire\n", "imports leveret.amqp.wire"),
        ("leveret/durable/__init__.py", "from ..server import app\n", "imports leveret.server.app"),
        ("leveret/broker/vhost.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                    "    from leveret.server import app\n", "imports leveret.server.app"),
        ("leveret/broker/vhost.py", "import os\n", "imports os (no file IO"),
        ("leveret/broker/vhost.py", "from os import fsync\n", "imports os (no file IO"),
        ("leveret/broker/vhost.py", "import pathlib\n", "imports pathlib"),
        ("leveret/broker/vhost.py", "import mmap\n", "imports mmap"),
        ("leveret/broker/vhost.py", "import threading\n", "imports threading"),
        ("leveret/broker/vhost.py", "def f(p):\n    return open(p, 'rb')\n", "calls open()"),
        ("leveret/broker/vhost.py", "def f(p):\n    p.write_bytes(b'x')\n", "calls .write_bytes()"),
        ("leveret/broker/vhost.py", "def f(p):\n    return p.read_text()\n", "calls .read_text()"),
        ("leveret/broker/vhost.py", "def f(o, fd):\n    o.fsync(fd)\n", "calls .fsync()"),
        ("leveret/broker/queue.py", "def f(n):\n    return __import__(n)\n", "calls __import__()"),
        ("leveret/clock.py", "from leveret import config\n", "imports leveret.config"),
        ("leveret/http/app.py", "from ..server.app import Server\n", "imports leveret.server.app"),
        ("leveret/http/app.py", "from leveret.store import log\n", "imports leveret.store.log"),
    ],
)
def test_each_rule_reports_a_planted_violation(tmp_path: Path, where: str, code: str, reported: str) -> None:
    files = dict(CLEAN_TREE)
    files[where] = files[where] + code
    problems = check_tree(plant(tmp_path, files))
    # Reported at the planted line (a server import from amqp/ breaks two rules, both named), and only there.
    assert problems and all(p.startswith(where) for p in problems), problems
    assert any(reported in p for p in problems), problems


def test_relative_imports_resolve_as_python_resolves_them() -> None:
    assert resolve_from("leveret.amqp.parser", False, 1, "wire") == "leveret.amqp.wire"
    assert resolve_from("leveret.amqp.parser", False, 1, None) == "leveret.amqp"
    assert resolve_from("leveret.amqp", True, 1, "parser") == "leveret.amqp.parser"
    assert resolve_from("leveret.broker.exchanges.topic", False, 2, "errors") == "leveret.broker.errors"
    assert resolve_from("leveret.broker.vhost", False, 2, "store.api") == "leveret.store.api"
    with pytest.raises(ValueError):
        resolve_from("leveret.clock", False, 3, "x")


def test_a_tree_without_import_circles_reports_none(tmp_path: Path) -> None:
    assert check_cycles(plant(tmp_path, CLEAN_TREE), ()) == []


@pytest.mark.parametrize(
    ("where", "code", "circle"),
    [
        # two modules, through a relative import and through an import under TYPE_CHECKING
        ("leveret/broker/channel.py", "from . import queue\n", {"channel", "queue"}),
        ("leveret/broker/channel.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                      "    from leveret.broker.vhost import VHost\n", {"channel", "queue", "vhost"}),
        # a module importing itself
        ("leveret/broker/channel.py", "from leveret.broker import channel\n", {"channel"}),
    ],
)
def test_a_planted_import_circle_is_reported(tmp_path: Path, where: str, code: str, circle: set[str]) -> None:
    files = dict(CLEAN_TREE)
    files[where] = files[where] + code
    root = plant(tmp_path, files)
    expected = frozenset(f"leveret.broker.{name}" for name in circle)
    assert import_cycles(root) == [expected]
    assert check_cycles(root, ()) == [f"import circle: {' <-> '.join(sorted(expected))}"]
    # Accepted, it is not reported; a larger circle containing an accepted one still is.
    assert check_cycles(root, (Cycle(expected, "planted"),)) == []
    if len(expected) > 2:
        smaller = Cycle(frozenset(sorted(expected)[:2]), "planted")
        assert check_cycles(root, (smaller,)) != []
