"""x-max-length / x-max-length-bytes with each x-overflow mode, and priorities (x-max-priority)."""


def bodies(vhost, name):
    return [e.message.body for e in vhost.queues[name].ready]


def test_drop_head_dead_letters_the_oldest_with_reason_maxlen(vhost, session):
    vhost.declare_queue("dlq")
    vhost.declare_queue("q", arguments={"x-max-length": 2, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"})
    for b in "abc":
        result = session.publish("q", b)
        assert result.routed and not result.nack
    assert bodies(vhost, "q") == [b"b", b"c"]
    (dead,) = vhost.queues["dlq"].ready
    assert dead.message.body == b"a" and dead.message.properties.headers["x-death"][0]["reason"] == "maxlen"


def test_max_length_bytes_counts_body_bytes_of_ready_messages(vhost, session):
    vhost.declare_queue("q", arguments={"x-max-length-bytes": 10})
    session.publish("q", "12345")
    session.publish("q", "67890")
    session.publish("q", "x")
    assert bodies(vhost, "q") == [b"67890", b"x"] and vhost.queues["q"].ready_bytes == 6


def test_unacked_messages_do_not_count_towards_max_length(vhost, session):
    vhost.declare_queue("q", arguments={"x-max-length": 1})
    session.publish("q", "a")
    session.channel.get("q")
    session.publish("q", "b")
    assert bodies(vhost, "q") == [b"b"]


def test_reject_publish_refuses_new_messages_and_reports_nack(vhost, session):
    vhost.declare_queue("q", arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    assert not session.publish("q", "a").nack
    result = session.publish("q", "b")
    assert result.routed and result.nack and result.rejected == 1 and result.queues == []
    assert bodies(vhost, "q") == [b"a"]


def test_one_rejecting_queue_among_accepting_ones_still_nacks(vhost, session):
    vhost.declare_queue("full", arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
    vhost.declare_queue("open")
    for name in ("full", "open"):
        vhost.bind_queue(name, "amq.fanout")
    result = session.publish("", "x", exchange="amq.fanout")
    assert result.nack and [q.name for q in result.queues] == ["open"]


def test_reject_publish_dlx_dead_letters_the_refused_message(vhost, session):
    vhost.declare_queue("dlq")
    vhost.declare_queue(
        "q",
        arguments={"x-max-length": 1, "x-overflow": "reject-publish-dlx", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"},
    )
    session.publish("q", "a")
    assert session.publish("q", "b").nack
    assert bodies(vhost, "q") == [b"a"] and bodies(vhost, "dlq") == [b"b"]
    assert vhost.queues["dlq"].ready[0].message.properties.headers["x-death"][0]["reason"] == "maxlen"


def test_higher_priority_messages_are_delivered_first_and_capped_at_max(vhost, session):
    vhost.declare_queue("q", arguments={"x-max-priority": 5})
    session.publish("q", "low", priority=1)
    session.publish("q", "none")
    session.publish("q", "capped", priority=200)
    session.publish("q", "high", priority=5)
    session.publish("q", "mid", priority=3)
    got = [session.channel.get("q", no_ack=True)[2].body for _ in range(5)]
    assert got == [b"capped", b"high", b"mid", b"low", b"none"]


def test_requeued_message_returns_to_its_place_within_its_priority(vhost, session):
    vhost.declare_queue("q", arguments={"x-max-priority": 2})
    for body, prio in (("a", 2), ("b", 2), ("c", 0)):
        session.publish("q", body, priority=prio)
    tag = session.channel.get("q")[0]
    session.channel.reject(tag, requeue=True)
    assert bodies(vhost, "q") == [b"a", b"b", b"c"]


def test_priorities_are_ignored_without_x_max_priority(vhost, session):
    vhost.declare_queue("q")
    session.publish("q", "a", priority=1)
    session.publish("q", "b", priority=9)
    assert bodies(vhost, "q") == [b"a", b"b"]
