"""A local shovel end (`amqp://` without a host) does not depend on any user: it logs in as the broker's
internal identity (leveret/access/internal.py), as RabbitMQ's direct connection does."""

from __future__ import annotations

import pika
import pytest

from leveret.access.registry import AccessRegistry
from leveret.store.memory import MemoryDefinitionStore
from tests.conftest import pika_parameters
from tests.http.api_client import api, call
from tests.shovel.helpers import drain, on_loop, publish, shovel_state, wait_for

pytestmark = pytest.mark.timeout(60)


def test_a_local_shovel_runs_with_guest_deleted(leveret_broker) -> None:
    broker = leveret_broker
    users = broker.server.users
    on_loop(broker, users.add_user, "alice", "wonderland", ("administrator",))
    on_loop(broker, users.set_permissions, "alice", "/", ".*", ".*", ".*")
    on_loop(broker, users.delete_user, "guest")
    alice = broker.url.replace("guest:guest@", "alice:wonderland@")
    publish(alice, "in", 99)
    # One that names its publisher: the shovel republishes it as it is (the internal identity may, as
    # RabbitMQ's internal user may; any other user would be refused a user_id not its own).
    connection = pika.BlockingConnection(pika_parameters(alice))
    connection.channel().basic_publish("", "in", b"99", pika.BasicProperties(delivery_mode=2, user_id="alice"))
    connection.close()
    on_loop(broker, broker.server.broker.parameters.set, "/", "shovel", "local",
            {"src-uri": "amqp://", "src-queue": "in", "dest-uri": "amqp://", "dest-queue": "out"})
    wait_for(lambda: (row := shovel_state(broker, "/", "local")) and row["state"] == "running", 20,
             "the local shovel to run without guest")
    got = drain(alice, "out", 100)
    assert [body for _, body in got] == [str(i).encode() for i in range(100)]
    assert got[-1][0].user_id == "alice"


def test_the_internal_identity_is_not_a_login_anyone_else_can_use(leveret_broker) -> None:
    broker = leveret_broker
    internal = broker.server.users.internal
    url = broker.url.replace("guest:guest@", f"{internal.name}:not-the-password@")
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(pika_parameters(url))
    # Nor does it open the management API, even with the right password.
    registry = broker.server.users
    assert on_loop(broker, lambda: registry.authenticate(internal.name, internal.password, from_loopback=True,
                                                         protocol="http")) is None


def test_a_real_user_with_the_internal_name_gets_only_its_own_rights() -> None:
    registry = AccessRegistry(MemoryDefinitionStore())
    registry.add_vhost("/")
    internal = registry.internal
    assert registry.authenticate(internal.name, internal.password, from_loopback=True) is not None
    assert registry.authenticate(internal.name, internal.password, from_loopback=False) is None
    assert registry.grants(internal.name, "/").allows("queue", "any", "configure")
    registry.add_user(internal.name, "chosen")
    assert registry.authenticate(internal.name, internal.password, from_loopback=True) is None
    assert registry.grants(internal.name, "/") is None  # no permission row of its own


def test_a_user_may_only_define_local_ends_in_vhosts_it_may_connect_to(leveret_broker) -> None:
    """The internal identity has every right, so the user who defines a shovel is checked instead (as RabbitMQ
    checks the user who sets a shovel parameter against each direct URI's vhost)."""
    broker = leveret_broker
    base = api(broker)
    assert call(base, "PUT", "/vhosts/secret", {}).status == 201
    assert call(base, "PUT", "/users/bob", {"password": "builder", "tags": "policymaker"}).status == 201
    assert call(base, "PUT", "/permissions/%2F/bob", {"configure": ".*", "write": ".*", "read": ".*"}).status == 201
    bob = ("bob", "builder")
    value = {"src-uri": "amqp:///secret", "src-queue": "payroll", "dest-uri": "amqp://", "dest-queue": "mine"}
    refused = call(base, "PUT", "/parameters/shovel/%2F/steal", {"value": value}, auth=bob)
    assert refused.status == 400
    assert refused.body["reason"] == 'Validation failed\n\nuser "bob" may not connect to vhost "secret"\n'
    allowed = {**value, "src-uri": "amqp://", "src-queue": "own"}
    assert call(base, "PUT", "/parameters/shovel/%2F/own", {"value": allowed}, auth=bob).status == 201
    # Credentials of its own in the URI: that user's rights apply at connect, nothing to check here.
    named = {**value, "src-uri": "amqp://guest:guest@/secret"}
    assert call(base, "PUT", "/parameters/shovel/%2F/named", {"value": named}, auth=bob).status == 201
