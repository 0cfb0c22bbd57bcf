"""Channel: consumers, delivery tags, qos credit, ack/nack/reject/recover, close, direct reply-to."""

import re

import pytest

from leveret.broker.errors import (
    AccessRefused,
    NotAllowed,
    NotFound,
    NotImplementedByBroker,
    PreconditionFailed,
    ResourceLocked,
)


def fill(session, queue, n, start=0):
    for i in range(start, start + n):
        session.publish(queue, str(i))


def bodies(deliveries):
    return [d[3].body.decode() for d in deliveries]


# -- consume / deliver -------------------------------------------------------------------------

def test_consume_does_not_deliver_until_started(vhost, session):
    vhost.declare_queue("q")
    fill(session, "q", 2)
    tag = session.channel.consume("q")
    assert re.fullmatch(r"amq\.ctag-[A-Za-z0-9_-]{22}", tag)
    assert session.target.deliveries == []
    session.channel.start_consumer(tag)
    assert bodies(session.target.deliveries) == ["0", "1"]
    assert session.target.tags == [1, 2]


def test_delivery_tags_count_deliveries_and_get_oks_together(vhost, session):
    vhost.declare_queue("q")
    fill(session, "q", 2)
    assert session.channel.get("q")[0] == 1
    session.consume("q", "c", no_ack=True)
    assert session.target.tags == [2]
    session.publish("q", "x")
    assert session.target.tags == [2, 3]


def test_reusing_a_consumer_tag_is_a_connection_error(vhost, session):
    vhost.declare_queue("q")
    session.channel.consume("q", "t")
    with pytest.raises(NotAllowed) as e:
        session.channel.consume("q", "t")
    assert e.value.text == "attempt to reuse consumer tag 't'" and type(e.value) is NotAllowed


def test_consuming_from_missing_or_locked_queue_fails(vhost, make_session):
    a, b = make_session("c1"), make_session("c2")
    with pytest.raises(NotFound) as e:
        a.channel.consume("noq")
    assert e.value.text == "no queue 'noq' in vhost '/'"
    vhost.declare_queue("ex", exclusive=True, owner="c1")
    with pytest.raises(ResourceLocked):
        b.channel.consume("ex")
    with pytest.raises(ResourceLocked):
        b.channel.get("ex")
    a.consume("ex")


def test_exclusive_consumer_rules(vhost, session, make_session):
    vhost.declare_queue("q")
    other = make_session("c2")
    session.channel.consume("q", "ex", exclusive=True)
    with pytest.raises(AccessRefused) as e:
        other.channel.consume("q", "c")
    assert e.value.text == "queue 'q' in vhost '/' in exclusive use"
    session.channel.cancel("ex")
    other.channel.consume("q", "c")
    with pytest.raises(AccessRefused) as e:
        session.channel.consume("q", "ex2", exclusive=True)
    assert e.value.text == "queue 'q' in vhost '/' in exclusive use"
    assert "ex2" not in session.channel.consumers


def test_cancel_of_unknown_tag_is_fine(session):
    assert session.channel.cancel("nope") is False


def test_competing_consumers_round_robin_with_prefetch(vhost, make_session):
    vhost.declare_queue("q")
    a, b = make_session("c1"), make_session("c2")
    for s in (a, b):
        s.channel.qos(0, 2, False)
        s.consume("q", "c")
    fill(a, "q", 6)
    assert bodies(a.target.deliveries) == ["0", "2"]
    assert bodies(b.target.deliveries) == ["1", "3"]
    assert vhost.queues["q"].message_count == 2
    b.channel.ack(2, multiple=True)
    assert bodies(b.target.deliveries) == ["1", "3", "4", "5"]
    assert bodies(a.target.deliveries) == ["0", "2"]


def test_per_consumer_qos_applies_only_to_consumers_created_after(vhost, session):
    vhost.declare_queue("q1")
    vhost.declare_queue("q2")
    session.consume("q1", "unlimited")
    session.channel.qos(0, 1, False)
    session.consume("q2", "limited")
    fill(session, "q1", 3)
    fill(session, "q2", 3)
    tags = [d[0] for d in session.target.deliveries]
    assert tags.count("unlimited") == 3 and tags.count("limited") == 1


def test_global_qos_is_shared_by_all_consumers_of_the_channel(vhost, session):
    vhost.declare_queue("q1")
    vhost.declare_queue("q2")
    session.channel.qos(0, 3, True)
    session.consume("q1", "a")
    session.consume("q2", "b")
    fill(session, "q1", 3)
    fill(session, "q2", 3)
    assert len(session.target.deliveries) == 3
    session.channel.ack(0, multiple=True)
    assert len(session.target.deliveries) == 6


def test_per_consumer_and_global_limits_both_apply(vhost, session):
    vhost.declare_queue("q")
    session.channel.qos(0, 1, False)
    session.channel.qos(0, 5, True)
    session.consume("q", "c")
    fill(session, "q", 3)
    assert len(session.target.deliveries) == 1


def test_raising_global_qos_releases_waiting_messages(vhost, session):
    vhost.declare_queue("q")
    session.channel.qos(0, 1, True)
    session.consume("q", "c")
    fill(session, "q", 3)
    assert len(session.target.deliveries) == 1
    session.channel.qos(0, 0, True)
    assert len(session.target.deliveries) == 3


def test_no_ack_consumers_are_not_limited_by_prefetch(vhost, session):
    vhost.declare_queue("q")
    session.channel.qos(0, 1, False)
    session.channel.qos(0, 1, True)
    session.consume("q", "c", no_ack=True)
    fill(session, "q", 5)
    assert len(session.target.deliveries) == 5
    assert session.channel.unacked_count == 0
    assert vhost.queues["q"].unacked_count == 0


def test_prefetch_size_is_not_implemented(session):
    with pytest.raises(NotImplementedByBroker) as e:
        session.channel.qos(10, 0, False)
    assert e.value.text == "prefetch_size!=0 (10)" and type(e.value) is NotImplementedByBroker


def test_consumer_priorities_prefer_higher_priority_while_it_has_credit(vhost, make_session):
    vhost.declare_queue("q")
    low, high = make_session("c1"), make_session("c2")
    high.channel.qos(0, 2, False)
    low.consume("q", "low")
    high.consume("q", "high", arguments={"x-priority": 10})
    fill(low, "q", 5)
    assert bodies(high.target.deliveries) == ["0", "1"]
    assert bodies(low.target.deliveries) == ["2", "3", "4"]
    high.channel.ack(1)
    fill(low, "q", 1, start=5)
    assert bodies(high.target.deliveries) == ["0", "1", "5"]


# -- get ---------------------------------------------------------------------------------------

def test_get_returns_message_and_remaining_count(vhost, session):
    vhost.declare_queue("q")
    fill(session, "q", 2)
    tag, redelivered, message, remaining = session.channel.get("q")
    assert (tag, redelivered, message.body, remaining) == (1, False, b"0", 1)
    assert session.channel.get("q", no_ack=True)[2].body == b"1"
    assert session.channel.get("q") is None
    assert session.channel.unacked_count == 1


# -- ack / nack / reject -------------------------------------------------------------------------

def test_unknown_delivery_tag_is_a_channel_error(vhost, session):
    with pytest.raises(PreconditionFailed) as e:
        session.channel.ack(5)
    assert e.value.text == "unknown delivery tag 5" and type(e.value) is PreconditionFailed
    with pytest.raises(PreconditionFailed) as e:
        session.channel.ack(0)
    assert e.value.text == "unknown delivery tag 0"
    session.channel.ack(0, multiple=True)  # nothing outstanding: fine, as RabbitMQ


def test_double_ack_is_unknown_tag(vhost, session):
    vhost.declare_queue("q")
    fill(session, "q", 1)
    session.channel.get("q")
    session.channel.ack(1)
    with pytest.raises(PreconditionFailed):
        session.channel.ack(1)


def test_ack_multiple_settles_up_to_and_including_tag(vhost, session):
    vhost.declare_queue("q")
    fill(session, "q", 4)
    session.consume("q", "c")
    session.channel.ack(3, multiple=True)
    assert session.channel.unacked_count == 1
    assert vhost.queues["q"].unacked_count == 1


def test_reject_with_requeue_redelivers_at_head_with_redelivered_flag(vhost, session):
    vhost.declare_queue("q")
    fill(session, "q", 3)
    tag, _, _, _ = session.channel.get("q")
    session.channel.reject(tag, requeue=True)
    got = session.channel.get("q")
    assert got[1] is True and got[2].body == b"0"


def test_nack_without_requeue_drops_the_message(vhost, session):
    vhost.declare_queue("q")
    fill(session, "q", 2)
    session.consume("q", "c")
    session.channel.nack(0, multiple=True, requeue=False)
    assert vhost.queues["q"].message_count == 0
    assert vhost.queues["q"].unacked_count == 0


def test_nack_requeue_multiple_keeps_original_order_among_ready(vhost, session):
    vhost.declare_queue("q")
    fill(session, "q", 6)
    for _ in range(4):
        session.channel.get("q")
    session.channel.ack(2)
    session.channel.nack(4, multiple=True, requeue=True)
    q = vhost.queues["q"]
    assert [(e.message.body.decode(), e.redelivered) for e in q.ready] == [
        ("0", True), ("2", True), ("3", True), ("4", False), ("5", False)]


def test_requeue_merges_into_middle_by_sequence(vhost, session, make_session):
    vhost.declare_queue("q")
    other = make_session("c2")
    fill(session, "q", 4)
    session.channel.get("q")                 # 0 -> tag 1 (session)
    other.channel.get("q")                   # 1 -> other
    session.channel.get("q")                 # 2 -> tag 2 (session)
    other.channel.reject(1, requeue=True)    # 1 back: ready = 1, 3
    session.channel.nack(0, multiple=True)   # 0 and 2 back, merged around 1 and 3
    assert [e.message.body for e in vhost.queues["q"].ready] == [b"0", b"1", b"2", b"3"]


def test_recover_requeues_everything_and_refuses_requeue_false(vhost, session):
    vhost.declare_queue("q")
    fill(session, "q", 2)
    session.consume("q", "c")
    session.target.take()
    session.channel.recover(requeue=True)
    redelivered = session.target.take()
    assert [(d[2], d[3].body) for d in redelivered] == [(True, b"0"), (True, b"1")]
    assert [d[1] for d in redelivered] == [3, 4]
    with pytest.raises(NotImplementedByBroker) as e:
        session.channel.recover(requeue=False)
    assert e.value.text == "requeue=false"


def test_flow_active_false_is_not_implemented(session):
    assert session.channel.flow(True) is True
    with pytest.raises(NotImplementedByBroker) as e:
        session.channel.flow(False)
    assert e.value.text == "active=false"


def test_paused_channel_gets_nothing_until_resumed(vhost, session):
    vhost.declare_queue("q")
    session.consume("q", "c", no_ack=True)
    session.channel.pause_deliveries()
    fill(session, "q", 2)
    assert session.target.deliveries == []
    session.channel.resume_deliveries()
    assert bodies(session.target.deliveries) == ["0", "1"]


# -- close -------------------------------------------------------------------------------------

def test_close_requeues_unacked_in_original_order_with_interleaved_acks(vhost, session, make_session):
    vhost.declare_queue("q")
    fill(session, "q", 8)
    session.channel.qos(0, 4, False)
    session.consume("q", "c")
    assert bodies(session.target.deliveries) == ["0", "1", "2", "3"]
    session.channel.ack(2)  # "1"; frees credit for "4"
    session.channel.ack(4)  # "3"; frees credit for "5"
    assert bodies(session.target.deliveries) == ["0", "1", "2", "3", "4", "5"]
    session.channel.close()
    q = vhost.queues["q"]
    assert [(e.message.body.decode(), e.redelivered) for e in q.ready] == [
        ("0", True), ("2", True), ("4", True), ("5", True), ("6", False), ("7", False)]
    assert q.consumer_count == 0 and q.unacked_count == 0
    other = make_session("c2")
    other.consume("q", "d", no_ack=True)
    assert bodies(other.target.deliveries) == ["0", "2", "4", "5", "6", "7"]
    assert [d[2] for d in other.target.deliveries] == [True, True, True, True, False, False]


def test_close_hands_requeued_messages_to_other_consumers_not_back_to_itself(vhost, make_session):
    vhost.declare_queue("q")
    a, b = make_session("c1"), make_session("c2")
    a.consume("q", "a")
    fill(a, "q", 1)
    b.consume("q", "b")
    a.channel.close()
    assert bodies(b.target.deliveries) == ["0"]
    assert len(a.target.deliveries) == 1


def test_cancel_keeps_unacked_messages_owed_by_the_channel(vhost, session):
    vhost.declare_queue("q")
    fill(session, "q", 2)
    session.consume("q", "c")
    session.channel.cancel("c")
    assert session.channel.unacked_count == 2
    session.channel.ack(2, multiple=True)
    assert vhost.queues["q"].unacked_count == 0


# -- queue deletion and auto-delete ----------------------------------------------------------------

def test_deleting_a_queue_cancels_its_consumers_on_every_channel(vhost, make_session):
    vhost.declare_queue("q")
    a, b = make_session("c1"), make_session("c2")
    a.consume("q", "a")
    b.consume("q", "b")
    vhost.delete_queue("q")
    assert a.target.cancelled == ["a"] and b.target.cancelled == ["b"]
    assert a.channel.consumers == {} and b.channel.consumers == {}


def test_acking_a_message_of_a_deleted_queue_is_fine(vhost, session):
    vhost.declare_queue("q")
    fill(session, "q", 2)
    session.channel.get("q")
    session.channel.get("q")
    vhost.delete_queue("q")
    session.channel.ack(1)
    session.channel.reject(2, requeue=True)
    assert "q" not in vhost.queues


def test_auto_delete_queue_goes_when_last_consumer_cancels(vhost, make_session):
    vhost.declare_queue("ad", auto_delete=True)
    a, b = make_session("c1"), make_session("c2")
    a.consume("ad", "a")
    b.consume("ad", "b")
    a.channel.cancel("a")
    assert "ad" in vhost.queues
    b.channel.close()
    assert "ad" not in vhost.queues


def test_auto_delete_queue_without_consumers_stays(vhost, session):
    vhost.declare_queue("ad", auto_delete=True)
    session.channel.get("ad")
    assert "ad" in vhost.queues


def test_auto_delete_queue_deletion_cascades_to_auto_delete_exchange(vhost, session):
    vhost.declare_exchange("ax", "fanout", auto_delete=True)
    vhost.declare_queue("ad", auto_delete=True)
    vhost.bind_queue("ad", "ax")
    session.consume("ad", "c")
    session.channel.cancel("c")
    assert "ad" not in vhost.queues and "ax" not in vhost.exchanges


# -- direct reply-to ---------------------------------------------------------------------------

def test_direct_reply_to_round_trip(vhost, make_session):
    client, server = make_session("c1"), make_session("c2")
    vhost.declare_queue("rpc")
    server.consume("rpc", "srv", no_ack=True)
    tag = client.consume("amq.rabbitmq.reply-to", "replies", no_ack=True)
    assert tag == "replies"
    client.publish("rpc", "request", reply_to="amq.rabbitmq.reply-to")
    (_, _, _, request) = server.target.deliveries[0]
    address = request.properties.reply_to
    assert address.startswith("amq.rabbitmq.reply-to.") and address == client.channel.reply_address
    result = server.publish(address, "response")
    assert result.routed
    assert [(d[0], d[3].body) for d in client.target.deliveries] == [("replies", b"response")]


def test_direct_reply_to_errors(vhost, session):
    vhost.declare_queue("q")
    with pytest.raises(PreconditionFailed) as e:
        session.publish("q", "x", reply_to="amq.rabbitmq.reply-to")
    assert e.value.text == "fast reply consumer does not exist"
    with pytest.raises(PreconditionFailed) as e:
        session.channel.consume("amq.rabbitmq.reply-to", no_ack=False)
    assert e.value.text == "reply consumer cannot acknowledge"
    session.channel.consume("amq.rabbitmq.reply-to", no_ack=True)
    with pytest.raises(PreconditionFailed) as e:
        session.channel.consume("amq.rabbitmq.reply-to", no_ack=True)
    assert e.value.text == "reply consumer already set"
    with pytest.raises(NotFound):
        session.channel.get("amq.rabbitmq.reply-to")


def test_reply_to_a_closed_channel_is_unroutable(vhost, make_session):
    client, server = make_session("c1"), make_session("c2")
    client.consume("amq.rabbitmq.reply-to", no_ack=True)
    address = client.channel.reply_address
    client.channel.close()
    assert not server.publish(address, "late").routed
    assert not server.publish("amq.rabbitmq.reply-to.bogus", "x").routed


def test_reply_after_reply_consumer_cancelled_is_unroutable_and_new_requests_fail(vhost, make_session):
    client, server = make_session("c1"), make_session("c2")
    client.consume("amq.rabbitmq.reply-to", "rt", no_ack=True)
    address = client.channel.reply_address
    client.channel.cancel("rt")
    assert not server.publish(address, "late").routed
    with pytest.raises(PreconditionFailed):
        client.publish("q", "x", reply_to="amq.rabbitmq.reply-to")
    client.consume("amq.rabbitmq.reply-to", "rt2", no_ack=True)
    assert server.publish(address, "now").routed


def test_passive_declare_of_reply_pseudo_queue_succeeds(vhost):
    queue, messages, consumers = vhost.declare_queue("amq.rabbitmq.reply-to", passive=True)
    assert (queue.name, messages, consumers) == ("amq.rabbitmq.reply-to", 0, 1)
    assert "amq.rabbitmq.reply-to" not in vhost.queues


def test_non_integer_consumer_priority_is_refused(vhost, session):
    vhost.declare_queue("q")
    with pytest.raises(PreconditionFailed) as e:
        session.channel.consume("q", arguments={"x-priority": "abc"})
    assert e.value.text == "invalid arg 'x-priority' for queue 'q' in vhost '/': \"expected integer, got longstr\""


def test_publish_with_foreign_user_id_is_refused(vhost, session):
    vhost.declare_queue("q")
    assert session.publish("q", "x", user_id="guest").routed
    with pytest.raises(PreconditionFailed) as e:
        session.publish("q", "x", user_id="bob")
    assert e.value.text == "user_id property set to 'bob' but authenticated user was 'guest'"


def test_take_then_restore_keeps_deliveries_unacked_in_tag_order(vhost, session):
    vhost.declare_queue("q")
    fill(session, "q", 3)
    session.channel.qos(0, 3, False)
    session.consume("q", "c")
    taken = session.channel.take(2, multiple=False)
    session.channel.check_delivery_tag(3, False)
    with pytest.raises(PreconditionFailed):
        session.channel.check_delivery_tag(2, False)
    session.channel.restore(taken)
    session.channel.ack(3, multiple=True)
    assert session.channel.unacked_count == 0


def test_taken_deliveries_hold_credit_until_settled(vhost, session):
    vhost.declare_queue("q")
    fill(session, "q", 2)
    session.channel.qos(0, 1, False)
    session.consume("q", "c")
    taken = session.channel.take(1, multiple=False)
    assert len(session.target.deliveries) == 1
    session.channel.settle(taken, ack=True)
    assert bodies(session.target.deliveries) == ["0", "1"]
