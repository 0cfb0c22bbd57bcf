"""Differential tests of stream queues: leveret and RabbitMQ 3.10 must answer alike.

Offsets (each x-stream-offset form and its first delivery), the x-stream-offset header as encoded
on the wire, delivery tags and flags, and every refusal (declare properties and arguments, consume
without prefetch or with no-ack, basic.get, queue.purge, nack, reject) with its code, text, class
and method. Messages are published one confirm at a time: then every message is a chunk of its
own on both brokers, so "last" means the same message.
"""

from __future__ import annotations

import pika.spec
import pytest
from pika.spec import Basic, Confirm, Connection, Queue

from differential import close_of
from wireclient import WireClient

STREAM = {"x-queue-type": "stream"}


def outcome(method):
    return close_of(method) or type(method).NAME


def opened(url: str) -> WireClient:
    client = WireClient(url, timeout=3)
    assert isinstance(client.open().method, Connection.OpenOk)
    client.channel(1)
    return client


def make_stream(url: str, name: str, count: int) -> None:
    with opened(url) as c:
        assert isinstance(c.call(1, Queue.Declare(queue=name, durable=True, arguments=STREAM)), Queue.DeclareOk)
        c.call(1, Confirm.Select())
        for i in range(count):
            c.send(1, Basic.Publish(exchange="", routing_key=name),
                   pika.spec.BasicProperties(headers={"i": i}, content_type="text/plain"), body=b"m%d" % i)
            assert isinstance(c.wait(1, Basic.Ack, Basic.Nack).method, Basic.Ack)


def delete(url: str, name: str) -> None:
    with opened(url) as c:
        c.call(1, Queue.Delete(queue=name))


def first_deliveries(c: WireClient, name: str, arguments, n: int, prefetch: int = 5):
    """Consume and return the first `n` deliveries as plain data, header bytes included."""
    c.call(1, Basic.Qos(prefetch_count=prefetch))
    ok = c.call(1, Basic.Consume(queue=name, consumer_tag="ctag", arguments=arguments))
    out = [outcome(ok)]
    for _ in range(n):
        method, props, body = c.read_message(1, c.wait(1, Basic.Deliver))
        out.append((method.consumer_tag, method.delivery_tag, method.redelivered, method.exchange,
                    method.routing_key, props.headers, props.content_type, body, c.last_header_raw))
    return out


@pytest.mark.parametrize("spec", ["first", "last", 3, 0, -4, "1h", "1D"])
def test_x_stream_offset_forms_deliver_the_same_first_messages(differential, spec):
    def scenario(url, names):
        name = names("s")
        make_stream(url, name, 6)
        try:
            with opened(url) as c:
                return first_deliveries(c, name, {"x-stream-offset": spec}, 2 if spec != "last" else 1)
        finally:
            delete(url, name)

    differential(scenario)


def test_next_and_no_offset_see_only_later_messages(differential):
    def scenario(url, names):
        name = names("s")
        make_stream(url, name, 3)
        try:
            with opened(url) as c:
                c.call(1, Basic.Qos(prefetch_count=5))
                c.call(1, Basic.Consume(queue=name, consumer_tag="a", arguments={"x-stream-offset": "next"}))
                c.call(1, Basic.Consume(queue=name, consumer_tag="b"))
                c.send(1, Confirm.Select())
                c.wait(1, Confirm.SelectOk)
                c.send(1, Basic.Publish(exchange="", routing_key=name), pika.spec.BasicProperties(), body=b"late")
                got = []
                for _ in range(2):
                    m, p, body = c.read_message(1, c.wait(1, Basic.Deliver))
                    got.append((m.consumer_tag, p.headers["x-stream-offset"], body))
                return sorted(got)
        finally:
            delete(url, name)

    differential(scenario)


def test_acking_frees_credit_and_unknown_tags_fail(differential):
    def scenario(url, names):
        name = names("s")
        make_stream(url, name, 4)
        try:
            with opened(url) as c:
                got = first_deliveries(c, name, {"x-stream-offset": "first"}, 2, prefetch=2)
                c.send(1, Basic.Ack(delivery_tag=2, multiple=True))
                got += [c.read_message(1, c.wait(1, Basic.Deliver))[1].headers["x-stream-offset"] for _ in range(2)]
                c.send(1, Basic.Ack(delivery_tag=9))
                got.append(outcome(c.wait(1, Basic.Deliver).method))
                return got
        finally:
            delete(url, name)

    differential(scenario)


@pytest.mark.parametrize("method", [
    Basic.Nack(delivery_tag=1, requeue=True),
    Basic.Nack(delivery_tag=1, requeue=False),
    Basic.Reject(delivery_tag=1, requeue=True),
    Basic.Reject(delivery_tag=1, requeue=False),
], ids=["nack-requeue", "nack", "reject-requeue", "reject"])
def test_nack_and_reject_close_the_connection_with_540(differential, method):
    def scenario(url, names):
        name = names("s")
        make_stream(url, name, 2)
        try:
            with opened(url) as c:
                first_deliveries(c, name, {"x-stream-offset": "first"}, 1, prefetch=1)
                c.send(1, method)
                return outcome(c.wait(1, Basic.Deliver).method)
        finally:
            delete(url, name)

    differential(scenario)


def _declare(arguments, **flags):
    def case(c, name):
        return outcome(c.call(1, Queue.Declare(queue=name, arguments={**STREAM, **arguments}, **flags)))
    return case


def _get(no_ack):
    def case(c, name):
        return outcome(c.call(1, Basic.Get(queue=name, no_ack=no_ack), Basic.GetOk, Basic.GetEmpty))
    return case


def _consume(prefetch, no_ack=False, arguments=None, global_=False):
    def case(c, name):
        if prefetch:
            c.call(1, Basic.Qos(prefetch_count=prefetch, global_qos=global_))
        return outcome(c.call(1, Basic.Consume(queue=name, no_ack=no_ack, arguments=arguments or {})))
    return case


REFUSALS = {
    "non-durable": _declare({}, durable=False),
    "exclusive": _declare({}, durable=True, exclusive=True),
    "auto-delete": _declare({}, durable=True, auto_delete=True),
    "x-max-length": _declare({"x-max-length": 5}, durable=True),
    "x-message-ttl": _declare({"x-message-ttl": 5}, durable=True),
    "x-max-age-bad": _declare({"x-max-age": "3x"}, durable=True),
    "x-max-age-int": _declare({"x-max-age": 3}, durable=True),
    "x-max-length-bytes-negative": _declare({"x-max-length-bytes": -1}, durable=True),
    "x-max-length-bytes-text": _declare({"x-max-length-bytes": "1"}, durable=True),
    "basic.get": _get(False),
    "basic.get-no-ack": _get(True),
    "consume-without-qos": _consume(0),
    "consume-global-qos-only": _consume(5, global_=True),
    "consume-no-ack": _consume(5, no_ack=True),
    "consume-x-priority": _consume(5, arguments={"x-priority": 2}),
    "consume-bad-offset": _consume(5, arguments={"x-stream-offset": "12x"}),
    "purge": lambda c, name: outcome(c.call(1, Queue.Purge(queue=name))),
    "redeclare-classic": lambda c, name: outcome(c.call(1, Queue.Declare(queue=name, durable=True))),
    "redeclare-other-max-age": _declare({"x-max-age": "2h"}, durable=True),
    "redeclare-non-durable": _declare({}, durable=False),
    "redeclare-exclusive": _declare({}, durable=True, exclusive=True),
    "redeclare-ignores-x-max-length": _declare({"x-max-length": 3}, durable=True),
    "exclusive-consumer-then-another": lambda c, name: (
        _consume(5)(c, name) and None,  # a plain consumer first: an exclusive one is refused
        outcome(c.call(1, Basic.Consume(queue=name, exclusive=True))),
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_refusals_match_rabbitmq(differential, case):
    def scenario(url, names):
        name = names("s")
        other = names("new")
        with opened(url) as c:
            c.call(1, Queue.Declare(queue=name, durable=True, arguments=STREAM))
        try:
            with opened(url) as c:
                target = other if case.startswith(("non-", "exclusive", "auto-", "x-")) else name
                return REFUSALS[case](c, target)
        finally:
            delete(url, name)
            delete(url, other)

    differential(scenario)


def test_server_named_stream_is_refused(differential):
    def scenario(url, names):
        with opened(url) as c:
            return outcome(c.call(1, Queue.Declare(queue="", durable=True, arguments=STREAM)))

    differential(scenario)


def test_declare_ok_of_a_stream_counts_no_messages(differential):
    def scenario(url, names):
        name = names("s")
        make_stream(url, name, 3)
        try:
            with opened(url) as c:
                again = c.call(1, Queue.Declare(queue=name, durable=True, arguments=STREAM))
                passive = c.call(1, Queue.Declare(queue=name, passive=True))
                return (again.message_count, again.consumer_count, passive.message_count)
        finally:
            delete(url, name)

    differential(scenario)
