"""A leveret broker in its own process (`python -m leveret serve --port 0`), for kill -9 tests."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Mapping

_LISTENING = re.compile(r"listening on [^:\s]+:(\d+)")
_HTTP = re.compile(r"management API at http://[^:\s]+:(\d+)")
# A broker bug in the child's log: handed to tests/conftest.py's guard as an internal-error record.
_BUG = re.compile(r"^Traceback \(most recent call last\)|internal error on connection")
_guard_log = logging.getLogger("leveret.subprocess")


class BrokerProcess:
    """Start a broker process on a free port over `data_dir`; `kill()` is SIGKILL, `stop()` is SIGTERM."""

    def __init__(
        self,
        data_dir: str,
        start_timeout: float = 30.0,
        settings: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """`settings` become LEVERET_<NAME> variables (so any Settings field can be set); the HTTP listener is
        off unless `settings` asks for it, so parallel brokers never race for 15672."""
        self.data_dir = data_dir
        child_env = dict(os.environ)
        child_env["LEVERET_HTTP_PORT"] = "-1"
        for name, value in (settings or {}).items():
            if isinstance(value, (tuple, list)):
                value = ",".join(str(v) for v in value)
            child_env["LEVERET_" + name.upper()] = str(value)
        child_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "leveret", "serve", "--port", "0", "--data-dir", data_dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env,
        )
        self.log: list[str] = []
        self._port_found = threading.Event()
        self.port = 0
        self.http_port = 0  # set when `settings` enables the HTTP listener (http_port=0 picks a free one)
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        if not self._port_found.wait(start_timeout) or not self.port:
            self.kill()
            raise RuntimeError("broker did not start:\n" + "".join(self.log))

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            if _BUG.search(line):
                _guard_log.error("broker process %d logged: %s", self.proc.pid, line.rstrip(), extra={"internal_error": True})
            http = _HTTP.search(line)
            if http:
                self.http_port = int(http.group(1))
            match = _LISTENING.search(line)
            if match and not self._port_found.is_set():
                self.port = int(match.group(1))
                self._port_found.set()
        self._port_found.set()

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(5)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._reader.join(5)
        return code

    def __enter__(self) -> "BrokerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def wait_until(predicate, timeout: float, interval: float = 0.01) -> bool:
    """Poll a condition with a deadline (for state that has no event to await, like a process's files)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
