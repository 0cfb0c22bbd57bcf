"""End-to-end scenarios through pika's BlockingConnection, the most common Python AMQP client.

Every scenario runs against `amqp_url` (an in-process leveret, or the broker named by `--amqp-url`),
so the same file validates the tests against RabbitMQ and then holds leveret to them. Waits are
bounded loops over `process_data_events`, never sleeps.
"""

from __future__ import annotations

import select
import subprocess
import sys
import time

import pika
import pika.exceptions
import pytest

WAIT = 5.0


def pump(connections, until, timeout: float = WAIT) -> None:
    """Drive the I/O of `connections` until `until()` holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the broker")
        for connection in connections:
            connection.process_data_events(time_limit=0.02)


def consume_n(connection, channel, queue: str, n: int, **kwargs):
    """Consume until `n` deliveries arrived; returns (consumer tag, [(method, properties, body)])."""
    got: list = []
    tag = channel.basic_consume(queue, lambda _ch, m, p, b: got.append((m, p, b)), **kwargs)
    pump([connection], lambda: len(got) >= n)
    return tag, got


def ready_count(channel, queue: str) -> int:
    """Ready messages by passive declare. RabbitMQ answers this query ahead of queued work (it is a
    prioritised call in the queue process), so it is exact only after a confirm or a reply that
    came from the queue itself (basic.get, a delivery), never right after a bare publish or nack."""
    return channel.queue_declare(queue, passive=True).method.message_count


@pytest.fixture
def conn(amqp_url, connect):
    return connect(amqp_url)


@pytest.fixture
def ch(conn):
    return conn.channel()


def test_work_queue_delivers_each_message_to_exactly_one_of_three_consumers(amqp_url, connect, unique, cleanup):
    queue = cleanup.queue(amqp_url, unique("work"))
    setup = connect(amqp_url).channel()
    setup.queue_declare(queue)
    received: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    workers = []
    for index in range(3):
        connection = connect(amqp_url)
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1)

        def on_message(chan, method, _props, body, index=index):
            received[index].append(body)
            chan.basic_ack(method.delivery_tag)

        channel.basic_consume(queue, on_message)
        workers.append(connection)
    bodies = [f"job-{i}".encode() for i in range(30)]
    for body in bodies:
        setup.basic_publish("", queue, body)
    pump(workers, lambda: sum(map(len, received.values())) >= len(bodies))
    everything = received[0] + received[1] + received[2]
    assert sorted(everything) == sorted(bodies)
    assert len(set(everything)) == len(bodies)
    assert all(received[i] for i in range(3)), "every competing consumer gets a share"


def test_fanout_delivers_a_copy_to_each_of_three_bound_queues(amqp_url, conn, ch, unique, cleanup):
    exchange = cleanup.exchange(amqp_url, unique("fan"))
    ch.exchange_declare(exchange, "fanout")
    queues = []
    for i in range(3):
        queue = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(queue, exchange, routing_key=f"ignored-{i}")
        queues.append(queue)
    ch.basic_publish(exchange, "any-key", b"broadcast")
    for queue in queues:
        _tag, got = consume_n(conn, ch, queue, 1, auto_ack=True)
        assert [body for _m, _p, body in got] == [b"broadcast"]
        assert got[0][0].exchange == exchange and got[0][0].routing_key == "any-key"


def test_topic_star_matches_exactly_one_word_and_hash_matches_zero_or_more(amqp_url, ch, unique, cleanup):
    exchange = cleanup.exchange(amqp_url, unique("topic"))
    ch.exchange_declare(exchange, "topic")
    star = ch.queue_declare("", exclusive=True).method.queue
    hash_ = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(star, exchange, "stock.*.nyse")
    ch.queue_bind(hash_, exchange, "stock.#")
    for key in ["stock.ibm.nyse", "stock.nyse", "stock.a.b.nyse", "stock", "stocks.x", "stock.x.y"]:
        ch.basic_publish(exchange, key, key.encode())
    ch.confirm_delivery()  # a confirmed publish after the others: all earlier ones are routed by now
    ch.basic_publish(exchange, "sync", b"")

    def drain(queue):
        out = []
        while True:
            method, _props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append(body.decode())

    assert drain(star) == ["stock.ibm.nyse"]
    assert drain(hash_) == ["stock.ibm.nyse", "stock.nyse", "stock.a.b.nyse", "stock", "stock.x.y"]


def test_headers_exchange_routes_on_all_and_any(amqp_url, ch, unique, cleanup):
    exchange = cleanup.exchange(amqp_url, unique("hdr"))
    ch.exchange_declare(exchange, "headers")
    all_q = ch.queue_declare("", exclusive=True).method.queue
    any_q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(all_q, exchange, arguments={"x-match": "all", "format": "pdf", "type": "report"})
    ch.queue_bind(any_q, exchange, arguments={"x-match": "any", "format": "pdf", "type": "report"})
    ch.confirm_delivery()
    for name, headers in [
        ("both", {"format": "pdf", "type": "report"}),
        ("format-only", {"format": "pdf"}),
        ("neither", {"format": "zip", "type": "log"}),
        ("none", None),
        ("both-plus-extra", {"format": "pdf", "type": "report", "x": 1}),
    ]:
        ch.basic_publish(exchange, "", name.encode(), pika.BasicProperties(headers=headers))

    def drain(queue):
        out = []
        while (got := ch.basic_get(queue, auto_ack=True))[0] is not None:
            out.append(got[2].decode())
        return out

    assert drain(all_q) == ["both", "both-plus-extra"]
    assert drain(any_q) == ["both", "format-only", "both-plus-extra"]


def test_mandatory_unroutable_publish_under_confirms_is_returned(amqp_url, ch, unique, cleanup):
    exchange = cleanup.exchange(amqp_url, unique("nobind"))
    ch.exchange_declare(exchange, "direct")
    ch.confirm_delivery()
    # pika raises UnroutableError only when basic.return arrives before the basic.ack of that publish.
    with pytest.raises(pika.exceptions.UnroutableError) as info:
        ch.basic_publish(exchange, "nowhere", b"lost", mandatory=True)
    (returned,) = info.value.messages
    assert returned.method.reply_code == 312
    assert returned.method.reply_text == "NO_ROUTE"
    assert returned.method.exchange == exchange and returned.method.routing_key == "nowhere"
    assert returned.body == b"lost"
    # A non-mandatory unroutable publish is simply confirmed.
    ch.basic_publish(exchange, "nowhere", b"dropped")


def test_publisher_confirms_ack_each_routed_publish(ch):
    queue = ch.queue_declare("", exclusive=True).method.queue
    ch.confirm_delivery()
    for i in range(20):
        ch.basic_publish("", queue, str(i).encode())  # raises NackError if the broker nacks
    assert ready_count(ch, queue) == 20


def test_unacked_messages_are_redelivered_in_order_to_another_consumer_after_crash(amqp_url, connect, unique, cleanup):
    queue = cleanup.queue(amqp_url, unique("crash"))
    first = connect(amqp_url)
    ch1 = first.channel()
    ch1.queue_declare(queue)
    ch1.confirm_delivery()
    for i in range(5):
        ch1.basic_publish("", queue, f"m{i}".encode())
    _tag, got = consume_n(first, ch1, queue, 5)
    assert [b for _m, _p, b in got] == [f"m{i}".encode() for i in range(5)]
    assert not any(m.redelivered for m, _p, _b in got)

    # A second consumer is already waiting, with nothing to get: the first holds everything.
    second = connect(amqp_url)
    ch2 = second.channel()
    again: list = []
    ch2.basic_consume(queue, lambda _c, m, _p, b: again.append((m.redelivered, b)))
    first.close()  # the first consumer goes away holding five unacked deliveries
    pump([second], lambda: len(again) >= 5)
    assert again == [(True, f"m{i}".encode()) for i in range(5)]


CRASHING_CONSUMER = """
import sys, pika
connection = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
channel = connection.channel()
seen = 0
for method, properties, body in channel.consume(sys.argv[2], inactivity_timeout=10):
    seen += 1
    if seen == 3:
        print("holding", flush=True)
        sys.stdin.read()  # hold the deliveries unacked until killed
"""


def test_messages_held_by_a_killed_consumer_process_are_redelivered(amqp_url, connect, unique, cleanup):
    queue = cleanup.queue(amqp_url, unique("killed"))
    channel = connect(amqp_url).channel()
    channel.queue_declare(queue)
    channel.confirm_delivery()
    for i in range(3):
        channel.basic_publish("", queue, f"k{i}".encode())
    consumer = subprocess.Popen([sys.executable, "-c", CRASHING_CONSUMER, amqp_url, queue],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        # The child announces it holds all three; its stdout line is the synchronisation, bounded below.
        ready, _w, _x = select.select([consumer.stdout], [], [], 20)
        assert ready and consumer.stdout.readline() == b"holding\n"
    finally:
        consumer.kill()  # SIGKILL: no AMQP close, the broker only sees the socket drop
        consumer.wait(timeout=WAIT)
        consumer.stdin.close()
        consumer.stdout.close()
    connection = connect(amqp_url)
    again: list = []
    connection.channel().basic_consume(queue, lambda _c, m, _p, b: again.append((m.redelivered, b)))
    pump([connection], lambda: len(again) >= 3)
    assert again == [(True, b"k0"), (True, b"k1"), (True, b"k2")]


def test_basic_get_reports_remaining_count_then_get_empty(ch):
    queue = ch.queue_declare("", exclusive=True).method.queue
    ch.confirm_delivery()
    for body in (b"a", b"b", b"c"):
        ch.basic_publish("", queue, body, pika.BasicProperties(content_type="text/plain", priority=3))
    method, props, body = ch.basic_get(queue)
    assert (body, method.message_count, method.redelivered) == (b"a", 2, False)
    assert (props.content_type, props.priority) == ("text/plain", 3)
    ch.basic_ack(method.delivery_tag)
    assert ch.basic_get(queue, auto_ack=True)[0].message_count == 1
    assert ch.basic_get(queue, auto_ack=True)[2] == b"c"
    assert ch.basic_get(queue) == (None, None, None)


@pytest.mark.parametrize("verb", ["nack", "reject"])
def test_negative_ack_with_requeue_redelivers_and_without_requeue_drops(ch, verb):
    queue = ch.queue_declare("", exclusive=True).method.queue
    ch.confirm_delivery()
    ch.basic_publish("", queue, b"x")
    refuse = ch.basic_nack if verb == "nack" else ch.basic_reject
    method, _p, _b = ch.basic_get(queue)
    refuse(method.delivery_tag, requeue=True)
    method, _p, body = ch.basic_get(queue)
    assert body == b"x" and method.redelivered is True
    refuse(method.delivery_tag, requeue=False)
    assert ch.basic_get(queue) == (None, None, None)
    assert ready_count(ch, queue) == 0


def test_nack_multiple_requeues_every_earlier_delivery(ch):
    queue = ch.queue_declare("", exclusive=True).method.queue
    ch.confirm_delivery()
    for body in (b"1", b"2", b"3"):
        ch.basic_publish("", queue, body)
    tags = [ch.basic_get(queue)[0].delivery_tag for _ in range(3)]
    ch.basic_nack(tags[1], multiple=True, requeue=True)
    ch.basic_ack(tags[2])
    again = [ch.basic_get(queue, auto_ack=True) for _ in range(2)]
    assert [(b, m.redelivered) for m, _p, b in again] == [(b"1", True), (b"2", True)]


def test_qos_prefetch_limits_unacked_deliveries(conn, ch):
    queue = ch.queue_declare("", exclusive=True).method.queue
    ch.confirm_delivery()  # counts below are exact only once every publish is confirmed
    for i in range(5):
        ch.basic_publish("", queue, str(i).encode())
    ch.basic_qos(prefetch_count=2)
    _tag, got = consume_n(conn, ch, queue, 2)
    # Two deliveries out and unacked: the other three must still be ready in the queue.
    assert ready_count(ch, queue) == 3
    assert len(got) == 2
    ch.basic_ack(got[1][0].delivery_tag, multiple=True)
    pump([conn], lambda: len(got) >= 4)
    assert ready_count(ch, queue) == 1
    assert [b for _m, _p, b in got] == [b"0", b"1", b"2", b"3"]


def test_rpc_over_direct_reply_to(amqp_url, connect, unique, cleanup):
    server_conn = connect(amqp_url)
    server = server_conn.channel()
    requests = cleanup.queue(amqp_url, unique("rpc"))
    server.queue_declare(requests)

    def serve(chan, method, props, body):
        assert props.reply_to.startswith("amq.rabbitmq.reply-to.")
        chan.basic_publish("", props.reply_to, body.upper(),
                           pika.BasicProperties(correlation_id=props.correlation_id))
        chan.basic_ack(method.delivery_tag)

    server.basic_consume(requests, serve)
    client_conn = connect(amqp_url)
    client = client_conn.channel()
    replies: list = []
    client.basic_consume("amq.rabbitmq.reply-to", lambda _c, m, p, b: replies.append((p, b)), auto_ack=True)
    client.basic_publish("", requests, b"ping", pika.BasicProperties(reply_to="amq.rabbitmq.reply-to",
                                                                     correlation_id="42"))
    pump([server_conn, client_conn], lambda: replies)
    props, body = replies[0]
    assert body == b"PING" and props.correlation_id == "42"


def test_transaction_holds_publishes_until_commit_and_discards_on_rollback(conn, ch):
    queue = ch.queue_declare("", exclusive=True).method.queue
    tx = conn.channel()
    tx.tx_select()
    tx.basic_publish("", queue, b"held")
    assert ready_count(ch, queue) == 0
    tx.tx_commit()
    assert ready_count(ch, queue) == 1
    tx.basic_publish("", queue, b"discarded")
    tx.tx_rollback()
    assert ready_count(ch, queue) == 1
    assert ch.basic_get(queue, auto_ack=True)[2] == b"held"


def test_transactional_ack_takes_effect_on_commit_only(ch):
    queue = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", queue, b"m")  # basic.get below queues behind this publish in the queue process
    ch.tx_select()
    method, _p, _b = ch.basic_get(queue)
    ch.basic_ack(method.delivery_tag)
    ch.tx_rollback()
    ch.basic_recover(requeue=True)  # the rolled-back ack left the delivery unacked
    method, _p, body = ch.basic_get(queue)
    assert body == b"m" and method.redelivered
    ch.basic_ack(method.delivery_tag)
    ch.tx_commit()
    assert ready_count(ch, queue) == 0


def test_exchange_to_exchange_binding_forwards_matching_messages(amqp_url, ch, unique, cleanup):
    source = cleanup.exchange(amqp_url, unique("src"))
    destination = cleanup.exchange(amqp_url, unique("dst"))
    ch.exchange_declare(source, "topic")
    ch.exchange_declare(destination, "direct")
    ch.exchange_bind(destination, source, routing_key="audit.*")
    queue = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(queue, destination, "audit.login")
    ch.confirm_delivery()
    ch.basic_publish(source, "audit.login", b"yes")
    ch.basic_publish(source, "audit.logout", b"no: destination has no match")
    ch.basic_publish(source, "other", b"no: binding does not match")
    ch.exchange_unbind(destination, source, routing_key="audit.*")
    ch.basic_publish(source, "audit.login", b"no: unbound")
    assert ch.basic_get(queue, auto_ack=True)[2] == b"yes"
    assert ch.basic_get(queue) == (None, None, None)


def test_alternate_exchange_receives_unroutable_messages(amqp_url, ch, unique, cleanup):
    alternate = cleanup.exchange(amqp_url, unique("ae"))
    main = cleanup.exchange(amqp_url, unique("main"))
    ch.exchange_declare(alternate, "fanout")
    ch.exchange_declare(main, "direct", arguments={"alternate-exchange": alternate})
    routed = ch.queue_declare("", exclusive=True).method.queue
    unrouted = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(routed, main, "known")
    ch.queue_bind(unrouted, alternate)
    ch.confirm_delivery()
    ch.basic_publish(main, "known", b"a")
    # Mandatory is satisfied by the alternate exchange: no basic.return.
    ch.basic_publish(main, "unknown", b"b", mandatory=True)
    assert ch.basic_get(routed, auto_ack=True)[2] == b"a"
    method, _p, body = ch.basic_get(unrouted, auto_ack=True)
    assert body == b"b" and method.exchange == main and method.routing_key == "unknown"
    assert ready_count(ch, routed) == 0


def test_cc_and_bcc_headers_add_routing_keys_and_bcc_is_removed(amqp_url, ch, unique, cleanup):
    exchange = cleanup.exchange(amqp_url, unique("ssd"))
    ch.exchange_declare(exchange, "direct")
    queues = {}
    for key in ("to", "cc", "bcc"):
        queues[key] = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(queues[key], exchange, key)
    ch.confirm_delivery()
    ch.basic_publish(exchange, "to", b"memo",
                     pika.BasicProperties(headers={"CC": ["cc"], "BCC": ["bcc"], "keep": "me"}))
    for key, queue in queues.items():
        method, props, body = ch.basic_get(queue, auto_ack=True)
        assert body == b"memo", key
        assert method.routing_key == "to"
        assert props.headers == {"CC": ["cc"], "keep": "me"}


def test_consumer_priorities_prefer_the_higher_priority_consumer_while_it_has_credit(conn, ch):
    queue = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_qos(prefetch_count=1)  # per consumer: applies to the consumers created below
    got: dict[str, list[bytes]] = {"high": [], "low": []}
    ch.basic_consume(queue, lambda _c, _m, _p, b: got["low"].append(b), arguments={"x-priority": 0})
    ch.basic_consume(queue, lambda _c, _m, _p, b: got["high"].append(b), arguments={"x-priority": 10})
    ch.basic_publish("", queue, b"first")
    pump([conn], lambda: got["high"] or got["low"])
    # The high-priority consumer now holds its one unacked message: the rest overflow to the low one.
    ch.basic_publish("", queue, b"second")
    pump([conn], lambda: len(got["high"]) + len(got["low"]) >= 2)
    assert got == {"high": [b"first"], "low": [b"second"]}


def test_exclusive_consumer_refuses_a_second_consumer_with_403(amqp_url, conn, ch, unique):
    queue = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_consume(queue, lambda *a: None, exclusive=True)
    other = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        other.basic_consume(queue, lambda *a: None)
    assert info.value.reply_code == 403
    assert info.value.reply_text == f"ACCESS_REFUSED - queue '{queue}' in vhost '/' in exclusive use"
    assert conn.is_open and ch.is_open


def test_exclusive_queue_is_locked_from_another_connection_with_405(amqp_url, connect, ch):
    queue = ch.queue_declare("", exclusive=True).method.queue
    other = connect(amqp_url)
    for attempt in (
        lambda c: c.queue_declare(queue, passive=True),
        lambda c: c.basic_consume(queue, lambda *a: None),
        lambda c: c.queue_delete(queue),
    ):
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            attempt(other.channel())
        assert info.value.reply_code == 405
        assert info.value.reply_text.startswith(
            f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{queue}' in vhost '/'")
    assert other.is_open


def test_queue_delete_cancels_its_consumers_with_a_cancel_notification(conn, ch):
    queue = ch.queue_declare("", exclusive=True).method.queue
    cancelled: list = []
    tag = ch.basic_consume(queue, lambda *a: None)
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    conn.channel().queue_delete(queue)
    pump([conn], lambda: cancelled)
    assert cancelled == [tag]
    assert ch.is_open


def test_passive_declare_of_missing_queue_closes_only_the_channel_with_404(conn, unique):
    doomed = conn.channel()
    name = unique("missing")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        doomed.queue_declare(name, passive=True)
    assert (info.value.reply_code, info.value.reply_text) == (404, f"NOT_FOUND - no queue '{name}' in vhost '/'")
    assert doomed.is_closed and conn.is_open
    assert conn.channel().queue_declare("", exclusive=True).method.queue


@pytest.mark.parametrize("kind", ["exchange", "queue"])
def test_declaring_a_reserved_amq_name_is_refused_with_403(conn, unique, kind):
    name = "amq." + unique(kind)
    channel = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        if kind == "exchange":
            channel.exchange_declare(name, "direct")
        else:
            channel.queue_declare(name)
    assert info.value.reply_code == 403
    assert info.value.reply_text == f"ACCESS_REFUSED - {kind} name '{name}' contains reserved prefix 'amq.*'"
    assert conn.is_open


def test_unknown_vhost_is_refused_with_530(amqp_url, connect):
    url = amqp_url.rsplit("/", 1)[0] + "/no-such-vhost"
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as info:
        connect(url)
    assert "(530) 'NOT_ALLOWED - vhost no-such-vhost not found'" in str(info.value)


def test_wrong_password_is_refused_with_403_access_refused(amqp_url, connect):
    url = amqp_url.replace("guest:guest@", "guest:wrong@")
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as info:
        connect(url)
    assert ("(403) 'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
            "For details see the broker logfile.'") in str(info.value)
