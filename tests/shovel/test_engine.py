"""The shovel engine between two leveret brokers (and within one): moving, acking, headers, self-deletion,
reconnecting. Shovels are set as runtime parameters on the broker's loop here, as the management API sets them."""

from __future__ import annotations

import pika
import pytest

from leveret.embedded import EmbeddedBroker
from tests.conftest import pika_parameters
from tests.shovel.helpers import drain, on_loop, publish, queue_length, settled, shovel_state, wait_for

pytestmark = pytest.mark.timeout(60)


def apply(broker: EmbeddedBroker, name: str, value: dict, vhost: str = "/", running: bool = True) -> None:
    """Apply a shovel; with `running`, wait until it runs (its queues are declared by then)."""
    on_loop(broker, broker.server.broker.parameters.set, vhost, "shovel", name, value)
    if running:
        wait_for(lambda: (row := shovel_state(broker, vhost, name)) is None or row["state"] == "running",
                 20, f"shovel {name} to run")


def test_on_confirm_moves_every_message_in_order_with_its_properties(two_brokers) -> None:
    source, destination = two_brokers
    publish(source.url, "from", 1000, headers={"h": 1})
    apply(source, "s", {"src-uri": source.url, "src-queue": "from", "dest-uri": destination.url,
                        "dest-queue": "to", "src-prefetch-count": 100})
    got = drain(destination.url, "to", 1000)
    assert [body for _, body in got] == [str(i).encode() for i in range(1000)]
    assert all(p.delivery_mode == 2 and p.headers == {"h": 1} for p, _ in got)
    assert queue_length(source.url, "from") == 0
    row = shovel_state(source, "/", "s")
    assert row["state"] == "running" and row["src_queue"] == "from" and row["dest_queue"] == "to"
    assert row["src_uri"] == source.url.replace(":guest@", "@")  # the password is not shown
    settled(source, 1000)  # the last confirms may come after the destination delivered the messages
    assert on_loop(source, source.server.shovels.totals)["moved"] == 1000


def test_local_uri_and_queue_length_move_what_was_there_then_delete_the_shovel(leveret_broker) -> None:
    broker = leveret_broker
    publish(broker.url, "backlog", 300)
    apply(broker, "once", {"src-uri": "amqp://", "src-queue": "backlog", "dest-uri": "amqp://",
                           "dest-queue": "moved", "src-delete-after": "queue-length", "src-prefetch-count": 7},
          running=False)
    wait_for(lambda: shovel_state(broker, "/", "once") is None, 20, "the shovel to finish")
    assert on_loop(broker, broker.server.broker.parameters.get, "/", "shovel", "once") is None
    assert queue_length(broker.url, "moved") == 300
    publish(broker.url, "backlog", 5, declare=False)  # after it finished: left where it is
    assert queue_length(broker.url, "backlog") == 5


def test_a_numeric_delete_after_moves_that_many(leveret_broker) -> None:
    broker = leveret_broker
    publish(broker.url, "many", 50)
    apply(broker, "ten", {"src-uri": "amqp://", "src-queue": "many", "dest-uri": "amqp://", "dest-queue": "ten",
                          "src-delete-after": 10}, running=False)
    wait_for(lambda: shovel_state(broker, "/", "ten") is None, 20, "the shovel to finish")
    assert queue_length(broker.url, "ten") == 10
    assert queue_length(broker.url, "many") == 40


def test_forward_and_timestamp_headers_in_rabbitmqs_shape(leveret_broker) -> None:
    broker = leveret_broker
    publish(broker.url, "plain", 1)
    apply(broker, "fw", {"src-uri": "amqp://", "src-queue": "plain", "dest-uri": "amqp://",
                         "dest-queue": "stamped", "dest-add-forward-headers": True,
                         "dest-add-timestamp-header": True})
    [(properties, _)] = drain(broker.url, "stamped", 1)
    assert properties.headers["x-shovelled"] == [{
        "dest-queue": "stamped", "dest-uri": "amqp://", "shovel-name": "fw", "shovel-type": "dynamic",
        "shovel-vhost": "/", "shovelled-by": broker.server.shovels.node, "src-queue": "plain",
        "src-uri": "amqp://"}]
    assert isinstance(properties.headers["x-shovelled-timestamp"], int)


def test_exchange_source_and_exchange_destination_keep_or_replace_the_routing_key(leveret_broker) -> None:
    broker = leveret_broker
    connection = pika.BlockingConnection(pika_parameters(broker.url))
    channel = connection.channel()
    for queue, key in (("kept", "orig.key"), ("replaced", "new.key")):
        channel.queue_declare(queue)
        channel.queue_bind(queue, "amq.topic", key)
    apply(broker, "keep", {"src-uri": "amqp://", "src-exchange": "amq.direct", "src-exchange-key": "k",
                           "dest-uri": "amqp://", "dest-exchange": "amq.topic"})
    apply(broker, "replace", {"src-uri": "amqp://", "src-exchange": "amq.fanout", "dest-uri": "amqp://",
                              "dest-exchange": "amq.topic", "dest-exchange-key": "new.key"})
    channel.basic_publish("amq.direct", "k", b"direct")  # routed by key "k" to the shovel's queue...
    channel.basic_publish("amq.direct", "other", b"unbound")  # ...and not this one
    connection.close()
    # The first shovel republishes with the message's own key "k", which amq.topic routes nowhere.
    connection = pika.BlockingConnection(pika_parameters(broker.url))
    connection.channel().basic_publish("amq.fanout", "orig.key", b"fanned")
    connection.close()
    assert [body for _, body in drain(broker.url, "replaced", 1)] == [b"fanned"]
    assert drain(broker.url, "kept", 0) == []


@pytest.mark.parametrize("ack_mode", ["on-publish", "no-ack"])
def test_the_other_ack_modes_move_messages(leveret_broker, ack_mode: str) -> None:
    broker = leveret_broker
    publish(broker.url, "in", 200)
    apply(broker, "m", {"src-uri": "amqp://", "src-queue": "in", "dest-uri": "amqp://", "dest-queue": "out",
                        "ack-mode": ack_mode})
    assert len(drain(broker.url, "out", 200)) == 200
    assert queue_length(broker.url, "in") == 0


def test_an_unreachable_end_is_terminated_with_a_reason_and_retried(leveret_broker) -> None:
    broker = leveret_broker
    apply(broker, "nowhere", {"src-uri": "amqp://guest:guest@127.0.0.1:1", "src-queue": "q",
                              "dest-uri": "amqp://", "dest-queue": "d", "reconnect-delay": 0.2}, running=False)
    row = wait_for(lambda: (r := shovel_state(broker, "/", "nowhere")) and r["state"] == "terminated" and r,
                   20, "the shovel to report its failure")
    assert "Connect" in row["reason"] or "refused" in row["reason"].lower()
    wait_for(lambda: broker.server.shovels.shovels[("/", "nowhere")].reconnects >= 2, 20, "retries")


def test_the_destination_broker_restarting_is_survived_without_loss(tmp_path) -> None:
    with EmbeddedBroker() as source:
        far = EmbeddedBroker(data_dir=str(tmp_path / "far")).start()
        port = far.port
        try:
            publish(source.url, "edge", 1000)
            apply(source, "fwd", {"src-uri": source.url, "src-queue": "edge", "dest-uri": far.url,
                                  "dest-queue": "central", "reconnect-delay": 0.2, "src-prefetch-count": 50})
            wait_for(lambda: queue_length(source.url, "edge") < 1000, 20, "the shovel to start moving")
            far.stop()
            wait_for(lambda: shovel_state(source, "/", "fwd")["state"] != "running", 20, "the shovel to notice")
            publish(source.url, "edge", 1000, body=lambda i: str(1000 + i).encode(), declare=False)
            far = EmbeddedBroker(data_dir=str(tmp_path / "far"), port=port).start()
            got = drain(far.url, "central", 2000)
            bodies = {int(body) for _, body in got}
            assert bodies == set(range(2000))  # none lost; a duplicate is allowed (at-least-once)
            assert queue_length(source.url, "edge") == 0
            assert shovel_state(source, "/", "fwd")["state"] == "running"
            assert source.server.shovels.shovels[("/", "fwd")].reconnects >= 1
        finally:
            far.stop()
