"""Delayed-message exchange: held for x-delay, routed as x-delayed-type, never early, in due order."""

import random
from decimal import Decimal

import pytest

from leveret.amqp.table import Float32, Int8, Int16, Long, Timestamp, UInt8, UInt16, UInt32
from leveret.broker.errors import PreconditionFailed
from leveret.broker.exchanges.delayed import plugin_delay


def setup(vhost, xtype="direct"):
    vhost.declare_exchange("d", "x-delayed-message", arguments={"x-delayed-type": xtype})
    vhost.declare_queue("q")
    vhost.bind_queue("q", "d", "k")
    return vhost.exchanges["d"]


def bodies(vhost):
    return [e.message.body for e in vhost.queues["q"].ready]


def test_message_is_routed_after_its_delay_and_never_before(vhost, session, tick):
    x = setup(vhost)
    result = session.publish("k", "m", exchange="d", headers={"x-delay": 500})
    assert result.routed and result.delayed and x.pending_count == 1
    tick(0.4999)
    assert bodies(vhost) == []
    tick(0.0001)
    assert bodies(vhost) == [b"m"] and x.pending_count == 0


def test_messages_come_out_in_due_order_with_one_timer(vhost, session, tick, broker):
    x = setup(vhost)
    rng = random.Random(7)
    delays = [rng.randint(1, 1000) for _ in range(2000)]
    for i, delay in enumerate(delays):
        session.publish("k", f"{delay:05d}-{i:05d}", exchange="d", headers={"x-delay": delay})
    assert x.pending_count == 2000 and len(broker.timers) == 1
    for _ in range(110):
        tick(0.01)
    out = bodies(vhost)
    assert len(out) == 2000 and out == sorted(out, key=lambda b: (int(b[:5]), int(b[6:])))


@pytest.mark.parametrize("headers", [None, {"x-delay": 0}, {"x-delay": -5}, {"x-delay": "soon"}, {"x-delay": 2**32}])
def test_no_positive_in_range_delay_routes_immediately(vhost, session, headers):
    setup(vhost)
    result = session.publish("k", "m", exchange="d", headers=headers)
    assert not result.delayed and bodies(vhost) == [b"m"]


def test_the_largest_delay_is_held(vhost, session):
    x = setup(vhost)
    session.publish("k", "m", exchange="d", headers={"x-delay": 2**32 - 1})
    assert x.pending_count == 1


def test_routing_follows_the_delayed_type(vhost, session, tick):
    vhost.declare_exchange("d", "x-delayed-message", arguments={"x-delayed-type": "topic"})
    vhost.declare_queue("q")
    vhost.bind_queue("q", "d", "a.*")
    session.publish("a.b", "yes", exchange="d", headers={"x-delay": 10})
    session.publish("b.b", "no", exchange="d", headers={"x-delay": 10})
    tick(0.01)
    assert bodies(vhost) == [b"yes"]


def test_deleting_the_exchange_drops_pending_messages(vhost, session, tick, broker):
    setup(vhost)
    session.publish("k", "m", exchange="d", headers={"x-delay": 10})
    vhost.delete_exchange("d")
    assert broker.timers.next_deadline() is None
    tick(1)
    assert bodies(vhost) == []


@pytest.mark.parametrize("arguments", [{}, {"x-delayed-type": "nope"}, {"x-delayed-type": "x-delayed-message"}])
def test_declare_requires_an_existing_delayed_type(vhost, arguments):
    with pytest.raises(PreconditionFailed) as e:
        vhost.declare_exchange("d", "x-delayed-message", arguments=arguments)
    assert e.value.text == "Invalid argument, 'x-delayed-type' must be an existing exchange type"
    assert "d" not in vhost.exchanges


def test_dead_lettering_into_a_delayed_exchange_honours_x_delay(vhost, session, tick):
    setup(vhost)
    vhost.declare_queue("work", arguments={"x-dead-letter-exchange": "d", "x-dead-letter-routing-key": "k"})
    session.publish("work", "retry-me", headers={"x-delay": 200})
    session.channel.reject(session.channel.get("work")[0], requeue=False)
    assert bodies(vhost) == [] and vhost.exchanges["d"].pending_count == 1
    tick(0.2)
    (entry,) = vhost.queues["q"].ready
    assert entry.message.properties.headers["x-death"][0]["reason"] == "rejected"


@pytest.mark.parametrize(("value", "delay"), [
    (Int8(5), 5), (UInt8(5), 5), (Int16(5), 5), (UInt16(5), 5), (5, 5), (UInt32(5), 5), (Long(5), 5),
    ("5", 5), ("+5", 5), ("-5", -5), (5.9, 5), (Float32(0.5), 0), (-1.5, -1),
    (Timestamp(5), None), (True, None), (b"5", None), (None, None), ([5], None), (Decimal("5"), None),
    (" 5", None), ("5.0", None), ("", None), (float("inf"), None),
])
def test_x_delay_values_are_read_as_the_plugin_reads_them(value, delay):
    """rabbitmq-delayed-message-exchange 6686798, src/rabbit_delayed_message_utils.erl get_delay_header:
    INTEGER_ARG_TYPES as they are, STRING_ARG_TYPES through binary_to_integer, FLOAT_ARG_TYPES truncated;
    every other type is no delay."""
    assert plugin_delay(value) == delay
