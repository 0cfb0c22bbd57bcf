"""Differential tests of successful traffic: what arrives, in which order, with which flags and counts.

Each scenario uses the raw-frame client so that nothing is coalesced or hidden: delivery tags,
redelivered flags, message counts in get-ok and declare-ok, the exact content-header bytes, and
the interleaving of basic.return and basic.ack are all part of the result that must match.
"""

from __future__ import annotations

import struct
import time

import pika.spec
from pika.spec import Basic, Confirm, Exchange, Queue, Tx

from differential import describe
from wireclient import WireClient


def opened(url: str, channels=(1,)) -> WireClient:
    client = WireClient(url)
    client.open()
    for number in channels:
        client.channel(number)
    return client


def publish(c: WireClient, exchange: str, key: str, body: bytes, props=None, channel: int = 1, **flags) -> None:
    c.send(channel, Basic.Publish(exchange=exchange, routing_key=key, **flags), props, body=body)


def publish_confirmed(c: WireClient, exchange: str, key: str, body: bytes, channel: int = 1) -> None:
    """Publish on a channel in confirm mode and wait for its ack.

    Only a confirm proves the message reached its queue: RabbitMQ answers a queue.declare that
    follows an unconfirmed publish with a count that may or may not include it.
    """
    publish(c, exchange, key, body, channel=channel)
    reply = c.wait(channel, Basic.Ack, Basic.Nack)
    assert isinstance(reply.method, Basic.Ack), reply


def get_all(c: WireClient, queue: str, channel: int = 1) -> list:
    """basic.get until get-empty: (body, exchange, routing key, redelivered, message count) each."""
    out = []
    while True:
        method, _props, body = c.get(channel, queue)
        if not isinstance(method, Basic.GetOk):
            out.append(type(method).NAME)
            return out
        out.append((body, method.exchange, method.routing_key, method.redelivered, method.message_count))


def exclusive_queue(c: WireClient, channel: int = 1, **arguments) -> str:
    return c.call(channel, Queue.Declare(queue="", exclusive=True, arguments=arguments or None)).queue


def test_routing_through_every_exchange_type_matches(differential):
    def scenario(url, names):
        with opened(url) as c:
            exchanges = {kind: names(kind) for kind in ("direct", "fanout", "topic", "headers")}
            for kind, name in exchanges.items():
                c.call(1, Exchange.Declare(exchange=name, type=kind, auto_delete=True))
            queues = {label: exclusive_queue(c) for label in ("d1", "d2", "f", "t1", "t2", "h_all", "h_any")}
            c.call(1, Queue.Bind(queue=queues["d1"], exchange=exchanges["direct"], routing_key="a"))
            c.call(1, Queue.Bind(queue=queues["d2"], exchange=exchanges["direct"], routing_key="a"))
            c.call(1, Queue.Bind(queue=queues["d2"], exchange=exchanges["direct"], routing_key="b"))
            c.call(1, Queue.Bind(queue=queues["f"], exchange=exchanges["fanout"]))
            c.call(1, Queue.Bind(queue=queues["t1"], exchange=exchanges["topic"], routing_key="*.x.#"))
            c.call(1, Queue.Bind(queue=queues["t2"], exchange=exchanges["topic"], routing_key="#"))
            c.call(1, Queue.Bind(queue=queues["h_all"], exchange=exchanges["headers"],
                                 arguments={"x-match": "all", "a": 1, "b": "two"}))
            c.call(1, Queue.Bind(queue=queues["h_any"], exchange=exchanges["headers"],
                                 arguments={"x-match": "any", "a": 1, "b": "two"}))
            for key in ("a", "b", "c", "", "q.x", "q.x.y.z", "x", "q.y.x"):
                for kind in ("direct", "fanout", "topic"):
                    publish(c, exchanges[kind], key, f"{kind}:{key}".encode())
            for label, headers in (("ab", {"a": 1, "b": "two"}), ("a", {"a": 1}), ("a-long", {"a": 2 ** 40}),
                                   ("b-bytes", {"b": b"two"}), ("none", None)):
                publish(c, exchanges["headers"], "", label.encode(), pika.spec.BasicProperties(headers=headers))
            result = {label: get_all(c, queue) for label, queue in queues.items()}
            for name in exchanges.values():
                c.call(1, Exchange.Delete(exchange=name))
            return result

    result = differential(scenario)
    assert [r[0] for r in result["t1"][:-1]] == [b"topic:q.x", b"topic:q.x.y.z"]


def shortstr(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">B", len(data)) + data


def longstr(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def field(tag: str, value) -> bytes:
    """One field value with an explicit type tag: every tag RabbitMQ's table codec accepts."""
    packers = {"t": ">B", "b": ">b", "B": ">B", "s": ">h", "u": ">H", "I": ">i", "i": ">I", "l": ">q",
               "f": ">f", "d": ">d", "T": ">Q"}
    if tag in packers:
        return tag.encode() + struct.pack(packers[tag], value)
    if tag == "D":
        scale, unscaled = value
        return b"D" + struct.pack(">Bi", scale, unscaled)
    if tag in "Sx":
        return tag.encode() + longstr(value)
    if tag == "V":
        return b"V"
    if tag == "F":
        return b"F" + longstr(table(value))
    if tag == "A":
        return b"A" + longstr(b"".join(field(t, v) for t, v in value))
    raise ValueError(tag)


def table(items) -> bytes:
    return b"".join(shortstr(key) + field(tag, value) for key, tag, value in items)


def content_header(body_size: int, content_type: str, headers: bytes, priority: int, timestamp: int) -> bytes:
    flags = (1 << 15) | (1 << 13) | (1 << 11) | (1 << 6)  # content-type, headers, priority, timestamp
    return (struct.pack(">HHQH", 60, 0, body_size, flags) + shortstr(content_type) + longstr(headers)
            + struct.pack(">BQ", priority, timestamp))


EVERY_TAG = [
    ("bool", "t", 1), ("short-short", "b", -5), ("octet", "B", 250), ("short", "s", -300), ("ushort", "u", 65000),
    ("long", "I", -70000), ("ulong", "i", 4000000000), ("longlong", "l", -(2 ** 40)), ("float", "f", 1.5),
    ("double", "d", -2.25), ("decimal", "D", (2, 314)), ("longstr", "S", "h\u00e9llo".encode()),
    ("bytes", "x", b"\x00\xffraw"), ("timestamp", "T", 1700000000), ("void", "V", None),
    ("table", "F", [("inner", "S", b"v"), ("n", "I", 1)]),
    ("array", "A", [("I", 1), ("S", b"two"), ("d", 3.0), ("V", None), ("A", [("t", 0)])]),
]


def test_properties_and_header_table_encoding_survive_byte_for_byte(differential):
    def scenario(url, _names):
        with opened(url) as c:
            queue = exclusive_queue(c)
            out = []
            # Every property set by pika's encoder, then a hand-made header using every field type tag.
            full = pika.spec.BasicProperties(
                content_type="application/json", content_encoding="gzip", headers={"s": "x", "n": 2 ** 40},
                delivery_mode=2, priority=9, correlation_id="corr", reply_to="reply", expiration="60000",
                message_id="mid", timestamp=1700000000, type="kind", user_id="guest", app_id="app",
                cluster_id="cl")
            for props in (full, pika.spec.BasicProperties(), pika.spec.BasicProperties(priority=0)):
                publish(c, "", queue, b"payload", props)
                method, got, body = c.get(1, queue)
                out.append((describe(method), describe(got), c.last_header_raw, body))
            c.send(1, Basic.Publish(exchange="", routing_key=queue))
            c.send_raw(1, 2, content_header(4, "raw/tags", table(EVERY_TAG), 3, 1700000001))
            c.send_raw(1, 3, b"body")
            method, got, body = c.get(1, queue)
            out.append((describe(method), c.last_header_raw, body))
            return out

    result = differential(scenario)
    # RabbitMQ hands the content header back exactly as it was published.
    assert result[3][1] == content_header(4, "raw/tags", table(EVERY_TAG), 3, 1700000001)


def test_requeue_order_redelivered_flags_and_counts_match(differential):
    def scenario(url, _names):
        with opened(url, channels=(1, 2)) as c:
            queue = exclusive_queue(c)
            for i in range(6):
                publish(c, "", queue, f"m{i}".encode())
            tags = [c.get(1, queue, no_ack=False)[0].delivery_tag for _ in range(6)]
            c.send(1, Basic.Nack(delivery_tag=tags[3], multiple=False, requeue=True))
            c.send(1, Basic.Reject(delivery_tag=tags[1], requeue=True))
            c.send(1, Basic.Nack(delivery_tag=tags[5], multiple=False, requeue=False))
            c.send(1, Basic.Ack(delivery_tag=tags[0]))
            first = get_all(c, queue)
            declared = c.call(1, Queue.Declare(queue=queue, passive=True))
            c.call(1, Basic.Recover(requeue=True))  # tags 2 and 4 are still unacked: back to the queue
            second = get_all(c, queue)
            # Unacked deliveries of a closed channel go back too, ahead of later messages.
            publish(c, "", queue, b"late")
            # RabbitMQ's queue takes a publish after its channel has moved on; a passive declare on the
            # publishing channel reaches the queue after it, so the other channel's get finds it.
            c.call(1, Queue.Declare(queue=queue, passive=True))
            method, _p, _b = c.get(2, queue, no_ack=False)
            c.call(2, pika.spec.Channel.Close(reply_code=200, reply_text="done", class_id=0, method_id=0))
            third = get_all(c, queue)
            return tags, first, describe(declared), second, method.redelivered, third

    tags, first, _declared, _second, _redelivered, _third = differential(scenario)
    assert tags == [1, 2, 3, 4, 5, 6]
    assert [entry[0] for entry in first[:-1]] == [b"m1", b"m3"]


def test_consumer_deliveries_with_prefetch_and_multiple_ack_match(differential):
    def scenario(url, _names):
        with opened(url) as c:
            queue = exclusive_queue(c)
            c.call(1, Confirm.Select())
            for i in range(5):
                publish_confirmed(c, "", queue, bytes([65 + i]))
            c.call(1, Basic.Qos(prefetch_count=2))
            ok = c.call(1, Basic.Consume(queue=queue, consumer_tag=""))
            batch = c.deliveries(1, 2)
            counts = c.call(1, Queue.Declare(queue=queue, passive=True))
            c.send(1, Basic.Ack(delivery_tag=batch[-1][0].delivery_tag, multiple=True))
            batch += c.deliveries(1, 2)
            c.send(1, Basic.Nack(delivery_tag=0, multiple=True, requeue=True))
            batch += c.deliveries(1, 2)
            cancel = c.call(1, Basic.Cancel(consumer_tag=ok.consumer_tag))
            return (describe(ok), [(describe(m), body) for m, _p, body in batch], describe(counts),
                    describe(cancel))

    _ok, batch, counts, _cancel = differential(scenario)
    assert counts[1]["message_count"] == 3 and counts[1]["consumer_count"] == 1
    assert [body for _m, body in batch] == [b"A", b"B", b"C", b"D", b"C", b"D"]


def test_confirms_returns_and_nacks_interleave_identically(differential):
    def scenario(url, names):
        with opened(url) as c:
            events = []
            routed = exclusive_queue(c)
            full = exclusive_queue(c, **{"x-max-length": 1, "x-overflow": "reject-publish"})
            events.append(describe(c.call(1, Confirm.Select())))
            plan = [("", routed, True), ("", names("nowhere"), True), ("", names("nowhere"), False),
                    ("", full, False), ("", full, False), ("amq.direct", "unbound", True)]
            for exchange, key, mandatory in plan:
                publish(c, exchange, key, b"x", mandatory=mandatory)
                # One publish at a time: each answer is complete before the next, so nothing coalesces.
                while True:
                    frame = c.wait(1, Basic.Ack, Basic.Nack, Basic.Return)
                    if isinstance(frame.method, Basic.Return):
                        method, _props, body = c.read_message(1, frame)
                        events.append((describe(method), body))
                        continue
                    # One publish outstanding: multiple=true and false mean the same, and RabbitMQ
                    # sets it on some nacks; only the kind and the tag are observable to clients.
                    events.append((type(frame.method).NAME, frame.method.delivery_tag))
                    break
            return events

    events = differential(scenario)
    assert events[2][0] == ("Basic.Return", {"reply_code": 312, "reply_text": "NO_ROUTE", "exchange": "",
                                             "routing_key": "<nowhere>"})
    assert events[1:] == [
        ("Basic.Ack", 1), events[2], ("Basic.Ack", 2), ("Basic.Ack", 3), ("Basic.Ack", 4), ("Basic.Nack", 5),
        events[7], ("Basic.Ack", 6)]
    assert events[7][0][1]["routing_key"] == "unbound"


def test_transactions_hold_publishes_and_acks_until_commit(differential):
    def scenario(url, _names):
        with opened(url, channels=(1, 2)) as c:
            queue = exclusive_queue(c, channel=2)
            seen = [describe(c.call(1, Tx.Select()))]

            def count():
                return c.call(2, Queue.Declare(queue=queue, passive=True)).message_count

            publish(c, "", queue, b"one")
            publish(c, "", queue, b"two")
            seen.append(count())
            seen.append(describe(c.call(1, Tx.Commit())))
            seen.append(count())
            publish(c, "", queue, b"three")
            seen.append(describe(c.call(1, Tx.Rollback())))
            seen.append(count())
            method, _p, _b = c.get(1, queue, no_ack=False)
            c.send(1, Basic.Ack(delivery_tag=method.delivery_tag))
            c.call(1, Tx.Rollback())
            c.call(1, Basic.Recover(requeue=True))
            seen.append(get_all(c, queue, channel=2))
            return seen

    seen = differential(scenario)
    assert seen[1] == 0 and seen[3] == 2 and seen[5] == 2


def test_declare_purge_and_delete_report_the_same_counts(differential):
    def scenario(url, names):
        with opened(url) as c:
            queue = names("counts")
            out = [describe(c.call(1, Queue.Declare(queue=queue, auto_delete=False)))]
            c.call(1, Confirm.Select())
            for i in range(4):
                publish_confirmed(c, "", queue, b"m")
            out.append(describe(c.call(1, Queue.Declare(queue=queue, passive=True))))
            out.append(describe(c.call(1, Queue.Purge(queue=queue))))
            for i in range(2):
                publish_confirmed(c, "", queue, b"m")
            c.call(1, Basic.Consume(queue=queue, consumer_tag="c1"))
            c.deliveries(1, 2)
            out.append(describe(c.call(1, Queue.Declare(queue=queue))))
            out.append(describe(c.call(1, Queue.Delete(queue=queue))))
            out.append(describe(c.call(1, Queue.Delete(queue=queue))))  # deleting twice is fine
            return out

    out = differential(scenario)
    assert out[2] == ("Queue.PurgeOk", {"message_count": 4})


def test_sender_selected_distribution_rewrites_headers_identically(differential):
    def scenario(url, names):
        with opened(url) as c:
            exchange = names("ssd")
            c.call(1, Exchange.Declare(exchange=exchange, type="direct", auto_delete=True))
            queues = {}
            for key in ("to", "cc1", "cc2", "bcc"):
                queues[key] = exclusive_queue(c)
                c.call(1, Queue.Bind(queue=queues[key], exchange=exchange, routing_key=key))
            publish(c, exchange, "to", b"memo", pika.spec.BasicProperties(
                headers={"first": 1, "CC": ["cc1", "cc2"], "middle": "m", "BCC": ["bcc"], "last": [1]}))
            out = {}
            for key, queue in queues.items():
                method, props, body = c.get(1, queue)
                out[key] = (describe(method), describe(props), c.last_header_raw, body)
            c.call(1, Exchange.Delete(exchange=exchange))
            return out

    out = differential(scenario)
    assert out["bcc"][1][1]["headers"] == {"first": 1, "CC": ["cc1", "cc2"], "middle": "m", "last": [1]}


def test_dead_lettering_adds_the_same_x_death_headers(differential):
    def scenario(url, names):
        with opened(url) as c:
            dlx = names("dlx")
            c.call(1, Exchange.Declare(exchange=dlx, type="fanout", auto_delete=True))
            dead = exclusive_queue(c)
            c.call(1, Queue.Bind(queue=dead, exchange=dlx))
            source = names("src")
            c.call(1, Queue.Declare(queue=source, exclusive=True, arguments={"x-dead-letter-exchange": dlx}))
            expiring = names("ttl")
            c.call(1, Queue.Declare(queue=expiring, exclusive=True, arguments={
                "x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "expired-key", "x-message-ttl": 0}))
            publish(c, "", source, b"rejected", pika.spec.BasicProperties(headers={"keep": 1}))
            method, _p, _b = c.get(1, source, no_ack=False)
            c.send(1, Basic.Reject(delivery_tag=method.delivery_tag, requeue=False))
            publish(c, "", expiring, b"expired", pika.spec.BasicProperties(expiration="60000"))
            c.call(1, Basic.Consume(queue=dead, consumer_tag="dead", no_ack=True))
            out = []
            for method, props, body in sorted(c.deliveries(1, 2), key=lambda d: d[2]):
                headers = dict(props.headers)
                for death in headers.get("x-death", []):
                    death["time"] = "<time>"  # a timestamp of the broker's clock
                out.append((body, method.exchange, method.routing_key, headers, props.expiration))
            c.call(1, Exchange.Delete(exchange=dlx))
            return out

    out = differential(scenario)
    assert out[1][0] == b"rejected"
    assert out[1][3]["x-death"][0]["reason"] == "rejected"
    assert out[0][3]["x-death"][0]["reason"] == "expired"


def test_direct_reply_to_round_trip_matches(differential):
    def scenario(url, names):
        with opened(url) as client, opened(url) as server:
            requests = exclusive_queue(server)
            client.call(1, Basic.Consume(queue="amq.rabbitmq.reply-to", consumer_tag="rpc", no_ack=True))
            client.call(1, Confirm.Select())
            publish(client, "", requests, b"ask", pika.spec.BasicProperties(reply_to="amq.rabbitmq.reply-to",
                                                                              correlation_id="7"))
            # The server reads on another connection: only the confirm says the request is queued.
            assert isinstance(client.wait(1, Basic.Ack).method, Basic.Ack)
            method, props, body = server.get(1, requests)
            publish(server, "", props.reply_to, body + b"-answer",
                    pika.spec.BasicProperties(correlation_id=props.correlation_id))
            [(reply_method, reply_props, reply_body)] = client.deliveries(1, 1)
            return describe(props), describe(reply_method), describe(reply_props), reply_body

    request_props, reply_method, _reply_props, body = differential(scenario)
    assert request_props[1]["reply_to"] == "<reply-to>"
    assert reply_method[1]["routing_key"] == "<reply-to>" and body == b"ask-answer"


def test_global_qos_is_shared_by_the_consumers_of_a_channel(differential):
    def scenario(url, _names):
        with opened(url) as c:
            queues = [exclusive_queue(c), exclusive_queue(c)]
            c.call(1, Confirm.Select())
            for queue in queues:
                for i in range(3):
                    publish_confirmed(c, "", queue, f"{queue[-4:]}-{i}".encode())
            c.call(1, Basic.Qos(prefetch_count=3, global_qos=True))
            for index, queue in enumerate(queues):
                c.call(1, Basic.Consume(queue=queue, consumer_tag=f"c{index}"))
            got = c.deliveries(1, 3)
            ready = [c.call(1, Queue.Declare(queue=q, passive=True)).message_count for q in queues]
            return sum(ready), len(got)

    # Three deliveries in flight for the channel as a whole, whichever queues they came from.
    assert differential(scenario) == (3, 3)


def test_recover_with_requeue_redelivers_unacked_messages_to_the_consumer(differential):
    # (basic.recover with requeue=false is refused by RabbitMQ: see test_errors_diff.)
    def scenario(url, _names):
        with opened(url) as c:
            queue = exclusive_queue(c)
            c.call(1, Confirm.Select())
            for body in (b"a", b"b"):
                publish_confirmed(c, "", queue, body)
            c.call(1, Basic.Consume(queue=queue, consumer_tag="only"))
            first = c.deliveries(1, 2)
            c.send(1, Basic.Ack(delivery_tag=1))
            c.call(1, Basic.Recover(requeue=True))
            again = c.deliveries(1, 1)
            return [(describe(m), body) for m, _p, body in first + again]

    result = differential(scenario)
    assert [(m[1]["delivery_tag"], m[1]["redelivered"], body) for m, body in result] == [
        (1, False, b"a"), (2, False, b"b"), (3, True, b"b")]


def test_queue_delete_notifies_its_consumer_with_basic_cancel(differential):
    def scenario(url, _names):
        with opened(url, channels=(1, 2)) as c:
            queue = exclusive_queue(c)
            c.call(1, Basic.Consume(queue=queue, consumer_tag="watcher"))
            deleted = c.call(2, Queue.Delete(queue=queue))
            cancel = c.wait(1, Basic.Cancel).method
            return describe(deleted), describe(cancel)

    _deleted, cancel = differential(scenario)
    assert cancel == ("Basic.Cancel", {"consumer_tag": "watcher", "nowait": True})


def wait_until_gone(c: WireClient, queue: str, first_channel: int) -> str:
    """Poll with passive declares (each 404 costs a channel) until the queue is gone; bounded."""
    deadline = time.monotonic() + 5
    channel = first_channel
    while time.monotonic() < deadline:
        c.channel(channel)
        reply = c.call(channel, Queue.Declare(queue=queue, passive=True))
        if isinstance(reply, pika.spec.Channel.Close):
            return f"gone: {reply.reply_code}"
        channel += 1
    return "still there"


def test_exclusive_and_auto_delete_queues_disappear_with_their_owner(differential):
    def scenario(url, names):
        with opened(url) as watcher:
            owner = opened(url)
            exclusive = owner.call(1, Queue.Declare(queue=names("excl"), exclusive=True)).queue
            auto = owner.call(1, Queue.Declare(queue=names("auto"), auto_delete=True)).queue
            owner.call(1, Basic.Consume(queue=auto, consumer_tag="a1"))
            owner.call(1, Basic.Consume(queue=auto, consumer_tag="a2"))
            owner.call(1, Basic.Cancel(consumer_tag="a1"))
            still = describe(watcher.call(1, Queue.Declare(queue=auto, passive=True)))
            owner.call(1, Basic.Cancel(consumer_tag="a2"))
            auto_gone = wait_until_gone(watcher, auto, 2)
            owner.close()
            exclusive_gone = wait_until_gone(watcher, exclusive, 100)
            return still, auto_gone, exclusive_gone

    still, auto_gone, exclusive_gone = differential(scenario)
    assert still[1]["consumer_count"] == 1
    assert (auto_gone, exclusive_gone) == ("gone: 404", "gone: 404")
