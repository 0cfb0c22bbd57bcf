"""Quorum queues (delivery limit, x-delivery-count), single active consumer, requeue delay."""

import pytest

from leveret.broker.errors import AccessRefused


def declare_quorum(vhost, name="q", **arguments):
    return vhost.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum", **arguments})[0]


def test_poison_message_is_dead_lettered_after_exactly_limit_plus_one_deliveries(vhost, session):
    vhost.declare_queue("dlq")
    declare_quorum(vhost, **{"x-delivery-limit": 2, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"})
    session.publish("q", "poison")
    session.consume("q", "c")
    deliveries = 0
    while session.target.deliveries:
        _, tag, _, _ = session.target.deliveries.pop(0)
        deliveries += 1
        session.channel.nack(tag, requeue=True)
    assert deliveries == 3
    (dead,) = vhost.queues["dlq"].ready
    headers = dead.message.properties.headers
    assert headers["x-death"][0]["reason"] == "delivery_limit" and headers["x-death"][0]["count"] == 1
    assert "x-delivery-count" not in headers


def test_quorum_get_ok_always_carries_x_delivery_count(vhost, session):
    declare_quorum(vhost)
    session.publish("q", "m", headers={"a": 1})
    for expected in range(3):
        tag, redelivered, message, _ = session.channel.get("q")
        assert message.properties.headers == {"a": 1, "x-delivery-count": expected}
        assert redelivered == (expected > 0)
        session.channel.reject(tag, requeue=True)


def test_quorum_basic_deliver_carries_x_delivery_count_only_after_a_return(vhost, session):
    declare_quorum(vhost)
    session.publish("q", "m")
    session.consume("q", "c")
    (_, tag, _, first), = session.target.take()
    assert first.properties.headers is None
    session.channel.nack(tag)
    (_, _, redelivered, second), = session.target.take()
    assert redelivered and second.properties.headers == {"x-delivery-count": 1}


def test_delivery_limit_zero_drops_on_first_return_without_dlx(vhost, session):
    declare_quorum(vhost, **{"x-delivery-limit": 0})
    session.publish("q", "m")
    session.channel.nack(session.channel.get("q")[0], requeue=True)
    assert vhost.queues["q"].message_count == 0 and vhost.queues["q"].unacked_count == 0


def test_channel_close_counts_as_a_return_for_the_delivery_limit(vhost, make_session):
    declare_quorum(vhost, **{"x-delivery-limit": 0})
    s = make_session()
    s.publish("q", "m")
    s.channel.get("q")
    s.channel.close()
    assert vhost.queues["q"].message_count == 0


def test_classic_queues_do_not_add_x_delivery_count(vhost, session):
    vhost.declare_queue("q")
    session.publish("q", "m")
    session.channel.reject(session.channel.get("q")[0], requeue=True)
    assert session.channel.get("q")[2].properties.headers is None


# -- single active consumer --------------------------------------------------------------------

def test_only_the_first_consumer_receives_and_the_next_takes_over_in_order(vhost, make_session):
    vhost.declare_queue("q", arguments={"x-single-active-consumer": True})
    a, b, c = make_session("c1"), make_session("c2"), make_session("c3")
    a.consume("q", "A")
    b.consume("q", "B")
    c.consume("q", "C")
    for i in range(3):
        a.publish("q", str(i))
    assert a.target.bodies == [b"0", b"1", b"2"] and not b.target.deliveries and not c.target.deliveries
    assert vhost.queues["q"].consumer_count == 3
    a.channel.cancel("A")
    a.publish("q", "3")
    assert b.target.bodies == [b"3"] and not c.target.deliveries
    b.channel.close()  # unacked "3" goes back and the next consumer gets it
    assert c.target.bodies == [b"3"]
    assert vhost.queues["q"].active_consumer.tag == "C"


def test_sac_with_prefetch_never_spreads_over_waiting_consumers(vhost, make_session):
    vhost.declare_queue("q", arguments={"x-single-active-consumer": True})
    a, b = make_session("c1"), make_session("c2")
    a.channel.qos(0, 1, False)
    a.consume("q", "A")
    b.consume("q", "B")
    for i in range(3):
        a.publish("q", str(i))
    assert a.target.bodies == [b"0"] and not b.target.deliveries
    a.channel.ack(1)
    assert a.target.bodies == [b"0", b"1"]


def test_exclusive_consume_on_a_queue_with_consumers_is_refused(vhost, make_session):
    vhost.declare_queue("q", arguments={"x-single-active-consumer": True})
    a = make_session()
    a.consume("q", "A")
    with pytest.raises(AccessRefused) as e:
        a.channel.consume("q", "X", exclusive=True)
    assert e.value.text == "queue 'q' in vhost '/' in exclusive use"


# -- requeue delay (extension) -------------------------------------------------------------------

def test_nacked_message_comes_back_only_after_its_delay(vhost, session, tick):
    vhost.declare_queue("q", arguments={"x-requeue-delay": [100, 400]})
    session.publish("q", "m")
    session.consume("q", "c")
    _, tag, _, _ = session.target.take()[0]
    session.channel.nack(tag, requeue=True)
    tick(0.099)
    assert not session.target.deliveries and vhost.queues["q"].parked_count == 1
    tick(0.002)
    ((_, tag, redelivered, _),) = session.target.take()
    assert redelivered
    session.channel.reject(tag, requeue=True)
    tick(0.3)
    assert not session.target.deliveries
    tick(0.11)
    assert len(session.target.take()) == 1


def test_requeue_delay_plus_delivery_limit_is_retry_then_dlq(vhost, session, tick):
    vhost.declare_queue("dlq")
    declare_quorum(
        vhost, **{"x-requeue-delay": 50, "x-delivery-limit": 2, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"}
    )
    session.publish("q", "m")
    session.consume("q", "c")
    deliveries = 0
    for _ in range(10):
        for _, tag, _, _ in session.target.take():
            deliveries += 1
            session.channel.nack(tag, requeue=True)
        tick(0.05)
    assert deliveries == 3 and vhost.queues["dlq"].message_count == 1


def test_channel_close_requeues_immediately_despite_requeue_delay(vhost, make_session):
    vhost.declare_queue("q", arguments={"x-requeue-delay": 1000})
    s = make_session()
    s.publish("q", "m")
    s.channel.get("q")
    s.channel.close()
    assert vhost.queues["q"].message_count == 1


def test_deleting_a_queue_drops_parked_messages_and_its_timers(vhost, session, broker):
    vhost.declare_queue("q", arguments={"x-requeue-delay": 1000})
    session.publish("q", "m")
    session.channel.nack(session.channel.get("q")[0])
    vhost.delete_queue("q")
    assert broker.timers.next_deadline() is None


def test_quorum_queues_put_returned_messages_at_the_back_in_return_order(vhost, session):
    declare_quorum(vhost)
    for body in "abc":
        session.publish("q", body)
    first = session.channel.get("q")[0]
    second = session.channel.get("q")[0]
    session.channel.nack(second)
    session.channel.nack(first)
    got = [session.channel.get("q", no_ack=True) for _ in range(3)]
    assert [(m.body, redelivered) for _, redelivered, m, _ in got] == [(b"c", False), (b"b", True), (b"a", True)]
