"""The fuzzer leaves no vhost behind on the shared RabbitMQ: not when a sequence differs, a session cannot
connect, a machine's opening steps fail, nor when the long run is stopped with SIGTERM or SIGINT; and a
run killed outright has its vhosts swept by the next."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test, rule

import lockstep
from machines import LockstepMachine

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fuzzer_vhosts(pid: int) -> list[str]:
    prefix = f"{lockstep.VHOST_PREFIX}{pid}-"
    return [name for name in lockstep.rabbitmq().vhosts() if name.startswith(prefix)]


def test_a_machine_whose_opening_steps_fail_deletes_its_vhosts(brokers):
    class FailingPreparation(LockstepMachine):
        def prepare(self):
            self.step(("no_such_operation",))

        @rule()
        def nothing(self):
            pass

    FailingPreparation.brokers = brokers
    with pytest.raises(AttributeError):
        run_state_machine_as_test(FailingPreparation, settings=settings(
            max_examples=1, database=None, deadline=None, suppress_health_check=list(HealthCheck)))
    assert fuzzer_vhosts(os.getpid()) == []


def test_a_session_that_cannot_connect_deletes_its_vhost(brokers):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # closed again below: nothing listens there
    unreachable = lockstep.Broker("unreachable", f"127.0.0.1:{port}", lockstep.RABBITMQ_API)
    with pytest.raises(OSError):
        lockstep.Lockstep((brokers[0], unreachable))
    assert fuzzer_vhosts(os.getpid()) == []


def test_vhosts_of_a_dead_run_are_swept_and_live_ones_kept(brokers):
    rabbitmq = brokers[0]
    dead_pid = _a_dead_pid()
    orphan = f"{lockstep.VHOST_PREFIX}{dead_pid}-0123456789"
    live = lockstep.vhost_name()
    rabbitmq.create_vhost(orphan)
    rabbitmq.create_vhost(live)
    try:
        deleted = lockstep.delete_orphaned_vhosts(rabbitmq)
        names = rabbitmq.vhosts()
        assert orphan in deleted and orphan not in names
        assert live in names
    finally:
        rabbitmq.delete_vhost(orphan)
        rabbitmq.delete_vhost(live)


def _a_dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def test_the_long_run_stopped_by_sigterm_deletes_its_vhosts(brokers, tmp_path):
    """SIGINT takes the same path (tools/difffuzz.py `_interrupt`); one signal keeps the test short."""
    run = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tools", "difffuzz.py"), "--minutes", "5", "--machine", "QueueLimits",
         "--out", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not fuzzer_vhosts(run.pid):
            assert run.poll() is None and time.monotonic() < deadline, "the run made no vhost within 60 s"
            time.sleep(0.05)  # polling the management API: there is no event to wait for
        run.send_signal(signal.SIGTERM)
        output, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate(timeout=30)
    assert run.returncode == 130, output[-2000:]
    assert "(interrupted)" in output
    assert fuzzer_vhosts(run.pid) == []
