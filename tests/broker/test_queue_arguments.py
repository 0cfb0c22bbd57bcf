"""Queue argument validation at declare: RabbitMQ 3.10's 406 texts, and nothing changes on failure."""

import pytest

from leveret.broker.errors import PreconditionFailed

W = "for queue 'q' in vhost '/'"


@pytest.mark.parametrize(
    "arguments, text",
    [
        ({"x-message-ttl": -1}, f"invalid arg 'x-message-ttl' {W}: {{value_negative,-1}}"),
        ({"x-message-ttl": "10"}, f"invalid arg 'x-message-ttl' {W}: \"expected integer, got longstr\""),
        ({"x-expires": 0}, f"invalid arg 'x-expires' {W}: {{value_zero,0}}"),
        ({"x-expires": -5}, f"invalid arg 'x-expires' {W}: {{value_negative,-5}}"),
        ({"x-overflow": "foo"}, f"invalid arg 'x-overflow' {W}: invalid_overflow"),
        ({"x-overflow": 5}, f"invalid arg 'x-overflow' {W}: {{unacceptable_type,signedint}}"),
        ({"x-max-priority": -1}, f"invalid arg 'x-max-priority' {W}: {{value_negative,-1}}"),
        ({"x-max-priority": 256}, f"invalid arg 'x-max-priority' {W}: {{max_value_exceeded,256}}"),
        ({"x-max-priority": "x"}, f"invalid arg 'x-max-priority' {W}: \"expected integer, got longstr\""),
        ({"x-max-length": -1}, f"invalid arg 'x-max-length' {W}: {{value_negative,-1}}"),
        ({"x-max-length-bytes": -1}, f"invalid arg 'x-max-length-bytes' {W}: {{value_negative,-1}}"),
        ({"x-dead-letter-exchange": 5}, "invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'"),
        ({"x-dead-letter-routing-key": "k"}, f"invalid arg 'x-dead-letter-routing-key' {W}: routing_key_but_no_dlx_defined"),
        ({"x-queue-type": "foo"}, f"invalid arg 'x-queue-type' {W}: \"unsupported queue type 'foo'\""),
        ({"x-single-active-consumer": "yes"}, f"invalid arg 'x-single-active-consumer' {W}: {{unacceptable_type,longstr}}"),
        ({"x-delivery-limit": 3}, f"invalid arg 'x-delivery-limit' {W} of queue type rabbit_classic_queue"),
        ({"x-dead-letter-strategy": "at-least-once"}, f"invalid arg 'x-dead-letter-strategy' {W} of queue type rabbit_classic_queue"),
        ({"x-max-in-memory-length": 3}, f"invalid arg 'x-max-in-memory-length' {W} of queue type rabbit_classic_queue"),
        ({"x-quorum-initial-group-size": 3}, f"invalid arg 'x-quorum-initial-group-size' {W} of queue type rabbit_classic_queue"),
        ({"x-requeue-delay": -1}, f"invalid arg 'x-requeue-delay' {W}: {{value_negative,-1}}"),
        ({"x-requeue-delay": [100, "x"]}, f"invalid arg 'x-requeue-delay' {W}: \"expected integer, got longstr\""),
    ],
)
def test_bad_queue_arguments_are_refused_with_rabbitmq_text(vhost, arguments, text):
    with pytest.raises(PreconditionFailed) as e:
        vhost.declare_queue("q", arguments=arguments)
    assert e.value.text == text and type(e.value) is PreconditionFailed
    assert "q" not in vhost.queues


@pytest.mark.parametrize(
    "flags, prop",
    [({}, "non-durable"), ({"durable": True, "exclusive": True}, "exclusive-owner"), ({"durable": True, "auto_delete": True}, "auto-delete")],
)
def test_quorum_queues_refuse_non_durable_exclusive_and_auto_delete(vhost, flags, prop):
    with pytest.raises(PreconditionFailed) as e:
        vhost.declare_queue("q", arguments={"x-queue-type": "quorum"}, **flags)
    assert e.value.text == f"invalid property '{prop}' for queue 'q' in vhost '/'"


def test_quorum_specific_argument_rules(vhost):
    with pytest.raises(PreconditionFailed) as e:
        vhost.declare_queue("q", durable=True, arguments={"x-queue-type": "quorum", "x-max-priority": 5})
    assert e.value.text == f"invalid arg 'x-max-priority' {W} of queue type rabbit_quorum_queue"
    with pytest.raises(PreconditionFailed) as e:
        vhost.declare_queue("q", durable=True, arguments={"x-queue-type": "quorum", "x-dead-letter-strategy": "foo"})
    assert e.value.text == f"invalid arg 'x-dead-letter-strategy' {W}: invalid_dlx_strategy"
    q, _, _ = vhost.declare_queue(
        "q", durable=True, arguments={"x-queue-type": "quorum", "x-delivery-limit": "a", "x-dead-letter-strategy": "at-least-once"}
    )
    assert q.quorum and q.settings.delivery_limit is None


def test_redeclaring_with_a_bad_argument_fails_and_keeps_the_queue(vhost):
    vhost.declare_queue("q", arguments={"x-message-ttl": 100})
    with pytest.raises(PreconditionFailed):
        vhost.declare_queue("q", arguments={"x-message-ttl": -1})
    assert vhost.queues["q"].settings.message_ttl == 100


def test_valid_arguments_become_settings(vhost):
    q, _, _ = vhost.declare_queue(
        "q",
        arguments={
            "x-message-ttl": 10,
            "x-expires": 1000,
            "x-dead-letter-exchange": "dlx",
            "x-dead-letter-routing-key": "k",
            "x-max-length": 3,
            "x-max-length-bytes": 100,
            "x-overflow": "reject-publish",
            "x-max-priority": 9,
            "x-single-active-consumer": True,
            "x-requeue-delay": [10, 20],
            "x-consumer-timeout": 500,
        },
    )
    s = q.settings
    assert (s.message_ttl, s.expires, s.dead_letter_exchange, s.dead_letter_routing_key) == (10, 1000, "dlx", "k")
    assert (s.max_length, s.max_length_bytes, s.overflow, s.max_priority) == (3, 100, "reject-publish", 9)
    assert s.single_active_consumer and s.requeue_delays == (10, 20) and s.consumer_timeout == 500
    assert [s.requeue_delay(n) for n in (1, 2, 3)] == [10, 20, 20]


@pytest.mark.parametrize(
    "expiration, text",
    [
        ("-1", "invalid expiration '-1': {value_negative,-1}"),
        ("abc", "invalid expiration 'abc': no_integer"),
        ("1.5", "invalid expiration '1.5': {leftover_string,\".5\"}"),
        ("", "invalid expiration '': no_integer"),
    ],
)
def test_publishing_an_unreadable_expiration_is_refused(vhost, session, expiration, text):
    vhost.declare_queue("q")
    with pytest.raises(PreconditionFailed) as e:
        session.publish("q", "x", expiration=expiration)
    assert e.value.text == text
    assert vhost.queues["q"].message_count == 0
