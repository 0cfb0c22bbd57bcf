"""Message TTL (x-message-ttl, expiration), TTL 0, and queue expiry (x-expires), on a manual clock."""

from leveret.broker.queue import Queue


def dlq_setup(vhost, **arguments):
    vhost.declare_queue("dlq")
    vhost.declare_queue("q", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq", **arguments})


def reasons(vhost):
    return [e.message.properties.headers["x-death"][0]["reason"] for e in vhost.queues["dlq"].ready]


def test_queue_ttl_expires_messages_promptly_with_reason_expired(vhost, session, tick):
    dlq_setup(vhost, **{"x-message-ttl": 100})
    session.publish("q", "a")
    tick(0.05)
    session.publish("q", "b")
    tick(0.0499)
    assert vhost.queues["q"].message_count == 2
    tick(0.0002)
    assert [e.message.body for e in vhost.queues["dlq"].ready] == [b"a"]
    tick(0.05)
    assert reasons(vhost) == ["expired", "expired"] and vhost.queues["q"].message_count == 0


def test_queue_ttl_uses_one_timer_per_queue_not_per_message(vhost, session, broker):
    vhost.declare_queue("q", arguments={"x-message-ttl": 100})
    for i in range(100):
        session.publish("q", str(i))
    assert len(broker.timers) == 1


def test_per_message_expiration_takes_the_minimum_with_queue_ttl(vhost, session, tick):
    dlq_setup(vhost, **{"x-message-ttl": 1000})
    session.publish("q", "short", expiration="10")
    session.publish("q", "long", expiration="5000")
    tick(0.011)
    assert [e.message.body for e in vhost.queues["dlq"].ready] == [b"short"]
    tick(0.99)
    assert [e.message.body for e in vhost.queues["dlq"].ready] == [b"short", b"long"]
    assert vhost.queues["dlq"].ready[0].message.properties.headers["x-death"][0]["original-expiration"] == "10"


def test_per_message_expiration_waits_until_the_message_reaches_the_head(vhost, session, tick):
    dlq_setup(vhost)
    session.publish("q", "head")
    session.publish("q", "behind", expiration="10")
    tick(1)
    assert vhost.queues["q"].message_count == 2  # RabbitMQ only expires at the head
    session.channel.ack(session.channel.get("q")[0])
    assert session.channel.get("q") is None
    assert reasons(vhost) == ["expired"]


def test_ttl_zero_is_delivered_to_a_waiting_consumer_else_expired(vhost, session):
    dlq_setup(vhost, **{"x-message-ttl": 0})
    session.publish("q", "nobody")
    assert vhost.queues["q"].message_count == 0 and reasons(vhost) == ["expired"]
    session.consume("q", "c")
    session.publish("q", "taken")
    assert session.target.bodies == [b"taken"] and len(reasons(vhost)) == 1


def test_requeued_message_keeps_its_expiry(vhost, session, tick):
    dlq_setup(vhost, **{"x-message-ttl": 100})
    session.publish("q", "m")
    tag = session.channel.get("q")[0]
    tick(0.2)
    session.channel.reject(tag, requeue=True)
    assert vhost.queues["q"].message_count == 0 and reasons(vhost) == ["expired"]


def test_expired_heads_are_skipped_by_basic_get(vhost, session, clock):
    dlq_setup(vhost, **{"x-message-ttl": 10})
    session.publish("q", "old")
    clock.advance(1)  # no timer run: get itself must not return it
    assert session.channel.get("q") is None
    assert reasons(vhost) == ["expired"]


def test_unused_queue_is_deleted_after_x_expires(vhost, session, tick):
    vhost.declare_queue("q", arguments={"x-expires": 1000})
    tick(0.5)
    vhost.declare_queue("q", arguments={"x-expires": 1000})  # redeclare counts as use
    tick(0.5)
    vhost.declare_queue("q", passive=True)  # and so does a passive declare
    tick(0.9)
    assert "q" in vhost.queues
    session.publish("q", "m")  # publishing does not
    tick(0.11)
    assert "q" not in vhost.queues


def test_x_expires_waits_while_consumers_exist(vhost, session, tick):
    vhost.declare_queue("q", arguments={"x-expires": 100})
    session.consume("q", "c")
    tick(1)
    assert "q" in vhost.queues
    session.channel.cancel("c")
    tick(0.099)
    assert "q" in vhost.queues
    tick(0.002)
    assert "q" not in vhost.queues


def test_basic_get_counts_as_use_for_x_expires(vhost, session, tick):
    vhost.declare_queue("q", arguments={"x-expires": 100})
    tick(0.08)
    session.channel.get("q")
    tick(0.08)
    assert "q" in vhost.queues
    tick(0.03)
    assert "q" not in vhost.queues


def test_a_queue_without_host_ignores_ttls():
    q = Queue("q", arguments={"x-message-ttl": 0})
    from .conftest import make_message

    q.enqueue(make_message("m"))
    assert q.message_count == 1
