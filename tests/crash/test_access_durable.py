"""Users, vhosts and permissions on disk: a new data directory is seeded once, changes survive kill -9."""

from __future__ import annotations

import os
import subprocess
import sys

import pika

from leveret.access import AccessRegistry
from leveret.store.definitions import FileDefinitionStore
from tests.crash.broker_process import BrokerProcess


def offline_registry(data_dir: str) -> tuple[AccessRegistry, FileDefinitionStore]:
    """The registry of a stopped broker's data directory (what a restarted broker will load)."""
    store = FileDefinitionStore(os.path.join(data_dir, "definitions"))
    registry = AccessRegistry(store)
    registry.load(store.load())
    return registry, store


def can_log_in(port: int, user: str, password: str, vhost: str = "/") -> bool:
    params = pika.ConnectionParameters("127.0.0.1", port, vhost, pika.PlainCredentials(user, password),
                                       connection_attempts=1, socket_timeout=5)
    try:
        pika.BlockingConnection(params).close()
    except pika.exceptions.AMQPConnectionError:
        return False
    return True


def test_first_start_seeds_guest_once_and_a_deleted_guest_stays_deleted(tmp_path):
    data = str(tmp_path)
    broker = BrokerProcess(data)
    try:
        assert can_log_in(broker.port, "guest", "guest")
    finally:
        broker.kill()
    registry, store = offline_registry(data)
    assert set(registry.users) == {"guest"} and registry.users["guest"].tags == ("administrator",)
    assert set(registry.vhosts) == {"/"} and ("guest", "/") in registry.permissions
    registry.add_user("admin", "s3cret", ("administrator",))
    registry.set_permissions("admin", "/", ".*", ".*", ".*")
    registry.delete_user("guest")
    store.close()

    broker = BrokerProcess(data)
    try:
        assert can_log_in(broker.port, "admin", "s3cret")
        assert not can_log_in(broker.port, "guest", "guest")
    finally:
        broker.kill()
    registry, store = offline_registry(data)
    store.close()
    assert set(registry.users) == {"admin"}


def test_settings_name_the_seeded_user_and_vhost(tmp_path):
    broker = BrokerProcess(str(tmp_path), settings={"default_user": "boss", "default_pass": "pw",
                                                    "default_vhost": "main"})
    try:
        assert can_log_in(broker.port, "boss", "pw", "main")
    finally:
        broker.stop()
    registry, store = offline_registry(str(tmp_path))
    store.close()
    assert set(registry.users) == {"boss"} and "main" in registry.vhosts


CHANGE_AND_WAIT = """
import asyncio, sys
from leveret.config import Settings
from leveret.server.app import Server

async def main():
    server = Server(Settings(port=0, http_port=-1, data_dir=sys.argv[1]))
    await server.start()
    server.users.add_vhost("team")
    server.users.add_user("svc", "pw")
    server.users.set_permissions("svc", "team", "^svc-", "^svc-", "^svc-")
    server.users.set_topic_permissions("svc", "team", "amq.topic", "^{username}\\\\.", ".*")
    print("changed", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_a_change_made_while_running_survives_kill_9(tmp_path):
    """The registry's changes are fsynced before they return: a SIGKILL right after loses none."""
    data = str(tmp_path)
    child = subprocess.Popen([sys.executable, "-c", CHANGE_AND_WAIT, data], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "changed"
    finally:
        child.kill()
        child.wait(10)
        child.stdout.close()
    for _ in range(2):  # and a second start finds the same
        broker = BrokerProcess(data)
        try:
            assert can_log_in(broker.port, "svc", "pw", "team")
            assert can_log_in(broker.port, "guest", "guest")
        finally:
            broker.kill()
    registry, store = offline_registry(data)
    store.close()
    assert registry.permissions[("svc", "team")].read == "^svc-"
    assert registry.topic_permissions[("svc", "team", "amq.topic")].write == "^{username}\\."
