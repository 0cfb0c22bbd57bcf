"""Dead-lettering through the vhost: rejected, expired, maxlen and delivery_limit, cycles dropped."""


def ready_bodies(vhost, name):
    return [e.message.body for e in vhost.queues[name].ready]


def setup_dlx(vhost, **extra):
    vhost.declare_exchange("dlx", "fanout")
    vhost.declare_queue("dlq")
    vhost.bind_queue("dlq", "dlx")
    vhost.declare_queue("q", arguments={"x-dead-letter-exchange": "dlx", **extra})


def test_reject_without_requeue_dead_letters_with_reason_rejected(vhost, session):
    setup_dlx(vhost)
    session.publish("q", "m")
    tag = session.channel.get("q")[0]
    session.channel.reject(tag, requeue=False)
    (entry,) = vhost.queues["dlq"].ready
    headers = entry.message.properties.headers
    assert headers["x-death"][0]["reason"] == "rejected" and headers["x-death"][0]["queue"] == "q"
    assert (entry.message.exchange, entry.message.routing_key) == ("dlx", "q")


def test_nack_multiple_dead_letters_each_message(vhost, session):
    setup_dlx(vhost)
    for i in range(3):
        session.publish("q", str(i))
    session.consume("q", "c")
    session.channel.nack(3, multiple=True, requeue=False)
    assert ready_bodies(vhost, "dlq") == [b"0", b"1", b"2"]
    assert vhost.queues["q"].unacked_count == 0


def test_without_dead_letter_exchange_rejected_messages_are_dropped(vhost, session):
    vhost.declare_queue("q")
    session.publish("q", "m")
    session.channel.reject(session.channel.get("q")[0], requeue=False)
    assert vhost.queues["q"].message_count == 0 and vhost.queues["q"].unacked_count == 0


def test_missing_dead_letter_exchange_drops_silently(vhost, session):
    vhost.declare_queue("q", arguments={"x-dead-letter-exchange": "nowhere"})
    session.publish("q", "m")
    session.channel.reject(session.channel.get("q")[0], requeue=False)
    assert vhost.queues["q"].unacked_count == 0


def test_dead_letter_routing_key_is_used(vhost, session):
    vhost.declare_queue("dead")
    vhost.declare_queue("q", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"})
    session.publish("q", "m")
    session.channel.reject(session.channel.get("q")[0], requeue=False)
    assert ready_bodies(vhost, "dead") == [b"m"]


def test_rejection_loop_between_two_queues_is_allowed_and_counts(vhost, session):
    vhost.declare_queue("a", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "b"})
    vhost.declare_queue("b", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "a"})
    session.publish("a", "m")
    for _ in range(2):
        for name in ("a", "b"):
            session.channel.reject(session.channel.get(name)[0], requeue=False)
    tag, _, message, _ = session.channel.get("a")
    assert [(d["queue"], d["count"]) for d in message.properties.headers["x-death"]] == [("b", 2), ("a", 2)]


def test_expiry_cycle_back_to_the_same_queue_is_dropped(vhost, session, tick):
    vhost.declare_queue("q", arguments={"x-dead-letter-exchange": "", "x-message-ttl": 10})
    session.publish("q", "m")
    tick(0.011)
    assert vhost.queues["q"].message_count == 0


def test_dead_lettered_copy_is_delivered_to_a_consumer_of_the_dlq(vhost, session, make_session):
    setup_dlx(vhost)
    other = make_session("c2")
    other.consume("dlq", "d", no_ack=True)
    session.publish("q", "m")
    session.channel.reject(session.channel.get("q")[0], requeue=False)
    assert other.target.bodies == [b"m"]
