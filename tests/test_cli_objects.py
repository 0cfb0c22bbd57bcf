"""`leveret list`, `purge` and `delete` against the local RabbitMQ's management API: the CLI speaks that API,
so it must work against RabbitMQ's as against leveret's (tests/test_cli.py). Skipped when RabbitMQ's API is
unreachable."""

from __future__ import annotations

import uuid
from typing import Iterator

import pika
import pytest
from click.testing import CliRunner

from leveret.cli import main
from tests.conftest import _rabbitmq_reachable
from tests.http.api_client import call

RABBITMQ_API = "http://127.0.0.1:15672"


pytestmark = pytest.mark.skipif(not _rabbitmq_reachable(port=15672),
                                reason="RabbitMQ's management API is not reachable")


def leveret_cli(url: str, *args: str):
    return CliRunner().invoke(main, [*args, "--url", url])


@pytest.fixture
def rabbitmq_vhost() -> Iterator[str]:
    """A vhost of this test's own on RabbitMQ, with queue 'work' (3 messages) bound to exchange 'ex', a
    consumer on queue 'busy' and policy 'cap'; deleted afterwards."""
    vhost = f"cli-{uuid.uuid4().hex[:8]}"
    api = RABBITMQ_API + "/api"
    assert call(api, "PUT", f"/vhosts/{vhost}").status == 201
    try:
        call(api, "PUT", f"/permissions/{vhost}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
        call(api, "PUT", f"/policies/{vhost}/cap", {"pattern": "^work$", "definition": {"max-length": 10},
                                                    "apply-to": "queues"})
        conn = pika.BlockingConnection(pika.URLParameters(f"amqp://guest:guest@127.0.0.1:5672/{vhost}"))
        try:
            channel = conn.channel()
            channel.confirm_delivery()
            channel.exchange_declare("ex", "direct")
            channel.queue_declare("work")
            channel.queue_declare("busy")
            channel.queue_bind("work", "ex", "jobs")
            for body in (b"1", b"2", b"3"):
                channel.basic_publish("ex", "jobs", body)
            channel.basic_consume("busy", lambda *args: None, consumer_tag="the-consumer")
            yield vhost
        finally:
            conn.close()
    finally:
        call(api, "DELETE", f"/vhosts/{vhost}")


def test_kinds_list_from_rabbitmqs_api(rabbitmq_vhost: str) -> None:
    def rows(kind: str, columns: str) -> list[list[str]]:
        result = leveret_cli(RABBITMQ_API, "list", kind, "--vhost", rabbitmq_vhost, "--columns", columns)
        assert result.exit_code == 0, result.output
        return [line.split() for line in result.output.splitlines()[1:]]

    # (RabbitMQ's message counts, connections, channels and consumers appear after its statistics
    # interval: they are listed from leveret's API instead)
    assert rows("queues", "name,durable") == [["busy", "false"], ["work", "false"]]
    assert ["ex", "work", "queue", "jobs"] in rows("bindings", "source,destination,destination_type,routing_key")
    assert rows("policies", "name,pattern,definition") == [["cap", "^work$", '{"max-length":10}']]


def test_purge_and_delete_against_rabbitmqs_api(rabbitmq_vhost: str) -> None:
    purged = leveret_cli(RABBITMQ_API, "purge", "work", "--vhost", rabbitmq_vhost)
    assert purged.exit_code == 0, purged.output
    assert purged.output.strip() == f"Purged queue 'work' in vhost '{rabbitmq_vhost}'."
    refused = leveret_cli(RABBITMQ_API, "delete", "queue", "busy", "--vhost", rabbitmq_vhost, "--if-unused")
    assert refused.exit_code == 1 and len(refused.output.strip().splitlines()) == 1
    deleted = leveret_cli(RABBITMQ_API, "delete", "exchange", "ex", "--vhost", rabbitmq_vhost)
    assert deleted.output.strip() == f"Deleted exchange 'ex' in vhost '{rabbitmq_vhost}'."
    gone = leveret_cli(RABBITMQ_API, "delete", "queue", "nothing-here", "--vhost", rabbitmq_vhost)
    assert gone.exit_code == 1
    assert gone.output.strip() == f"Error: queue 'nothing-here' in vhost '{rabbitmq_vhost}' does not exist"
