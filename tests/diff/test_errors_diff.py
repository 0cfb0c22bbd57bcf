"""Differential tests of error replies: same bad request, same close, byte for byte in its fields.

Each case runs on a fresh connection with channel 1 open and returns what the broker answered:
the channel.close or connection.close with reply code, reply text, class id and method id, then
whether the connection survived (a channel error must leave it usable; a connection error must
end with the socket closed after close-ok).
"""

from __future__ import annotations

import pika.spec
import pytest
from pika.spec import Basic, Channel, Connection, Exchange, Queue

from differential import close_of
from wireclient import WireClient


def outcome(method):
    """What a client observes of a reply: the close fields, or the name of the ok method."""
    return close_of(method) or type(method).NAME


def after_error(client: WireClient) -> str:
    """Whether the connection still works after an error: opens channel 2 and declares a queue."""
    try:
        reply = client.channel(2)
        if not isinstance(reply, Channel.OpenOk):
            return f"channel.open answered {outcome(reply)}"
        reply = client.call(2, Queue.Declare(queue="", exclusive=True))
        return "connection usable" if isinstance(reply, Queue.DeclareOk) else f"declare answered {outcome(reply)}"
    except (EOFError, OSError):
        return "socket closed"


def run_case(case):
    def scenario(url, names):
        with WireClient(url) as client:
            assert isinstance(client.open().method, Connection.OpenOk)
            client.channel(1)
            observed = case(client, names, url)
            return observed, after_error(client)

    return scenario


def declare_exclusive(client, channel=1):
    return client.call(channel, Queue.Declare(queue="", exclusive=True)).queue


# --- channel errors ---------------------------------------------------------------------------

def passive_queue(c, n, _url):
    return outcome(c.call(1, Queue.Declare(queue=n("q"), passive=True)))


def passive_exchange(c, n, _url):
    return outcome(c.call(1, Exchange.Declare(exchange=n("x"), passive=True)))


def publish_to_missing_exchange(c, n, _url):
    c.send(1, Basic.Publish(exchange=n("x"), routing_key="k"), body=b"lost")
    # Publish has no reply; the next synchronous method shows whether the channel survived.
    return outcome(c.call(1, Queue.Declare(queue="", exclusive=True)))


def bind_missing_queue(c, n, _url):
    return outcome(c.call(1, Queue.Bind(queue=n("q"), exchange="amq.direct", routing_key="k")))


def bind_missing_exchange(c, n, _url):
    return outcome(c.call(1, Queue.Bind(queue=declare_exclusive(c), exchange=n("x"), routing_key="k")))


def consume_missing_queue(c, n, _url):
    return outcome(c.call(1, Basic.Consume(queue=n("q"))))


def declare_amq_exchange(c, n, _url):
    return outcome(c.call(1, Exchange.Declare(exchange="amq." + n("x"), type="direct")))


def declare_amq_queue(c, n, _url):
    return outcome(c.call(1, Queue.Declare(queue="amq." + n("q"))))


def delete_system_exchange(c, n, _url):
    return outcome(c.call(1, Exchange.Delete(exchange="amq.direct")))


def bind_to_default_exchange(c, n, _url):
    return outcome(c.call(1, Queue.Bind(queue=declare_exclusive(c), exchange="", routing_key="k")))


def inequivalent_queue_argument(c, n, _url):
    name = n("q")
    first = c.call(1, Queue.Declare(queue=name, exclusive=True, arguments={"x-message-ttl": 100}))
    second = c.call(1, Queue.Declare(queue=name, exclusive=True, arguments={"x-message-ttl": 200}))
    return outcome(first), outcome(second)


def inequivalent_queue_durability(c, n, _url):
    name = n("q")
    first = c.call(1, Queue.Declare(queue=name, auto_delete=True))
    second = c.call(1, Queue.Declare(queue=name, auto_delete=False))
    c.channel(3)
    c.call(3, Queue.Delete(queue=name))
    return outcome(first), outcome(second)


def inequivalent_exchange_type(c, n, _url):
    name = n("x")
    first = c.call(1, Exchange.Declare(exchange=name, type="direct", auto_delete=True))
    second = c.call(1, Exchange.Declare(exchange=name, type="fanout", auto_delete=True))
    return outcome(first), outcome(second)


def inequivalent_exchange_durability(c, n, _url):
    name = n("x")
    first = c.call(1, Exchange.Declare(exchange=name, type="topic", auto_delete=True))
    second = c.call(1, Exchange.Declare(exchange=name, type="topic", durable=True, auto_delete=True))
    return outcome(first), outcome(second)


def ack_unknown_delivery_tag(c, n, _url):
    c.send(1, Basic.Ack(delivery_tag=42))
    return outcome(c.call(1, Queue.Declare(queue="", exclusive=True)))


def ack_twice(c, n, _url):
    queue = declare_exclusive(c)
    c.send(1, Basic.Publish(exchange="", routing_key=queue), body=b"m")
    method, _props, _body = c.get(1, queue, no_ack=False)
    c.send(1, Basic.Ack(delivery_tag=method.delivery_tag))
    c.send(1, Basic.Ack(delivery_tag=method.delivery_tag))
    return outcome(c.call(1, Queue.Declare(queue="", exclusive=True)))


def reject_unknown_delivery_tag(c, n, _url):
    c.send(1, Basic.Reject(delivery_tag=7, requeue=False))
    return outcome(c.call(1, Queue.Declare(queue="", exclusive=True)))


def ack_multiple_zero_with_nothing_outstanding(c, n, _url):
    # delivery-tag 0 with multiple=true means "everything so far": valid even when nothing is.
    c.send(1, Basic.Ack(delivery_tag=0, multiple=True))
    return outcome(c.call(1, Queue.Declare(queue="", exclusive=True)))


def exclusive_queue_from_other_connection(c, n, url):
    queue = declare_exclusive(c)
    with WireClient(url) as other:
        other.open()
        other.channel(1)
        results = [outcome(other.call(1, Queue.Declare(queue=queue, passive=True)))]
        other.channel(2)
        results.append(outcome(other.call(2, Basic.Consume(queue=queue))))
        other.channel(3)
        results.append(outcome(other.call(3, Queue.Delete(queue=queue))))
        other.channel(4)
        results.append(outcome(other.call(4, Queue.Purge(queue=queue))))
    return results


def exclusive_consumer_conflict(c, n, _url):
    queue = declare_exclusive(c)
    first = c.call(1, Basic.Consume(queue=queue, consumer_tag="one", exclusive=True))
    c.channel(3)
    second = c.call(3, Basic.Consume(queue=queue, consumer_tag="two"))
    c.channel(4)
    c.call(1, Basic.Cancel(consumer_tag="one"))
    c.call(4, Basic.Consume(queue=queue, consumer_tag="three"))
    c.channel(5)
    third = c.call(5, Basic.Consume(queue=queue, consumer_tag="four", exclusive=True))
    return outcome(first), outcome(second), outcome(third)


def delete_if_empty_non_empty_queue(c, n, _url):
    queue = declare_exclusive(c)
    c.call(1, pika.spec.Confirm.Select())
    c.send(1, Basic.Publish(exchange="", routing_key=queue), body=b"m")
    c.wait(1, Basic.Ack)  # only a confirm guarantees the queue holds the message before the delete
    return outcome(c.call(1, Queue.Delete(queue=queue, if_empty=True)))


def delete_if_unused_queue_with_consumer(c, n, _url):
    queue = declare_exclusive(c)
    c.call(1, Basic.Consume(queue=queue, consumer_tag="busy"))
    c.channel(3)
    return outcome(c.call(3, Queue.Delete(queue=queue, if_unused=True)))


def delete_if_unused_bound_exchange(c, n, _url):
    exchange = n("x")
    c.call(1, Exchange.Declare(exchange=exchange, type="fanout", auto_delete=False))
    c.call(1, Queue.Bind(queue=declare_exclusive(c), exchange=exchange))
    refused = c.call(1, Exchange.Delete(exchange=exchange, if_unused=True))
    c.channel(3)
    cleaned = c.call(3, Exchange.Delete(exchange=exchange))
    return outcome(refused), outcome(cleaned)


def direct_reply_to_without_consumer(c, n, _url):
    queue = declare_exclusive(c)
    c.send(1, Basic.Publish(exchange="", routing_key=queue),
           pika.spec.BasicProperties(reply_to="amq.rabbitmq.reply-to"), body=b"request")
    return outcome(c.call(1, Queue.Declare(queue="", exclusive=True)))


def direct_reply_to_consumer_with_acks(c, n, _url):
    return outcome(c.call(1, Basic.Consume(queue="amq.rabbitmq.reply-to", no_ack=False)))


def cancel_unknown_consumer_tag(c, n, _url):
    # Cancelling a tag that does not exist is not an error: cancel-ok echoes the tag.
    reply = c.call(1, Basic.Cancel(consumer_tag="never-existed"))
    return outcome(reply), getattr(reply, "consumer_tag", None)


def confirm_select_on_transactional_channel(c, n, _url):
    c.call(1, pika.spec.Tx.Select())
    return outcome(c.call(1, pika.spec.Confirm.Select()))


def tx_select_on_confirm_channel(c, n, _url):
    c.call(1, pika.spec.Confirm.Select())
    return outcome(c.call(1, pika.spec.Tx.Select()))


def tx_commit_without_select(c, n, _url):
    return outcome(c.call(1, pika.spec.Tx.Commit()))


CHANNEL_ERRORS = [
    passive_queue, passive_exchange, publish_to_missing_exchange, bind_missing_queue, bind_missing_exchange,
    consume_missing_queue, declare_amq_exchange, declare_amq_queue, delete_system_exchange,
    bind_to_default_exchange, inequivalent_queue_argument, inequivalent_queue_durability,
    inequivalent_exchange_type, inequivalent_exchange_durability, ack_unknown_delivery_tag, ack_twice,
    reject_unknown_delivery_tag, ack_multiple_zero_with_nothing_outstanding, exclusive_queue_from_other_connection,
    exclusive_consumer_conflict, delete_if_empty_non_empty_queue, delete_if_unused_queue_with_consumer,
    delete_if_unused_bound_exchange, direct_reply_to_without_consumer, direct_reply_to_consumer_with_acks,
    cancel_unknown_consumer_tag, confirm_select_on_transactional_channel, tx_select_on_confirm_channel,
    tx_commit_without_select,
]


@pytest.mark.parametrize("case", CHANNEL_ERRORS, ids=lambda f: f.__name__)
def test_channel_level_errors_match_rabbitmq(differential, case):
    differential(run_case(case))


def test_the_usual_channel_errors_have_rabbitmqs_codes(differential):
    """Spot checks of RabbitMQ's answers, so a scenario that silently stopped erring is noticed."""
    observed, alive = differential(run_case(passive_queue))
    assert observed == ("Channel.Close", 404, "NOT_FOUND - no queue '<q>' in vhost '/'", 50, 10)
    assert alive == "connection usable"
    observed, alive = differential(run_case(publish_to_missing_exchange))
    assert observed == ("Channel.Close", 404, "NOT_FOUND - no exchange '<x>' in vhost '/'", 60, 40)
    observed, _ = differential(run_case(ack_unknown_delivery_tag))
    assert observed == ("Channel.Close", 406, "PRECONDITION_FAILED - unknown delivery tag 42", 60, 80)
    (_ok, observed), _ = differential(run_case(inequivalent_queue_argument))
    assert observed[1:3] == (406, "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '<q>' in "
                                  "vhost '/': received '200' but current is '100'")


# --- connection errors ------------------------------------------------------------------------

def reuse_consumer_tag(c, n, _url):
    queue = declare_exclusive(c)
    c.call(1, Basic.Consume(queue=queue, consumer_tag="dup"))
    return outcome(c.call(1, Basic.Consume(queue=queue, consumer_tag="dup")))


def second_channel_open(c, n, _url):
    return outcome(c.call(1, Channel.Open(), Channel.OpenOk))


def method_on_unopened_channel(c, n, _url):
    return outcome(c.call(9, Queue.Declare(queue="", exclusive=True)))


def publish_immediate(c, n, _url):
    queue = declare_exclusive(c)
    c.send(1, Basic.Publish(exchange="", routing_key=queue, immediate=True), body=b"now")
    return outcome(c.call(1, Queue.Declare(queue="", exclusive=True)))


def unknown_exchange_type(c, n, _url):
    return outcome(c.call(1, Exchange.Declare(exchange=n("x"), type="no-such-type")))


def qos_prefetch_size(c, n, _url):
    return outcome(c.call(1, Basic.Qos(prefetch_size=4096)))


def channel_close_ok_never_sent_then_reuse(c, n, _url):
    # After a channel error, anything but close-ok on that channel is dropped until close-ok comes.
    c.send(1, Queue.Declare(queue=n("q"), passive=True))
    close = c.next_frame().method
    c.send(1, Queue.Declare(queue="", exclusive=True))
    c.send(1, Channel.CloseOk())
    reopened = c.call(1, Channel.Open(), Channel.OpenOk)
    return outcome(close), outcome(reopened)


def recover_without_requeue(c, n, _url):
    return outcome(c.call(1, Basic.Recover(requeue=False)))


CONNECTION_ERRORS = [recover_without_requeue, reuse_consumer_tag, second_channel_open, method_on_unopened_channel,
                     publish_immediate, unknown_exchange_type, qos_prefetch_size]


@pytest.mark.parametrize("case", CONNECTION_ERRORS, ids=lambda f: f.__name__)
def test_connection_level_errors_match_rabbitmq(differential, case):
    differential(run_case(case))


def test_the_usual_connection_errors_have_rabbitmqs_codes(differential):
    observed, alive = differential(run_case(reuse_consumer_tag))
    assert observed == ("Connection.Close", 530, "NOT_ALLOWED - attempt to reuse consumer tag 'dup'", 60, 20)
    assert alive == "socket closed"
    observed, _ = differential(run_case(second_channel_open))
    assert observed[:2] == ("Connection.Close", 504)
    observed, _ = differential(run_case(publish_immediate))
    assert observed == ("Connection.Close", 540, "NOT_IMPLEMENTED - immediate=true", 60, 40)


def test_login_and_vhost_refusals_match_rabbitmq(differential):
    def scenario(url, _names):
        results = []
        for kwargs in ({"password": "wrong"}, {"vhost": "no-such-vhost"}):
            with WireClient(url) as client:
                try:
                    reply = client.open(**kwargs)
                    results.append(outcome(reply.method))
                    client.send(0, Connection.CloseOk())
                    client.next_frame()
                    results.append("socket open")
                except (EOFError, OSError):
                    results.append("socket closed")
        return results

    result = differential(scenario)
    assert result == [
        ("Connection.Close", 403, "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
                                  "For details see the broker logfile.", 0, 0), "socket closed",
        ("Connection.Close", 530, "NOT_ALLOWED - vhost no-such-vhost not found", 10, 40), "socket closed",
    ]


# --- more channel errors found by probing RabbitMQ ------------------------------------------------

def publish_to_internal_exchange(c, n, _url):
    exchange = n("internal")
    c.call(1, Exchange.Declare(exchange=exchange, type="fanout", internal=True, auto_delete=True))
    c.call(1, Queue.Bind(queue=declare_exclusive(c), exchange=exchange))
    c.send(1, Basic.Publish(exchange=exchange, routing_key=""), body=b"x")
    return outcome(c.call(1, Queue.Declare(queue="", exclusive=True)))


def publish_with_invalid_expiration(c, n, _url):
    queue = declare_exclusive(c)
    c.send(1, Basic.Publish(exchange="", routing_key=queue), pika.spec.BasicProperties(expiration="soon"),
           body=b"x")
    return outcome(c.call(1, Queue.Declare(queue="", exclusive=True)))


def publish_with_negative_expiration(c, n, _url):
    queue = declare_exclusive(c)
    c.send(1, Basic.Publish(exchange="", routing_key=queue), pika.spec.BasicProperties(expiration="-5"),
           body=b"x")
    return outcome(c.call(1, Queue.Declare(queue="", exclusive=True)))


def publish_with_foreign_user_id(c, n, _url):
    queue = declare_exclusive(c)
    c.send(1, Basic.Publish(exchange="", routing_key=queue), pika.spec.BasicProperties(user_id="mallory"),
           body=b"x")
    return outcome(c.call(1, Queue.Declare(queue="", exclusive=True)))


def headers_binding_with_bad_x_match(c, n, _url):
    return outcome(c.call(1, Queue.Bind(queue=declare_exclusive(c), exchange="amq.headers",
                                        arguments={"x-match": "some"})))


def unbind_missing_binding(c, n, _url):
    queue = declare_exclusive(c)
    return (outcome(c.call(1, Queue.Unbind(queue=queue, exchange="amq.direct", routing_key="never-bound"))),
            outcome(c.call(1, pika.spec.Exchange.Unbind(destination="amq.fanout", source="amq.direct",
                                                        routing_key="never-bound"))))


def unbind_missing_queue(c, n, _url):
    return outcome(c.call(1, Queue.Unbind(queue=n("q"), exchange="amq.direct", routing_key="k")))


def exchange_bind_missing_source(c, n, _url):
    return outcome(c.call(1, pika.spec.Exchange.Bind(destination="amq.fanout", source=n("x"), routing_key="k")))


def channel_flow_off(c, n, _url):
    return outcome(c.call(1, Channel.Flow(active=False)))


def passive_declares_of_builtin_names(c, n, _url):
    return [outcome(c.call(1, Exchange.Declare(exchange=name, passive=True)))
            for name in ("amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match")] + [
        outcome(c.call(1, Queue.Declare(queue="amq.rabbitmq.reply-to", passive=True)))]


def queue_declare_with_unknown_argument(c, n, _url):
    # Unknown x- arguments are stored and ignored; only known ones are validated.
    return outcome(c.call(1, Queue.Declare(queue="", exclusive=True, arguments={"x-leveret-nonsense": 1})))


MORE_CHANNEL_ERRORS = [
    publish_to_internal_exchange, publish_with_invalid_expiration, publish_with_negative_expiration,
    publish_with_foreign_user_id, headers_binding_with_bad_x_match, unbind_missing_binding, unbind_missing_queue,
    exchange_bind_missing_source, channel_flow_off, passive_declares_of_builtin_names,
    queue_declare_with_unknown_argument, channel_close_ok_never_sent_then_reuse,
]


@pytest.mark.parametrize("case", MORE_CHANNEL_ERRORS, ids=lambda f: f.__name__)
def test_more_channel_level_answers_match_rabbitmq(differential, case):
    differential(run_case(case))
