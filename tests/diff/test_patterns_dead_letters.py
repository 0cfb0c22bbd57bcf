"""Differential tests of dead-lettering, TTLs and length limits: leveret must show what RabbitMQ shows.

Scenarios drive pika's BlockingConnection and return what a client observes: bodies, exchange and
routing key of each delivery, redelivered flags, counts, confirm outcomes, and headers. The only
value hidden is x-death's `time` (a timestamp that differs between runs); its type is kept.
"""

from __future__ import annotations

import time

import pika
import pika.exceptions

from differential import WAIT, connection_for, get_within, hide_times


def seen(method, properties, body) -> tuple:
    return (
        body,
        method.exchange,
        method.routing_key,
        method.redelivered,
        properties.expiration,
        hide_times(properties.headers),
    )


def drain(channel, queue: str) -> list:
    out = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append(seen(method, properties, body))


def test_dead_letter_chain_with_x_death_matches(differential):
    """reject -> DLX fanout -> queue with TTL expiring into a third queue; every header compared."""

    def scenario(url, names):
        with connection_for(url) as connection:
            ch = connection.channel()
            work, parking, final = names("work"), names("parking"), names("final")
            dlx = names("dlx")
            ch.exchange_declare(dlx, "fanout", auto_delete=True)
            ch.queue_declare(work, exclusive=True, arguments={"x-dead-letter-exchange": dlx})
            ch.queue_declare(
                parking,
                exclusive=True,
                arguments={"x-message-ttl": 30, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": final},
            )
            ch.queue_declare(final, exclusive=True)
            ch.queue_bind(parking, dlx)
            ch.confirm_delivery()
            ch.basic_publish(
                "", work, b"m1", pika.BasicProperties(expiration="60000", headers={"CC": [final], "app": "x"})
            )
            ch.basic_publish("", work, b"m2", pika.BasicProperties(headers={"BCC": [final]}))
            direct_copies = drain(ch, final)
            results = {"direct": direct_copies}
            got = []
            for _ in range(2):
                method, _, _ = get_within(ch, work, ack=False)
                got.append(method.delivery_tag)
            ch.basic_nack(got[-1], multiple=True, requeue=False)
            arrived = []
            for _ in range(2):
                message = get_within(ch, final)
                assert message is not None
                arrived.append(seen(*message))
            results["final"] = sorted(arrived)
            results["counts"] = [ch.queue_declare(q, passive=True).method.message_count for q in (work, parking, final)]
            return results

    differential(scenario)


def test_repeated_rejection_loop_counts_and_orders_x_death(differential):
    def scenario(url, names):
        with connection_for(url) as connection:
            ch = connection.channel()
            a, b = names("a"), names("b")
            ch.queue_declare(a, exclusive=True, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": b})
            ch.queue_declare(b, exclusive=True, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": a})
            ch.confirm_delivery()
            ch.basic_publish("", a, b"loop", pika.BasicProperties(expiration="100000"))
            trail = []
            for _ in range(2):
                for queue in (a, b):
                    method, properties, body = get_within(ch, queue, ack=False)
                    trail.append(seen(method, properties, body))
                    ch.basic_reject(method.delivery_tag, requeue=False)
            return trail

    differential(scenario)


def test_expiry_cycle_is_dropped_and_ttl_zero_expires(differential):
    def scenario(url, names):
        with connection_for(url) as connection:
            ch = connection.channel()
            loop, zero, dlq = names("loop"), names("zero"), names("dlq")
            ch.queue_declare(loop, exclusive=True, arguments={"x-message-ttl": 20, "x-dead-letter-exchange": ""})
            ch.queue_declare(dlq, exclusive=True)
            ch.queue_declare(
                zero, exclusive=True, arguments={"x-message-ttl": 0, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}
            )
            ch.confirm_delivery()
            ch.basic_publish("", loop, b"cycle")
            ch.basic_publish("", zero, b"gone")
            expired = get_within(ch, dlq)
            deadline = time.monotonic() + WAIT
            while ch.queue_declare(loop, passive=True).method.message_count and time.monotonic() < deadline:
                connection.process_data_events(time_limit=0.02)
            return {
                "zero": seen(*expired),
                "loop": ch.queue_declare(loop, passive=True).method.message_count,
                "zero_count": ch.queue_declare(zero, passive=True).method.message_count,
            }

    differential(scenario)


def test_per_message_expiration_waits_for_the_head_and_uses_the_minimum(differential):
    def scenario(url, names):
        with connection_for(url) as connection:
            ch = connection.channel()
            work, dlq = names("work"), names("dlq")
            ch.queue_declare(dlq, exclusive=True)
            ch.queue_declare(
                work, exclusive=True, arguments={"x-message-ttl": 60000, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}
            )
            ch.confirm_delivery()
            ch.basic_publish("", work, b"head")
            ch.basic_publish("", work, b"short", pika.BasicProperties(expiration="20"))
            connection.process_data_events(time_limit=0.1)
            before = ch.queue_declare(work, passive=True).method.message_count
            head = ch.basic_get(work, auto_ack=True)
            after = get_within(ch, dlq)
            return {"before": before, "head": head[2], "expired": seen(*after)}

    differential(scenario)


def test_max_length_overflow_modes_match(differential):
    def scenario(url, names):
        with connection_for(url) as connection:
            ch = connection.channel()
            dlq = names("dlq")
            ch.queue_declare(dlq, exclusive=True)
            dl = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}
            queues = {
                "drop": names("drop"),
                "reject": names("reject"),
                "reject_dlx": names("reject_dlx"),
                "bytes": names("bytes"),
            }
            ch.queue_declare(queues["drop"], exclusive=True, arguments={"x-max-length": 2, **dl})
            ch.queue_declare(queues["reject"], exclusive=True, arguments={"x-max-length": 2, "x-overflow": "reject-publish", **dl})
            ch.queue_declare(
                queues["reject_dlx"], exclusive=True, arguments={"x-max-length": 2, "x-overflow": "reject-publish-dlx", **dl}
            )
            ch.queue_declare(queues["bytes"], exclusive=True, arguments={"x-max-length-bytes": 5, **dl})
            ch.confirm_delivery()
            outcomes = {}
            for label, queue in queues.items():
                outcomes[label] = []
                for body in (b"aa", b"bb", b"cc"):
                    try:
                        ch.basic_publish("", queue, body)
                        outcomes[label].append("ack")
                    except pika.exceptions.NackError:
                        outcomes[label].append("nack")
            fanout = names("fan")
            ch.exchange_declare(fanout, "fanout", auto_delete=True)
            ch.queue_bind(queues["reject"], fanout)
            ch.queue_bind(dlq, fanout)
            try:
                ch.basic_publish(fanout, "", b"partial")
                outcomes["partial"] = "ack"
            except pika.exceptions.NackError:
                outcomes["partial"] = "nack"
            ch.queue_unbind(dlq, fanout)
            return {
                "outcomes": outcomes,
                "left": {label: [m[0] for m in drain(ch, q)] for label, q in queues.items()},
                "dead": [(m[0], m[5]["x-death"][0]["reason"], m[5]["x-death"][0]["queue"]) if m[5] else (m[0], None) for m in drain(ch, dlq)],
            }

    differential(scenario)


def test_priority_queue_order_matches(differential):
    def scenario(url, names):
        with connection_for(url) as connection:
            ch = connection.channel()
            queue = names("prio")
            ch.queue_declare(queue, exclusive=True, arguments={"x-max-priority": 3})
            ch.confirm_delivery()
            for i, priority in enumerate((None, 1, 9, 3, 0, 2, 3, None)):
                ch.basic_publish("", queue, str(i).encode(), pika.BasicProperties(priority=priority))
            method, _, _ = ch.basic_get(queue)
            ch.basic_reject(method.delivery_tag, requeue=True)
            return [(m[0], m[3]) for m in drain(ch, queue)]

    differential(scenario)


def test_bad_queue_arguments_give_the_same_errors(differential):
    cases = [
        {"x-message-ttl": -1},
        {"x-message-ttl": "10"},
        {"x-expires": 0},
        {"x-overflow": "foo"},
        {"x-overflow": 5},
        {"x-max-priority": 256},
        {"x-max-length": -1},
        {"x-max-length-bytes": "x"},
        {"x-dead-letter-exchange": 5},
        {"x-dead-letter-routing-key": "k"},
        {"x-queue-type": "foo"},
        {"x-single-active-consumer": "yes"},
        {"x-delivery-limit": 3},
        {"x-queue-type": "quorum", "x-max-priority": 5},
        {"x-queue-type": "quorum", "x-dead-letter-strategy": "foo"},
    ]

    def scenario(url, names):
        out = []
        with connection_for(url) as connection:
            for arguments in cases:
                ch = connection.channel()
                name = names("bad")
                durable = arguments.get("x-queue-type") == "quorum"
                try:
                    ch.queue_declare(name, durable=durable, arguments=arguments)
                    out.append("ok")
                    ch.queue_delete(name)
                except pika.exceptions.ChannelClosedByBroker as e:
                    out.append((e.reply_code, e.reply_text))
            ch = connection.channel()
            for flags in ({}, {"exclusive": True, "durable": True}, {"auto_delete": True, "durable": True}):
                try:
                    ch.queue_declare(names("qq"), arguments={"x-queue-type": "quorum"}, **flags)
                    out.append("ok")
                except pika.exceptions.ChannelClosedByBroker as e:
                    out.append((e.reply_code, e.reply_text))
                    ch = connection.channel()
            for expiration in ("-1", "abc", "1.5"):
                try:
                    ch.confirm_delivery()
                    ch.basic_publish("", "nowhere", b"x", pika.BasicProperties(expiration=expiration))
                    out.append("ok")
                except pika.exceptions.ChannelClosedByBroker as e:
                    out.append((e.reply_code, e.reply_text))
                    ch = connection.channel()
        return out

    differential(scenario)
