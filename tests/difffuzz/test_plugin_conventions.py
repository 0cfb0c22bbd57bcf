"""What the delayed-message and consistent-hash plugins do to the messages they route, pinned on leveret.

The local RabbitMQ has neither plugin enabled, so these tests follow their sources instead: the
delayed-message plugin's repository (github.com/rabbitmq/rabbitmq-delayed-message-exchange) at commit
6686798 ("Update README to reflect 3.10.x support", its RabbitMQ 3.10 release), and the consistent-hash
plugin's (github.com/rabbitmq/rabbitmq-consistent-hash-exchange) at d24884b, as
tests/broker/exchanges/test_consistent_hash.py. Each test names the file it follows. Messages are
published with typed headers (every tag as the test states it) and read back byte for byte.
"""
from __future__ import annotations

import time
import uuid

import pytest

import lockstep
import rawmethods


@pytest.fixture
def session(fuzz_leveret):
    opened = lockstep.Session(lockstep.leveret(fuzz_leveret), f"plugin-{uuid.uuid4().hex[:8]}")
    yield opened
    opened.close()


def fetched(observed) -> bool:
    """Whether a basic.get observation is a message (GetOk) rather than GetEmpty."""
    return observed[0][0] == "Basic.GetOk"


def fetch_within(session, queue: str, seconds: float = 5.0):
    """basic.get until a message comes (a held message is due within milliseconds here), or None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = session.run(("get", queue))
        if fetched(got):
            return got
    return None


def test_the_consumer_gets_the_header_bytes_as_published(session):
    """rabbit_delayed_message_utils.erl, swap_delay_header/set_delivery_headers: the plugin negates x-delay in
    the decoded properties only and leaves the encoded ones, which are what RabbitMQ forwards; so an AMQP
    consumer sees x-delay positive and of the type it was published with (the plugin's issue #64)."""
    headers = [("x-delay", ("l", 5)), ("n", ("b", -1)), ("s", ("S", "a"))]
    session.run(("declare_exchange", "dx", "x-delayed-message", [("x-delayed-type", ("S", "direct"))]))
    session.run(("declare_queue", "q", []))
    session.run(("bind", "q", "dx", "k", []))
    assert session.run(("publish", "dx", "k", {"headers": headers}, b"later", True))[0] == "Basic.Ack"
    got = fetch_within(session, "q")
    assert got is not None and got[2] == b"later"
    assert got[1] == rawmethods.content_header(len(b"later"), {"headers": headers})


def test_routing_after_the_delay_sees_x_delay_negated(session):
    """rabbit_delayed_message.erl, route/3: a due message goes through swap_delay_header
    (rabbit_delayed_message_utils.erl: x-delay set to -Delay, signedint) before rabbit_exchange:route, so a
    headers binding on x-delay matches the negated value, never the published one."""
    session.run(("declare_exchange", "dx", "x-delayed-message", [("x-delayed-type", ("S", "headers"))]))
    for queue, value in (("negated", -5), ("published", 5)):
        session.run(("declare_queue", queue, []))
        session.run(("bind", queue, "dx", "", [("x-match", ("S", "all-with-x")), ("x-delay", ("I", value))]))
    session.run(("publish", "dx", "", {"headers": [("x-delay", ("I", 5))]}, b"m", False))
    got = fetch_within(session, "negated")
    assert got is not None and got[2] == b"m"
    assert not fetched(session.run(("get", "published")))
    assert got[1] == rawmethods.content_header(1, {"headers": [("x-delay", ("I", 5))]})  # and delivered as published


HELD = [("I", 60000), ("l", 60000), ("s", 30000), ("u", 60000), ("i", 60000), ("S", "60000"), ("S", "+60000"),
        ("d", 60000.9), ("f", 60000.0)]
ROUTED_AT_ONCE = [("T", 60000), ("t", True), ("x", b"60000"), ("V", None), ("S", " 60000"), ("S", "6e4"),
                  ("f", 0.5), ("d", -1.5), ("I", 0), ("l", 2**32), ("A", [("I", 60000)]), ("D", (0, 60000)),
                  ("S", "soon")]


@pytest.mark.parametrize("x_delay", HELD + ROUTED_AT_ONCE, ids=repr)
def test_x_delay_is_read_as_the_plugin_reads_it(session, x_delay):
    """rabbit_delayed_message_utils.erl, get_delay_header: the integer types as they are, a longstr through
    binary_to_integer, float and double truncated (0.5 is 0: not delayed); timestamp, bool, byte array, void
    and containers are no delay; rabbit_exchange_type_delayed_message.erl, delay_message: held only when
    0 < Delay =< 2^32-1. (A decimal or a longstr that is not an integer makes the plugin itself fail; leveret
    routes at once, docs/compatibility.md.)"""
    session.run(("declare_exchange", "dx", "x-delayed-message", [("x-delayed-type", ("S", "fanout"))]))
    session.run(("declare_queue", "q", []))
    session.run(("bind", "q", "dx", "", []))
    session.run(("publish", "dx", "", {"headers": [("x-delay", x_delay)]}, b"m", False))
    assert fetched(session.run(("get", "q"))) is (x_delay not in HELD)


def test_a_released_message_is_delivered_as_published(session):
    """rabbit_delayed_message.erl, route/3: the stored #delivery is routed as it was published (its
    exchange and routing keys), with only the decoded x-delay swapped (rabbit_delayed_message_utils.erl,
    swap_delay_header); the encoded properties RabbitMQ forwards are the published ones. So the consumer
    reads the delayed exchange and the published routing key, not redelivered, and every property byte for
    byte."""
    properties = {"content_type": "text/plain", "content_encoding": "gzip",
                  "headers": [("x-delay", ("I", 5)), ("k", ("T", 7))], "delivery_mode": 2, "priority": 3,
                  "correlation_id": "c", "reply_to": "r", "expiration": "60000", "message_id": "m",
                  "timestamp": 42, "type": "t", "app_id": "a"}
    session.run(("declare_exchange", "dx", "x-delayed-message", [("x-delayed-type", ("S", "topic"))]))
    session.run(("declare_queue", "q", []))
    session.run(("bind", "q", "dx", "a.#", []))
    session.run(("publish", "dx", "a.b", properties, b"body", False))
    got = fetch_within(session, "q")
    assert got is not None
    method, header, body = got
    assert method[1]["exchange"] == "dx" and method[1]["routing_key"] == "a.b"
    assert method[1]["redelivered"] is False
    assert (header, body) == (rawmethods.content_header(4, properties), b"body")


def test_a_released_message_crosses_exchange_bindings_with_x_delay_negated(session):
    """rabbit_delayed_message.erl, route/3: the due delivery goes through rabbit_exchange:route(Ex, D2), which
    follows exchange-to-exchange bindings with the swapped message: a headers exchange bound downstream
    sees x-delay as -D, and a delayed exchange downstream (rabbit_exchange_type_delayed_message.erl,
    delay_message: only 0 < Delay holds) routes it at once."""
    session.run(("declare_exchange", "dx", "x-delayed-message", [("x-delayed-type", ("S", "fanout"))]))
    session.run(("declare_exchange", "hx", "headers", []))
    session.run(("declare_exchange", "dx2", "x-delayed-message", [("x-delayed-type", ("S", "fanout"))]))
    session.run(("bind_exchange", "hx", "dx", "", []))
    session.run(("bind_exchange", "dx2", "dx", "", []))
    for queue, value in (("negated", -100), ("published", 100)):
        session.run(("declare_queue", queue, []))
        session.run(("bind", queue, "hx", "", [("x-match", ("S", "all-with-x")), ("x-delay", ("I", value))]))
    session.run(("declare_queue", "downstream", []))
    session.run(("bind", "downstream", "dx2", "", []))
    session.run(("publish", "dx", "", {"headers": [("x-delay", ("I", 100))]}, b"m", False))
    assert fetch_within(session, "negated") is not None
    assert fetch_within(session, "downstream") is not None
    assert not fetched(session.run(("get", "published")))


@pytest.fixture
def hash_exchanges(session):
    """One consistent-hash exchange per hash-property, each bound to the same four queues with the same
    weights (so the same key lands in the same queue on each: docs/compatibility.md, the ring is made of
    the bindings alone)."""
    for prop in ("message_id", "correlation_id", "timestamp"):
        session.run(("declare_exchange", f"h-{prop}", "x-consistent-hash", [("hash-property", ("S", prop))]))
    for number in range(4):
        session.run(("declare_queue", f"q{number}", []))
        for prop in ("message_id", "correlation_id", "timestamp"):
            session.run(("bind", f"q{number}", f"h-{prop}", str(number + 1), []))
    return session


def landed_in(session, exchange: str, properties: dict) -> str:
    session.run(("publish", exchange, "", properties, b"m", False))
    found = [queue for queue in ("q0", "q1", "q2", "q3") if fetched(session.run(("get", queue)))]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("value", [0, 7, 1234567890, 2**40])
def test_hash_property_timestamp_is_hashed_as_its_decimal_text(hash_exchanges, value):
    """rabbit_exchange_type_consistent_hash.erl, value_to_hash({property, <<"timestamp">>}, ...): the
    timestamp is hashed as integer_to_binary(Timestamp), message_id and correlation_id as their bytes, so
    timestamp N, message_id "N" and correlation_id "N" are one key."""
    text = str(value)
    assert (landed_in(hash_exchanges, "h-timestamp", {"timestamp": value})
            == landed_in(hash_exchanges, "h-message_id", {"message_id": text})
            == landed_in(hash_exchanges, "h-correlation_id", {"correlation_id": text}))


def test_consistent_hash_delivers_the_message_untouched(hash_exchanges):
    """rabbit_exchange_type_consistent_hash.erl, route/2 only picks the queue: the message goes on as
    published, its properties byte for byte, from the hash exchange with its routing key."""
    properties = {"message_id": "k", "headers": [("x-a", ("D", (2, 5)))], "priority": 1}
    hash_exchanges.run(("publish", "h-message_id", "rk", properties, b"body", False))
    got = [hash_exchanges.run(("get", queue)) for queue in ("q0", "q1", "q2", "q3")]
    messages = [observed for observed in got if fetched(observed)]
    assert len(messages) == 1
    method, header, body = messages[0]
    assert method[1]["exchange"] == "h-message_id" and method[1]["routing_key"] == "rk"
    assert (header, body) == (rawmethods.content_header(4, properties), b"body")
