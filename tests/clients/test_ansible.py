"""Ansible's community.rabbitmq modules against leveret's management API, unchanged: a playbook declares an
exchange, a queue with arguments and a binding (the modules that speak HTTP in the collection Debian ships,
1.2.3; its vhost, user and policy modules run rabbitmqctl); run again it changes nothing (each module
compares what the API shows with what it was asked for); with `state: absent` it removes them.

Runs Debian's `ansible` package (ansible-playbook with the community collections; .ci/run installs it) with
the system Python as the modules' interpreter; skipped where it is absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from leveret.embedded import EmbeddedBroker
from tests.http.api_client import api, call

PLAYBOOK = shutil.which("ansible-playbook")
pytestmark = pytest.mark.skipif(PLAYBOOK is None, reason="ansible is not installed")


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def declarations(http_port: int, state: str) -> list[dict[str, Any]]:
    login = {"login_host": "127.0.0.1", "login_port": str(http_port), "login_user": "guest",
             "login_password": "guest", "state": state}
    tasks = [
        {"community.rabbitmq.rabbitmq_exchange": {"name": "work", "exchange_type": "topic", **login}},
        {"community.rabbitmq.rabbitmq_queue": {"name": "jobs", "max_length": 1000, "dead_letter_exchange": "work",
                                               "durable": True, **login}},
        {"community.rabbitmq.rabbitmq_binding": {"source": "work", "destination": "jobs", "type": "queue",
                                                 "routing_key": "job.*", **login}},
    ]
    return tasks if state == "present" else tasks[::-1]


def test_a_playbook_declares_is_idempotent_and_removes(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """One run (ansible's start costs seconds): declare, declare again, read the API back, remove."""
    port = broker.server.http_port
    looks = [{"ansible.builtin.uri": {"url": f"http://127.0.0.1:{port}/api/{path}", "url_username": "guest",
                                      "url_password": "guest", "force_basic_auth": True}}
             for path in ("bindings/%2F/e/work/q/jobs", "queues/%2F/jobs")]
    tasks = declarations(port, "present") * 2 + looks + declarations(port, "absent")
    path = tmp_path / "playbook.json"  # JSON is YAML
    path.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    done = subprocess.run(
        [PLAYBOOK, "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=/usr/bin/python3", str(path)],
        capture_output=True, text=True, timeout=240,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ANSIBLE_LOCALHOST_WARNING": "False",
             "ANSIBLE_DEPRECATION_WARNINGS": "False", "ANSIBLE_STDOUT_CALLBACK": "json"})
    assert done.returncode == 0, f"ansible-playbook failed:\n{done.stdout[-4000:]}{done.stderr[-2000:]}"
    results = [task["hosts"]["localhost"] for task in json.loads(done.stdout)["plays"][0]["tasks"]]
    # The second three compared what the API shows with what they were asked for (the queue's arguments too).
    assert [r.get("changed", False) for r in results] == [True] * 3 + [False] * 3 + [False] * 2 + [True] * 3
    assert [b["routing_key"] for b in results[6]["json"]] == ["job.*"]  # as the API showed them mid-play
    queue = results[7]["json"]
    assert (queue["durable"], queue["arguments"]) == (True, {"x-max-length": 1000, "x-dead-letter-exchange": "work"})
    base = api(broker)
    assert call(base, "GET", "/queues/%2F/jobs").status == 404
    assert call(base, "GET", "/exchanges/%2F/work").status == 404
