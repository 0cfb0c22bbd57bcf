"""Deferred dispatch: the queues a read's publishes reach dispatch once, at the end of the run of publishes
(broker/vhost.py `dispatch_deferred`), and nothing a client can see comes in another order than it would with
a dispatch per publish."""

from __future__ import annotations

from leveret.amqp import spec
from leveret.amqp.properties import BasicProperties
from leveret.amqp.serializer import content_frames, method_frame

from test_session import OPEN, Client, kinds, publish


def consuming(client: Client, *tags: str, channel: int = 2, prefetch: int = 0) -> None:
    """Queue q, and consumers on `channel` of the same connection."""
    client.send(OPEN, method_frame(1, spec.QueueDeclare(queue="q")))
    if channel != 1:
        client.send(method_frame(channel, spec.ChannelOpen()))
    client.send(method_frame(channel, spec.BasicQos(prefetch_count=prefetch)))
    for tag in tags:
        client.send(method_frame(channel, spec.BasicConsume(queue="q", consumer_tag=tag)))


def deliveries(methods: list) -> list:
    return [(m.consumer_tag, m.delivery_tag) for _, m in methods if type(m) is spec.BasicDeliver]


def test_the_publishes_of_one_read_are_delivered_in_one_run_in_order():
    client = Client()
    writes = []
    write_frames = client.writer.write_frames
    client.writer.write_frames = lambda frames: (writes.append(len(frames)), write_frames(frames))
    consuming(client, "c")
    writes.clear()
    got = client.send(*(publish(bytes([n])) for n in range(5)))
    assert deliveries(got) == [("c", tag) for tag in range(1, 6)]
    assert len(writes) == 1  # one run of five deliveries, one write


def test_round_robin_over_consumers_is_the_order_a_dispatch_per_publish_gives():
    client = Client()
    consuming(client, "a", "b")
    got = client.send(*(publish(b"x") for _ in range(4)))
    assert deliveries(got) == [("a", 1), ("b", 2), ("a", 3), ("b", 4)]


def test_a_method_after_publishes_in_the_same_read_sees_them_delivered():
    client = Client()
    consuming(client, "c")
    got = client.send(publish(b"x"), publish(b"y"), method_frame(1, spec.BasicGet(queue="q")))
    assert kinds(got) == [(2, "BasicDeliver"), (2, "BasicDeliver"), (1, "BasicGetEmpty")]


def test_a_basic_return_comes_after_the_deliveries_of_the_publishes_before_it():
    client = Client()
    consuming(client, "c")
    unroutable = b"".join(content_frames(1, spec.BasicPublish(exchange="", routing_key="nowhere", mandatory=True),
                                         BasicProperties().raw, b"r", 131072))
    got = client.send(publish(b"x"), unroutable, publish(b"y"))
    assert kinds(got) == [(2, "BasicDeliver"), (1, "BasicReturn"), (2, "BasicDeliver")]


def test_a_channel_error_comes_after_the_deliveries_of_the_publishes_before_it():
    client = Client()
    consuming(client, "c", channel=1)
    missing = b"".join(content_frames(1, spec.BasicPublish(exchange="no-such-exchange", routing_key="q"),
                                      BasicProperties().raw, b"e", 131072))
    got = client.send(publish(b"x"), missing)
    # delivered to the consumer before its channel closed: the close requeues it as redelivered
    assert kinds(got) == [(1, "BasicDeliver"), (1, "ChannelClose")]
    queue = client.broker.vhost("/").queues["q"]
    assert queue.message_count == 1 and queue.ready.peek().redelivered


def test_publishes_outside_a_read_dispatch_at_once():
    client = Client()
    consuming(client, "c")
    vhost = client.broker.vhost("/")
    assert vhost.dispatch_due is None  # nothing deferred between reads
    client.send(publish(b"x"))
    assert vhost.dispatch_due is None and vhost.queues["q"].message_count == 0
