"""Differential tests of permission enforcement on every AMQP operation (issue 11), against RabbitMQ 3.10.

A limited user (tests/diff/access_users.py) tries operations, one channel each; what is recorded is the
reply, or the channel.close that refused it (code, text, class and method ids). The admin (guest) sets up
what the user may not create and afterwards looks for traces a refusal must not leave.
"""

from __future__ import annotations

import urllib.parse
from contextlib import contextmanager

import pika
from pika.spec import Basic, Exchange, Queue

from access_users import access_differential  # noqa: F401 (a fixture)
from differential import close_of
from wireclient import WireClient

OK = "^diff\\.ok"  # names("ok...") match, names("no...") do not


def attempts(url: str, *steps) -> list:
    """Each step on its own channel: the reply's name, or the close that refused it. A basic.publish is
    followed by basic.qos, whose reply shows whether the publish closed the channel."""
    out = []
    with WireClient(url) as client:
        client.open()
        for number, step in enumerate(steps, start=1):
            client.channel(number)
            if isinstance(step, Basic.Publish):
                client.send(number, step, body=b"m")
                reply = client.call(number, Basic.Qos(prefetch_count=1))
            elif isinstance(step, Basic.Get):
                reply = client.call(number, step, Basic.GetOk, Basic.GetEmpty)  # (the queues used are empty)
            else:
                reply = client.call(number, step)
            out.append(close_of(reply) or type(reply).NAME)
    return out


@contextmanager
def admin(url: str, queues=(), exchanges=()):
    """An admin channel with `queues` and `exchanges` ((name, type)) declared; all deleted afterwards."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    for name, kind in exchanges:
        channel.exchange_declare(name, kind)
    for name in queues:
        channel.queue_declare(name)
    try:
        yield channel
    finally:
        channel = connection.channel()
        for name in queues:
            channel.queue_delete(name)
        for name, _ in exchanges:
            channel.exchange_delete(name)
        connection.close()


def exists(channel_source, kind: str, name: str) -> bool:
    """Whether a queue or exchange exists (a passive declare on a fresh channel of the admin connection)."""
    channel = channel_source.connection.channel()
    try:
        if kind == "queue":
            channel.queue_declare(name, passive=True)
        else:
            channel.exchange_declare(name, passive=True)
    except pika.exceptions.ChannelClosedByBroker:
        return False
    channel.close()
    return True


def username(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).username)


def test_queue_declare_needs_configure_passive_never_checked_and_a_refusal_leaves_nothing(access_differential):
    def scenario(url, admin_url, names):
        ok, no, taken = names("ok.q"), names("no.q"), names("no.taken")
        with admin(admin_url, queues=[taken]) as ch:
            result = attempts(
                url,
                Queue.Declare(queue=ok, auto_delete=True),
                Queue.Declare(queue=no, auto_delete=True),
                Queue.Declare(queue="", exclusive=True),  # a server-named queue is checked by its drawn name
                Queue.Declare(queue=taken, passive=True),
                Queue.Declare(queue=taken),  # redeclaring an existing queue needs configure too
                Queue.Declare(queue=no, auto_delete=True, arguments={"x-max-length": "bad"}),  # 403 first
                Queue.Declare(queue="amq.no", auto_delete=True),  # the reserved prefix comes first
            )
            return result, exists(ch, "queue", no)

    result, left = access_differential((OK, OK, OK), scenario)
    assert result[0] == "Queue.DeclareOk" and result[3] == "Queue.DeclareOk"
    assert result[1][1:3] == (403, "ACCESS_REFUSED - access to queue '<no.q>' in vhost '/' refused for user "
                                   f"'{result[1][2].split('user ')[1][1:-1]}'")
    assert "<amq.gen>" in result[2][2]
    assert not left


def test_server_named_queues_are_granted_by_amq_gen_patterns(access_differential):
    def scenario(url, _admin_url, _names):
        return attempts(url, Queue.Declare(queue="", exclusive=True))

    assert access_differential(("^amq\\.gen-", "", ""), scenario) == ["Queue.DeclareOk"]


def test_patterns_are_searched_unanchored_and_empty_grants_nothing(access_differential):
    def scenario(url, _admin_url, names):
        return attempts(url, Queue.Declare(queue=names("x.ok.y"), auto_delete=True),
                        Queue.Declare(queue=names("x.no.y"), auto_delete=True))

    assert access_differential(("ok", "", ""), scenario)[0] == "Queue.DeclareOk"


def test_dead_letter_exchange_needs_read_on_the_queue_and_write_on_the_exchange(access_differential):
    def scenario(url, admin_url, names):
        ok_x, no_x = names("ok.x"), names("no.x")
        with admin(admin_url, exchanges=[(ok_x, "fanout"), (no_x, "fanout")]) as ch:
            q1, q2, q3 = names("ok.q1"), names("ok.q2"), names("ok.q3")
            result = attempts(
                url,
                Queue.Declare(queue=q1, auto_delete=True, arguments={"x-dead-letter-exchange": ok_x}),
                Queue.Declare(queue=q2, auto_delete=True, arguments={"x-dead-letter-exchange": no_x}),
                Queue.Declare(queue=q3, auto_delete=True, arguments={"x-dead-letter-exchange": ""}),
                Queue.Declare(queue=q3, auto_delete=True, arguments={"x-dead-letter-exchange": 5}),
            )
            return result, exists(ch, "queue", q2), exists(ch, "queue", q3)

    result = access_differential((OK, OK, OK), scenario)
    assert result[0][0] == "Queue.DeclareOk" and result[0][1][1] == 403
    assert "'amq.default'" in result[0][2][2] and result[0][3][1] == 406
    assert result[1:] == (False, False)


def test_dead_letter_exchange_without_read_on_the_queue(access_differential):
    def scenario(url, _admin_url, names):
        return attempts(url, Queue.Declare(queue=names("ok.q"), auto_delete=True,
                                           arguments={"x-dead-letter-exchange": "amq.fanout"}),
                        Queue.Declare(queue=names("ok.q2"), auto_delete=True))

    result = access_differential((OK, ".*", ""), scenario)
    assert result[0][1] == 403 and result[1] == "Queue.DeclareOk"


def test_exchange_declare_and_alternate_exchange(access_differential):
    def scenario(url, admin_url, names):
        no_x = names("no.x")
        with admin(admin_url, exchanges=[(no_x, "fanout")]) as ch:
            result = attempts(
                url,
                Exchange.Declare(exchange=names("ok.x"), type="direct", auto_delete=True),
                Exchange.Declare(exchange=names("no.y"), type="direct", auto_delete=True),
                Exchange.Declare(exchange=no_x, type="fanout", passive=True),
                Exchange.Declare(exchange=no_x, type="fanout"),
                Exchange.Declare(exchange="", type="direct"),
                Exchange.Declare(exchange="amq.no", type="direct"),
                Exchange.Declare(exchange=names("ok.ae1"), type="direct", auto_delete=True,
                                 arguments={"alternate-exchange": no_x}),
                Exchange.Declare(exchange=names("ok.ae2"), type="direct", auto_delete=True,
                                 arguments={"alternate-exchange": names("ok.any")}),
            )
            return result, exists(ch, "exchange", names("ok.ae1"))

    result, left = access_differential((OK, OK, OK), scenario)
    assert result[0] == result[2] == result[7] == "Exchange.DeclareOk"
    assert result[4][2] == "ACCESS_REFUSED - operation not permitted on the default exchange"
    assert not left
    with_read_only = access_differential((OK, OK, ""), lambda url, _a, names: attempts(
        url, Exchange.Declare(exchange=names("ok.ae"), type="direct", auto_delete=True,
                              arguments={"alternate-exchange": "amq.direct"})))
    assert with_read_only[0][1] == 403


def test_deletes_need_configure(access_differential):
    def scenario(url, admin_url, names):
        no_q, no_x = names("no.q"), names("no.x")
        with admin(admin_url, queues=[no_q], exchanges=[(no_x, "direct")]) as ch:
            result = attempts(
                url,
                Queue.Delete(queue=no_q),
                Queue.Delete(queue=names("no.missing")),
                Exchange.Delete(exchange=no_x),
                Exchange.Delete(exchange=names("no.missing")),
                Exchange.Delete(exchange="amq.direct"),
                Exchange.Delete(exchange=""),
                Queue.Delete(queue=names("ok.missing")),
                Exchange.Delete(exchange=names("ok.missing")),
            )
            return result, exists(ch, "queue", no_q), exists(ch, "exchange", no_x)

    result = access_differential((OK, ".*", ".*"), scenario)
    assert [r if isinstance(r, str) else r[1] for r in result[0]] == [403, 403, 403, 403, 403, 403,
                                                                       "Queue.DeleteOk", "Exchange.DeleteOk"]
    assert result[1:] == (True, True)


def test_bind_and_unbind_check_write_on_the_destination_then_read_on_the_source(access_differential):
    def scenario(url, admin_url, names):
        ok_q, no_q, ok_x, no_x = names("ok.q"), names("no.q"), names("ok.x"), names("no.x")
        with admin(admin_url, queues=[ok_q, no_q], exchanges=[(ok_x, "direct"), (no_x, "direct")]):
            return attempts(
                url,
                Queue.Bind(queue=ok_q, exchange=ok_x, routing_key="k"),
                Queue.Bind(queue=no_q, exchange=no_x, routing_key="k"),  # the destination is named
                Queue.Bind(queue=ok_q, exchange=no_x, routing_key="k"),
                Queue.Bind(queue=ok_q, exchange="", routing_key="k"),
                Queue.Bind(queue=names("no.missing"), exchange=ok_x, routing_key="k"),
                Queue.Bind(queue=ok_q, exchange=names("no.missing"), routing_key="k"),
                Queue.Unbind(queue=no_q, exchange=ok_x, routing_key="k"),
                Queue.Unbind(queue=ok_q, exchange=no_x, routing_key="k"),
                Queue.Unbind(queue=ok_q, exchange=ok_x, routing_key="k"),
                Exchange.Bind(destination=ok_x, source=no_x, routing_key="k"),
                Exchange.Bind(destination=no_x, source=ok_x, routing_key="k"),
                Exchange.Bind(destination="", source=ok_x, routing_key="k"),
                Exchange.Unbind(destination=ok_x, source=no_x, routing_key="k"),
            )

    result = access_differential((OK, OK, OK), scenario)
    assert result[0] == "Queue.BindOk" and result[8] == "Queue.UnbindOk"
    assert "queue '<no.q>'" in result[1][2] and "exchange '<no.x>'" in result[2][2]


def test_publish_needs_write_on_the_exchange_checked_before_it_is_looked_up(access_differential):
    def scenario(url, admin_url, names):
        ok_q, no_x = names("ok.q"), names("no.x")
        with admin(admin_url, queues=[ok_q], exchanges=[(no_x, "fanout")]) as ch:
            ch.queue_bind(ok_q, no_x)
            result = attempts(
                url,
                Basic.Publish(exchange="", routing_key=ok_q),
                Basic.Publish(exchange=no_x, routing_key=""),
                Basic.Publish(exchange=names("no.missing"), routing_key=""),
                Basic.Publish(exchange=names("ok.missing"), routing_key=""),
                Basic.Publish(exchange="amq.direct", routing_key=ok_q),
            )
            got = ch.basic_get(ok_q, auto_ack=True)
            return result, got[2] is not None

    result, routed = access_differential((OK, OK, OK), scenario)
    assert result[0][2].startswith("ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/'")
    assert result[2][1] == 403 and result[3][1] == 404
    assert not routed  # the refused publish to <no.x> routed nothing


def test_the_default_exchange_is_granted_as_amq_default(access_differential):
    def scenario(url, admin_url, names):
        ok_q = names("ok.q")
        with admin(admin_url, queues=[ok_q]) as ch:
            result = attempts(url, Basic.Publish(exchange="", routing_key=ok_q))
            return result, ch.basic_get(ok_q, auto_ack=True)[2]

    assert access_differential(("", "^amq\\.default$", ""), scenario) == (["Basic.QosOk"], b"m")


def test_consume_get_and_purge_need_read(access_differential):
    def scenario(url, admin_url, names):
        ok_q, no_q = names("ok.q"), names("no.q")
        with admin(admin_url, queues=[ok_q, no_q]):
            return attempts(
                url,
                Basic.Consume(queue=ok_q, consumer_tag="c1"),
                Basic.Consume(queue=no_q, consumer_tag="c2"),
                Basic.Get(queue=no_q),
                Basic.Get(queue=names("no.missing")),
                Queue.Purge(queue=no_q),
                Queue.Purge(queue=ok_q),
                Basic.Cancel(consumer_tag="never-consumed"),
            )

    result = access_differential(("", "", OK), scenario)
    assert result[0] == "Basic.ConsumeOk" and result[5] == "Queue.PurgeOk"
    assert [r[1] for r in result[1:5]] == [403] * 4


def test_a_refusal_closes_the_channel_not_the_connection(access_differential):
    def scenario(url, _admin_url, names):
        return attempts(url, Queue.Declare(queue=names("no.q")), Queue.Declare(queue=names("ok.q"),
                                                                                 auto_delete=True))

    result = access_differential((OK, OK, OK), scenario)
    assert result[0][0] == "Channel.Close" and result[1] == "Queue.DeclareOk"


def test_topic_permissions_on_publish_and_bind(access_differential):
    def scenario(url, admin_url, names):
        user = username(url)
        ok_q, ok_t = names("ok.q"), names("ok.topic")
        with admin(admin_url, queues=[ok_q], exchanges=[(ok_t, "topic")]):
            return attempts(
                url,
                Basic.Publish(exchange="amq.topic", routing_key=f"{user}.a"),
                Basic.Publish(exchange="amq.topic", routing_key="someone.else"),
                Basic.Publish(exchange="amq.topic", routing_key="{client_id}.x"),
                Basic.Publish(exchange=ok_t, routing_key="anything"),  # no topic row for it
                Basic.Publish(exchange="amq.direct", routing_key="someone.else"),  # not a topic exchange
                Queue.Bind(queue=ok_q, exchange="amq.topic", routing_key="read.me"),
                Queue.Bind(queue=ok_q, exchange="amq.topic", routing_key="not.me"),
                Queue.Unbind(queue=ok_q, exchange="amq.topic", routing_key="not.me"),
            )

    topics = {"amq.topic": ("^{username}\\.|^\\{client_id\\}", "^read\\.")}
    result = access_differential((".*", ".*", ".*"), scenario, topics=topics)
    assert result[0] == result[2] == result[3] == result[4] == "Basic.QosOk"
    assert result[1][2].startswith("ACCESS_REFUSED - access to topic 'someone.else' in exchange 'amq.topic' "
                                   "in vhost '/' refused for user 'diff-user-")
    assert result[5] == "Queue.BindOk" and result[6][1] == 403 and result[7][1] == 403


def test_a_publish_in_a_transaction_is_checked_when_published_not_at_commit(access_differential):
    def scenario(url, admin_url, names):
        ok_q, no_x = names("ok.q"), names("no.x")
        with admin(admin_url, queues=[ok_q], exchanges=[(no_x, "fanout")]) as ch:
            ch.queue_bind(ok_q, no_x)
            with WireClient(url) as client:
                client.open()
                client.channel(1)
                client.call(1, pika.spec.Tx.Select())
                client.send(1, Basic.Publish(exchange="amq.fanout", routing_key=""), body=b"fine")
                client.send(1, Basic.Publish(exchange=no_x, routing_key=""), body=b"refused")
                reply = client.call(1, pika.spec.Tx.Commit())
            return close_of(reply) or type(reply).NAME, ch.basic_get(ok_q, auto_ack=True)[2]

    refused, routed = access_differential((".*", "^amq\\.fanout$", ".*"), scenario)
    assert refused[1] == 403 and "exchange '<no.x>'" in refused[2] and routed is None
