"""A private RabbitMQ node for tests that must configure, stop or restart the broker they compare with.

The machine's shared RabbitMQ (127.0.0.1:5672) serves every differential test, so no test may stop or
reconfigure it. A test that needs a listener it lacks (amqps, say) or a broker that goes away and comes back
starts its own node here: its own node name, free ports, and a directory holding its configuration, data,
logs and Erlang cookie, all removed by `stop()`.

    with RabbitNode(tmp_path, config=["loopback_users = none"]) as node:
        pika.URLParameters(node.amqp_url) ...
        node.stop_app(); node.start_app()

Tests call `require_rabbitmq_install()` first: it skips where no RabbitMQ is installed (a fresh user
machine). Starting a node takes a few seconds, so a module shares one where it can.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterable

import pytest

SERVER_SCRIPT_GLOB = "/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server"
START_TIMEOUT = 90.0  # a node boots in 5-15 s here; several helpers' suites may share the two cores
STOP_TIMEOUT = 30.0

_numbers = itertools.count()


def rabbitmq_server_script() -> str | None:
    """The real start script. The /usr/sbin wrappers switch to the rabbitmq user, whose home (and Erlang
    cookie) is not the node's; the scripts beside this one (rabbitmqctl) are called directly too."""
    found = sorted(Path("/").glob(SERVER_SCRIPT_GLOB.lstrip("/")))
    return str(found[-1]) if found else None


def require_rabbitmq_install() -> str:
    script = rabbitmq_server_script()
    if script is None:
        pytest.skip("no RabbitMQ installation to start a private node from")
    return script


def free_port() -> int:
    """A port nothing listens on now (the node binds it a moment later; a clash fails the start loudly)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class RabbitNode:
    """One private RabbitMQ node: started by `start()` (or `with`), removed with its files by `stop()`."""

    def __init__(self, directory: Path, config: Iterable[str] = (),
                 plugins: Iterable[str] = ("rabbitmq_management",)) -> None:
        """`config`: extra rabbitmq.conf lines; `plugins`: the plugins enabled on it."""
        self.directory = Path(directory) / f"rabbit-node-{next(_numbers)}"
        self.node = f"leveret-test-{os.getpid()}-{next(_numbers)}@localhost"
        self.config = list(config)
        self.plugins = list(plugins)
        self.amqp_port = free_port()
        self.http_port = free_port()
        self.dist_port = free_port()  # else 25672 (5672 + 20000), the shared node's
        self.pid: int | None = None

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/%2F"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _env(self) -> dict[str, str]:
        d = self.directory
        env = dict(os.environ)
        env.update(
            HOME=str(d),  # the node's own Erlang cookie, and rabbitmqctl reads the same one
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_CONFIG_FILE=str(d / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(d / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(d / "mnesia"),
            RABBITMQ_LOG_BASE=str(d / "log"),
            RABBITMQ_PID_FILE=str(d / "pid"),
            RABBITMQ_DIST_PORT=str(self.dist_port),
        )
        return env

    def start(self) -> "RabbitNode":
        script = require_rabbitmq_install()
        self.directory.mkdir(parents=True)
        lines = [
            f"listeners.tcp.local = 127.0.0.1:{self.amqp_port}",
            f"management.tcp.port = {self.http_port}",
            "management.tcp.ip = 127.0.0.1",
            *self.config,
        ]
        (self.directory / "rabbitmq.conf").write_text("\n".join(lines) + "\n")
        (self.directory / "enabled_plugins").write_text("[" + ",".join(self.plugins) + "].\n")
        subprocess.run([script, "-detached"], cwd=self.directory, env=self._env(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        try:
            self._await(lambda: port_open(self.amqp_port) and (
                "rabbitmq_management" not in self.plugins or port_open(self.http_port)), "start")
            self.pid = int((self.directory / "pid").read_text().strip())
        except BaseException:
            self.stop()
            raise
        return self

    def _await(self, condition, what: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline or self._died():
                log = "\n".join(p.read_text(errors="replace")[-2000:] for p in (self.directory / "log").glob("*.log"))
                raise TimeoutError(f"RabbitMQ node {self.node} did not {what} (waited at most {timeout} s)\n{log}")
            time.sleep(0.1)  # polling a port, bounded by the deadline

    def _died(self) -> bool:
        """The VM wrote its pid and is gone: it failed to boot (its log says why)."""
        text = (self.directory / "pid").read_text().strip() if (self.directory / "pid").exists() else ""
        return text.isdigit() and not _alive(int(text))

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run `rabbitmqctl -n NODE ARGS` and return its output."""
        ctl = str(Path(require_rabbitmq_install()).with_name("rabbitmqctl"))
        done = subprocess.run([ctl, "-n", self.node, *args], env=self._env(), capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    def stop_app(self) -> None:
        """Stop the broker application (connections dropped, listeners closed); the node stays up."""
        self.ctl("stop_app")
        self._await(lambda: not port_open(self.amqp_port), "close its listener")

    def start_app(self) -> None:
        self.ctl("start_app")
        self._await(lambda: port_open(self.amqp_port), "reopen its listener")

    def stop(self) -> None:
        """Stop the node (SIGTERM, then SIGKILL after STOP_TIMEOUT) and remove its directory."""
        pid_file = self.directory / "pid"
        pid = self.pid
        if pid is None and pid_file.exists():
            text = pid_file.read_text().strip()
            pid = int(text) if text.isdigit() else None
        if pid is not None:
            _terminate(pid)
        self.pid = None
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "RabbitNode":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _terminate(pid: int) -> None:
    """SIGTERM makes the Erlang VM stop the node in order; a node that does not exit in time is killed."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)  # polling a process we cannot wait() for (it is not our child), bounded
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
